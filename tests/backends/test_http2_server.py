"""The HTTP/2 server over real loopback sockets, on asyncio and on trio.

Clients: httpx (h2 over TLS by ALPN, and h2c with prior knowledge), curl (h2c upgrade,
prior knowledge, TLS), and a raw h2 client (tests/support/h2peer.py) for what httpx
can't do: resets, stalls, and attacks.  Every attack test ends by checking that a normal
client on a new connection is still served.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import h2.errors
import h2.events
import hpack
import httpx
import hyperframe.frame as hf
import pytest

from httpy import App, Request, Response, serve
from httpy.backends.tls import generate_dev_certificate
from httpy.core.application import ClientDisconnected
from httpy.core.http2 import HTTP2Connection
from httpy.framework.response import StreamingResponse
from tests.support.h2peer import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SocketPeer,
    client_preface,
    goaway_codes,
    parse_frames,
    raw_continuation,
    raw_data,
    raw_headers,
    raw_ping,
    raw_settings,
    raw_window_update,
    request_headers,
    rst_codes,
)
from tests.support.servers import make_config, running_server, server_thread

pytestmark = pytest.mark.anyio

CHUNK = bytes(range(256)) * 1024  # 256 KiB


def make_app(log: list[str] | None = None) -> App:
    app = App()
    events = log if log is not None else []

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text(f"hello over {request.http_version}")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.post("/sha256", stream=True)
    async def sha256(request: Request) -> Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return Response.json({"sha256": digest.hexdigest(), "size": size})

    @app.get("/big")
    async def big(request: Request) -> Response:
        total = int(request.query.get("n", str(len(CHUNK))))

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            while sent < total:
                piece = CHUNK[: min(len(CHUNK), total - sent)]
                sent += len(piece)
                yield piece

        return StreamingResponse(body(), headers={"content-length": str(total)})

    @app.get("/wait")
    async def wait(request: Request) -> Response:
        events.append("wait started")
        try:
            await anyio.sleep(float(request.query.get("t", "30")))
        except anyio.get_cancelled_exc_class():
            events.append("wait cancelled")
            raise
        events.append("wait finished")
        return Response.text("waited")

    @app.get("/client")
    async def client(request: Request) -> Response:
        await anyio.sleep(0.05)  # overlap: all streams in flight at once
        assert request.client is not None
        return Response.json({"port": request.client[1]})

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler failure")

    return app


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return generate_dev_certificate(tmp_path_factory.mktemp("certs"))


def tls_options(certs: tuple[Path, Path, Path]) -> dict[str, object]:
    cert, key, _ = certs
    return {
        "binds": (),
        "tls_binds": ("127.0.0.1:0",),
        "certfile": str(cert),
        "keyfile": str(key),
    }


def client_context(certs: tuple[Path, Path, Path], alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs[2]))
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


async def assert_still_serving(address: tuple[str, int]) -> None:
    """A normal client on a new connection is served."""
    host, port = address
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        response = await client.get(f"http://{host}:{port}/")
    assert (response.status_code, response.http_version) == (200, "HTTP/2")
    assert response.text == "hello over 2"


# ----------------------------------------------------------------------------- clients


async def test_httpx_h2_over_tls(certs: tuple[Path, Path, Path]) -> None:
    async with running_server(make_app(), **tls_options(certs)) as (_, port):
        async with httpx.AsyncClient(http2=True, verify=client_context(certs)) as client:
            response = await client.get(f"https://localhost:{port}/")
            assert response.http_version == "HTTP/2"
            assert response.text == "hello over 2"
            assert response.headers["server"] == "httpy" and "date" in response.headers
            body = os.urandom(300_000)
            response = await client.post(f"https://localhost:{port}/echo", content=body)
            assert response.content == body


async def test_alpn_falls_back_to_http1(certs: tuple[Path, Path, Path]) -> None:
    async with running_server(make_app(), **tls_options(certs)) as (_, port):
        async with httpx.AsyncClient(http2=False, verify=client_context(certs)) as client:
            response = await client.get(f"https://localhost:{port}/")
        assert response.http_version == "HTTP/1.1" and response.text == "hello over 1.1"
        # A TLS client offering no ALPN at all gets HTTP/1.1 too.
        context = client_context(certs)
        async with await anyio.connect_tcp(
            "127.0.0.1",
            port,
            tls=True,
            ssl_context=context,
            tls_hostname="localhost",
            tls_standard_compatible=False,
        ) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            with anyio.fail_after(10):
                while True:
                    try:
                        data += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello over 1.1")


async def test_h2c_upgrade_is_ignored_over_tls(certs: tuple[Path, Path, Path]) -> None:
    # h2c is cleartext only: over TLS, HTTP/2 is chosen by ALPN, never by Upgrade.
    async with running_server(make_app(), **tls_options(certs)) as (_, port):
        async with await anyio.connect_tcp(
            "127.0.0.1",
            port,
            tls=True,
            ssl_context=client_context(certs, alpn=["http/1.1"]),
            tls_hostname="localhost",
            tls_standard_compatible=False,
        ) as stream:
            await stream.send(
                b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings, "
                b"close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
            )
            data = b""
            with anyio.fail_after(10):
                while True:
                    try:
                        data += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello over 1.1")


async def test_preface_over_tls_without_h2_alpn_is_not_http2(
    certs: tuple[Path, Path, Path],
) -> None:
    # RFC 9113 3.3: prior knowledge is for cleartext TCP; over TLS only ALPN picks HTTP/2.
    for alpn in (["http/1.1"], None):
        async with running_server(make_app(), **tls_options(certs)) as (_, port):
            async with await anyio.connect_tcp(
                "127.0.0.1",
                port,
                tls=True,
                ssl_context=client_context(certs, alpn=alpn),
                tls_hostname="localhost",
                tls_standard_compatible=False,
            ) as stream:
                await stream.send(client_preface())
                data = b""
                with anyio.fail_after(10):
                    while True:
                        try:
                            data += await stream.receive()
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            break
        # An HTTP/1.1 answer to "PRI * HTTP/2.0", not an HTTP/2 SETTINGS frame.
        assert data.startswith(b"HTTP/1.1 505 "), data[:40]


async def test_serve_with_an_ssl_context_offers_h2(certs: tuple[Path, Path, Path]) -> None:
    cert, key, _ = certs
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # no ALPN set on it
    context.load_cert_chain(str(cert), str(key))
    config = make_config()
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        addresses = await tasks.start(
            partial(serve, make_app(), config, ssl_context=context, shutdown_trigger=stop.wait)
        )
        port = addresses[0][1]
        async with httpx.AsyncClient(http2=True, verify=client_context(certs)) as client:
            response = await client.get(f"https://localhost:{port}/")
        stop.set()
    assert (response.http_version, response.text) == ("HTTP/2", "hello over 2")


async def test_httpx_h2c_prior_knowledge() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            response = await client.get(f"http://{host}:{port}/")
            assert (response.http_version, response.text) == ("HTTP/2", "hello over 2")
            response = await client.post(f"http://{host}:{port}/echo", content=b"abc")
            assert response.content == b"abc"
            response = await client.get(f"http://{host}:{port}/boom")
            assert response.status_code == 500
            assert (await client.get(f"http://{host}:{port}/missing")).status_code == 404


async def test_h2c_and_http1_share_the_cleartext_port() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/")
            assert response.http_version == "HTTP/1.1"


# ----------------------------------------------------------------------------- curl

curl_missing = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(params=["asyncio", "trio"])
def server_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-s", "--max-time", "20", "-w", "\n%{http_version}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@curl_missing
def test_curl_h2c_upgrade(server_backend: str) -> None:
    with server_thread(make_app(), server_backend) as (host, port):
        done = curl("--http2", f"http://{host}:{port}/")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello over 2\n2"
        # A request with a body is not upgraded (RFC 9113 3.2): answered over HTTP/1.1.
        done = curl("--http2", "-d", "posted", f"http://{host}:{port}/echo")
        assert done.stdout == "posted\n1.1"


@curl_missing
def test_curl_h2c_prior_knowledge(server_backend: str) -> None:
    with server_thread(make_app(), server_backend) as (host, port):
        done = curl("--http2-prior-knowledge", f"http://{host}:{port}/")
        assert done.stdout == "hello over 2\n2", done.stderr
        done = curl("--http2-prior-knowledge", "-d", "posted", f"http://{host}:{port}/echo")
        assert done.stdout == "posted\n2"


@curl_missing
def test_curl_h2_over_tls(server_backend: str, certs: tuple[Path, Path, Path]) -> None:
    with server_thread(make_app(), server_backend, **tls_options(certs)) as (_, port):
        done = curl("--http2", "-k", f"https://localhost:{port}/")
        assert done.stdout == "hello over 2\n2", done.stderr
        done = curl("--http2", "--cacert", str(certs[2]), f"https://localhost:{port}/")
        assert done.stdout == "hello over 2\n2", done.stderr
        done = curl("--http1.1", "-k", f"https://localhost:{port}/")
        assert done.stdout == "hello over 1.1\n1.1"


# ----------------------------------------------------------------------------- streams


async def test_hundred_concurrent_streams_on_one_connection() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            results: list[httpx.Response] = []

            async def fetch() -> None:
                results.append(await client.get(f"http://{host}:{port}/client"))

            async with anyio.create_task_group() as tasks:
                for _ in range(100):
                    tasks.start_soon(fetch)
    assert len(results) == 100
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["port"] for r in results}) == 1  # one connection


@pytest.mark.slow
async def test_large_response_to_slow_reader_keeps_memory_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = 100 * 1024 * 1024
    most_pending = 0
    original = HTTP2Connection.send

    def watched(self: HTTP2Connection, command: object) -> None:
        nonlocal most_pending
        original(self, command)  # type: ignore[arg-type]
        stream_id = getattr(command, "stream_id", None)
        if stream_id is not None:
            most_pending = max(most_pending, self.pending_bytes(stream_id))

    monkeypatch.setattr(HTTP2Connection, "send", watched)
    gc.collect()
    before = rss()
    peak = before
    received = 0
    async with running_server(make_app()) as address:
        async with SocketPeer.connect(address, initial_window=1024 * 1024) as peer:
            peer.keep_raw = False
            peer.conn.increment_flow_control_window(4 * 1024 * 1024)
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", f"/big?n={size}"), end_stream=True)
            await peer.flush()
            reads = 0
            while not peer.stream_ended(sid):
                for event in await peer.receive():
                    if isinstance(event, h2.events.DataReceived):
                        received += len(event.data)
                # Keep nothing but the end: the client's own memory stays flat.
                peer.events = [e for e in peer.events if isinstance(e, h2.events.StreamEnded)]
                reads += 1
                if reads % 8 == 0:
                    await anyio.sleep(0.01)  # a slow reader: the server must wait for it
                    peak = max(peak, rss())
        await assert_still_serving(address)
    assert received == size
    assert 0 < most_pending <= 1024 * 1024  # flow control held data: one chunk at most
    assert peak - before < 50 * 1024 * 1024


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
async def test_hundred_megabyte_upload_arrives_byte_exact() -> None:
    size = 100 * 1024 * 1024
    expected = hashlib.sha256()
    for offset in range(0, size, len(CHUNK)):
        expected.update(CHUNK[: min(len(CHUNK), size - offset)])

    async def upload() -> AsyncIterator[bytes]:
        for offset in range(0, size, len(CHUNK)):
            yield CHUNK[: min(len(CHUNK), size - offset)]

    async with running_server(make_app(), max_body_bytes=None) as (host, port):
        async with httpx.AsyncClient(http1=False, http2=True, timeout=60) as client:
            response = await client.post(f"http://{host}:{port}/sha256", content=upload())
    assert response.http_version == "HTTP/2"
    assert response.json() == {"sha256": expected.hexdigest(), "size": size}


async def test_body_over_max_body_bytes_gets_413() -> None:
    async with running_server(make_app(), max_body_bytes=1000) as (host, port):
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            response = await client.post(f"http://{host}:{port}/echo", content=b"x" * 5000)
            assert response.status_code == 413
            response = await client.post(f"http://{host}:{port}/echo", content=b"x" * 500)
            assert response.content == b"x" * 500


async def test_client_reset_cancels_the_handler() -> None:
    log: list[str] = []
    async with running_server(make_app(log)) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/wait"), end_stream=True)
            await peer.flush()
            with anyio.fail_after(5):
                while "wait started" not in log:
                    await anyio.sleep(0.01)
            peer.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            await peer.flush()
            with anyio.fail_after(5):
                while "wait cancelled" not in log:
                    await anyio.sleep(0.01)
            # The connection itself carries on.
            response = await peer.request("GET", "/")
            assert (response.status, response.body) == (200, b"hello over 2")
    assert log == ["wait started", "wait cancelled"]


async def test_handler_reading_body_sees_reset_as_disconnect() -> None:
    seen: list[str] = []
    app = App()

    @app.post("/read", stream=True)
    async def read(request: Request) -> Response:
        try:
            async for _ in request.stream():
                seen.append("chunk")
        except ClientDisconnected:
            seen.append("disconnected")
            raise
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return Response.text("read")

    async with running_server(app) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("POST", "/read"))
            peer.conn.send_data(sid, b"part")
            await peer.flush()
            with anyio.fail_after(5):
                while not seen:
                    await anyio.sleep(0.01)
            peer.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            await peer.flush()
            with anyio.fail_after(5):
                while len(seen) < 2:
                    await anyio.sleep(0.01)
    assert seen[0] == "chunk" and seen[1] in ("disconnected", "cancelled")


async def test_unread_request_bodies_do_not_exhaust_the_connection_window() -> None:
    app = App()

    @app.post("/ignore", stream=True)
    async def ignore(request: Request) -> Response:
        async with contextlib.aclosing(request.stream()) as body:
            await body.__anext__()  # one chunk, then answer without the rest
        return Response.text("ignored")

    # 8 bodies of 300 KB through a 1 MiB connection window, on one connection.
    async with running_server(app) as address:
        async with SocketPeer.connect(address) as peer:
            for _ in range(8):
                sid = peer.conn.get_next_available_stream_id()
                peer.conn.send_headers(sid, request_headers("POST", "/ignore"))
                sent = 0
                while sent < 300_000 and not peer.stream_ended(sid):
                    window = min(
                        peer.conn.local_flow_control_window(sid),
                        peer.conn.max_outbound_frame_size,
                        300_000 - sent,
                    )
                    if window > 0:
                        peer.conn.send_data(sid, b"b" * window)
                        sent += window
                        await peer.flush()
                    else:
                        await peer.receive(timeout=5)
                await peer.until(lambda _, sid=sid: peer.stream_ended(sid), timeout=5)  # type: ignore[misc]
                assert peer.response(sid).status == 200


# ----------------------------------------------------------------------------- shutdown


async def test_graceful_shutdown_sends_goaway_and_finishes_streams() -> None:
    log: list[str] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        config = make_config(drain_timeout=10)
        addresses = await tasks.start(
            partial(serve, make_app(log), config, shutdown_trigger=stop.wait)
        )
        async with SocketPeer.connect(addresses[0]) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/wait?t=0.5"), end_stream=True)
            await peer.flush()
            with anyio.fail_after(5):
                while "wait started" not in log:
                    await anyio.sleep(0.01)
            stop.set()
            await peer.until(
                lambda events: any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
            )
            goaway = [e for e in peer.events if isinstance(e, h2.events.ConnectionTerminated)]
            assert goaway[0].error_code == NO_ERROR and goaway[0].last_stream_id == sid
            assert not peer.stream_ended(sid)  # the GOAWAY came first
            await peer.until(lambda _: peer.stream_ended(sid))
            assert peer.response(sid).body == b"waited"
            await peer.read_until_closed()
    assert log == ["wait started", "wait finished"]


# ----------------------------------------------------------------------------- defences


async def attack(address: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    """Send the preface and ``data`` on a raw connection; return what the server sent
    until it closed the connection."""
    async with await anyio.connect_tcp(*address) as stream:
        await stream.send(client_preface() + data)
        out = b""
        with anyio.fail_after(timeout):
            while True:
                try:
                    out += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                    return out


def many_streams(count: int, reset: bool) -> bytes:
    encoder = hpack.Encoder()
    frames = []
    for i in range(count):
        sid = 1 + 2 * i
        frames.append(raw_headers(sid, request_headers("GET", "/wait"), encoder=encoder))
        if reset:
            frames.append(bytes(hf.RstStreamFrame(sid, error_code=CANCEL).serialize()))
    return b"".join(frames)


def continuation_flood() -> bytes:
    frame = hf.HeadersFrame(1)
    frame.data = hpack.Encoder().encode(request_headers())[:2]
    frame.flags.add("END_STREAM")
    return bytes(frame.serialize()) + raw_continuation(1, b"x" * 10) * 1000


def oversized_header_block() -> bytes:
    """A header block that never ends, 16 KiB per frame: cut once it passes twice
    max_header_bytes (64 KiB), not after h2's 64 CONTINUATION frames (~1 MiB)."""
    frame = hf.HeadersFrame(1)
    frame.data = b"x" * 16384
    frame.flags.add("END_STREAM")
    return bytes(frame.serialize()) + raw_continuation(1, b"x" * 16384) * 63


