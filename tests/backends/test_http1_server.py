"""The HTTP/1.1 server over real loopback sockets, on asyncio and on trio."""

from __future__ import annotations

import gc
import socket

import anyio
import httpx
import pytest

from httpy import App, Request, Response
from httpy.backends.http1_driver import HTTP1Driver
from httpy.core.application import ClientDisconnected
from tests.support.raw import exchange, read_response, read_until_closed, status_of
from tests.support.servers import running_server

pytestmark = pytest.mark.anyio


def make_app(events: list[str] | None = None) -> App:
    app = App()
    log = events if events is not None else []

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("hello")

    @app.get("/n/{n:int}")
    async def number(request: Request) -> Response:
        return Response.text(str(request.path_params["n"]))

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        try:
            await anyio.sleep(float(request.query.get("t", "0.5")))
        except anyio.get_cancelled_exc_class():
            log.append("slow cancelled")
            raise
        log.append("slow finished")
        return Response.text("slow done")

    @app.post("/stream", stream=True)
    async def stream(request: Request) -> Response:
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
        except ClientDisconnected:
            log.append("stream disconnected")
            raise
        except anyio.get_cancelled_exc_class():
            log.append("stream cancelled")
            raise
        return Response.text(str(total))

    @app.post("/ignore-body", stream=True)
    async def ignore_body(request: Request) -> Response:
        await anyio.sleep(float(request.query.get("t", "2")))
        return Response.text("ignored")

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler failure")

    return app


async def test_get_with_httpx() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get("/")
            assert response.status_code == 200
            assert response.text == "hello"
            assert response.headers["server"] == "httpy"
            assert "date" in response.headers
            # keep-alive: the second request reuses the connection
            response = await client.post("/echo", content=b"x" * 100_000)
            assert response.content == b"x" * 100_000


