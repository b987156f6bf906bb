"""Request smuggling and graceful shutdown under load on HTTP/2 and HTTP/3, live servers.

Smuggling (issue #8, item 2, the multiplexed half): a request whose ``content-length``
disagrees with the DATA sent (more or less), a connection-specific header field
(``connection``, ``keep-alive``, ``proxy-connection``, ``transfer-encoding``,
``upgrade``; ``te`` other than ``trailers``), an uppercase field name, a misused
pseudo-header field.  Each must be a *stream* error (RST_STREAM PROTOCOL_ERROR on h2,
H3_MESSAGE_ERROR on h3), the handler never completes a body that disagrees with what was
declared, and the same connection goes on serving the next valid request.

tests/backends/test_http2_conformance.py already checks that each HTTP/2 shape is a
stream error *in isolation* (frame by frame, one shape per connection, GOAWAY accepted as
an escalation) for ``connection``, ``te``, uppercase, pseudo-headers and content-length;
here every shape is sent on one connection between valid requests, with the shapes that
suite lacks (``keep-alive``, ``proxy-connection``, ``transfer-encoding``, ``upgrade``;
content-length invalid, conflicting, or short when trailers end the body), and with what
the handler saw, also when the head arrived (and the handler started) before the DATA.

Graceful shutdown under load (item 5, multiplexed half): a server subprocess gets SIGTERM
while clients run many concurrent streams; every stream completes with its full body or
is refused cleanly (above GOAWAY's last stream id, or REFUSED_STREAM / H3_REQUEST_REJECTED
before any response byte), and the process exits within the drain timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.events
import pytest

from httpy import App, Request, Response
from httpy.backends.server import Server
from tests.e2e.hardening_app import BIG
from tests.support.h2peer import (
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    SocketPeer,
    goaway_codes,
    raw_data,
)
from tests.support.servers import free_port, make_config, running_server

ROOT = Path(__file__).resolve().parents[2]
H3_MESSAGE_ERROR, H3_REQUEST_REJECTED = 0x10E, 0x10B

Fields = list[tuple[bytes, bytes]]


class Seen:
    """What the smuggling app's handlers saw: bodies read in full, handlers still running."""

    def __init__(self) -> None:
        self.completed: list[tuple[str, bytes]] = []
        self.running = 0

    async def settled(self) -> None:
        """Wait until no handler runs (those of refused streams were cancelled)."""
        with anyio.fail_after(5):
            while self.running:
                await anyio.sleep(0.01)


def smuggling_app(seen: Seen) -> App:
    """``POST /echo?tag=T`` records ``(T, body)`` once the whole body was read.  The
    handler streams the body (it runs before the body is complete), so it would see the
    end of a body that disagrees with its content-length if the server let one through."""
    app = App()

    @app.route("/echo", methods=["GET", "POST"], stream=True)
    async def echo(request: Request) -> Response:
        seen.running += 1
        try:
            body = b"".join([chunk async for chunk in request.stream()])
        finally:
            seen.running -= 1
        seen.completed.append((request.query.get("tag", ""), body))
        return Response(body)

    return app


def _base(method: bytes, path: bytes, scheme: bytes) -> Fields:
    return [
        (b":method", method),
        (b":scheme", scheme),
        (b":authority", b"localhost"),
        (b":path", path),
    ]