def hpack_bomb() -> bytes:
    encoder = hpack.Encoder()
    big = (b"x-bomb", b"a" * 4000)
    first = raw_headers(1, [*request_headers(), big], encoder=encoder)
    return first + raw_headers(3, [*request_headers(), *[big] * 2000], encoder=encoder)


ATTACKS = {
    "rapid reset": (lambda: many_streams(400, reset=True), ENHANCE_YOUR_CALM),
    "continuation flood": (continuation_flood, PROTOCOL_ERROR),
    "hpack bomb": (hpack_bomb, ENHANCE_YOUR_CALM),
    "oversized header block": (oversized_header_block, ENHANCE_YOUR_CALM),
    "ping flood": (lambda: raw_ping() * 3000, ENHANCE_YOUR_CALM),
    "settings flood": (lambda: raw_settings({4: 65535}) * 3000, ENHANCE_YOUR_CALM),
    "empty data flood": (
        lambda: (
            raw_headers(1, request_headers("POST", "/echo"), end_stream=False) + raw_data(1) * 3000
        ),
        ENHANCE_YOUR_CALM,
    ),
    "oversized frame": (lambda: b"\xff\xff\xff\x00\x00\x00\x00\x00\x01", 0x6),
    # MadeYouReset (CVE-2025-8671): requests the server must reset (malformed).
    "provoked resets": (lambda: malformed_requests(300), ENHANCE_YOUR_CALM),
    "window update flood": (lambda: raw_window_update(0, 1) * 3000, ENHANCE_YOUR_CALM),
    "data dribble": (
        lambda: (
            raw_headers(1, request_headers("POST", "/echo"), end_stream=False)
            + raw_data(1, b"x") * 3000
        ),
        ENHANCE_YOUR_CALM,
    ),
}


