"""Resource bounds against a live server, on asyncio and trio: each bound is hit, the
documented answer checked, and another client is served meanwhile and afterwards.

Bounds already hit that way by other tests (not repeated here):

* ``max_connections``: tests/backends/test_http1_server.py
  ``test_max_connections_holds_extra_clients_in_backlog`` (the extra client waits in the
  backlog and is served as soon as one of the others leaves).
* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: tests/backends/test_http2_server.py
  ``test_too_many_streams_are_refused_and_the_connection_kept`` (the 10 streams over 100
  get RST_STREAM REFUSED_STREAM one by one, no GOAWAY, a new client is served).
* HTTP/2 ``max_body_bytes``: ``test_body_over_max_body_bytes_gets_413`` (413, then the
  same connection serves the next request); decoded header list over
  ``max_header_bytes`` (HPACK bomb): ``test_attack_gets_goaway_and_server_keeps_serving``
  (GOAWAY ENHANCE_YOUR_CALM while a normal client is served).
* WebSocket client that never reads: tests/backends/test_websocket_server.py
  ``test_client_that_never_reads_blocks_the_sender`` (the handler's send blocks once the
  socket buffers are full, a few MiB of 125; the peer is dropped after ``send_timeout``).

Here: the HTTP/1.1 head and body limits (414, 431 by size and by count, 413 declared and
streamed) with a keep-alive neighbour served before and after on its own connection;
HTTP/2 ``max_header_count`` and HTTP/3 ``max_header_count``, ``max_header_bytes`` (431)
and ``max_body_bytes`` (413, declared and streamed) on a stream, the same connection
serving on; ``ws_max_message_bytes`` (close 1009) and the
permessage-deflate decompressed-size cap (a 1 GiB bomb closed with 1009 after at most
the limit is inflated, server memory flat) while another WebSocket keeps echoing; and
server memory while a WebSocket client never reads.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import anyio.abc
import h2.events
import pytest
from wsproto.events import CloseConnection

from httpy import App, Request, Response, WebSocketConnection, WebSocketDisconnect
from httpy.backends.server import Server
from tests.support.h2peer import SocketPeer, request_headers
from tests.support.raw import read_response, read_until_closed, status_of
from tests.support.servers import make_config, running_server
from tests.support.wsclient import WSClient, masked_frame, ws_connect

pytestmark = pytest.mark.anyio

LIMITS: dict[str, Any] = {
    "max_request_line_bytes": 1024,
    "max_header_bytes": 4096,
    "max_header_count": 20,
    "max_body_bytes": 1000,
    "ws_max_message_bytes": 64 * 1024,
}


def make_app(seen: dict[str, Any]) -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("ok")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.websocket("/echo")
    async def ws_echo(ws: WebSocketConnection) -> None:
        async for message in ws:
            if message.is_text:
                await ws.send_text(message.text())
            else:
                await ws.send_bytes(message.bytes())
        seen.setdefault("close_codes", []).append(ws.close_code)

    @app.websocket("/flood")
    async def flood(ws: WebSocketConnection) -> None:
        chunk = b"x" * 65536
        seen["sent"] = 0
        try:
            for _ in range(4000):  # 250 MiB if nobody stopped us
                await ws.send_bytes(chunk)
                seen["sent"] += len(chunk)
        except WebSocketDisconnect as exc:
            seen["flood_error"] = exc.code

    return app


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------- HTTP/1.1

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
HEAD_ATTACKS = {
    "request-line-414": (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "header-bytes-431": (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431),
    "header-count-431": (
        b"GET / HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(30))
        + b"\r\n",
        431,
    ),
    "declared-body-413": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + b"a" * 5000,
        413,
    ),
    "chunked-body-413": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"200\r\n"
        + b"a" * 512
        + b"\r\n"
        + b"200\r\n"
        + b"a" * 512
        + b"\r\n"
        + b"200\r\n"
        + b"a" * 512
        + b"\r\n0\r\n\r\n",
        413,
    ),
}


@pytest.mark.parametrize("attack", list(HEAD_ATTACKS))
async def test_http1_limit_answers_and_a_neighbour_is_served(attack: str) -> None:
    request, status = HEAD_ATTACKS[attack]
    async with running_server(make_app({}), **LIMITS) as address:
        async with await anyio.connect_tcp(*address) as neighbour:
            await neighbour.send(GET)
            assert status_of(await read_response(neighbour)) == 200
            async with await anyio.connect_tcp(*address) as attacker:
                await attacker.send(request)
                # The documented status, then the connection closes (nothing after it).
                answer = await read_until_closed(attacker)
            assert status_of(answer) == status, answer[:200]
            assert answer.count(b"HTTP/1.1 ") == 1
            assert b"connection: close" in answer.lower()
            # The neighbour's keep-alive connection goes on, and new clients are served.
            await neighbour.send(GET)
            assert status_of(await read_response(neighbour)) == 200
        async with await anyio.connect_tcp(*address) as newcomer:
            await newcomer.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
            response = await read_response(newcomer)
            assert status_of(response) == 200 and response.endswith(b"\r\n\r\nabc")


# ----------------------------------------------------------------------------- HTTP/2


async def test_h2_header_count_gets_431_and_the_connection_serves_on() -> None:
    async with running_server(make_app({}), **LIMITS) as address:
        async with SocketPeer.connect(address) as peer:
            sid = peer.conn.get_next_available_stream_id()
            fields = request_headers("GET", "/", scheme="http")
            fields += [(b"x-%d" % i, b"1") for i in range(30)]
            peer.conn.send_headers(sid, fields, end_stream=True)
            await peer.flush()
            await peer.until(lambda _: peer.stream_ended(sid))
            too_many = peer.response(sid)
            assert too_many.status == 431, too_many
            assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in peer.events)
            response = await peer.request("POST", "/echo", body=b"next")
            assert (response.status, response.body) == (200, b"next")


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


async def test_h3_header_and_body_limits_answer_and_the_connection_serves_on() -> None:
    pytest.importorskip("aioquic")
    from tests.support.h3client import h3_connect

    async with h3_server(make_app({}), **LIMITS) as udp:
        async with h3_connect(*udp) as client:
            many = [(b"x-%d" % i, b"1") for i in range(30)]
            assert (await client.get("/", many)).status == 431
            assert (await client.get("/", [(b"x-big", b"a" * 5000)])).status == 431
            declared = await client.request("POST", "/echo", body=b"a" * 5000)
            assert declared.status == 413
            # No content-length: the limit is hit while the body streams in.
            sid = await client.start("POST", "/echo", end=False)
            for _ in range(5):
                await client.send_body(sid, b"a" * 512)
            await client.send_body(sid, b"", end=True)
            with anyio.fail_after(10):
                streamed = await client.wait(sid)
            assert streamed.status == 413
            response = await client.request("POST", "/echo", body=b"next")
            assert (response.status, response.body) == (200, b"next")
            assert client.terminated is None


# ----------------------------------------------------------------------------- WebSocket


async def _echoes(client: WSClient, text: str) -> None:
    await client.send(text)
    assert await client.recv() == text


async def test_ws_message_over_the_limit_gets_1009_while_a_neighbour_echoes() -> None:
    seen: dict[str, Any] = {}
    limit = LIMITS["ws_max_message_bytes"]
    async with running_server(make_app(seen), **LIMITS) as address:
        async with ws_connect(*address, "/echo") as neighbour:
            await _echoes(neighbour, "before")
            async with ws_connect(*address, "/echo") as attacker:
                # One frame whose header announces more than the limit: refused from the
                # header, before its payload is read.
                await attacker.send_raw(masked_frame(0x2, b"a" * (limit + 1)))
                close = await attacker.recv()
                assert isinstance(close, CloseConnection) and close.code == 1009
                await _echoes(neighbour, "meanwhile")
            async with ws_connect(*address, "/echo") as fragmented:
                # Fragments each under the limit, together over it.
                half = b"a" * (limit // 2)
                for opcode in (0x2, 0x0, 0x0):  # BINARY, then CONTINUATION frames
                    await fragmented.send_raw(masked_frame(opcode, half, fin=False))
                close = await fragmented.recv()
                assert isinstance(close, CloseConnection) and close.code == 1009
            await _echoes(neighbour, "after")
            await neighbour.close(1000)
            assert isinstance(await neighbour.recv(), CloseConnection)
        with anyio.fail_after(5):
            while len(seen.get("close_codes", [])) < 3:
                await anyio.sleep(0.01)
    assert sorted(seen["close_codes"]) == [1000, 1009, 1009]


async def test_ws_endless_empty_fragments_get_1009_while_a_neighbour_echoes() -> None:
    """A message of empty continuation frames that never ends: each fragment counts 64
    bytes toward ws_max_message_bytes, so the run is closed with 1009 (it never reached
    the limit before, and kept a core busy); the neighbour keeps echoing meanwhile."""
    seen: dict[str, Any] = {}
    limit = LIMITS["ws_max_message_bytes"]
    empty = masked_frame(0x0, b"", fin=False)
    async with running_server(make_app(seen), **LIMITS) as address:
        async with ws_connect(*address, "/echo") as neighbour:
            await _echoes(neighbour, "before")
            async with ws_connect(*address, "/echo") as attacker:
                # 6 bytes each on the wire, 64 toward the limit: a few more than it takes,
                # in one write (a client that goes on sending after the server's close
                # frame may have it destroyed by the reset its unread bytes provoke).
                run = empty * (limit // 64 + 10)
                await attacker.send_raw(masked_frame(0x2, b"a", fin=False) + run)
                close = await attacker.recv()
                assert isinstance(close, CloseConnection) and close.code == 1009
                await _echoes(neighbour, "meanwhile")
            await _echoes(neighbour, "after")
            await neighbour.close(1000)
            assert isinstance(await neighbour.recv(), CloseConnection)
        with anyio.fail_after(5):
            while len(seen.get("close_codes", [])) < 2:
                await anyio.sleep(0.01)
    assert sorted(seen["close_codes"]) == [1000, 1009]


async def test_ws_message_left_unfinished_gets_1008_after_the_message_timeout() -> None:
    """A message begun and never finished (one fragment, then silence, the connection
    kept alive by pings) is closed with 1008 once ws_message_timeout passes; the
    neighbour keeps echoing."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), ws_message_timeout=0.5) as address:
        async with ws_connect(*address, "/echo") as neighbour:
            async with ws_connect(*address, "/echo") as attacker:
                await attacker.send_raw(masked_frame(0x2, b"begun", fin=False))
                with anyio.fail_after(5):
                    close = await attacker.recv()
                assert isinstance(close, CloseConnection) and close.code == 1008
                await _echoes(neighbour, "after")
            await neighbour.close(1000)
            assert isinstance(await neighbour.recv(), CloseConnection)
        with anyio.fail_after(5):
            while len(seen.get("close_codes", [])) < 2:
                await anyio.sleep(0.01)
    assert sorted(seen["close_codes"]) == [1000, 1008]


