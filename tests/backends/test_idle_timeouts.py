"""Idle and header timeouts against a live server, on asyncio and trio.

* HTTP/1.1: a new connection that sends nothing gets ``header_timeout`` (not the much
  longer ``keepalive_timeout``) for its first byte, on the asyncio fast path and on the
  portable driver, after a TLS handshake too; a connection that has made a request
  idles under ``keepalive_timeout`` (also after the fast path handed it over).
* HTTP/2: the idle timeout counts from the last stream activity, so PINGs do not keep
  a connection without streams; before the first request it is ``header_timeout``; a
  stream whose handler is slow is not cut; a header block dripped in CONTINUATION
  frames is cut by ``header_timeout`` (GOAWAY).

Timings are generous on purpose: each test only checks that a timeout of a fraction of
a second fires well before a much longer one would have, or that it did not fire.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import anyio
import anyio.abc
import hpack
import hyperframe.frame as hf
import pytest

from httpy import App, Request, Response
from httpy.backends.tls import generate_dev_certificate
from tests.support.h2peer import (
    NO_ERROR,
    PROTOCOL_ERROR,
    SocketPeer,
    client_preface,
    goaway_codes,
    parse_frames,
    raw_continuation,
    raw_headers,
    raw_ping,
    request_headers,
)
from tests.support.raw import read_response, read_until_closed, status_of
from tests.support.servers import running_server

pytestmark = pytest.mark.anyio

HEADER_TIMEOUT = 0.5
#: Long enough that a test finishing in time proves the header timeout acted, not it.
LONG_KEEPALIVE = 60.0
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def make_app() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("hello")

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        await anyio.sleep(float(request.query.get("t", "1")))
        return Response.text("slow done")

    return app


async def assert_closed_silently(stream: anyio.abc.ByteStream) -> float:
    """Wait for the server to close ``stream`` without a byte; return the wait (s)."""
    started = time.monotonic()
    # Well under LONG_KEEPALIVE: a keep-alive timeout would still be far away.
    data = await read_until_closed(stream, timeout=LONG_KEEPALIVE / 4)
    assert data == b""  # nothing was started, so nothing is answered (no 408)
    return time.monotonic() - started


async def assert_stays_open(stream: anyio.abc.ByteStream, seconds: float) -> None:
    """The server neither sends nor closes for ``seconds``."""
    with anyio.move_on_after(seconds):
        data = await stream.receive()
        pytest.fail(f"server sent {data!r} on an idle keep-alive connection")


# ----------------------------------------------------------------------------- HTTP/1.1


async def test_silent_new_connection_is_closed_after_header_timeout() -> None:
    async with running_server(
        make_app(),
        header_timeout=HEADER_TIMEOUT,
        keepalive_timeout=LONG_KEEPALIVE,
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            waited = await assert_closed_silently(stream)
        # Not at once either: the client had its header_timeout.
        assert waited >= HEADER_TIMEOUT / 2
        async with await anyio.connect_tcp(*address) as stream:  # still serving
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200


async def test_connection_idle_after_a_request_outlives_header_timeout() -> None:
    async with running_server(
        make_app(),
        header_timeout=HEADER_TIMEOUT,
        keepalive_timeout=LONG_KEEPALIVE,
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200
            await assert_stays_open(stream, HEADER_TIMEOUT * 4)
            await stream.send(GET)  # the same connection serves the next request
            assert status_of(await read_response(stream)) == 200


async def test_shorter_keepalive_timeout_bounds_the_first_byte_too() -> None:
    """Lowering keepalive_timeout still drops silent new connections that early."""
    async with running_server(
        make_app(), header_timeout=LONG_KEEPALIVE, keepalive_timeout=0.5
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await assert_closed_silently(stream)


async def test_connection_handed_over_after_an_upgrade_request_idles_under_keepalive(
) -> None:
    """The asyncio fast path hands any request with ``Upgrade`` to the portable driver:
    that driver continues after a request, so keep-alive rules apply, not the first
    byte's header_timeout."""
    upgrade = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: unknown/1\r\n\r\n"
    async with running_server(
        make_app(),
        header_timeout=HEADER_TIMEOUT,
        keepalive_timeout=LONG_KEEPALIVE,
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(upgrade)  # an upgrade nobody speaks: answered as HTTP/1.1
            assert status_of(await read_response(stream)) == 200
            await assert_stays_open(stream, HEADER_TIMEOUT * 4)
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return generate_dev_certificate(tmp_path_factory.mktemp("certs"))


async def test_tls_connection_silent_after_handshake_is_closed_after_header_timeout(
    certs: tuple[Path, Path, Path],
) -> None:
    """Over TLS the wait for the first byte starts once the handshake is done (that has
    its own tls_handshake_timeout); an idle connection after a request is kept."""
    cert, key, ca = certs
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["http/1.1"])
    async with running_server(
        make_app(),
        binds=(),
        tls_binds=("127.0.0.1:0",),
        certfile=str(cert),
        keyfile=str(key),
        header_timeout=HEADER_TIMEOUT,
        keepalive_timeout=LONG_KEEPALIVE,
    ) as (_, port):

        async def connect() -> anyio.abc.ByteStream:
            return await anyio.connect_tcp(
                "127.0.0.1",
                port,
                tls=True,
                ssl_context=context,
                tls_hostname="localhost",
                tls_standard_compatible=False,
            )

        async with await connect() as stream:
            await assert_closed_silently(stream)
        async with await connect() as stream:
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200
            await assert_stays_open(stream, HEADER_TIMEOUT * 4)
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200


# ----------------------------------------------------------------------------- HTTP/2


