"""The echo endpoint the Autobahn fuzzing client tests: ``/echo`` sends every message
back as it came (text as text, binary as binary).

    python scripts/autobahn_echo.py PORT [asyncio|trio]
"""

from __future__ import annotations

import sys
from functools import partial

import anyio

from httpy import App, Config, WebSocketConnection, serve

app = App()


@app.websocket("/echo")
async def echo(ws: WebSocketConnection) -> None:
    async for message in ws:
        if message.is_text:
            await ws.send_text(message.text())
        else:
            await ws.send_bytes(message.bytes())


if __name__ == "__main__":
    port = int(sys.argv[1])
    backend = sys.argv[2] if len(sys.argv) > 2 else "asyncio"
    # Autobahn's largest messages are 16 MiB; keep-alive pings would only add noise.
    config = Config(
        binds=(f"127.0.0.1:{port}",),
        access_log=False,
        ws_max_message_bytes=16 * 1024 * 1024,
        ws_ping_interval=None,
    )
    anyio.run(partial(serve, app, config, install_signal_handlers=True), backend=backend)