# (id, fields sent after the four request pseudo-headers in this order, DATA, trailers).
SHAPES: list[tuple[str, Fields, bytes, Fields | None]] = [
    ("content-length-more-than-data", [(b"content-length", b"10")], b"abc", None),
    ("content-length-less-than-data", [(b"content-length", b"2")], b"abcdef", None),
    ("content-length-zero-with-data", [(b"content-length", b"0")], b"x", None),
    ("content-length-short-then-trailers", [(b"content-length", b"10")], b"abc", [(b"x-t", b"1")]),
    ("content-length-not-digits", [(b"content-length", b"3x")], b"abc", None),
    (
        "content-length-conflicting",
        [(b"content-length", b"3"), (b"content-length", b"4")],
        b"abc",
        None,
    ),
    ("connection", [(b"connection", b"keep-alive")], b"", None),
    ("keep-alive", [(b"keep-alive", b"timeout=5")], b"", None),
    ("proxy-connection", [(b"proxy-connection", b"keep-alive")], b"", None),
    (
        "transfer-encoding",
        [(b"transfer-encoding", b"chunked")],
        b"3\r\nabc\r\n0\r\n\r\nPOST /echo HTTP/1.1\r\n\r\n",
        None,
    ),
    ("upgrade", [(b"upgrade", b"websocket")], b"", None),
    ("te-gzip", [(b"te", b"gzip")], b"", None),
    ("te-trailers-and-more", [(b"te", b"trailers, deflate")], b"", None),
    ("uppercase-name", [(b"X-Smuggle", b"1")], b"", None),
    ("uppercase-content-length", [(b"Content-Length", b"3")], b"abc", None),
    ("unknown-pseudo", [(b":smuggle", b"1")], b"", None),
    ("response-pseudo", [(b":status", b"200")], b"", None),
    ("duplicate-path", [(b":path", b"/echo?tag=second")], b"", None),
    ("unknown-pseudo-after-regular", [(b"x-a", b"1"), (b":foo", b"bar")], b"", None),
    ("pseudo-in-trailers", [], b"abc", [(b":method", b"POST")]),
    ("connection-in-trailers", [], b"abc", [(b"connection", b"close")]),
]
SHAPE_IDS = [shape[0] for shape in SHAPES]


def _request_fields(tag: str, extra: Fields, scheme: bytes) -> Fields:
    return _base(b"POST", f"/echo?tag={tag}".encode(), scheme) + extra


# ----------------------------------------------------------------------------- HTTP/2


