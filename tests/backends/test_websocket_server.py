"""WebSockets over HTTP/1.1 on real loopback sockets, on asyncio and trio, with a wsproto
client (tests/support/wsclient.py) that can also misbehave on purpose."""

from __future__ import annotations

import logging
import zlib
from functools import partial
from typing import Any

import anyio
import pytest
from wsproto.events import CloseConnection

from httpy import App, Request, Response, WebSocketConnection, WebSocketDisconnect, serve
from tests.support.raw import exchange, read_until_closed, status_of
from tests.support.servers import ThreadEvent, make_config, running_server
from tests.support.wsclient import (
    Rejected,
    handshake_request,
    masked_frame,
    ws_connect,
)

pytestmark = pytest.mark.anyio


def make_app(seen: dict[str, Any]) -> App:
    app = App()

    @app.websocket("/echo")
    async def echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            if message.is_text:
                await ws.send_text(message.text())
            else:
                await ws.send_bytes(message.bytes())
        seen["close_code"] = ws.close_code
        seen["closed"] = ws.closed

    @app.websocket("/record")
    async def record(ws: WebSocketConnection) -> None:
        await ws.accept()
        message = await ws.receive()
        seen["message"] = message
        if not message.is_close:
            seen["close"] = await ws.receive()
        seen["close_code"] = ws.close_code

    @app.websocket("/items/{item_id:int}")
    async def item(ws: WebSocketConnection) -> None:
        await ws.accept(
            subprotocol="v2" if "v2" in ws.subprotocols else None, headers={"x-item": "yes"}
        )
        await ws.send_json(
            {
                "id": ws.path_params["item_id"],
                "q": ws.query.get("q"),
                "ua": ws.headers.get("x-test"),
            }
        )
        await ws.close(4000, "done")
        seen["close_code"] = ws.close_code

    @app.websocket("/boom")
    async def boom(ws: WebSocketConnection) -> None:
        await ws.send_text("before")
        raise RuntimeError("handler failed")

    @app.websocket("/boom-early")
    async def boom_early(ws: WebSocketConnection) -> None:
        raise RuntimeError("failed before accept")

    @app.websocket("/refuse")
    async def refuse(ws: WebSocketConnection) -> None:
        await ws.close()

    @app.websocket("/forever")
    async def forever(ws: WebSocketConnection) -> None:
        await ws.send_text("hello")
        message = await ws.receive()
        seen["forever"] = message

    @app.websocket("/flood")
    async def flood(ws: WebSocketConnection) -> None:
        chunk = b"x" * 65536
        seen["sent"] = 0
        try:
            for _ in range(2000):  # 125 MiB if nobody stopped us
                await ws.send_bytes(chunk)
                seen["sent"] += len(chunk)
        except WebSocketDisconnect as exc:
            seen["flood_error"] = exc.code

    @app.websocket("/broadcast")
    async def broadcast(ws: WebSocketConnection) -> None:
        async def sender(tag: str) -> None:
            for i in range(200):
                await ws.send_text(f"{tag}{i}")

        async with anyio.create_task_group() as tasks:
            for tag in "abcd":
                tasks.start_soon(sender, tag)
        await ws.close()

    @app.get("/plain")
    async def plain(request: Request) -> Response:
        return Response.text("plain http")

    async def auth(request: Request, handler: Any) -> Response:
        if request.path.startswith("/echo") and request.headers.get("authorization") == "no":
            return Response.json({"error": "Unauthorized"}, status=401)
        seen.setdefault("middleware", []).append(request.path)
        return await handler(request)

    app.add_middleware(auth)
    return app


async def test_echo_text_and_binary_and_peer_close_code() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with ws_connect(*address, "/echo") as client:
            await client.send("hello")
            assert await client.recv() == "hello"
            await client.send(b"\x00\xff")
            assert await client.recv() == b"\x00\xff"
            big = "é" * 300_000
            await client.send(big)
            assert await client.recv() == big
            await client.close(4321, "bye")
            answer = await client.recv()
            assert isinstance(answer, CloseConnection) and answer.code == 4321
            # the server closes the TCP connection after the closing handshake
            assert await client.read_until_eof() == b""
    assert seen["close_code"] == 4321 and seen["closed"] is True
    assert seen["middleware"] == ["/echo"]