def malformed_requests(count: int) -> bytes:
    encoder = hpack.Encoder()
    bad = [*request_headers(), (b"connection", b"keep-alive")]
    return b"".join(raw_headers(1 + 2 * i, bad, encoder=encoder) for i in range(count))


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_attack_gets_goaway_and_server_keeps_serving(name: str) -> None:
    build, code = ATTACKS[name]
    async with running_server(make_app()) as address:
        # A normal client is served while the attack runs, and after it.
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(assert_still_serving, address)
            out = await attack(address, build())
        assert code in goaway_codes(out), parse_frames(out)
        await assert_still_serving(address)


async def test_too_many_streams_are_refused_and_the_connection_kept() -> None:
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(client_preface() + many_streams(110, reset=False))
            out = b""
            with anyio.fail_after(10):
                while len(rst_codes(out)) < 10:
                    out += await stream.receive()
            # The 10 streams over SETTINGS_MAX_CONCURRENT_STREAMS (100) are refused, one by
            # one (RFC 9113 5.1.2); no GOAWAY: the 100 others are still being served.
            assert rst_codes(out) == {sid: REFUSED_STREAM for sid in range(201, 221, 2)}
            assert not goaway_codes(out)
            await assert_still_serving(address)


async def test_reset_budget_refills_so_a_steady_client_is_not_cut_off() -> None:
    # 30 resets per burst, 10 bursts: 300 resets in all, more than the burst budget (50)
    # but at a rate (60/s) under the refill rate (100/s).
    async with running_server(make_app(), h2_max_reset_streams=50) as address:
        async with SocketPeer.connect(address) as peer:
            for _ in range(10):
                for _ in range(30):
                    sid = peer.conn.get_next_available_stream_id()
                    peer.conn.send_headers(sid, request_headers("GET", "/wait"), end_stream=True)
                    peer.conn.reset_stream(sid, CANCEL)
                await peer.flush()
                await anyio.sleep(0.5)
            response = await peer.request("GET", "/")
            assert (response.status, response.body) == (200, b"hello over 2")
            assert not goaway_codes(bytes(peer.raw))


