# ruff: noqa
# fmt: off
"""The seed's "Chat Application" (ADVANCED_USAGE.md, WebSocket Real-time Applications),
verbatim between the markers (tests/seed/test_seed_websockets.py checks it).  It
registers on HTTPy's default app; ``app.py`` serves it with a page that uses it."""

# --- BEGIN SEED SNIPPET 5 ---
import asyncio
import json
from httpy import websocket, WebSocketConnection

# Store active connections by room
rooms = {}

@websocket("/ws/chat/{room}")
async def chat_room(ws: WebSocketConnection) -> None:
    room = ws.path_params.get('room', 'default')
    
    # Add connection to room
    if room not in rooms:
        rooms[room] = set()
    rooms[room].add(ws)
    
    # Send welcome message
    await ws.send_text(f"Welcome to chat room: {room}")
    
    # Broadcast join message to other users
    for client in rooms[room]:
        if client != ws:
            await client.send_text(f"User joined the room")
    
    try:
        while True:
            msg = await ws.receive()
            if msg.is_text:
                text = msg.text()
                data = json.loads(text)
                
                # Broadcast message to all clients in the room
                for client in rooms[room]:
                    await client.send_text(json.dumps({
                        "sender": data.get("sender", "Anonymous"),
                        "message": data.get("message", ""),
                        "timestamp": data.get("timestamp", "")
                    }))
            elif msg.is_close:
                break
    except Exception as e:
        print(f"WebSocket error: {e}")
    finally:
        # Remove connection from room
        if room in rooms and ws in rooms[room]:
            rooms[room].remove(ws)
            if not rooms[room]:
                del rooms[room]
        
        # Close connection if still open
        if not ws.closed:
            await ws.close()
# --- END SEED SNIPPET 5 ---
