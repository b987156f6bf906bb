"""The seed's chat room, scaled out: rooms work across worker processes and machines.

    python -m httpy examples.broadcast_chat.app:app                     # one process
    BROADCAST_URL=redis://localhost:6379 \\
        python -m httpy examples.broadcast_chat.app:app --workers 4     # shared by Redis

Each WebSocket subscribes to its room's channel; what a client sends is published to
the channel, and every subscriber, in whatever process, forwards it to its client.
With the default ``memory://`` backend that is this process only; with Redis it is
every process connected to the same Redis server.
"""

from __future__ import annotations

import json
import os

import anyio

from httpy import App, WebSocketConnection
from httpy.broadcast import Broadcast

app = App()
broadcast = Broadcast(os.environ.get("BROADCAST_URL", "memory://"))


@app.websocket("/ws/chat/{room}")
async def chat_room(ws: WebSocketConnection) -> None:
    room = ws.path_params.get("room", "default")
    channel = f"chat:{room}"
    async with broadcast.subscribe(channel) as messages:
        # Subscribed before the welcome: a client that saw it misses nothing after it.
        await ws.send_text(f"Welcome to chat room: {room} (process {os.getpid()})")
        await broadcast.publish(channel, json.dumps({"sender": "system", "message": "joined"}))

        async def relay() -> None:
            async for message in messages:
                await ws.send_text(message)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(relay)
            async for message in ws:  # until the client closes
                if message.is_text:
                    data = json.loads(message.text())
                    await broadcast.publish(
                        channel,
                        json.dumps(
                            {
                                "sender": data.get("sender", "Anonymous"),
                                "message": data.get("message", ""),
                                "timestamp": data.get("timestamp", ""),
                            }
                        ),
                    )
            tasks.cancel_scope.cancel()


@app.on_shutdown
async def close_broadcast() -> None:
    await broadcast.aclose()