async def test_ws_deflate_bomb_is_capped_and_memory_stays_flat_while_a_neighbour_echoes() -> None:
    seen: dict[str, Any] = {}
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\x00" * (1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(1024))  # 1 GiB inflated
    bomb += compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(bomb) < 2 * 1024 * 1024
    async with running_server(make_app(seen), **LIMITS) as address:
        async with ws_connect(*address, "/echo", deflate=True) as neighbour:
            assert neighbour.accept is not None and neighbour.accept.extensions
            await _echoes(neighbour, "compressible " * 1000)
            rss_before = rss_bytes()
            async with ws_connect(*address, "/echo", deflate=True) as attacker:
                await attacker.send_raw(masked_frame(0x2, bomb, rsv1=True))
                close = await attacker.recv()
                assert isinstance(close, CloseConnection) and close.code == 1009
            rss_after = rss_bytes()
            await _echoes(neighbour, "still here " * 1000)
    # Inflating 1 GiB would show; the server stops at the 64 KiB limit (the client's own
    # copy of the bomb, 1 MiB, is the noise).
    assert rss_after - rss_before < 32 * 1024 * 1024, (rss_before, rss_after)
    assert 1009 in seen["close_codes"]


async def test_ws_client_that_never_reads_does_not_grow_server_memory() -> None:
    """A handler sends 64 KiB messages to a client that reads nothing: once the socket
    buffers are full its sends wait, so resident memory stays flat while another client
    is served; the reader that never reads is dropped after ``send_timeout``."""
    seen: dict[str, Any] = {}
    async with running_server(make_app(seen), send_timeout=4) as address:
        async with ws_connect(*address, "/flood"):
            last, still = -1, 0
            with anyio.fail_after(20):
                while still < 10:  # the sender made no progress over 10 checks
                    await anyio.sleep(0.05)
                    sent = seen.get("sent", 0)
                    still = still + 1 if sent == last else 0
                    last = sent
            rss_before = rss_bytes()
            async with ws_connect(*address, "/echo") as neighbour:
                for i in range(20):
                    await _echoes(neighbour, f"served {i}")
                    await anyio.sleep(0.05)
            rss_after = rss_bytes()
            assert seen["sent"] == last  # still stalled: nothing more was queued
            with anyio.fail_after(15):
                while "flood_error" not in seen:
                    await anyio.sleep(0.05)
    assert 0 < last < 32 * 1024 * 1024  # what the socket buffers hold, of 250 MiB
    assert rss_after - rss_before < 16 * 1024 * 1024, (rss_before, rss_after)
    assert seen["flood_error"] == 1006
