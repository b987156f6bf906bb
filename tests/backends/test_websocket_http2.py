"""WebSockets over HTTP/2 (RFC 8441 extended CONNECT), h2c on real sockets, asyncio and
trio, with an h2-based client (tests/support/h2ws.py)."""

from __future__ import annotations

import ssl
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from wsproto.events import CloseConnection

from httpy import App, Request, Response, WebSocketConnection, WebSocketDisconnect, serve
from httpy.backends.tls import generate_dev_certificate
from tests.support.h2ws import h2_connect
from tests.support.servers import make_config, running_server

pytestmark = pytest.mark.anyio


def make_app(seen: dict[str, Any]) -> App:
    app = App()

    @app.websocket("/echo/{name}")
    async def echo(ws: WebSocketConnection) -> None:
        await ws.accept(subprotocol="v1" if "v1" in ws.subprotocols else None)
        await ws.send_text(f"hello {ws.path_params['name']}")
        async for message in ws:
            if message.is_text:
                await ws.send_text(message.text())
            else:
                await ws.send_bytes(message.bytes())
        seen["close_code"] = ws.close_code

    @app.websocket("/bye")
    async def bye(ws: WebSocketConnection) -> None:
        await ws.send_text("bye")
        await ws.close(4005, "server says bye")

    @app.websocket("/flood")
    async def flood(ws: WebSocketConnection) -> None:
        seen["sent"] = 0
        try:
            for _ in range(1000):  # 16 MiB if nothing held the sender back
                await ws.send_bytes(b"f" * 16384)
                seen["sent"] += 16384
        except WebSocketDisconnect as exc:
            seen["flood_error"] = exc.code

    async def guard(request: Request, handler: Any) -> Response:
        if request.headers.get("x-token") == "bad":
            return Response.json({"error": "Forbidden"}, status=403)
        return await handler(request)

    app.add_middleware(guard)
    return app


async def test_extended_connect_echo_and_close() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with h2_connect(*address) as client:
            # SETTINGS_ENABLE_CONNECT_PROTOCOL=1 was announced (h2_connect waits for it)
            ws = await client.open("/echo/h2", extra=[(b"sec-websocket-protocol", b"v0, v1")])
            assert ws.status == 200
            assert ws.headers[b"sec-websocket-protocol"] == b"v1"
            assert b"sec-websocket-accept" not in ws.headers  # RFC 8441: no key/accept
            assert await ws.recv() == "hello h2"
            await ws.send("over HTTP/2")
            assert await ws.recv() == "over HTTP/2"
            big = b"\x07" * 300_000  # more than the stream window: flow control both ways
            await ws.send(big)
            assert await ws.recv() == big
            await ws.close(4002, "done")
            answer = await ws.recv()
            assert isinstance(answer, CloseConnection) and answer.code == 4002
            await ws.wait_ended()  # the server ends the stream after the closing handshake
    assert seen["close_code"] == 4002


async def test_several_websockets_on_one_connection_and_server_close() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with h2_connect(*address) as client:
            first = await client.open("/echo/one")
            assert await first.recv() == "hello one"
            second = await client.open("/bye")
            assert second.status == 200
            assert await second.recv() == "bye"
            close = await second.recv()
            assert isinstance(close, CloseConnection) and close.code == 4005
            await first.send("first still open")
            assert await first.recv() == "first still open"


async def test_refusals_over_http2() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with h2_connect(*address) as client:
            refused = await client.open("/echo/x", extra=[(b"x-token", b"bad")])
            with anyio.fail_after(10):
                while not refused.ended:
                    await client.wait_change(refused)
            assert refused.status == 403 and b"Forbidden" in refused.body
            missing = await client.open("/nowhere")
            assert missing.status == 404


async def test_large_traffic_is_not_capped_by_max_body_bytes() -> None:
    """A WebSocket stream's DATA is a tunnel, not a request body: max_body_bytes does not
    end it."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), max_body_bytes=100_000) as address:
        async with h2_connect(*address) as client:
            ws = await client.open("/echo/big")
            assert await ws.recv() == "hello big"
            for _ in range(5):
                await ws.send(b"z" * 60_000)
                assert await ws.recv() == b"z" * 60_000


async def test_shutdown_closes_http2_websockets_with_1012() -> None:
    seen: dict[str, Any] = {}
    stop = anyio.Event()
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tasks:
            addresses = await tasks.start(
                partial(
                    serve,
                    make_app(seen),
                    make_config(drain_timeout=5, ws_close_timeout=0.5),
                    shutdown_trigger=stop.wait,
                )
            )
            async with h2_connect(*addresses[0]) as client:
                ws = await client.open("/echo/down")
                assert await ws.recv() == "hello down"
                stop.set()
                # h2's client state machine refuses frames after a GOAWAY (h2#1181), so
                # read the rest raw: GOAWAY, then the WebSocket close frame in a DATA frame.
                raw = b""
                while True:
                    try:
                        raw += await client.sock.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
    close_frame = b"\x88\x16\x03\xf4server shutting down"  # 1012, unmasked (server)
    assert close_frame in raw
    # the client never answered, so the handler sees an abnormal closure
    assert seen["close_code"] == 1006


async def test_websocket_over_http2_with_tls(tmp_path: Path) -> None:
    cert, key, ca = generate_dev_certificate(tmp_path)
    seen: dict[str, Any] = {}
    options = {
        "binds": (),
        "tls_binds": ("127.0.0.1:0",),
        "certfile": str(cert),
        "keyfile": str(key),
    }
    async with running_server(make_app(seen), **options) as (host, port):
        context = ssl.create_default_context(cafile=str(ca))
        async with h2_connect(host, port, context) as client:
            ws = await client.open("/echo/tls")
            assert ws.status == 200
            assert await ws.recv() == "hello tls"
            await ws.send("h2 over TLS")
            assert await ws.recv() == "h2 over TLS"
            await ws.close()
            await ws.wait_ended()
    assert seen["close_code"] == 1000


async def test_stream_window_holds_back_a_sender_whose_client_does_not_read() -> None:
    """Back-pressure over HTTP/2: the client never reads, so the stream window (64 KiB by
    default) stops the handler's sends; after send_timeout the stream is reset and the
    send raises."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), send_timeout=2) as address:
        async with h2_connect(*address) as client:
            ws = await client.open("/flood")
            assert ws.status == 200
            last, still = -1, 0
            with anyio.fail_after(20):
                while still < 10:
                    await anyio.sleep(0.05)
                    sent = seen.get("sent", 0)
                    still = still + 1 if sent == last else 0
                    last = sent
            assert last <= 128 * 1024  # the window, not the socket buffers
            with anyio.fail_after(10):
                while "flood_error" not in seen:
                    await anyio.sleep(0.05)
    assert seen["flood_error"] == 1006
