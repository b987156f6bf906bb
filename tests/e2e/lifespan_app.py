"""An HTTPy app with startup and shutdown hooks, for the command-line lifespan tests.

``HTTPY_TEST_FAIL_STARTUP=1`` makes the second startup hook raise.  Every hook prints a
line, so a test reading the process output sees which ran and in what order.
"""

from __future__ import annotations

import os

from httpy import App, Request, Response

app = App()


@app.on_startup
async def open_pool() -> None:
    app.state.greeting = "hello from a started app"
    print("hook: startup open_pool", flush=True)


@app.on_startup
def check_database() -> None:
    if os.environ.get("HTTPY_TEST_FAIL_STARTUP"):
        raise RuntimeError("database unreachable at db.internal:5432")
    print("hook: startup check_database", flush=True)


@app.on_shutdown
async def close_pool() -> None:
    print("hook: shutdown close_pool", flush=True)


@app.on_shutdown
def flush_metrics() -> None:
    print("hook: shutdown flush_metrics", flush=True)


@app.get("/")
async def home(request: Request) -> Response:
    return Response.text(app.state.greeting + "\n")
