# ruff: noqa
# fmt: off
"""The seed's "Real-time Data Stream" (ADVANCED_USAGE.md, WebSocket Real-time Applications),
verbatim between the markers (tests/seed/test_seed_websockets.py checks it).  It
registers on HTTPy's default app; ``app.py`` serves it with a page that uses it."""

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