def _lax_h2_client() -> h2.connection.H2Connection:
    """An h2 client that sends header blocks as given (no validation, no lowercasing)."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            split_outbound_cookies=False,
        )
    )
    conn.initiate_connection()
    return conn


async def _h2_send(
    peer: SocketPeer, tag: str, extra: Fields, body: bytes, trailers: Fields | None
) -> int:
    conn = peer.conn
    sid = conn.get_next_available_stream_id()
    fields = _request_fields(tag, extra, b"http")
    conn.send_headers(sid, fields, end_stream=not body and trailers is None)
    if body:
        conn.send_data(sid, body, end_stream=trailers is None)
    if trailers is not None:
        conn.send_headers(sid, trailers, end_stream=True)
    await peer.flush()
    return sid


@pytest.mark.anyio
async def test_h2_smuggling_shapes_are_stream_errors_and_the_connection_serves_on() -> None:
    seen = Seen()
    async with running_server(smuggling_app(seen)) as address:
        async with await anyio.connect_tcp(*address) as stream:
            peer = SocketPeer(stream, _lax_h2_client())
            await peer.flush()
            for name, extra, body, trailers in SHAPES:
                sid = await _h2_send(peer, name, extra, body, trailers)
                await peer.until(lambda _, s=sid: peer.stream_ended(s))  # type: ignore[misc]
                resets = [
                    e
                    for e in peer.events
                    if isinstance(e, h2.events.StreamReset) and e.stream_id == sid
                ]
                assert [e.error_code for e in resets] == [PROTOCOL_ERROR], (
                    name,
                    peer.response(sid),
                )
                assert peer.response(sid).status == 0, name  # no response began
                await seen.settled()  # a handler that started was cancelled at once
                # The same connection serves the next (valid) request.
                valid = await _h2_send(peer, "valid", [], b"after " + name.encode(), None)
                await peer.until(lambda _, s=valid: peer.stream_ended(s))  # type: ignore[misc]
                response = peer.response(valid)
                assert (response.status, response.body) == (200, b"after " + name.encode())
            assert not peer.closed
            assert not goaway_codes(bytes(peer.raw))
    # The handler completed only the valid requests' bodies: never one that disagreed.
    assert seen.completed == [("valid", b"after " + name.encode()) for name in SHAPE_IDS]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("declared", "sent", "trailers"),
    [(10, b"abc", False), (2, b"abcdef", False), (10, b"abc", True)],
    ids=["more", "less", "short-then-trailers"],
)
async def test_h2_content_length_mismatch_after_the_handler_started(
    declared: int, sent: bytes, trailers: bool
) -> None:
    """The request head arrives first (the handler runs, streaming the body), then DATA
    that disagrees with content-length: RST_STREAM PROTOCOL_ERROR, the handler cancelled
    at once, and the connection serves on."""
    seen = Seen()
    async with running_server(smuggling_app(seen)) as address:
        async with await anyio.connect_tcp(*address) as stream:
            peer = SocketPeer(stream, _lax_h2_client())
            sid = peer.conn.get_next_available_stream_id()
            fields = _request_fields("split", [(b"content-length", b"%d" % declared)], b"http")
            peer.conn.send_headers(sid, fields)
            await peer.flush()
            with anyio.fail_after(5):
                while not seen.running:
                    await anyio.sleep(0.01)
            peer.conn.send_data(sid, sent, end_stream=not trailers)
            if trailers:
                peer.conn.send_headers(sid, [(b"x-t", b"1")], end_stream=True)
            await peer.flush()
            await peer.until(lambda _: peer.stream_ended(sid))
            resets = [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
            assert [(e.stream_id, e.error_code) for e in resets] == [(sid, PROTOCOL_ERROR)]
            await seen.settled()
            valid = await _h2_send(peer, "valid", [], b"next", None)
            await peer.until(lambda _: peer.stream_ended(valid))
            assert (peer.response(valid).status, peer.response(valid).body) == (200, b"next")
    assert seen.completed == [("valid", b"next")]


@pytest.mark.anyio
async def test_h2_body_past_its_content_length_is_dropped_without_starving_the_window() -> None:
    """25 requests declare 2 bytes and send 60 KB each (1.5 MB in all, more than the
    connection window): each is reset once it overflows; the bytes that keep coming
    are dropped but their connection window is given back, so a valid 60 KB upload on
    the same connection still goes through."""
    seen = Seen()
    async with running_server(smuggling_app(seen)) as address:
        async with await anyio.connect_tcp(*address) as stream:
            peer = SocketPeer(stream, _lax_h2_client())
            peer.keep_raw = False

            async def upload(tag: str, declared: bytes | None) -> int:
                extra = [(b"content-length", declared)] if declared is not None else []
                sid = peer.conn.get_next_available_stream_id()
                peer.conn.send_headers(sid, _request_fields(tag, extra, b"http"))
                await peer.flush()
                # Raw DATA frames: a client that ignores RST_STREAM and flow control.
                for i in range(4):
                    await peer.send_raw(raw_data(sid, b"a" * 15_000, end_stream=i == 3))
                await peer.until(lambda _: peer.stream_ended(sid))
                return sid

            for _ in range(25):
                sid = await upload("overflow", b"2")
                resets = [e for e in peer.events if isinstance(e, h2.events.StreamReset)]
                assert (resets[-1].stream_id, resets[-1].error_code) == (sid, PROTOCOL_ERROR)
            valid = await upload("valid", None)
            response = peer.response(valid)
            assert (response.status, response.body) == (200, b"a" * 60_000)
    assert seen.completed == [("valid", b"a" * 60_000)]


# ----------------------------------------------------------------------------- HTTP/3


@asynccontextmanager
async def h3_server(app: App, **options: Any) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` over HTTP/3 on an ephemeral UDP port; yields that address."""
    from tests.support.h3client import certificate_files

    cert, key, _ = certificate_files()
    config = make_config(
        binds=(),
        tls_binds=("127.0.0.1:0",),
        http3_binds=("127.0.0.1:0",),
        certfile=str(cert),
        keyfile=str(key),
        **options,
    )
    server = Server(app, config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        try:
            yield server.http3_addresses[0]
        finally:
            stop.set()


@pytest.mark.anyio
async def test_h3_smuggling_shapes_are_stream_errors_and_the_connection_serves_on() -> None:
    pytest.importorskip("aioquic")
    from tests.support.h3client import h3_connect

    seen = Seen()
    async with h3_server(smuggling_app(seen)) as udp:
        async with h3_connect(*udp) as client:
            for name, extra, body, trailers in SHAPES:
                fields = _request_fields(name, extra, b"https")
                sid = await client.start_raw(fields, body, trailers)
                with anyio.fail_after(10):
                    response = await client.wait(sid)
                assert response.reset_code == H3_MESSAGE_ERROR, (name, response)
                assert response.status == 0, name  # no response began
                await seen.settled()  # a handler that started was cancelled at once
                valid_body = b"after " + name.encode()
                valid = await client.start_raw(_request_fields("valid", [], b"https"), valid_body)
                with anyio.fail_after(10):
                    answer = await client.wait(valid)
                assert (answer.status, answer.body) == (200, valid_body), name
            assert client.terminated is None
    # The handler completed only the valid requests' bodies: never one that disagreed.
    assert seen.completed == [("valid", b"after " + name.encode()) for name in SHAPE_IDS]


@pytest.mark.anyio
@pytest.mark.parametrize(("declared", "sent"), [(10, b"abc"), (2, b"abcdef")], ids=["more", "less"])
async def test_h3_content_length_mismatch_after_the_handler_started(
    declared: int, sent: bytes
) -> None:
    """The request head arrives first (the handler runs, waiting for the body), then DATA
    that disagrees with content-length: the stream is reset with H3_MESSAGE_ERROR and the
    handler is cancelled, never given that body."""
    pytest.importorskip("aioquic")
    from tests.support.h3client import h3_connect

    seen = Seen()
    async with h3_server(smuggling_app(seen)) as udp:
        async with h3_connect(*udp) as client:
            fields = _request_fields("split", [(b"content-length", b"%d" % declared)], b"https")
            sid = await client.start_raw(fields, end=False)
            with anyio.fail_after(5):
                while not seen.running:
                    await anyio.sleep(0.01)
            await client.send_body(sid, sent, end=True)
            with anyio.fail_after(10):
                response = await client.wait(sid)
            assert response.reset_code == H3_MESSAGE_ERROR, response
            assert response.status == 0
            await seen.settled()  # cancelled now, on the open connection (not at close)
            answer = await client.request("POST", "/echo?tag=valid", body=b"next")
            assert (answer.status, answer.body) == (200, b"next")
    assert seen.completed == [("valid", b"next")]


# ----------------------------------------------------------------------------- shutdown

STREAMS_PER_CONNECTION = 16
CONNECTIONS = 4
SLOW_REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"localhost"),
    (b":path", b"/slow"),
]


