"""A plain ASGI application for tests/e2e/test_every_protocol.py: ASGI lets a handler
send header bytes that HTTPy's own ``Response`` would refuse to build."""

from __future__ import annotations

from typing import Any

import anyio

Scope = dict[str, Any]

#: Handlers of /slow cancelled so far (the server cancels a handler whose client reset
#: its stream or left); read through /stats.
cancelled = 0


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/slow":
        global cancelled
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled += 1
            raise
    if path == "/stats":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % cancelled})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/boom":
        raise RuntimeError("handler failed on purpose")
    headers = [(b"content-type", b"text/plain")]
    if path.startswith("/bad-header/"):
        bad = {
            "crlf": (b"x-bad", b"a\r\nx-injected: 1"),
            "lf": (b"x-bad", b"a\nb"),
            "nul": (b"x-bad", b"a\x00b"),
            "name": (b"x bad", b"1"),
        }[path.rsplit("/", 1)[1]]
        headers.append(bad)
    reply = b"%s %d" % (scope["http_version"].encode(), len(body))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply})
