"""WebSockets over HTTP/3 (RFC 9220: RFC 8441's extended CONNECT on an HTTP/3 stream), on
real UDP sockets, asyncio and trio, with the aioquic client of tests/support/h3client.py
and wsproto's frame layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest

pytest.importorskip("aioquic")

from wsproto.events import CloseConnection

from httpy import App, WebSocketConnection
from httpy.backends.server import Server
from tests.support.h3client import certificate_files, h3_connect, open_websocket
from tests.support.servers import make_config

pytestmark = pytest.mark.anyio


def make_app(seen: dict[str, Any]) -> App:
    app = App()

    @app.websocket("/echo/{name}")
    async def echo(ws: WebSocketConnection) -> None:
        await ws.accept()
        await ws.send_text(f"hello {ws.path_params['name']}")
        async for message in ws:
            if message.is_text:
                await ws.send_text(message.text())
            else:
                await ws.send_bytes(message.bytes())
        seen["close_code"] = ws.close_code

    return app


@asynccontextmanager
async def h3_server(app: App, **options: Any) -> AsyncIterator[tuple[Server, tuple[str, int]]]:
    cert, key, _ = certificate_files()
    config = make_config(
        certfile=str(cert),
        keyfile=str(key),
        http3_binds=("127.0.0.1:0",),
        max_body_bytes=100_000,
        **options,
    )
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        try:
            yield server, server.http3_addresses[0]
        finally:
            stop.set()


async def test_echo_large_messages_and_close() -> None:
    seen: dict[str, Any] = {}
    async with h3_server(make_app(seen)) as (_server, udp):
        async with h3_connect(*udp) as client:
            # aioquic announces SETTINGS_ENABLE_CONNECT_PROTOCOL=1, as RFC 9220 3 requires.
            ws = await open_websocket(client, "/echo/h3")
            assert ws.response.status == 200
            assert await ws.recv() == "hello h3"
            await ws.send("over HTTP/3")
            assert await ws.recv() == "over HTTP/3"
            # Over max_body_bytes in total and over the stream window: a tunnel, not a body.
            big = bytes(range(256)) * 1200
            for _ in range(3):
                await ws.send(big)
                assert await ws.recv() == big
            await ws.close(4002)
            answer = await ws.recv()
            assert isinstance(answer, CloseConnection) and answer.code == 4002
    assert seen["close_code"] == 4002


async def test_refused_handshakes() -> None:
    async with h3_server(make_app({})) as (_server, udp):
        async with h3_connect(*udp) as client:
            missing = await open_websocket(client, "/nowhere")
            assert missing.response.status == 404
            sid = await client.start(
                "CONNECT", "/echo/x", [(b":protocol", b"websocket")], end=False
            )  # no Sec-WebSocket-Version: 13
            with anyio.fail_after(10):
                refused = await client.wait(sid)
            assert refused.status == 426
            assert refused.header(b"sec-websocket-version") == b"13"


async def test_shutdown_closes_websockets_with_1012() -> None:
    seen: dict[str, Any] = {}
    cert, key, _ = certificate_files()
    config = make_config(certfile=str(cert), keyfile=str(key), http3_binds=("127.0.0.1:0",))
    server = Server(make_app(seen), config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        async with h3_connect(*server.http3_addresses[0]) as client:
            ws = await open_websocket(client, "/echo/bye")
            assert await ws.recv() == "hello bye"
            stop.set()
            with anyio.fail_after(10):
                answer = await ws.recv()
            assert isinstance(answer, CloseConnection) and answer.code == 1012
            await ws.close(1012)
            with anyio.fail_after(10):
                closed = await client.wait_terminated()
            assert closed.error_code == 0x100  # H3_NO_ERROR after GOAWAY