async def test_close_without_code_is_reported_as_1005() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with ws_connect(*address, "/record") as client:
            await client.send_raw(masked_frame(0x8, b""))
            answer = await client.recv()
            assert isinstance(answer, CloseConnection)
        with anyio.fail_after(5):
            while "close_code" not in seen:
                await anyio.sleep(0.01)
    assert seen["message"].is_close and seen["message"].code == 1005
    assert seen["close_code"] == 1005


async def test_lost_connection_is_reported_as_1006() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with ws_connect(*address, "/record") as client:
            await client.sock.aclose()
        with anyio.fail_after(5):
            while "close_code" not in seen:
                await anyio.sleep(0.01)
    assert seen["message"].is_close and seen["message"].code == 1006
    assert seen["close_code"] == 1006


async def test_path_params_query_headers_subprotocol_and_server_close() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with ws_connect(
            *address,
            "/items/42?q=abc",
            subprotocols=["v1", "v2"],
            extra_headers=[(b"x-test", b"t1")],
        ) as client:
            assert client.accept is not None
            assert client.accept.subprotocol == "v2"
            assert (b"x-item", b"yes") in client.accept.extra_headers
            assert await client.recv() == '{"id":42,"q":"abc","ua":"t1"}'
            close = await client.wait_closed()
            assert (close.code, close.reason) == (4000, "done")
    with anyio.fail_after(5):
        while "close_code" not in seen:
            await anyio.sleep(0.01)
    assert seen["close_code"] == 4000


async def test_handler_exception_closes_1011_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: dict[str, Any] = {}
    with caplog.at_level(logging.ERROR, logger="httpy.error"):
        async with running_server(make_app(seen)) as address:
            async with ws_connect(*address, "/boom") as client:
                assert await client.recv() == "before"
                close = await client.wait_closed()
                assert close.code == 1011
            # before accept: an HTTP 500
            with pytest.raises(Rejected) as info:
                async with ws_connect(*address, "/boom-early"):
                    pass
            assert info.value.status == 500
    assert "RuntimeError" in caplog.text and "/boom" in caplog.text


