"""The app the hardening tests attack (importable by a server subprocess)."""

from __future__ import annotations

import anyio

from httpy import App, Request, Response

app = App()

#: The body of ``GET /big``: large enough to span many writes.
BIG = b"x" * (256 * 1024)


@app.get("/")
async def hello(request: Request) -> Response:
    return Response.text("ok")


@app.get("/slow")
async def slow(request: Request) -> Response:
    """A request that is in flight for a while (graceful-shutdown tests)."""
    await anyio.sleep(0.2)
    return Response(BIG)


@app.get("/big")
async def big(request: Request) -> Response:
    return Response(BIG)
