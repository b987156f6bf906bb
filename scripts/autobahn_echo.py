"""The echo endpoint the Autobahn fuzzing client tests (``make autobahn``,
tests/e2e/test_autobahn.py): ``/echo`` sends every message back as it came, text as
text, binary as binary.  Written the seed's way and served as users serve it, with the
default configuration:

    python -m httpy autobahn_echo:app --app-dir scripts --port 9001 [--backend trio]
"""

from __future__ import annotations

from httpy import App, WebSocketConnection

app = App()


@app.websocket("/echo")
async def echo(ws: WebSocketConnection) -> None:
    while True:
        msg = await ws.receive()
        if msg.is_close:
            break
        if msg.is_text:
            await ws.send_text(msg.text())
        else:
            await ws.send_bytes(msg.bytes())
