"""Graceful drain details that rolling restarts depend on (asyncio fast path, portable
driver, trio): idle keep-alive connections close at once; a connection accepted just
before the drain, with its request still on the way, gets an answer, not a reset."""

from __future__ import annotations

import logging
from functools import partial

import anyio
import pytest

from httpy import Config
from httpy.backends.server import Server
from tests.e2e.operations_app import app


async def wait_for_connections(server: Server, count: int) -> None:
    with anyio.fail_after(10):
        while server.connection_count < count:
            await anyio.sleep(0.01)


async def listener_closed(host: str, port: int) -> None:
    with anyio.fail_after(10):
        while True:
            try:
                probe = await anyio.connect_tcp(host, port)
            except OSError:
                return
            await probe.aclose()
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_idle_keepalive_connection_closes_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpy.error")
    config = Config(binds=("127.0.0.1:0",), access_log=False, drain_timeout=60)
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        (host, port), *_ = await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        async with await anyio.connect_tcp(host, port) as client:
            await client.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            response = await client.receive()
            assert response.startswith(b"HTTP/1.1 200")
            stop.set()  # the connection is idle (kept alive) when the drain starts
            with anyio.fail_after(30):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    while True:
                        await client.receive()
    assert "drain timeout" not in caplog.text


@pytest.mark.anyio
async def test_request_arriving_during_the_drain_is_answered() -> None:
    config = Config(binds=("127.0.0.1:0",), access_log=False, drain_timeout=60)
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        (host, port), *_ = await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        async with await anyio.connect_tcp(host, port) as client:
            await wait_for_connections(server, 1)  # accepted, nothing sent yet
            stop.set()
            await listener_closed(host, port)  # the drain has begun
            await client.send(b"GET /pid HTTP/1.1\r\nhost: x\r\n\r\n")
            received = b""
            with anyio.fail_after(30):
                try:
                    while True:
                        received += await client.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
    assert received.startswith(b"HTTP/1.1 200"), received
    assert b"connection: close" in received.lower()