async def test_refusals_before_upgrade() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        # middleware refuses with a normal response: nothing is upgraded
        with pytest.raises(Rejected) as info:
            async with ws_connect(*address, "/echo", extra_headers=[(b"authorization", b"no")]):
                pass
        assert info.value.status == 401 and b"Unauthorized" in info.value.body
        # close() before accept: 403
        with pytest.raises(Rejected) as info:
            async with ws_connect(*address, "/refuse"):
                pass
        assert info.value.status == 403
        # no such WebSocket route: a normal 404
        with pytest.raises(Rejected) as info:
            async with ws_connect(*address, "/nowhere"):
                pass
        assert info.value.status == 404
        # a WebSocket route without an upgrade: 426
        response = await exchange(
            address, b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        assert status_of(response) == 426
        assert b"sec-websocket-version: 13" in response.lower()
        # an upgrade with a bad version: 426 naming the version we speak
        response = await exchange(address, handshake_request("/echo", Sec_WebSocket_Version="8"))
        assert status_of(response) == 426
        # an upgrade with a malformed key: 400
        response = await exchange(address, handshake_request("/echo", Sec_WebSocket_Key="abc"))
        assert status_of(response) == 400
        # an HTTP route with Upgrade: websocket is served as HTTP
        response = await exchange(address, handshake_request("/plain"))
        assert status_of(response) == 200 and response.endswith(b"plain http")


async def test_frames_sent_right_behind_the_handshake_are_not_lost() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        stream = await anyio.connect_tcp(*address)
        async with stream:
            await stream.send(handshake_request("/echo") + masked_frame(0x1, b"early"))
            data = b""
            with anyio.fail_after(5):
                while b"early" not in data:
                    data += await stream.receive()
            assert data.startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([masked_frame(0x1, b"\xff\xfeabc")], 1007),  # invalid UTF-8
        ([masked_frame(0x1, b"ab\xf0\x9f", fin=False), masked_frame(0x0, b"\x28")], 1007),
        ([b"\x81\x02hi"], 1002),  # unmasked client frame
        ([masked_frame(0x3, b"")], 1002),  # reserved opcode
        ([masked_frame(0x9, b"x" * 126)], 1002),  # control frame over 125 bytes
        ([masked_frame(0x0, b"cont")], 1002),  # continuation without a message
        ([masked_frame(0x8, b"\x03\xe8" + b"\xff")], 1007),  # close reason not UTF-8
        ([masked_frame(0x8, b"\x03\xed")], 1002),  # close code 1005 sent on the wire
        ([masked_frame(0x2, b"x" * 2000)], 1009),  # over ws_max_message_bytes=1000
        ([masked_frame(0x2, b"x" * 600, fin=False), masked_frame(0x0, b"x" * 600)], 1009),
    ],
)
async def test_protocol_violations_close_with_the_right_code(
    frames: list[bytes], code: int
) -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), ws_max_message_bytes=1000) as address:
        async with ws_connect(*address, "/record") as client:
            for frame in frames:
                await client.send_raw(frame)
            close = await client.recv()
            assert isinstance(close, CloseConnection) and close.code == code
            await client.read_until_eof()  # and the server hangs up
        with anyio.fail_after(5):
            while "close_code" not in seen:
                await anyio.sleep(0.01)
    assert seen["close_code"] == code


async def test_decompression_bomb_is_capped_at_the_message_limit() -> None:
    seen: dict[str, Any] = {}
    limit = 1024 * 1024
    async with running_server(make_app(seen), ws_max_message_bytes=limit) as address:
        async with ws_connect(*address, "/echo", deflate=True) as client:
            assert client.accept is not None
            assert client.accept.extensions  # permessage-deflate was negotiated
            # a compressed message within the limit round-trips
            text = "compressible " * 10_000
            await client.send(text)
            assert await client.recv() == text
            # 1 GiB of zeros: ~1 MiB on the wire; the server stops inflating at 1 MiB
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            zeros = b"\x00" * (1 << 20)
            payload = b"".join(compressor.compress(zeros) for _ in range(1024))
            payload += compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
            assert len(payload) < 2 * 1024 * 1024
            await client.send_raw(masked_frame(0x2, payload, rsv1=True))
            close = await client.recv()
            assert isinstance(close, CloseConnection) and close.code == 1009
    assert seen["close_code"] == 1009


async def test_concurrent_sends_are_whole_and_ordered_per_task() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen)) as address:
        async with ws_connect(*address, "/broadcast") as client:
            received: list[str] = []
            while True:
                message = await client.recv()
                if isinstance(message, CloseConnection):
                    break
                assert isinstance(message, str)
                received.append(message)
    assert len(received) == 800
    for tag in "abcd":
        assert [m for m in received if m[0] == tag] == [f"{tag}{i}" for i in range(200)]


