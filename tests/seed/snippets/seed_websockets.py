# ruff: noqa
# fmt: off
"""Seed: WebSocket Real-time Applications (the chat room and the data stream).

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""

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

# --- BEGIN SEED SNIPPET 6 ---
import asyncio
import json
import random
from datetime import datetime
from httpy import websocket, WebSocketConnection

@websocket("/ws/data-stream")
async def data_stream(ws: WebSocketConnection) -> None:
    """Stream real-time data to the client."""
    try:
        # Send initial message
        await ws.send_text("Starting data stream...")
        
        # Stream data every second
        while True:
            # Generate random data
            data = {
                "timestamp": datetime.now().isoformat(),
                "value": random.random() * 100,
                "status": random.choice(["normal", "warning", "critical"])
            }
            
            # Send data as JSON
            await ws.send_text(json.dumps(data))
            
            # Wait for 1 second
            await asyncio.sleep(1)
    except Exception as e:
        print(f"Data stream error: {e}")
    finally:
        if not ws.closed:
            await ws.close()
# --- END SEED SNIPPET 6 ---
