"""The benchmark application on HTTPy's own API.

``GET /`` answers ``Hello, world!`` as text/plain and ``GET /json`` a small JSON object,
exactly like :mod:`bench.apps.asgi_app` does for the ASGI servers; ``/ws`` is a WebSocket
echo.
"""

from __future__ import annotations

from httpy import App, Request, Response, WebSocketConnection

app = App()

#: The JSON document ``GET /json`` returns (same object as the ASGI app).
JSON_BODY = {"message": "Hello, world!", "id": 1, "ok": True}


@app.get("/")
async def plaintext(request: Request) -> Response:
    """The plaintext benchmark endpoint."""
    return Response.text("Hello, world!")


@app.get("/json")
async def json_endpoint(request: Request) -> Response:
    """The JSON benchmark endpoint."""
    return Response.json(JSON_BODY)


@app.websocket("/ws")
async def ws_echo(ws: WebSocketConnection) -> None:
    """The WebSocket echo benchmark endpoint: every message back as it came."""
    async for message in ws:
        if message.is_text:
            await ws.send_text(message.text())
        else:
            await ws.send_bytes(message.bytes())