class Tally:
    """Outcome of every stream the load generator opened."""

    def __init__(self) -> None:
        self.complete = 0
        self.refused = 0  # no response byte, and the server said it never processed it
        self.truncated = 0  # a response began but did not end in full, or was lost
        self.refused_connections_after_term = 0
        self.close_codes: list[int] = []  # GOAWAY (h2) or CONNECTION_CLOSE (h3) codes

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def start_server(backend: str, port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "httpy",
            "tests.e2e.hardening_app:app",
            "--port",
            str(port),
            "--backend",
            backend,
            "--drain-timeout",
            "5",
            "--no-access-log",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def stop_server(process: subprocess.Popen[bytes]) -> str:
    try:
        return process.communicate(timeout=15)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


async def wait_for_tcp(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            assert process.poll() is None, "server exited at startup"
            assert time.monotonic() < deadline, "server did not start"
            await anyio.sleep(0.1)
            continue
        await stream.aclose()
        return


async def _h2_connection_load(
    port: int, tally: Tally, terminated: anyio.Event, process: subprocess.Popen[bytes]
) -> None:
    """Keep STREAMS_PER_CONNECTION ``GET /slow`` streams in flight on one h2c connection
    (prior knowledge), opening new ones as they end, until the server's GOAWAY; then
    classify every stream; reconnect until the server is gone."""
    while not (terminated.is_set() and process.poll() is not None):
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            if terminated.is_set():
                tally.refused_connections_after_term += 1
            await anyio.sleep(0.05)
            continue
        async with stream:
            peer = SocketPeer(stream, _h2_load_client())
            peer.keep_raw = False
            await peer.flush()
            await _drive_h2_streams(peer, tally)


def _h2_load_client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


async def _drive_h2_streams(peer: SocketPeer, tally: Tally) -> None:
    received: dict[int, int] = {}  # open stream -> body bytes so far (-1: no response yet)
    last_stream_id: int | None = None
    late_stream_sent = False
    while True:
        while len(received) < STREAMS_PER_CONNECTION and (
            last_stream_id is None or not late_stream_sent
        ):
            # After the GOAWAY, one more stream: a client that had not read it yet.
            late_stream_sent = last_stream_id is not None
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, SLOW_REQUEST, end_stream=True)
            received[sid] = -1
        try:
            await peer.flush()
        except (anyio.BrokenResourceError, OSError):
            peer.closed = True
        events = [] if peer.closed else await peer.receive(timeout=15)
        for event in events:
            sid = getattr(event, "stream_id", 0)
            if isinstance(event, h2.events.ResponseReceived):
                assert dict(event.headers)[b":status"] == b"200"
                received[sid] = 0
            elif isinstance(event, h2.events.DataReceived):
                received[sid] += len(event.data)
            elif isinstance(event, h2.events.StreamEnded):
                if received.pop(sid) == len(BIG):
                    tally.complete += 1
                else:
                    tally.truncated += 1
            elif isinstance(event, h2.events.StreamReset):
                got = received.pop(sid)
                if got < 0 and event.error_code == REFUSED_STREAM:
                    tally.refused += 1
                else:
                    tally.truncated += 1
            elif isinstance(event, h2.events.ConnectionTerminated):
                tally.close_codes.append(int(event.error_code or 0))
                last = int(event.last_stream_id or 0)
                last_stream_id = last if last_stream_id is None else min(last, last_stream_id)
        if peer.closed:
            for sid, got in received.items():
                # Above the GOAWAY's last stream id, never answered: refused, cleanly.
                if got < 0 and last_stream_id is not None and sid > last_stream_id:
                    tally.refused += 1
                else:
                    tally.truncated += 1
            return


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_h2_sigterm_under_load_completes_or_refuses_every_stream(backend: str) -> None:
    """SIGTERM while 4 h2c connections keep 16 streams each in flight: every stream ends
    with its full body or is refused (above GOAWAY's last stream id, or REFUSED_STREAM)
    before any response byte; new connections are refused; the process exits in time."""
    port = free_port()
    process = start_server(backend, port)
    try:
        tally, exit_seconds = anyio.run(_h2_load_then_sigterm, process, port)
    finally:
        output = stop_server(process)
    print(f"HTTP/2 SIGTERM under load ({backend}): {tally.as_dict()}, exit {exit_seconds:.2f} s")
    assert tally.truncated == 0, tally.as_dict()
    assert tally.complete > CONNECTIONS * STREAMS_PER_CONNECTION, tally.as_dict()
    assert tally.refused >= CONNECTIONS, tally.as_dict()  # the streams sent after GOAWAY
    assert tally.close_codes and set(tally.close_codes) == {0}, tally.as_dict()  # NO_ERROR
    assert tally.refused_connections_after_term > 0, tally.as_dict()
    assert process.returncode == 0, output
    assert exit_seconds < 5 + 3


async def _h2_load_then_sigterm(process: subprocess.Popen[bytes], port: int) -> tuple[Tally, float]:
    await wait_for_tcp(port, process)
    tally = Tally()
    terminated = anyio.Event()
    async with anyio.create_task_group() as tasks:
        for _ in range(CONNECTIONS):
            tasks.start_soon(_h2_connection_load, port, tally, terminated, process)
        await anyio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        term_at = time.monotonic()
        terminated.set()
        with anyio.fail_after(15):
            while process.poll() is None:
                await anyio.sleep(0.05)
        exit_seconds = time.monotonic() - term_at
    return tally, exit_seconds


H3_CONNECTIONS, H3_STREAMS_PER_CONNECTION = 3, 8


async def _h3_connection_load(port: int, tally: Tally) -> None:
    """Keep H3_STREAMS_PER_CONNECTION ``GET /slow`` requests in flight on one HTTP/3
    connection until the server's GOAWAY (plus one late request, as a client that has not
    read it yet would send); classify every stream once the connection is closed."""
    from tests.support.h3client import h3_connect

    async with h3_connect("127.0.0.1", port) as client:
        outstanding: set[int] = set()
        late_stream_sent = False
        while True:
            while (
                client.terminated is None
                and len(outstanding) < H3_STREAMS_PER_CONNECTION
                and (client.goaway_id is None or not late_stream_sent)
            ):
                late_stream_sent = client.goaway_id is not None
                outstanding.add(await client.start("GET", "/slow"))
            for sid in sorted(outstanding):
                response = client.response(sid)
                if response.ended:
                    outstanding.discard(sid)
                    full = (response.status, len(response.body)) == (200, len(BIG))
                    if full:
                        tally.complete += 1
                    else:
                        tally.truncated += 1
                elif response.reset_code is not None:
                    outstanding.discard(sid)
                    untouched = response.status == 0 and not response.body
                    if untouched and response.reset_code == H3_REQUEST_REJECTED:
                        tally.refused += 1
                    else:
                        tally.truncated += 1
            if client.terminated is not None:
                tally.close_codes.append(client.terminated.error_code)
                goaway_id = client.goaway_id
                for sid in outstanding:
                    # At or above the GOAWAY's id and never answered: not processed, so
                    # refused cleanly (RFC 9114 5.2).  Anything else was lost.
                    response = client.response(sid)
                    if goaway_id is not None and sid >= goaway_id and response.status == 0:
                        tally.refused += 1
                    else:
                        tally.truncated += 1
                return
            await anyio.sleep(0.01)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_h3_sigterm_under_load_completes_or_refuses_every_stream(backend: str) -> None:
    """SIGTERM while 3 HTTP/3 connections keep 8 requests each in flight: each request
    ends with its full body or is refused (H3_REQUEST_REJECTED, or at/above GOAWAY's id)
    before any response byte; the connections close with H3_NO_ERROR; the process exits
    within the drain timeout."""
    pytest.importorskip("aioquic")
    from tests.support.h3client import certificate_files, free_tcp_and_udp_port

    cert, key, _ = certificate_files()
    port = free_tcp_and_udp_port()
    process = start_server(
        backend,
        port,
        "--certfile",
        str(cert),
        "--keyfile",
        str(key),
        "--http3-bind",
        f"127.0.0.1:{port}",
    )
    try:
        tally, exit_seconds = anyio.run(_h3_load_then_sigterm, process, port)
    finally:
        output = stop_server(process)
    print(f"HTTP/3 SIGTERM under load ({backend}): {tally.as_dict()}, exit {exit_seconds:.2f} s")
    assert tally.truncated == 0, tally.as_dict()
    assert tally.complete >= H3_CONNECTIONS * H3_STREAMS_PER_CONNECTION, tally.as_dict()
    assert tally.refused >= H3_CONNECTIONS, tally.as_dict()  # the requests sent after GOAWAY
    assert tally.close_codes == [0x100] * H3_CONNECTIONS, tally.as_dict()  # H3_NO_ERROR
    assert process.returncode == 0, output
    assert exit_seconds < 5 + 3


async def _h3_load_then_sigterm(process: subprocess.Popen[bytes], port: int) -> tuple[Tally, float]:
    await wait_for_tcp(port, process)
    tally = Tally()
    async with anyio.create_task_group() as tasks:
        for _ in range(H3_CONNECTIONS):
            tasks.start_soon(_h3_connection_load, port, tally)
        await anyio.sleep(2)
        process.send_signal(signal.SIGTERM)
        term_at = time.monotonic()
        with anyio.fail_after(15):
            while process.poll() is None:
                await anyio.sleep(0.05)
        exit_seconds = time.monotonic() - term_at
    return tally, exit_seconds


# -- HTTP/3 resource bounds before a request is known (SECURITY.md, HTTP/3 and QUIC) -----


def _h3_bounds_app(gate: anyio.Event) -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("ok")

    @app.post("/hold", stream=True)
    async def hold(request: Request) -> Response:
        await gate.wait()  # read nothing until the test opens the gate
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return Response.text(str(size))

    return app


@pytest.mark.anyio
async def test_h3_oversized_headers_frame_gets_431_before_it_is_buffered() -> None:
    """A HEADERS frame announcing 64 MiB is answered 431 from its frame header: the
    server buffers none of it and grants the stream no credit beyond its initial window,
    on several streams at once; the connection serves on."""
    pytest.importorskip("aioquic")
    from aioquic.buffer import encode_uint_var

    from tests.support.h3client import Response as H3Response
    from tests.support.h3client import h3_connect

    window = 256 * 1024
    head = encode_uint_var(0x01) + encode_uint_var(64 * 1024 * 1024)  # HEADERS, 64 MiB
    async with h3_server(_h3_bounds_app(anyio.Event()), quic_max_stream_data=window) as udp:
        async with h3_connect(*udp) as client:
            sids = []
            for _ in range(8):
                sid = client.quic.get_next_available_stream_id()
                client._responses[sid] = H3Response(sid)
                client.quic.send_stream_data(sid, head + b"\0" * (window - len(head)))
                sids.append(sid)
            await client.send_all()
            for sid in sids:
                with anyio.fail_after(10):
                    response = await client.wait(sid)
                assert response.status == 431, response
                assert b"header limit" in response.body
                stream = client.quic._streams.get(sid)
                # No more credit than the initial window (aioquic alone doubles it).
                assert stream is None or stream.max_stream_data_remote <= window
            assert (await client.get("/")).status == 200
            assert client.terminated is None


@pytest.mark.anyio
async def test_h3_unfinished_request_head_gets_408_after_header_timeout() -> None:
    """Request heads left unfinished (a HEADERS frame of which only part came) are
    answered 408 once header_timeout has passed since their first bytes, while the
    client keeps its connection alive with PINGs; the connection serves on (they were
    kept as long as the connection lived before)."""
    pytest.importorskip("aioquic")
    from aioquic.buffer import encode_uint_var

    from tests.support.h3client import Response as H3Response
    from tests.support.h3client import h3_connect

    head = encode_uint_var(0x01) + encode_uint_var(16 * 1024)  # HEADERS, 16 KiB
    async with h3_server(_h3_bounds_app(anyio.Event()), header_timeout=1.0) as udp:
        async with h3_connect(*udp) as client:
            sids = []
            for _ in range(4):
                sid = client.quic.get_next_available_stream_id()
                client._responses[sid] = H3Response(sid)
                client.quic.send_stream_data(sid, head + b"\0" * 8000)  # half of it
                sids.append(sid)
            await client.send_all()
            with anyio.fail_after(10):
                while not all(client._responses[sid].ended for sid in sids):
                    client.quic.send_ping(1)  # the connection itself stays busy
                    await client.send_all()
                    await anyio.sleep(0.2)
            for sid in sids:
                response = client._responses[sid]
                assert response.status == 408, response
                assert b"header_timeout" in response.body
            assert (await client.get("/")).status == 200
            assert client.terminated is None


@pytest.mark.anyio
async def test_h3_connection_window_follows_what_the_application_reads() -> None:
    """Bodies nobody reads yet hold the connection window shut (aioquic alone doubles
    MAX_DATA as data arrives); once the handlers read, credit comes back and bodies
    several times the window go through."""
    pytest.importorskip("aioquic")
    from tests.support.h3client import h3_connect

    window, body = 128 * 1024, b"b" * (100 * 1024)
    gate = anyio.Event()
    options = {"quic_max_data": 2 * window, "quic_max_stream_data": window}
    async with h3_server(_h3_bounds_app(gate), **options) as udp:
        async with h3_connect(*udp) as client:
            sids = [await client.start("POST", "/hold", body=body) for _ in range(8)]
            quic = client.quic
            with anyio.fail_after(10):
                # The client sent all the server allowed and is blocked on MAX_DATA.
                while quic._remote_max_data_used < quic._remote_max_data:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.2)  # time for a (wrong) MAX_DATA to arrive
            assert quic._remote_max_data <= 3 * window  # 1.5 windows held at most
            assert quic._remote_max_data_used < 8 * len(body)
            gate.set()
            for sid in sids:
                with anyio.fail_after(10):
                    response = await client.wait(sid)
                assert (response.status, response.body) == (200, b"%d" % len(body))
            assert quic._remote_max_data_used >= 8 * len(body)  # > 3 windows went through


