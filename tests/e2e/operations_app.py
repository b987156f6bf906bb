"""An app for the operations tests (workers, reload, proxies): it tells which process
answered and can be made slow or made to fail at startup.

``HTTPY_TEST_FAIL_STARTUP=1``: a startup hook raises.
"""

from __future__ import annotations

import os

import anyio

from httpy import App, Request, Response, WebSocketConnection

app = App()


@app.on_startup
def maybe_fail() -> None:
    if os.environ.get("HTTPY_TEST_FAIL_STARTUP"):
        raise RuntimeError("config file /etc/app.toml is missing")


@app.on_startup
def announce_start() -> None:
    if os.environ.get("HTTPY_TEST_PRINT_HOOKS"):
        print(f"hook: startup in {os.getpid()}", flush=True)


@app.on_shutdown
def announce_stop() -> None:
    if os.environ.get("HTTPY_TEST_PRINT_HOOKS"):
        print(f"hook: shutdown in {os.getpid()}", flush=True)


@app.get("/")
async def index(request: Request) -> Response:
    return Response.text("ok\n")


@app.get("/pid")
async def pid(request: Request) -> Response:
    return Response.json({"pid": os.getpid()})


@app.get("/slow")
async def slow(request: Request) -> Response:
    if "marker" in request.query:  # tells a test that the request is being handled
        await anyio.Path(request.query["marker"]).touch()
    await anyio.sleep(float(request.query.get("seconds", "1")))
    return Response.json({"pid": os.getpid(), "slept": True})


@app.get("/request")
async def describe(request: Request) -> Response:
    """What the server made of the request (client, scheme, host)."""
    return Response.json(
        {
            "client": request.client,
            "scheme": request.scheme,
            "host": request.headers.get("host"),
            "request_id": request.request_id,
        }
    )


@app.get("/boom")
async def boom(request: Request) -> Response:
    raise RuntimeError("the database is on fire")


@app.websocket("/ws/request")
async def describe_websocket(ws: WebSocketConnection) -> None:
    """The same as /request, over a WebSocket: one JSON message, then close."""
    await ws.accept()
    request = ws.request
    await ws.send_json(
        {
            "client": request.client,
            "scheme": request.scheme,
            "host": request.headers.get("host"),
            "request_id": request.request_id,
        }
    )
    await ws.close()
