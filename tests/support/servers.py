"""Start real HTTPy servers for tests: in the test's own event loop, or in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal

from httpy import Config, serve
from httpy.core.application import Application


def make_config(**options: Any) -> Config:
    options.setdefault("binds", ("127.0.0.1:0",))
    options.setdefault("access_log", False)
    return Config(**options)


@asynccontextmanager
async def running_server(app: Application, **options: Any) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on an ephemeral loopback port in the current event loop."""
    config = make_config(**options)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(partial(serve, app, config, shutdown_trigger=stop.wait))
        try:
            yield addresses[0]
        finally:
            stop.set()


@contextmanager
def server_thread(app: Application, backend: str, **options: Any) -> Iterator[tuple[str, int]]:
    """Serve ``app`` from a thread running its own ``backend`` event loop.

    For clients that bring their own loop or none (aiohttp, sync httpx, curl).
    """
    config = make_config(**options)
    with start_blocking_portal(backend=backend) as portal:
        stop = portal.call(anyio.Event)
        future, addresses = portal.start_task(
            partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        try:
            yield addresses[0]
        finally:
            portal.call(stop.set)
            future.result(timeout=60)


def free_port() -> int:
    """A TCP port that was free a moment ago (for servers started in subprocesses)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
