"""Per-client state against a live server, on asyncio and on trio (#15 item 8).

The attacker connects from 127.0.0.2 (any 127/8 address reaches the loopback), the
normal client from 127.0.0.1, so the server tells them apart as it would two hosts.
"""

from __future__ import annotations

import time

import anyio
import anyio.abc
import hpack
import pytest

from tests.e2e.hardening_app import app
from tests.e2e.test_hardening import normal_client, p99
from tests.support.h2peer import (
    client_preface,
    goaway_codes,
    raw_headers,
    raw_rst,
    request_headers,
)
from tests.support.raw import read_response, status_of
from tests.support.servers import running_server

pytestmark = pytest.mark.anyio

ATTACKER = "127.0.0.2"
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def _bursts(count: int) -> list[bytes]:
    """What a fresh connection sends: ``count`` bursts of 100 streams opened and reset
    (built once: encoding them per connection would make the test's own process, where
    the server thread runs too, the bottleneck)."""
    encoder, sid, bursts = hpack.Encoder(), 1, []
    for _ in range(count):
        burst = b""
        for _ in range(100):
            burst += raw_headers(sid, request_headers("GET", "/"), encoder=encoder)
            burst += raw_rst(sid)
            sid += 2
        bursts.append(burst)
    return bursts


BURSTS = _bursts(20)


async def rapid_reset(address: tuple[str, int], seconds: float, goaways: list[int]) -> int:
    """One attacker: open and reset streams in bursts of 100, reconnecting whenever the
    server ends the connection (or after 2,000 streams); returns how many it wrote."""
    written = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        try:
            async with await anyio.connect_tcp(*address, local_host=ATTACKER) as stream:
                await stream.send(client_preface())
                for burst in BURSTS:
                    await stream.send(burst)
                    written += 100
                    with anyio.move_on_after(0.005):
                        codes = goaway_codes(await stream.receive(1 << 20))
                        if codes:
                            goaways.extend(codes)
                            break
                    if time.monotonic() >= stop:
                        break
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
    return written


async def test_rapid_reset_from_reconnecting_connections_does_not_starve_a_neighbour() -> None:
    """Eight connections reset streams as fast as they can and reconnect after each
    GOAWAY.  Their flood budget is the client's, shared by its connections, so a
    reconnection does not refill it: the neighbour's p99 stays under 100 ms (before,
    with a budget per connection, 0.75-1.5 s)."""
    async with running_server(app) as address:
        latencies: list[float] = []
        errors: list[BaseException] = []
        goaways: list[int] = []
        written: list[int] = []

        async def attacker() -> None:
            written.append(await rapid_reset(address, 4.0, goaways))

        async with anyio.create_task_group() as tasks:
            for _ in range(8):
                tasks.start_soon(attacker)
            await anyio.sleep(0.3)  # the attack is under way
            await normal_client(address, 150, 0.02, latencies, errors)
        after: list[float] = []
        await normal_client(address, 5, 0.01, after, errors)
    assert not errors
    assert len(latencies) == 150 and len(after) == 5
    assert goaways and set(goaways) == {0xB}  # ENHANCE_YOUR_CALM, every time
    print(f"attacker wrote {sum(written)} streams, got {len(goaways)} GOAWAYs")
    assert p99(latencies, "beside 8 reconnecting rapid-reset connections") < 0.1


async def test_max_connections_per_client_closes_the_connection_over_it() -> None:
    async with running_server(app, max_connections_per_client=2) as address:
        held = [await anyio.connect_tcp(*address, local_host=ATTACKER) for _ in range(2)]
        try:
            for stream in held:  # both are served
                await stream.send(GET)
                assert status_of(await read_response(stream)) == 200
            async with await anyio.connect_tcp(*address, local_host=ATTACKER) as third:
                with anyio.fail_after(5):
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await third.send(GET)
                        await third.receive()
            # Another client is not limited by it.
            async with await anyio.connect_tcp(*address) as other:
                await other.send(GET)
                assert status_of(await read_response(other)) == 200
        finally:
            for stream in held:
                await stream.aclose()
        await anyio.sleep(0.2)  # the server notices the two are gone
        async with await anyio.connect_tcp(*address, local_host=ATTACKER) as again:
            await again.send(GET)
            assert status_of(await read_response(again)) == 200


async def test_client_request_rate_answers_429_with_retry_after() -> None:
    options = {"client_request_rate": 2.0, "client_request_burst": 5}
    async with running_server(app, **options) as address:
        async with await anyio.connect_tcp(*address, local_host=ATTACKER) as stream:
            statuses = []
            for _ in range(8):
                await stream.send(GET)
                response = await read_response(stream)
                statuses.append(status_of(response))
            assert statuses == [200] * 5 + [429] * 3
            assert b"\r\nretry-after: 1\r\n" in response.lower()
            await anyio.sleep(0.6)  # one more token
            await stream.send(GET)
            assert status_of(await read_response(stream)) == 200
        async with await anyio.connect_tcp(*address) as other:  # its own bucket
            await other.send(GET)
            assert status_of(await read_response(other)) == 200
