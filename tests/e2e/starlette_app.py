"""A real Starlette application, served by HTTPy's server in the ASGI tests.

Run it by hand with ``python -m httpy tests.e2e.starlette_app:app``.  The lifespan
prints one line at startup and one at shutdown (the subprocess tests look for them) and
puts ``started_at`` into the lifespan state, which Starlette hands every request as
``request.state``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

#: Paths whose handler saw ``http.disconnect`` (the disconnect test polls this).
DISCONNECTS: list[str] = []
#: Lifespan events seen in this process, in order.
LIFESPAN_EVENTS: list[str] = []


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    LIFESPAN_EVENTS.append("startup")
    print("starlette lifespan: startup", flush=True)
    try:
        yield {"started_at": time.time()}
    finally:
        LIFESPAN_EVENTS.append("shutdown")
        print("starlette lifespan: shutdown", flush=True)


async def home(request: Request) -> Response:
    return PlainTextResponse("hello from starlette\n")


async def item(request: Request) -> Response:
    return JSONResponse(
        {
            "id": request.path_params["item_id"],
            "q": request.query_params.get("q"),
            "path": request.url.path,
        }
    )


async def echo(request: Request) -> Response:
    body = await request.json()
    return JSONResponse(
        {"received": body, "content_type": request.headers.get("content-type")},
        status_code=201,
    )


async def upload_size(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return JSONResponse({"size": size})


async def numbers(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def generate() -> AsyncIterator[str]:
        for i in range(count):
            yield f"line {i}\n"
            await anyio.sleep(0.01)

    return StreamingResponse(generate(), media_type="text/plain")


async def state(request: Request) -> Response:
    return JSONResponse({"started": isinstance(request.state.started_at, float)})


async def wait_for_disconnect(request: Request) -> Response:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            DISCONNECTS.append(request.url.path)
            return PlainTextResponse("nobody is listening\n")


async def scope_info(request: Request) -> Response:
    scope = request.scope
    return JSONResponse(
        {
            "asgi": scope["asgi"],
            "http_version": scope["http_version"],
            "scheme": scope["scheme"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query_string": scope["query_string"].decode("latin-1"),
            "root_path": scope["root_path"],
            "client": list(scope["client"]),
            "server": list(scope["server"]),
        }
    )


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/upload", upload_size, methods=["POST"]),
        Route("/numbers", numbers),
        Route("/state", state),
        Route("/wait-for-disconnect", wait_for_disconnect),
        Route("/scope/{rest:path}", scope_info),
    ],
    lifespan=lifespan,
)