async def test_ten_pipelined_requests_in_one_write_are_answered_in_order() -> None:
    requests = b"".join(
        b"GET /n/%d HTTP/1.1\r\nHost: t\r\n%s\r\n"
        % (i, b"Connection: close\r\n" if i == 9 else b"")
        for i in range(10)
    )
    async with running_server(make_app()) as address:
        data = await exchange(address, requests)
    responses = data.split(b"HTTP/1.1 ")[1:]
    assert len(responses) == 10
    bodies = [r.split(b"\r\n\r\n", 1)[1] for r in responses]
    assert bodies == [str(i).encode() for i in range(10)]
    assert all(r.startswith(b"200 OK") for r in responses)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # (A first line with no HTTP/1.x version at all is an invalid HTTP/2 preface on
        # cleartext, answered GOAWAY: test_prior_knowledge.py.)
        (b"GET /a b HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n", 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd", 400),
        (
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 413),
    ],
    ids=[
        "malformed-line",
        "big-header",
        "long-target",
        "bad-cl",
        "cl-list",
        "cl-te",
        "http2",
        "huge-cl",
    ],
)
async def test_bad_requests_get_status_and_closed_connection(
    request_bytes: bytes, status: int
) -> None:
    async with running_server(make_app()) as address:
        # exchange() returns only once the server has closed the connection
        data = await exchange(address, request_bytes + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status_of(data) == status
        assert data.count(b"HTTP/1.1 ") == 1, "nothing may be answered after the error"
        assert b"connection: close" in data.lower()
        # and the server keeps serving others
        ok = await exchange(address, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert status_of(ok) == 200


async def test_thousand_concurrent_keepalive_clients() -> None:
    served: list[int] = []

    async def client(address: tuple[str, int], index: int) -> None:
        async with await anyio.connect_tcp(*address) as stream:
            for _ in range(2):  # two requests on the same connection
                await stream.send(b"GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n" % index)
                response = await read_response(stream, timeout=60)
                assert response.endswith(b"\r\n\r\n%d" % index)
            served.append(index)

    async with running_server(make_app()) as address:
        async with anyio.create_task_group() as tasks:
            for i in range(1000):
                tasks.start_soon(client, address, i)
    assert sorted(served) == list(range(1000))


async def test_handler_is_cancelled_when_client_disconnects() -> None:
    events: list[str] = []
    async with running_server(make_app(events)) as address:
        stream = await anyio.connect_tcp(*address)
        await stream.send(b"GET /slow?t=30 HTTP/1.1\r\nHost: t\r\n\r\n")
        await anyio.sleep(0.2)
        await stream.aclose()
        with anyio.fail_after(5):
            while "slow cancelled" not in events:
                await anyio.sleep(0.02)
    assert events == ["slow cancelled"]


async def test_disconnect_mid_body_reaches_streaming_handler() -> None:
    events: list[str] = []
    async with running_server(make_app(events)) as address:
        stream = await anyio.connect_tcp(*address)
        await stream.send(b"POST /stream HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
        await anyio.sleep(0.2)
        await stream.aclose()
        with anyio.fail_after(5):
            while not events:
                await anyio.sleep(0.02)
    assert events[0] in ("stream disconnected", "stream cancelled")


async def test_handler_error_gives_500_and_server_keeps_serving() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/boom")).status_code == 500
            assert (await client.get("/")).status_code == 200


async def test_expect_100_continue() -> None:
    async with running_server(make_app()) as address, await anyio.connect_tcp(*address) as stream:
        await stream.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        with anyio.fail_after(5):
            interim = await stream.receive()
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        await stream.send(b"hello")
        response = await read_response(stream)
        assert status_of(response) == 200
        assert response.endswith(b"hello")


async def test_header_timeout_answers_408() -> None:
    async with running_server(make_app(), header_timeout=0.3) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # head never finished
            data = await read_until_closed(stream, timeout=5)
    assert status_of(data) == 408


async def test_slow_header_drip_is_cut_off_by_header_timeout() -> None:
    async with running_server(make_app(), header_timeout=0.5) as address:
        async with await anyio.connect_tcp(*address) as stream:
            closed = False
            with anyio.move_on_after(5):
                for byte in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
                    try:
                        await stream.send(bytes([byte]))
                    except (anyio.BrokenResourceError, OSError):
                        closed = True
                        break
                    await anyio.sleep(0.05)
            data = b"" if closed else await read_until_closed(stream, timeout=5)
    assert closed or status_of(data) == 408


async def test_body_timeout_answers_408() -> None:
    async with running_server(make_app(), body_timeout=0.3) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            data = await read_until_closed(stream, timeout=5)
    assert status_of(data) == 408


async def test_keepalive_timeout_closes_idle_connection_silently() -> None:
    async with running_server(make_app(), keepalive_timeout=0.3) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            first = await read_response(stream)
            assert status_of(first) == 200
            rest = await read_until_closed(stream, timeout=5)
    assert rest == b""


async def test_request_body_over_limit_gets_413() -> None:
    async with running_server(make_app(), max_body_bytes=1000) as address:
        chunked = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"400\r\n" + b"a" * 1024 + b"\r\n" + b"400\r\n" + b"a" * 1024 + b"\r\n0\r\n\r\n"
        data = await exchange(address, chunked)
    assert status_of(data) == 413


async def test_backpressure_stops_reading_when_handler_does_not_consume() -> None:
    """A handler that never reads its body must not make the server buffer it all."""
    async with running_server(make_app(), max_body_bytes=None) as address:
        async with await anyio.connect_tcp(*address) as stream:
            total = 64 * 1024 * 1024
            await stream.send(
                b"POST /ignore-body?t=3 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total
            )
            sent = 0
            chunk = b"x" * 65536
            with anyio.move_on_after(1.0):
                while sent < total:
                    await stream.send(chunk)
                    sent += len(chunk)
    # Kernel socket buffers absorb a few MiB; the server's own buffer is 256 KiB.
    assert sent < 32 * 1024 * 1024


async def test_graceful_shutdown_finishes_in_flight_and_closes_idle() -> None:
    events: list[str] = []
    app = make_app(events)
    config_stop = anyio.Event()
    from functools import partial

    from httpy import serve
    from tests.support.servers import make_config

    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(
            partial(serve, app, make_config(drain_timeout=5), shutdown_trigger=config_stop.wait)
        )
        address = addresses[0]
        idle = await anyio.connect_tcp(*address)
        await idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status_of(await read_response(idle)) == 200
        busy = await anyio.connect_tcp(*address)
        await busy.send(b"GET /slow?t=0.5 HTTP/1.1\r\nHost: t\r\n\r\n")
        await anyio.sleep(0.1)
        config_stop.set()
        response = await read_until_closed(busy, timeout=5)
        assert status_of(response) == 200
        assert response.endswith(b"slow done")
        assert b"connection: close" in response.lower()
        assert await read_until_closed(idle, timeout=5) == b""
        await busy.aclose()
        await idle.aclose()
    assert events == ["slow finished"]
    with pytest.raises(OSError):
        await anyio.connect_tcp(*address)


async def test_drain_timeout_cancels_stuck_handlers() -> None:
    events: list[str] = []
    stop = anyio.Event()
    from functools import partial

    from httpy import serve
    from tests.support.servers import make_config

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            addresses = await tasks.start(
                partial(
                    serve,
                    make_app(events),
                    make_config(drain_timeout=0.3),
                    shutdown_trigger=stop.wait,
                )
            )
            stream = await anyio.connect_tcp(*addresses[0])
            await stream.send(b"GET /slow?t=60 HTTP/1.1\r\nHost: t\r\n\r\n")
            await anyio.sleep(0.1)
            stop.set()
        await stream.aclose()
    assert events == ["slow cancelled"]


async def test_cancelling_serve_drains_gracefully() -> None:
    events: list[str] = []
    from functools import partial

    from httpy import serve
    from tests.support.servers import make_config

    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(partial(serve, make_app(events), make_config()))
        stream = await anyio.connect_tcp(*addresses[0])
        await stream.send(b"GET /slow?t=0.3 HTTP/1.1\r\nHost: t\r\n\r\n")
        await anyio.sleep(0.1)
        tasks.cancel_scope.cancel()
    response = await read_until_closed(stream, timeout=5)
    await stream.aclose()
    assert status_of(response) == 200
    assert events == ["slow finished"]


async def test_several_binds_including_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    from functools import partial

    from httpy import serve
    from tests.support.servers import make_config

    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(
            partial(
                serve,
                make_app(),
                make_config(binds=("127.0.0.1:0", "[::1]:0")),
                shutdown_trigger=stop.wait,
            )
        )
        hosts = {host for host, _ in addresses}
        assert hosts == {"127.0.0.1", "::1"}
        for address in addresses:
            data = await exchange(
                address, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            assert status_of(data) == 200
        stop.set()


async def test_max_connections_holds_extra_clients_in_backlog() -> None:
    async with running_server(make_app(), max_connections=2) as address:
        first = await anyio.connect_tcp(*address)
        second = await anyio.connect_tcp(*address)
        for stream in (first, second):
            await stream.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert status_of(await read_response(stream)) == 200
        third = await anyio.connect_tcp(*address)  # accepted by the kernel, not by us
        await third.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        with anyio.move_on_after(0.3) as waited:
            await third.receive()
        assert waited.cancelled_caught, "third client must wait while two are connected"
        await first.aclose()
        assert status_of(await read_response(third)) == 200
        await second.aclose()
        await third.aclose()


async def test_a_finished_connection_leaves_no_reference_cycle() -> None:
    """A connection's driver and what hangs off it go when its task ends, not at the
    next garbage collection: with the collector off, none of them is left after 50
    connections (each left ~24 objects in a cycle before)."""
    async with running_server(make_app()) as address:
        for _ in range(3):  # warm up (first-use caches, the loop's own objects)
            assert (
                status_of(
                    await exchange(
                        address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    )
                )
                == 200
            )
        gc.collect()
        gc.disable()
        try:
            for _ in range(50):
                response = await exchange(
                    address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                assert status_of(response) == 200
            await anyio.sleep(0.2)  # the last connections' tasks end
            drivers = [o for o in gc.get_objects() if isinstance(o, HTTP1Driver)]
        finally:
            gc.enable()
        assert len(drivers) <= 2, f"{len(drivers)} HTTP/1.1 drivers outlived their connections"
