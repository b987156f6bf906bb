"""A byte stream over an asyncio transport, used for TCP connections on asyncio.

anyio's own asyncio socket stream pauses the transport after every chunk and resumes it
in the next ``receive()``: two ``epoll_ctl`` system calls per keep-alive request, about
7% of the server's time in a profile of the hello benchmark.  This stream keeps reading
into a buffer until a high-water mark and only then pauses, and ``send`` waits only when
the transport's write buffer is above its own high-water mark.

It implements :class:`anyio.abc.ByteStream`, so the connection driver is the same code
on asyncio and trio; on trio, anyio's socket stream is used.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import cast

import anyio
import anyio.abc

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class StreamProtocol(asyncio.Protocol):
    """Buffers what the transport delivers for :class:`AsyncioSocketStream`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.reading_paused = False
        self.writing_paused = False
        self.read_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    # The callbacks only buffer bytes and resolve futures: no protocol or application
    # work, no task starts (anyio refuses those outside a task, and they would make the
    # two loops behave differently).

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # keep the transport: we may still be writing a response

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_reader()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def _wake_reader(self) -> None:
        if self.read_waiter is not None and not self.read_waiter.done():
            self.read_waiter.set_result(None)


class AsyncioSocketStream(anyio.abc.ByteStream):
    """A connected TCP socket on asyncio, as an anyio byte stream."""

    def __init__(self, protocol: StreamProtocol, transport: asyncio.Transport) -> None:
        self._protocol = protocol
        self._transport = transport

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> AsyncioSocketStream:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_accepted_socket(StreamProtocol, sock)
        return cls(protocol, transport)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        while not protocol.chunks:
            if protocol.lost:
                raise anyio.BrokenResourceError if not protocol.eof else anyio.EndOfStream
            if protocol.eof:
                raise anyio.EndOfStream
            protocol.read_waiter = asyncio.get_running_loop().create_future()
            try:
                await protocol.read_waiter
            finally:
                protocol.read_waiter = None
        chunk = protocol.chunks.popleft()
        if len(chunk) > max_bytes:
            protocol.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered < _LOW_WATER:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    async def send(self, item: bytes, max_wait: float | None = None) -> None:
        """Write ``item``; wait while the transport's buffer is over its high-water mark,
        at most ``max_wait`` seconds (then :class:`TimeoutError`)."""
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError
        self._transport.write(item)
        if not protocol.writing_paused:
            return
        loop = asyncio.get_running_loop()
        deadline = None if max_wait is None else loop.time() + max_wait
        while protocol.writing_paused and not protocol.lost:
            waiter = protocol.drain_waiter = loop.create_future()
            timer = None if deadline is None else loop.call_at(deadline, wake_waiter, waiter)
            try:
                await waiter
            finally:
                protocol.drain_waiter = None
                if timer is not None:
                    timer.cancel()
            if deadline is not None and protocol.writing_paused and loop.time() >= deadline:
                raise TimeoutError("peer did not read for the send timeout")
        if protocol.lost:
            raise anyio.BrokenResourceError

    async def send_eof(self) -> None:
        if self._transport.can_write_eof():
            self._transport.write_eof()

    async def aclose(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()


def wake_waiter(waiter: asyncio.Future[None]) -> None:
    """Timer callback: end ``waiter``'s wait (a timeout), unless it is already over."""
    if not waiter.done():
        waiter.set_result(None)
