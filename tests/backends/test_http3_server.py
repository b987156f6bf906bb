"""The HTTP/3 server over real UDP sockets, on asyncio and on trio, with an aioquic client
(tests/support/h3client.py)."""

from __future__ import annotations

import hashlib
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("aioquic")

from httpy import App, Request, Response
from httpy.backends.server import Server
from httpy.framework.response import StreamingResponse
from tests.support.h3client import H3Client, certificate_files, h3_connect
from tests.support.servers import make_config

pytestmark = pytest.mark.anyio


class Probe:
    """What the handlers saw, for assertions about cancellation."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = anyio.Event()
        self.release = anyio.Event()


def make_app(probe: Probe) -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text(f"hello over HTTP/{request.http_version}")

    @app.post("/sha256", stream=True)
    async def sha256(request: Request) -> Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return Response.json({"sha256": digest.hexdigest(), "size": size})

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/big")
    async def big(request: Request) -> Response:
        return Response(bytes(range(256)) * 16384)  # 4 MiB

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                yield b"chunk %d\n" % i
                await anyio.sleep(0.01)

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        probe.started.set()
        try:
            await probe.release.wait()
        except anyio.get_cancelled_exc_class():
            probe.cancelled.set()
            raise
        return Response.text("finally")

    @app.get("/trailers")
    async def trailers(request: Request) -> Response:
        return Response(b"body", trailers={"x-checksum": "abc123"})

    @app.get("/page")
    async def page(request: Request) -> Response:
        response = Response.html("<link rel=stylesheet href=/style.css>")
        response.push_resources = [("/style.css", "style"), ("/app.js", "script")]
        return response

    @app.get("/style.css")
    async def style(request: Request) -> Response:
        return Response("h1 { color: green; }", headers={"content-type": "text/css"})

    @app.get("/app.js")
    async def script(request: Request) -> Response:
        return Response("console.log(1)", headers={"content-type": "text/javascript"})

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler failed")

    return app


@asynccontextmanager
async def h3_server(
    app: App, **options: Any
) -> AsyncIterator[tuple[Server, tuple[str, int], tuple[str, int]]]:
    """Serve ``app`` on TLS (TCP) and HTTP/3 (UDP), ephemeral ports; yields the server,
    the TCP and the UDP address."""
    cert, key, _ = certificate_files()
    options.setdefault("http3_binds", ("127.0.0.1:0",))
    config = make_config(
        binds=(), tls_binds=("127.0.0.1:0",), certfile=str(cert), keyfile=str(key), **options
    )
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        try:
            yield server, addresses[0], server.http3_addresses[0]
        finally:
            stop.set()


async def test_get_and_alt_svc_on_tcp() -> None:
    async with h3_server(make_app(Probe())) as (_server, tcp, udp):
        async with h3_connect(*udp) as client:
            response = await client.get("/")
            assert response.status == 200
            assert response.body == b"hello over HTTP/3"
            assert response.header(b"server") == b"httpy"
            assert response.header(b"alt-svc") is None  # already on HTTP/3
        ca = ssl.create_default_context(cafile=str(certificate_files()[2]))
        async with httpx.AsyncClient(verify=ca, http2=True) as http:
            reply = await http.get(f"https://localhost:{tcp[1]}/")
        assert reply.text == "hello over HTTP/2"
        assert reply.headers["alt-svc"] == f'h3=":{udp[1]}"; ma=86400'


async def test_post_large_body_byte_exact() -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)  # over the stream and connection windows
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            response = await client.request("POST", "/sha256", body=payload)
            assert response.status == 200, response.body
            assert response.body == (
                b'{"sha256":"%s","size":%d}'
                % (hashlib.sha256(payload).hexdigest().encode(), len(payload))
            )
            echo = await client.request("POST", "/echo", body=payload[:500_000])
            assert echo.body == payload[:500_000]


async def test_large_and_streaming_responses() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            big = await client.get("/big")
            assert big.body == bytes(range(256)) * 16384
            streamed = await client.get("/stream")
            assert streamed.body == b"".join(b"chunk %d\n" % i for i in range(5))


async def test_response_trailers() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            response = await client.get("/trailers")
            assert response.body == b"body"
            assert response.header(b"trailer") == b"x-checksum"
            assert response.trailers == [(b"x-checksum", b"abc123")]


async def test_server_push_when_allowed_else_early_hints() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            page = await client.get("/page")
            assert sorted(page.pushes.values()) == [b"/app.js", b"/style.css"]
            assert not page.informational
            with anyio.fail_after(10):
                while not all(client.pushed[p].ended for p in page.pushes):
                    await client._wait_change()
            bodies = {page.pushes[p]: client.pushed[p].body for p in page.pushes}
            assert bodies == {b"/style.css": b"h1 { color: green; }", b"/app.js": b"console.log(1)"}
        async with h3_connect(*udp, allow_push=False) as client:
            page = await client.get("/page")
            assert not page.pushes
            (hints,) = page.informational
            assert (b":status", b"103") in hints
            assert [v for n, v in hints if n == b"link"] == [
                b"</style.css>; rel=preload; as=style",
                b"</app.js>; rel=preload; as=script",
            ]
            assert page.status == 200


async def test_fifty_concurrent_streams() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            results: dict[int, bytes] = {}

            async def one(i: int) -> None:
                response = await client.request("POST", "/echo", body=b"stream %d" % i)
                results[i] = response.body

            async with anyio.create_task_group() as tasks:
                for i in range(50):
                    tasks.start_soon(one, i)
            assert results == {i: b"stream %d" % i for i in range(50)}


async def test_stream_reset_cancels_the_handler() -> None:
    probe = Probe()
    async with h3_server(make_app(probe)) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            sid = await client.start("GET", "/slow")
            with anyio.fail_after(10):
                await probe.started.wait()
            await client.reset(sid)
            with anyio.fail_after(10):
                await probe.cancelled.wait()
            # The connection goes on serving.
            assert (await client.get("/")).status == 200


async def test_stalled_request_body_gets_408_after_body_timeout() -> None:
    async with h3_server(make_app(Probe()), body_timeout=0.3) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            sid = await client.start("POST", "/echo", body=b"partial", end=False)
            with anyio.fail_after(10):
                response = await client.wait(sid)
            assert response.status == 408
            assert response.body.startswith(b"408 Request Timeout")
            assert (await client.get("/")).status == 200  # the connection goes on


async def test_handler_error_is_500() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            response = await client.get("/boom")
            assert response.status == 500
            # The connection goes on serving.
            assert (await client.get("/")).status == 200


async def test_idle_timeout_closes_the_connection() -> None:
    async with h3_server(make_app(Probe()), quic_idle_timeout=0.5) as (server, _tcp, udp):
        async with h3_connect(*udp) as client:
            assert (await client.get("/")).status == 200
            with anyio.fail_after(10):
                await client.wait_terminated()
        listener = server._quic_listeners[0]
        with anyio.fail_after(10):  # the server's own idle timer fires about then too
            while listener.connection_count:
                await anyio.sleep(0.05)


async def test_shutdown_during_requests_finishes_them_then_closes() -> None:
    probe = Probe()
    cert, key, _ = certificate_files()
    config = make_config(
        binds=("127.0.0.1:0",),
        certfile=str(cert),
        keyfile=str(key),
        http3_binds=("127.0.0.1:0",),
    )
    server = Server(make_app(probe), config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        udp = server.http3_addresses[0]
        async with h3_connect(*udp) as client:
            sid = await client.start("GET", "/slow")
            with anyio.fail_after(10):
                await probe.started.wait()
            stop.set()  # graceful shutdown while the request is in flight
            await anyio.sleep(0.2)
            late = await client.start("GET", "/")
            probe.release.set()
            with anyio.fail_after(10):
                response = await client.wait(sid)
            assert response.status == 200 and response.body == b"finally"
            refused = await client.wait(late)
            assert refused.reset_code == 0x10B  # H3_REQUEST_REJECTED
            with anyio.fail_after(10):
                closed = await client.wait_terminated()
            assert closed.error_code == 0x100  # H3_NO_ERROR
    assert not probe.cancelled.is_set()


async def test_connection_survives_new_connection_ids() -> None:
    async with h3_server(make_app(Probe())) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            assert (await client.get("/")).status == 200
            client.quic.change_connection_id()  # switch to another ID the server issued
            assert (await client.get("/")).status == 200


async def test_client_address_change_is_followed() -> None:
    async with h3_server(make_app(Probe())) as (server, _tcp, udp):
        async with h3_connect(*udp) as client:
            assert (await client.get("/")).status == 200
            new_port = await client.rebind()  # same connection, new source address
            client.quic.change_connection_id()
            assert (await client.get("/")).body == b"hello over HTTP/3"
            (driver,) = server._quic_listeners[0]._drivers
            assert driver._conn.peer_address == ("127.0.0.1", new_port)


async def test_several_clients_on_one_socket() -> None:
    async with h3_server(make_app(Probe())) as (server, _tcp, udp):
        clients: list[H3Client] = []
        async with h3_connect(*udp) as a, h3_connect(*udp) as b, h3_connect(*udp) as c:
            clients = [a, b, c]
            for client in clients:
                assert (await client.get("/")).body == b"hello over HTTP/3"
            assert server._quic_listeners[0].connection_count == 3


async def test_websocket_over_tcp_still_works_when_http3_is_on() -> None:
    """Regression: the Alt-Svc wrapper hid the WebSocket handshake stream from the
    WebSocket route (an isinstance check), so every upgrade over TCP got 426."""
    from httpy import WebSocketConnection
    from tests.support.wsclient import ws_connect

    app = make_app(Probe())

    @app.websocket("/ws")
    async def echo(ws: WebSocketConnection) -> None:
        await ws.send_text(await ws.receive_text())

    cert, key, _ = certificate_files()
    config = make_config(
        binds=("127.0.0.1:0",), certfile=str(cert), keyfile=str(key), http3_binds=("127.0.0.1:0",)
    )
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        host, port = (await tasks.start(partial(server.serve, shutdown_trigger=stop.wait)))[0]
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://{host}:{port}/")
            assert response.headers["alt-svc"].startswith('h3=":')
            async with ws_connect(host, port, "/ws") as ws:
                await ws.send("over TCP")
                assert await ws.recv() == "over TCP"
        finally:
            stop.set()


async def test_max_connections_holds_an_extra_client_until_a_connection_ends() -> None:
    """At ``max_connections`` (counted per UDP listener) a new client's Initial packets
    are dropped without state; it retransmits them, and is served once a slot frees."""
    async with h3_server(make_app(Probe()), max_connections=1) as (server, _tcp, udp):
        (listener,) = server._quic_listeners
        answers: list[int] = []

        async def second_client() -> None:
            async with h3_connect(*udp) as client:
                answers.append((await client.get("/")).status)

        async with anyio.create_task_group() as tasks:
            async with h3_connect(*udp) as first:
                assert (await first.get("/")).status == 200
                tasks.start_soon(second_client)
                with anyio.fail_after(10):
                    while listener.refused_initials < 2:  # Initial datagrams dropped
                        await anyio.sleep(0.01)
                assert listener.connection_count == 1
                assert answers == []
                assert (await first.get("/")).status == 200  # the first is still served
            # The first client left: the second one's next retransmission gets in.
        assert answers == [200]


def held_app(started: list[str], release: anyio.Event) -> App:
    app = App()

    @app.get("/held")
    async def held(request: Request) -> Response:
        started.append(request.headers.get("x-name", ""))
        await release.wait()
        return Response.text("done")

    return app


async def test_stream_limit_holds_the_extra_request_until_a_stream_ends() -> None:
    """``quic_max_streams_bidi`` is the client's stream credit (MAX_STREAMS): a request
    over it waits on the client side, unseen by the server, while the open ones are
    served; it is sent once a stream ends and the server raises the credit."""
    started: list[str] = []
    release = anyio.Event()
    app = held_app(started, release)
    async with h3_server(app, quic_max_streams_bidi=2) as (_server, _tcp, udp):
        async with h3_connect(*udp) as client:
            sids = [await client.start("GET", "/held", [(b"x-name", b"%d" % i)]) for i in range(3)]
            with anyio.fail_after(10):
                while len(started) < 2:
                    await anyio.sleep(0.01)
            # The third stream is blocked by the server's MAX_STREAMS, not yet sent.
            assert client.quic._streams[sids[2]].is_blocked
            assert sorted(started) == ["0", "1"]
            release.set()
            for sid in sids:
                with anyio.fail_after(10):
                    response = await client.wait(sid)
                assert (response.status, response.body) == (200, b"done")
            assert sorted(started) == ["0", "1", "2"]
            assert client.terminated is None