async def test_client_that_never_reads_blocks_the_sender() -> None:
    """Back-pressure: the handler's sends wait; the server does not buffer 125 MiB."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), send_timeout=3) as address:
        async with ws_connect(*address, "/flood") as client:
            # wait until the sender has stalled (no progress over several checks)
            last, still = -1, 0
            with anyio.fail_after(20):
                while still < 10:
                    await anyio.sleep(0.05)
                    sent = seen.get("sent", 0)
                    still = still + 1 if sent == last else 0
                    last = sent
            # what the sender got out is what the socket buffers hold: a few MiB at most
            assert 0 < last < 32 * 1024 * 1024
            # the peer that never reads is dropped after send_timeout: the send raises
            with anyio.fail_after(10):
                while "flood_error" not in seen:
                    await anyio.sleep(0.05)
            assert seen["flood_error"] == 1006
            assert client is not None


async def test_send_to_a_gone_peer_raises_instead_of_hanging() -> None:
    seen: dict[str, Any] = {}
    app = App()
    gone = ThreadEvent()  # set by the test, awaited in the server's thread

    @app.websocket("/ws")
    async def handler(ws: WebSocketConnection) -> None:
        await ws.send_text("hi")
        await gone.wait()
        try:
            with anyio.fail_after(5):
                while True:
                    await ws.send_text("are you there?")
                    await anyio.sleep(0.01)
        except WebSocketDisconnect as exc:
            seen["error"] = exc.code
        seen["closed"] = ws.closed

    async with running_server(app) as address:
        async with ws_connect(*address, "/ws") as client:
            assert await client.recv() == "hi"
        gone.set()
        with anyio.fail_after(10):
            while "closed" not in seen:
                await anyio.sleep(0.01)
    assert seen == {"error": 1006, "closed": True}


async def test_keepalive_ping_timeout_drops_a_silent_peer() -> None:
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), ws_ping_interval=0.1, ws_ping_timeout=0.2) as address:
        async with ws_connect(*address, "/record") as client:
            # never read: pings go unanswered
            with anyio.fail_after(10):
                while "close_code" not in seen:
                    await anyio.sleep(0.02)
            assert client is not None
    assert seen["message"].is_close and seen["message"].code == 1006


async def test_keepalive_pings_are_answered_by_a_live_peer() -> None:
    seen: dict[str, Any] = {}
    async with running_server(
        make_app(seen), ws_ping_interval=0.05, ws_ping_timeout=0.5
    ) as address:
        async with ws_connect(*address, "/echo") as client:
            for i in range(10):  # recv() answers pings while it waits
                await client.send(f"m{i}")
                assert await client.recv() == f"m{i}"
                await anyio.sleep(0.05)


async def test_shutdown_closes_open_websockets_with_1012() -> None:
    seen: dict[str, Any] = {}
    stop = anyio.Event()
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tasks:
            addresses = await tasks.start(
                partial(
                    serve,
                    make_app(seen),
                    make_config(drain_timeout=5),
                    shutdown_trigger=stop.wait,
                )
            )
            async with ws_connect(*addresses[0], "/forever") as client:
                assert await client.recv() == "hello"
                stop.set()
                close = await client.wait_closed()
                assert close.code == 1012
                assert await client.read_until_eof() == b""
    # the handler saw the close (our 1012, answered by the client)
    assert seen["forever"].is_close and seen["forever"].code == 1012


async def test_server_waits_for_close_answer_then_hangs_up() -> None:
    """A client that never answers our close frame is disconnected after
    ws_close_timeout, and the server keeps serving."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), ws_close_timeout=0.2) as address:
        async with ws_connect(*address, "/items/1") as client:
            assert isinstance(await client.recv(), str)  # the JSON message
            close = await client.recv()  # the close frame: deliberately not answered
            assert isinstance(close, CloseConnection) and close.code == 4000
            assert await read_until_closed(client.sock, timeout=5) == b""
        async with ws_connect(*address, "/echo") as client:
            await client.send("still serving")
            assert await client.recv() == "still serving"
    assert seen["close_code"] == 1006  # no close frame came back


async def test_protocol_violation_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING, logger="httpy.error"):
        async with running_server(make_app(seen)) as address:
            async with ws_connect(*address, "/record") as client:
                await client.send_raw(b"\x81\x02hi")  # unmasked
                close = await client.recv()
                assert isinstance(close, CloseConnection) and close.code == 1002
    lines = [r.getMessage() for r in caplog.records if "bad WebSocket input" in r.getMessage()]
    assert len(lines) == 1 and "1002" in lines[0]