async def test_goaway_is_read_before_the_close_even_while_the_client_sends() -> None:
    """Lingering close: after a connection error, the server keeps reading (and dropping)
    the client's bytes for a while, so the kernel doesn't reset the connection under the
    GOAWAY the client has not read yet."""
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(
                client_preface() + b"\x00\x00\x08\x06\x00\x00\x00\x00\x03" + b"\0" * 8
            )
            # Keep sending after the error (a client that has not seen the GOAWAY yet).
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                for _ in range(50):
                    await stream.send(raw_ping() * 100)
            out = b""
            with anyio.fail_after(10):
                while True:
                    try:
                        out += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                        break
    assert goaway_codes(out) == [PROTOCOL_ERROR]


async def test_client_goaway_lets_requests_in_flight_finish() -> None:
    async with running_server(make_app()) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/wait?t=0.3"), end_stream=True)
            await peer.flush()
            await anyio.sleep(0.1)  # the handler is running
            await peer.send_raw(bytes(hf.GoAwayFrame(0, last_stream_id=0).serialize()))
            await peer.until(lambda _: peer.stream_ended(sid))
            assert (peer.response(sid).status, peer.response(sid).body) == (200, b"waited")
            # Then the server says goodbye too and closes.
            await peer.read_until_closed()
            assert goaway_codes(bytes(peer.raw)) == [NO_ERROR]


