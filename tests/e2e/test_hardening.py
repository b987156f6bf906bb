"""Attacks on a live server: slow clients, greedy clients, shutdown under load.

Each test runs against the server on asyncio and on trio.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tests.e2e.hardening_app import BIG, app
from tests.support.raw import read_response, status_of
from tests.support.servers import free_port, running_server

ROOT = Path(__file__).resolve().parents[2]
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def normal_client(
    address: tuple[str, int],
    count: int,
    interval: float,
    latencies: list[float],
    errors: list[BaseException],
) -> None:
    """``count`` keep-alive ``GET /`` requests, ``interval`` apart, on one connection:
    each latency into ``latencies``; an error ends it, into ``errors``."""
    async with await anyio.connect_tcp(*address) as stream:
        for _ in range(count):
            started = time.perf_counter()
            try:
                await stream.send(GET)
                response = await read_response(stream, timeout=5)
            except Exception as exc:  # collected, then asserted empty
                errors.append(exc)
                return
            assert status_of(response) == 200
            latencies.append(time.perf_counter() - started)
            await anyio.sleep(interval)


def p99(latencies: list[float], beside: str) -> float:
    """The 99th percentile of ``latencies`` (seconds), printed for the test log."""
    ordered = sorted(latencies)
    value = ordered[int(len(ordered) * 0.99) - 1]
    print(f"normal client p99 {value * 1000:.1f} ms {beside}")
    return value


@pytest.mark.anyio
async def test_slow_and_idle_clients_do_not_starve_a_normal_client() -> None:
    """500 connections dripping a request head a byte a second and 500 idle keep-alive
    connections: a normal client meanwhile gets every answer, promptly."""
    raise_fd_limit(4096)
    async with running_server(app, max_connections=2000) as address:
        slow: list[anyio.abc.SocketStream] = []
        idle: list[anyio.abc.SocketStream] = []
        try:
            for _ in range(500):
                slow.append(await anyio.connect_tcp(*address))
            for _ in range(500):
                stream = await anyio.connect_tcp(*address)
                await stream.send(GET)
                assert status_of(await read_response(stream)) == 200
                idle.append(stream)

            head = b"GET / HTTP/1.1\r\nHost: slowloris\r\nX-Drip: " + b"a" * 100
            latencies: list[float] = []
            errors: list[BaseException] = []

            async def drip() -> None:
                for i in range(4):  # 4 s, well inside the 10 s header timeout
                    for stream in slow:
                        await stream.send(head[i : i + 1])
                    await anyio.sleep(1)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(drip)
                tasks.start_soon(normal_client, address, 200, 0.01, latencies, errors)
        finally:
            for stream in slow + idle:
                await stream.aclose()
    assert not errors
    assert len(latencies) == 200
    # The bound.  A shared CI core makes single requests slow at times; 99% of
    # them over 100 ms would mean the server is starving this client.
    assert p99(latencies, "with 500 slow + 500 idle connections") < 0.1


@pytest.mark.anyio
async def test_slow_reader_of_large_responses_does_not_grow_memory() -> None:
    """A client that requests 200 large responses pipelined and reads none: the server
    stops producing (send back-pressure) instead of buffering 50 MiB."""
    async with running_server(app, max_pipeline_bytes=64 * 1024) as address:
        async with await anyio.connect_tcp(*address) as stream:
            request = b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n"
            with anyio.move_on_after(2):
                for _ in range(200):
                    await stream.send(request)
            await anyio.sleep(1)  # the server writes until the socket buffers are full
            rss_before = _rss_bytes()
            await anyio.sleep(1)
            rss_after = _rss_bytes()
            # Now read everything: 200 complete responses, in order, none truncated.
            expected = len(BIG) * 200
            body_bytes = 0
            buffer = b""
            with anyio.fail_after(60):
                while body_bytes < expected:
                    buffer += await stream.receive(1024 * 1024)
                    while True:
                        head, sep, rest = buffer.partition(b"\r\n\r\n")
                        if not sep or len(rest) < len(BIG):
                            break
                        assert status_of(head) == 200
                        body_bytes += len(BIG)
                        buffer = rest[len(BIG) :]
            got = body_bytes // len(BIG)
    assert rss_after - rss_before < 16 * 1024 * 1024
    assert got > 0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigterm_under_load_completes_or_refuses_every_request(backend: str) -> None:
    """SIGTERM while 20 clients loop on a slow endpoint: each request is answered in
    full or refused before any byte of its response; the process exits in time."""
    port = free_port()
    process = subprocess.Popen(
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
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        counts = anyio.run(_load_then_sigterm, process, port)
        output = process.communicate(timeout=15)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    print(f"SIGTERM under load ({backend}): {counts}")
    assert counts["truncated"] == 0, counts
    assert counts["complete"] > 20, counts
    assert counts["refused_after_term"] > 0, counts  # new connections were refused
    assert process.returncode == 0, output
    assert counts["exit_seconds"] < 5 + 3, counts


async def _load_then_sigterm(process: subprocess.Popen[bytes], port: int) -> dict[str, float]:
    counts: dict[str, float] = {"complete": 0, "refused": 0, "truncated": 0}
    counts["refused_after_term"] = 0
    deadline = time.monotonic() + 20
    while True:
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            await anyio.sleep(0.1)
    terminated = anyio.Event()

    async def client() -> None:
        while not (terminated.is_set() and process.poll() is not None):
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                counts["refused"] += 1
                if terminated.is_set():
                    counts["refused_after_term"] += 1
                await anyio.sleep(0.05)
                continue
            async with stream:
                while True:
                    data = b""
                    try:
                        await stream.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                        with anyio.fail_after(10):
                            while True:
                                chunk = await stream.receive()
                                data += chunk
                                if _complete(data):
                                    break
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        # Closed before any byte of this response: refused, cleanly.
                        counts["truncated" if data else "refused"] += 1
                        break
                    counts["complete"] += 1
                    if b"connection: close" in data.lower().split(b"\r\n\r\n", 1)[0]:
                        break

    async with anyio.create_task_group() as tasks:
        for _ in range(20):
            tasks.start_soon(client)
        await anyio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        term_at = time.monotonic()
        terminated.set()
        with anyio.fail_after(15):
            while process.poll() is None:
                await anyio.sleep(0.05)
        counts["exit_seconds"] = time.monotonic() - term_at
    return counts


def _complete(data: bytes) -> bool:
    _head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    assert status_of(data) == 200
    return len(body) >= len(BIG)


@pytest.mark.anyio
async def test_a_pipelining_client_does_not_starve_a_normal_client() -> None:
    """One connection pipelines requests as fast as it can (2,000 per write) and reads
    its answers: a normal client on its own connection still gets every answer promptly
    (pipelined requests used to run back to back, yielding only when the socket buffer
    filled: 21 % of the normal client's requests timed out)."""
    async with running_server(app) as address:
        latencies: list[float] = []
        errors: list[BaseException] = []
        done = anyio.Event()
        answered = 0

        async def attacker() -> None:
            nonlocal answered
            batch = GET * 2000
            async with await anyio.connect_tcp(*address) as stream:
                while not done.is_set():
                    await stream.send(batch)
                    got = 0
                    while got < 2000:
                        got += (await stream.receive(1 << 20)).count(b"HTTP/1.1 200")
                    answered += got

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(attacker)
            await anyio.sleep(0.2)  # the attack is under way
            await normal_client(address, 150, 0.02, latencies, errors)
            done.set()
            tasks.cancel_scope.cancel()
    assert not errors
    assert answered > 2000  # the attacker was served too
    assert p99(latencies, "beside a pipelining client") < 0.1


@pytest.mark.anyio
async def test_twenty_pipelining_clients_that_never_read_do_not_starve_a_normal_client() -> None:
    """Twenty connections each pipeline 2,000 requests per write and read nothing: their
    answers fill their own socket buffers and stop them, and between requests each
    yields; a normal client gets every answer promptly, and a fresh one after the attack
    (before: its first request timed out after 5 s)."""
    async with running_server(app) as address:
        latencies: list[float] = []
        errors: list[BaseException] = []
        attackers = [await anyio.connect_tcp(*address) for _ in range(20)]

        async def flood(stream: anyio.abc.SocketStream) -> None:
            with anyio.move_on_after(10):
                for _ in range(50):
                    await stream.send(GET * 2000)

        try:
            async with anyio.create_task_group() as tasks:
                for stream in attackers:
                    tasks.start_soon(flood, stream)
                await anyio.sleep(0.2)  # the attack is under way
                await normal_client(address, 150, 0.02, latencies, errors)
                tasks.cancel_scope.cancel()
        finally:
            for stream in attackers:
                await stream.aclose()
        after: list[float] = []
        await normal_client(address, 5, 0.01, after, errors)
    assert not errors
    assert len(latencies) == 150 and len(after) == 5
    assert p99(latencies, "beside 20 pipelining clients that never read") < 0.1