@pytest.mark.anyio
@pytest.mark.parametrize("frame", ["tiny-data", "unknown-frame"])
async def test_h3_tiny_frame_flood_closes_the_connection_and_others_are_served(
    frame: str,
) -> None:
    """Frames that carry no request (1-byte DATA frames, unknown frame types) spend the
    control-frame budget: over it, CONNECTION_CLOSE H3_EXCESSIVE_LOAD; a new client is
    served."""
    pytest.importorskip("aioquic")
    from aioquic.buffer import encode_uint_var

    from tests.support.h3client import h3_connect

    async with h3_server(_h3_bounds_app(anyio.Event())) as udp:
        async with h3_connect(*udp) as client:
            sid = await client.start("POST", "/hold", end=False)
            for _ in range(1500):  # the default budget is 1000 (h2_max_control_frames)
                if frame == "tiny-data":
                    client.h3.send_data(sid, b"x", end_stream=False)
                else:  # a reserved frame type (0x21), empty
                    client.quic.send_stream_data(sid, encode_uint_var(0x21) + b"\0")
            await client.send_all()
            with anyio.fail_after(10):
                terminated = await client.wait_terminated()
            assert terminated.error_code == 0x107  # H3_EXCESSIVE_LOAD
            assert "control-frame budget" in terminated.reason_phrase
        async with h3_connect(*udp) as other:
            assert (await other.get("/")).status == 200
