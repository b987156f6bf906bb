"""The application the soak test (``make soak``, :mod:`bench.soak`) drives.

``GET /`` and ``GET /json`` answer like :mod:`bench.apps.httpy_app` (so the benchmark's
readiness check applies); ``POST /echo`` sends the request body back; ``POST /upload``
reads its body as a stream and answers its length; ``GET /stream?chunks=N&size=S``
streams ``N`` chunks of ``S`` bytes; ``/ws`` is a WebSocket echo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from httpy import App, Request, Response, StreamingResponse, WebSocketConnection

app = App()

#: The JSON document ``GET /json`` returns (same object as the benchmark apps).
JSON_BODY = {"message": "Hello, world!", "id": 1, "ok": True}
#: Bounds on ``/stream`` so a typo in a client cannot make the server produce gigabytes.
MAX_CHUNKS = 4096
MAX_CHUNK_SIZE = 65536


@app.get("/")
async def plaintext(request: Request) -> Response:
    """A fixed text body."""
    return Response.text("Hello, world!")


@app.get("/json")
async def json_endpoint(request: Request) -> Response:
    """A small JSON document."""
    return Response.json(JSON_BODY)


@app.post("/echo")
async def echo(request: Request) -> Response:
    """The request body back, byte for byte (read in full before the handler runs)."""
    return Response(await request.body(), headers={"content-type": "application/octet-stream"})


@app.post("/upload", stream=True)
async def upload(request: Request) -> Response:
    """Reads the body chunk by chunk without keeping it; answers how many bytes came."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return Response.json({"bytes": received})


def _bounded_int(request: Request, name: str, default: int, limit: int) -> int:
    """A query parameter as an int in 1..limit (``default`` when absent or invalid)."""
    raw = request.query.get(name)
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        value = default
    return max(1, min(value, limit))


@app.get("/stream")
async def stream(request: Request) -> Response:
    """``chunks`` chunks of ``size`` bytes each, produced one at a time."""
    chunks = _bounded_int(request, "chunks", 16, MAX_CHUNKS)
    size = _bounded_int(request, "size", 1024, MAX_CHUNK_SIZE)
    piece = b"x" * size

    async def produce() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            yield piece

    return StreamingResponse(produce(), media_type="application/octet-stream")


@app.websocket("/ws")
async def ws_echo(ws: WebSocketConnection) -> None:
    """Every message back as it came."""
    async for message in ws:
        if message.is_text:
            await ws.send_text(message.text())
        else:
            await ws.send_bytes(message.bytes())