async def read_frames_until_closed(stream: anyio.abc.ByteStream, timeout: float) -> list[hf.Frame]:
    return parse_frames(await read_until_closed(stream, timeout=timeout))


async def ping_forever(stream: anyio.abc.ByteStream) -> None:
    """A PING every 0.2 s (well within the control-frame rate) until the server closes."""
    while True:
        try:
            await stream.send(raw_ping())
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        await anyio.sleep(0.2)


async def test_h2_pings_do_not_keep_a_connection_without_streams() -> None:
    """PINGs every 0.2 s with keepalive_timeout=1, after a request: GOAWAY NO_ERROR and
    a close follow (the close after a lingering read of at most 2 s), though the client
    never stops."""
    async with running_server(make_app(), keepalive_timeout=1.0) as address:
        async with SocketPeer.connect(address) as peer:
            response = await peer.request("GET", "/")
            assert response.status == 200
            peer.keep_raw = False
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ping_forever, peer.stream)
                # Without the fix the PINGs keep it open: this read would time out.
                frames = await read_frames_until_closed(peer.stream, LONG_KEEPALIVE / 4)
                tasks.cancel_scope.cancel()
    acks = [f for f in frames if isinstance(f, hf.PingFrame) and "ACK" in f.flags]
    assert acks, "the server answered no PING: the test did not exercise what it claims"
    assert [f.error_code for f in frames if isinstance(f, hf.GoAwayFrame)] == [NO_ERROR]


@pytest.mark.parametrize("pinging", [False, True], ids=["silent", "pinging"])
async def test_h2_connection_without_a_request_gets_header_timeout(pinging: bool) -> None:
    """After the preface, a client that sends no request (silent, or only PINGs) is
    treated like a new HTTP/1.1 connection: header_timeout, not keepalive_timeout."""
    async with running_server(
        make_app(), header_timeout=HEADER_TIMEOUT, keepalive_timeout=LONG_KEEPALIVE
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(client_preface())
            async with anyio.create_task_group() as tasks:
                if pinging:
                    tasks.start_soon(ping_forever, stream)
                frames = await read_frames_until_closed(stream, LONG_KEEPALIVE / 4)
                tasks.cancel_scope.cancel()
    assert [f.error_code for f in frames if isinstance(f, hf.GoAwayFrame)] == [NO_ERROR]


async def test_h2_connection_idle_after_a_request_outlives_header_timeout() -> None:
    async with running_server(
        make_app(), header_timeout=HEADER_TIMEOUT, keepalive_timeout=LONG_KEEPALIVE
    ) as address:
        async with SocketPeer.connect(address) as peer:
            assert (await peer.request("GET", "/")).status == 200
            await assert_stays_open(peer.stream, HEADER_TIMEOUT * 4)
            assert (await peer.request("GET", "/")).status == 200
            assert goaway_codes(bytes(peer.raw)) == []


async def test_h2_slow_stream_is_not_cut_by_the_idle_timer_then_idle_closes() -> None:
    """A handler busy for 2.5 s with keepalive_timeout=1 (the client silent meanwhile)
    is answered; once the stream is done, the idle timeout closes the connection."""
    async with running_server(make_app(), keepalive_timeout=1.0) as address:
        async with SocketPeer.connect(address) as peer:
            response = await peer.request("GET", "/slow?t=2.5", timeout=LONG_KEEPALIVE / 4)
            assert (response.status, response.body) == (200, b"slow done")
            assert goaway_codes(bytes(peer.raw)) == []
            raw = await peer.read_until_closed(timeout=LONG_KEEPALIVE / 4)
    assert goaway_codes(raw) == [NO_ERROR]


async def drip_header_block(stream: anyio.abc.ByteStream, stream_id: int) -> None:
    """A request header block: a HEADERS frame with one byte of it, then CONTINUATION
    frames of one byte each, 0.2 s apart, never ending (until the server closes)."""
    block = hpack.Encoder().encode(request_headers("GET", "/", scheme="http"))
    first = hf.HeadersFrame(stream_id, data=block[:1])
    first.flags.add("END_STREAM")
    await stream.send(first.serialize())
    for index in range(1, len(block) - 1):  # the last byte (and END_HEADERS) never comes
        await anyio.sleep(0.2)
        try:
            await stream.send(raw_continuation(stream_id, block[index : index + 1]))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return


@pytest.mark.parametrize("open_stream", [False, True], ids=["idle", "with-open-stream"])
async def test_h2_dripped_header_block_is_cut_by_header_timeout(open_stream: bool) -> None:
    """CONTINUATION frames a byte at a time: GOAWAY PROTOCOL_ERROR after header_timeout,
    whether or not other streams are open (then the idle timer does not run at all)."""
    async with running_server(
        make_app(), header_timeout=HEADER_TIMEOUT, keepalive_timeout=LONG_KEEPALIVE
    ) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(client_preface())
            stream_id = 1
            if open_stream:
                slow = request_headers("GET", "/slow?t=30", scheme="http")
                await stream.send(raw_headers(1, slow))
                stream_id = 3
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(drip_header_block, stream, stream_id)
                frames = await read_frames_until_closed(stream, timeout=LONG_KEEPALIVE / 4)
                tasks.cancel_scope.cancel()
    assert [f.error_code for f in frames if isinstance(f, hf.GoAwayFrame)] == [PROTOCOL_ERROR]
    # The dripped request never reached the application.
    assert not [f for f in frames if isinstance(f, hf.HeadersFrame) and f.stream_id == stream_id]
    if open_stream:
        # The GOAWAY came from the header timeout: the 30 s handler never answered.
        assert not [f for f in frames if isinstance(f, hf.HeadersFrame)]
