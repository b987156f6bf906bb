"""The benchmark application as a bare ASGI 3 callable, for Uvicorn, Hypercorn and Granian.

No framework: routing is a dict lookup, bodies are pre-encoded.  ``GET /`` answers
``Hello, world!`` as text/plain and ``GET /json`` a small JSON object, with the same
content types HTTPy's ``Response.text`` and ``Response.json`` use.  Anything else is 404.
It answers the lifespan protocol so no server logs a warning about it, and ``/ws`` is a
WebSocket echo.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The JSON document ``GET /json`` returns (same object as the HTTPy app).
JSON_BODY = {"message": "Hello, world!", "id": 1, "ok": True}

_ROUTES: dict[str, tuple[bytes, bytes]] = {
    "/": (b"text/plain; charset=utf-8", b"Hello, world!"),
    "/json": (b"application/json", json.dumps(JSON_BODY, separators=(",", ":")).encode()),
}
_NOT_FOUND = (b"text/plain; charset=utf-8", b"Not Found")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the two benchmark routes (and the lifespan protocol)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _websocket_echo(receive, send)
        return
    if scope["type"] != "http":
        return
    route = _ROUTES.get(scope["path"]) if scope["method"] in ("GET", "HEAD") else None
    status = 200 if route is not None else 404
    content_type, body = route if route is not None else _NOT_FOUND
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _websocket_echo(receive: Receive, send: Send) -> None:
    """``/ws``: accept, then send every message back as it came."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif message["type"] == "websocket.disconnect":
            return