async def test_malformed_request_is_reset_and_connection_kept() -> None:
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(
                client_preface()
                + raw_headers(1, [*request_headers(), (b"X-Upper", b"1")])
                + raw_headers(3, [*request_headers(), (b"connection", b"keep-alive")])
                + raw_headers(5, request_headers("GET", "/", scheme="http"))
            )
            out = b""
            with anyio.fail_after(10):
                while not any(
                    isinstance(f, hf.DataFrame) and f.stream_id == 5 and "END_STREAM" in f.flags
                    for f in parse_frames(out)
                ):
                    out += await stream.receive()
    assert rst_codes(out) == {1: PROTOCOL_ERROR, 3: PROTOCOL_ERROR}
    data = [f for f in parse_frames(out) if isinstance(f, hf.DataFrame)]
    assert b"".join(f.data for f in data) == b"hello over 2"
    assert not goaway_codes(out)


async def test_zero_window_stall_is_reset_after_send_timeout() -> None:
    async with running_server(make_app(), send_timeout=0.5) as address:
        async with SocketPeer.connect(address, initial_window=0) as peer:
            peer.auto_ack = False
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/big?n=100000"), end_stream=True)
            await peer.flush()
            await assert_still_serving(address)  # while the stalled stream waits
            with anyio.fail_after(5):
                await peer.until(lambda _: peer.stream_ended(sid))
            resets = [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
            assert [(r.stream_id, r.error_code) for r in resets] == [(sid, CANCEL)]
            assert not [e for e in peer.events if isinstance(e, h2.events.DataReceived)]
        await assert_still_serving(address)


async def window_granter(peer: SocketPeer, sid: int, step: int, pause: float) -> None:
    """Read, and give the server ``step`` bytes of window every ``pause`` seconds."""
    while not peer.stream_ended(sid) and not peer.closed:
        peer.conn.increment_flow_control_window(step, sid)
        peer.conn.increment_flow_control_window(step)
        await peer.flush()
        with anyio.move_on_after(pause):
            while not peer.stream_ended(sid) and not peer.closed:
                await peer.receive()


async def test_a_window_opened_a_byte_at_a_time_is_reset_like_a_shut_one() -> None:
    """Send progress, not send activity (#15): WINDOW_UPDATEs of one byte, ten a
    second, are far below min_send_rate: the stream is reset at the end of the first
    send_timeout interval, and the server serves on."""
    async with running_server(make_app(), send_timeout=0.5, min_send_rate=4096) as address:
        async with SocketPeer.connect(address, initial_window=0) as peer:
            peer.auto_ack = False
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/big?n=100000"), end_stream=True)
            await peer.flush()
            with anyio.fail_after(5):
                await window_granter(peer, sid, 1, 0.1)
            resets = [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
            assert [(r.stream_id, r.error_code) for r in resets] == [(sid, CANCEL)]
            got = sum(len(e.data) for e in peer.events if isinstance(e, h2.events.DataReceived))
            assert got < 100  # a byte per update, then the reset
        await assert_still_serving(address)


async def test_a_slow_steady_reader_gets_a_response_that_outlasts_send_timeout() -> None:
    """A client that opens its window 64 KiB at a time, 20 times a second (~1.3 MB/s),
    gets all of a 2 MB response although each 256 KiB chunk waits longer than
    send_timeout (a single deadline over each wait reset it)."""
    async with running_server(make_app(), send_timeout=0.15, min_send_rate=64 * 1024) as address:
        async with SocketPeer.connect(address, initial_window=0) as peer:
            peer.auto_ack = False
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/big?n=2000000"), end_stream=True)
            await peer.flush()
            with anyio.fail_after(20):
                await window_granter(peer, sid, 65536, 0.05)
            assert not [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
            assert len(peer.response(sid).body) == 2_000_000


async def test_stalled_request_body_gets_408_after_body_timeout() -> None:
    async with running_server(make_app(), body_timeout=0.3) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("POST", "/echo", scheme="http"))
            peer.conn.send_data(sid, b"partial")
            await peer.flush()
            await peer.until(lambda _: peer.stream_ended(sid), timeout=5)
            response = peer.response(sid)
            assert response.status == 408 and response.body.startswith(b"408 Request Timeout")
            # Only that stream: the connection still serves.
            response = await peer.request("GET", "/")
            assert response.body == b"hello over 2"


@pytest.mark.parametrize(
    ("settings", "switches"),
    [(b"AAMAAABkAAQAAP__", True), (b"AAM", False), (None, False)],
    ids=["valid", "not-base64", "missing"],
)
async def test_h2c_upgrade_needs_valid_http2_settings(
    settings: bytes | None, switches: bool
) -> None:
    request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    request += b"Upgrade: h2c\r\n"
    if settings is not None:
        request += b"HTTP2-Settings: " + settings + b"\r\n"
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(request + b"\r\n")
            data = b""
            with anyio.fail_after(10):
                while b"\r\n\r\n" not in data:
                    data += await stream.receive()
            if switches:
                assert data.startswith(b"HTTP/1.1 101 ")
                await stream.send(client_preface())
                with anyio.fail_after(10):
                    while not any(
                        isinstance(f, hf.DataFrame) and f.stream_id == 1 and "END_STREAM" in f.flags
                        for f in parse_frames(data.partition(b"\r\n\r\n")[2])
                    ):
                        data += await stream.receive()
                frames = parse_frames(data.partition(b"\r\n\r\n")[2])
                body = b"".join(f.data for f in frames if isinstance(f, hf.DataFrame))
                assert body == b"hello over 2"
            else:
                assert data.startswith(b"HTTP/1.1 200 ")


async def test_window_update_of_zero_on_a_stream_resets_only_that_stream() -> None:
    """RFC 9113 6.9 over a real socket: RST_STREAM(PROTOCOL_ERROR) for the stream, and
    the same connection goes on serving (it was a GOAWAY before)."""
    async with running_server(make_app()) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("POST", "/echo", scheme="http"))
            await peer.flush()
            await peer.send_raw(raw_window_update(sid, 0))
            await peer.until(lambda _: peer.stream_ended(sid))
            resets = [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
            assert [(e.stream_id, e.error_code) for e in resets] == [(sid, PROTOCOL_ERROR)]
            response = await peer.request("GET", "/")
            assert response.status == 200
            assert not goaway_codes(bytes(peer.raw))
