"""``send_all``: the write every driver uses, on the stream each backend serves with.

The server side of a socket pair is wrapped as the server wraps accepted sockets (our
batched streams: ``AsyncioSocketStream`` on asyncio, ``TrioSocketStream`` on trio); the
other end is a plain blocking socket read from a thread, or not read at all.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest
import sniffio

from httpy.backends.batched import BatchedStream
from httpy.backends.send import finish_send, send_all, send_nowait
from httpy.backends.transport import open_socket_stream
from httpy.core.config import Config

pytestmark = pytest.mark.anyio

BIG = 16 * 1024 * 1024  # far more than the kernel's socket buffers hold


def limits(send_timeout: float, min_send_rate: float = 1024.0) -> Config:
    """The configuration of the send-progress rule."""
    return Config(send_timeout=send_timeout, min_send_rate=min_send_rate)


@asynccontextmanager
async def server_stream() -> AsyncIterator[tuple[anyio.abc.ByteStream, socket.socket]]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    stream = await open_socket_stream(ours)  # the server's own stream for this loop
    try:
        yield stream, peer
    finally:
        await stream.aclose()
        peer.close()


def read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count:
        chunk = sock.recv(min(count, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


async def test_small_writes_arrive_whole_and_in_order() -> None:
    async with server_stream() as (stream, peer):
        parts = [f"part {i};".encode() * (i + 1) for i in range(300)]
        expected = b"".join(parts)
        received: list[bytes] = []

        async def reader() -> None:
            received.append(await anyio.to_thread.run_sync(read_exactly, peer, len(expected)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            for part in parts:
                await send_all(stream, part, config=limits(5))
        assert received == [expected]


async def test_a_write_larger_than_the_socket_buffer_completes_while_the_peer_reads() -> None:
    data = bytes(range(256)) * (BIG // 256)
    async with server_stream() as (stream, peer):
        async with anyio.create_task_group() as tasks:
            received: list[bytes] = []

            async def reader() -> None:
                received.append(await anyio.to_thread.run_sync(read_exactly, peer, len(data)))

            tasks.start_soon(reader)
            await send_all(stream, data, config=limits(10))
        assert received == [data]


async def test_a_peer_that_never_reads_gets_a_timeout() -> None:
    async with server_stream() as (stream, _peer):
        with pytest.raises(TimeoutError):
            await send_all(stream, b"x" * BIG, config=limits(0.3))


def read_slowly(sock: socket.socket, count: int, piece: int, pause: float) -> bytes:
    """Read ``count`` bytes, ``piece`` at a time, ``pause`` seconds apart."""
    chunks = []
    while count:
        time.sleep(pause)
        chunk = sock.recv(min(count, piece))
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


async def test_a_slow_steady_reader_gets_a_write_that_takes_many_send_timeouts() -> None:
    """Send progress, not a deadline on the whole write: a peer reading ~3 MB/s takes
    ~1.3 s over a 4 MB write, four times send_timeout, and gets every byte (a single
    deadline over the wait failed it)."""
    data = bytes(range(256)) * (4 * 1024 * 1024 // 256)
    async with server_stream() as (stream, peer):
        received: list[bytes] = []

        async def reader() -> None:
            got = await anyio.to_thread.run_sync(read_slowly, peer, len(data), 65536, 0.02)
            received.append(got)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            started = time.monotonic()
            await send_all(stream, data, config=limits(0.3, min_send_rate=256 * 1024))
            elapsed = time.monotonic() - started
        assert received == [data]
        assert elapsed > 0.6  # it did outlast send_timeout: the rule was exercised


async def test_a_reader_slower_than_the_minimum_rate_gets_a_timeout() -> None:
    """A peer that reads, but a trickle (~20 KB/s against a floor of 256 KiB/s), is
    dropped at the end of the first interval it falls short in."""
    async with server_stream() as (stream, peer):
        stop = time.monotonic() + 3

        def trickle() -> None:
            while time.monotonic() < stop:
                time.sleep(0.05)
                try:
                    peer.recv(1024)
                except OSError:
                    return

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, trickle)
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="B/s"):
                await send_all(stream, b"t" * BIG, config=limits(0.5, min_send_rate=256 * 1024))
            assert time.monotonic() - started < 2.5
            peer.shutdown(socket.SHUT_RDWR)


async def test_an_atomic_write_survives_the_cancellation_of_its_caller() -> None:
    """Cancelled mid-write, an atomic write still delivers every byte (no half frame)."""
    data = b"y" * (4 * 1024 * 1024)
    marker = b"<end>"
    async with server_stream() as (stream, peer):
        received: list[bytes] = []

        def late_reader() -> None:
            time.sleep(0.5)  # starts reading after the caller was cancelled
            received.append(read_exactly(peer, len(data) + len(marker)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, late_reader)
            with anyio.move_on_after(0.2) as scope:
                await send_all(stream, data, config=limits(30), atomic=True)
            assert scope.cancel_called
            await send_all(stream, marker, config=limits(30))
        assert received == [data + marker]


async def test_a_closed_peer_is_a_broken_resource() -> None:
    async with server_stream() as (stream, peer):
        peer.close()
        with pytest.raises((anyio.BrokenResourceError, OSError)):
            for _ in range(100):  # the first writes may still be accepted by the kernel
                await send_all(stream, b"z" * 65536, config=limits(1))
                await anyio.sleep(0.01)


async def test_send_nowait_writes_a_small_buffer_at_once_and_leaves_a_big_one() -> None:
    """What a driver writes without awaiting: a small write needs nothing more; a write
    the socket cannot take whole leaves work for finish_send (a tail to send, or a
    drain to wait for), and finish_send then delivers every byte."""
    async with server_stream() as (stream, peer):
        assert send_nowait(stream, b"hello") is None
        # (The bytes leave at the end of the loop's pass: read from a thread.)
        assert await anyio.to_thread.run_sync(read_exactly, peer, 5) == b"hello"
        data = bytes(range(256)) * (BIG // 256)
        rest = send_nowait(stream, data)
        assert rest == b""  # queued whole; past the high-water mark the writer drains
        received: list[bytes] = []

        async def reader() -> None:
            received.append(await anyio.to_thread.run_sync(read_exactly, peer, len(data)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(reader)
            await finish_send(stream, data, rest, config=limits(10), atomic=True)
        assert received == [data]


RESPONSE_PARTS = (b"HTTP/1.1 200 OK\r\n", b"content-length: 2\r\n\r\n", b"ok")
RESPONSE = b"".join(RESPONSE_PARTS)


async def fresh_pass() -> None:
    """Yield until a new loop pass (asyncio) or scheduler batch (trio) begins, with no
    write made in it yet."""
    for _ in range(3):
        await anyio.lowlevel.checkpoint()


async def test_writes_of_one_pass_leave_together() -> None:
    """Both loops' streams: the first write of a loop pass (trio: scheduler batch) goes
    out at once; the writes after it in that pass go at its end, a connection's joined:
    nothing of them before the writer yields, all of it after."""
    async with server_stream() as (stream, peer):
        assert isinstance(stream, BatchedStream)
        await fresh_pass()
        assert stream.write(b"first;")
        peer.settimeout(5)
        assert read_exactly(peer, 6) == b"first;"
        for part in RESPONSE_PARTS:
            assert stream.write(part)
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)
        await fresh_pass()
        peer.settimeout(5)
        assert read_exactly(peer, len(RESPONSE)) == RESPONSE


async def test_a_close_waits_for_the_pass_batch_then_closes() -> None:
    """A close that comes while the pass's writes wait (a ``Connection: close``
    response) sends them with the batch, then closes: the peer reads the whole response,
    then the end; nothing goes before the writer yields, and a write after the close is
    refused."""
    async with server_stream() as (stream, peer):
        assert isinstance(stream, BatchedStream)
        await fresh_pass()
        assert stream.write(b"first;")  # the pass's first write: at once
        for part in RESPONSE_PARTS:
            assert stream.write(part)
        stream.close()
        with pytest.raises(anyio.ClosedResourceError):
            stream.write(b"late")
        peer.settimeout(5)
        assert read_exactly(peer, 6) == b"first;"
        peer.setblocking(False)
        with pytest.raises(BlockingIOError):
            peer.recv(100)  # neither the batch nor the end yet
        await fresh_pass()  # the pass ends; the stream closes
        peer.settimeout(5)
        assert read_exactly(peer, len(RESPONSE) + 10) == RESPONSE  # then EOF


async def test_trio_a_partial_write_is_finished_by_the_drain_task() -> None:
    """What the kernel does not take at the batch's write is written as the peer reads,
    with no writer waiting (a response's tail must not wait for the next request)."""
    if sniffio.current_async_library() != "trio":
        pytest.skip("the drain task belongs to the trio transport")
    async with server_stream() as (stream, peer):
        data = bytes(range(256)) * (BIG // 256)
        assert not stream.write(data)  # past the high-water mark: the writer may drain
        await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()  # the batch wrote what the kernel took
        received = await anyio.to_thread.run_sync(read_exactly, peer, len(data))
        assert received == data
