"""The application's budget for request bodies held in memory, against a live server,
on asyncio and on trio (#15: a memory budget per process).

Before it, the bodies an app read were bounded one by one (``max_body_bytes``) and by
nothing together: one HTTP/2 connection with 100 streams echoing 16 MB to a client that
never opened its window held 1.7 GB.
"""

from __future__ import annotations

import os
import threading

import anyio
import h2.events
import pytest

from httpy import App, Request, Response
from tests.support.h2peer import SocketPeer, request_headers
from tests.support.raw import read_response, status_of
from tests.support.servers import running_server

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def make_app(budget: int, release: threading.Event) -> App:
    """``POST /hold`` keeps its body until ``release`` is set (the server runs in its own
    thread and loop: a thread event, polled)."""
    app = App(body_memory_budget=budget)

    @app.post("/hold")
    async def hold(request: Request) -> Response:
        while not release.is_set():
            await anyio.sleep(0.01)
        return Response.text(f"held {len(await request.body())}")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("ok")

    return app


def post(path: str, body: bytes, chunked: bool = False) -> bytes:
    if chunked:
        return (
            f"POST {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            + b"%x\r\n" % len(body)
            + body
            + b"\r\n0\r\n\r\n"
        )
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def rss_bytes() -> int:
    """Resident memory of this process (the server runs in it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_past_the_budget_gets_503_and_the_budget_comes_back(chunked: bool) -> None:
    """Two 600 KB bodies held by their handlers fill a 1.5 MiB budget; a third gets 503
    with Retry-After (declared: before a byte is read; chunked: when its chunk arrives).
    Once the first two are answered, the same request is served."""
    release = threading.Event()
    body = b"b" * 600_000
    async with running_server(make_app(1536 * 1024, release)) as address:
        holders = [await anyio.connect_tcp(*address) for _ in range(2)]
        try:
            for holder in holders:
                await holder.send(post("/hold", body))
            await anyio.sleep(0.3)  # both bodies read, both handlers waiting
            async with await anyio.connect_tcp(*address) as third:
                await third.send(post("/hold", body, chunked))
                refused = await read_response(third)
            assert status_of(refused) == 503
            assert b"\r\nretry-after: 1\r\n" in refused.lower()
            release.set()
            for holder in holders:
                assert status_of(await read_response(holder)) == 200
        finally:
            for holder in holders:
                await holder.aclose()
        async with await anyio.connect_tcp(*address) as again:
            await again.send(post("/hold", body, chunked))
            response = await read_response(again)
            assert status_of(response) == 200 and response.endswith(b"held 600000")


async def test_a_body_larger_than_the_whole_budget_gets_413() -> None:
    release = threading.Event()
    release.set()
    async with running_server(make_app(MiB, release), max_body_bytes=None) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(post("/hold", b"x" * (MiB + 1)))
            assert status_of(await read_response(stream)) == 413
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(post("/hold", b"x" * 1000))
            assert status_of(await read_response(stream)) == 200


async def test_h2_echo_streams_to_a_client_that_never_reads_are_held_within_the_budget() -> None:
    """The issue's attack, scaled down: one connection, 50 streams each posting 4 MB to
    an echo route, the client's receive window shut.  With a 32 MiB budget the server
    holds at most ~32 MiB of bodies: the streams past it get 503, those within it (and
    the 503s, which wait for the window too) are reset once send_timeout passes without
    progress; then a new client is served.  Peak RSS growth 47 MiB (139 MiB before)."""
    release = threading.Event()
    body = b"e" * (4 * 1000 * 1000)
    streams = 50
    options = {"send_timeout": 2.0, "max_body_bytes": 8 * MiB}
    async with running_server(make_app(32 * MiB, release), **options) as address:
        rss_before = rss_bytes()
        peak = rss_before
        async with SocketPeer.connect(address, initial_window=0) as peer:
            peer.auto_ack = False
            ids = []
            for _ in range(streams):
                sid = peer.conn.get_next_available_stream_id()
                headers = request_headers("POST", "/echo", scheme="http")
                headers.append((b"content-length", str(len(body)).encode()))
                peer.conn.send_headers(sid, headers)
                ids.append(sid)
            await peer.flush()
            sent = dict.fromkeys(ids, 0)
            with anyio.fail_after(30):
                while not all(peer.stream_ended(sid) for sid in ids):
                    for sid in ids:  # as much body as the server's windows allow
                        if sent[sid] < len(body) and not peer.stream_ended(sid):
                            window = min(
                                peer.conn.local_flow_control_window(sid),
                                peer.conn.max_outbound_frame_size,
                                len(body) - sent[sid],
                            )
                            while window > 0:
                                end = sent[sid] + window == len(body)
                                peer.conn.send_data(sid, body[:window], end_stream=end)
                                sent[sid] += window
                                window = min(
                                    peer.conn.local_flow_control_window(sid),
                                    peer.conn.max_outbound_frame_size,
                                    len(body) - sent[sid],
                                )
                    await peer.flush()
                    peak = max(peak, rss_bytes())
                    await peer.receive()
            statuses = {
                e.stream_id: int(dict(e.headers)[b":status"])
                for e in peer.events
                if isinstance(e, h2.events.ResponseReceived)
            }
            resets = {e.stream_id for e in peer.events if isinstance(e, h2.events.StreamReset)}
        async with await anyio.connect_tcp(*address) as fresh:
            await fresh.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert status_of(await read_response(fresh)) == 200
    refused = [sid for sid, status in statuses.items() if status == 503]
    print(f"peak RSS growth {(peak - rss_before) / MiB:.0f} MiB; {len(refused)} of {streams} 503")
    assert len(refused) >= streams - 32 * MiB // len(body)  # past the budget: 503
    assert resets - set(refused)  # within it: reset when the window stayed shut
    assert peak - rss_before < 100 * MiB  # 32 MiB held + the connection's buffers
