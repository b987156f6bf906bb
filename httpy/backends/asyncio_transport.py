"""A byte stream over an asyncio transport, used for TCP connections on asyncio.

anyio's own asyncio socket stream pauses the transport after every chunk and resumes it
in the next ``receive()``: two ``epoll_ctl`` system calls per keep-alive request, about
7% of the server's time in a profile of the hello benchmark.  This stream keeps reading
into a buffer until a high-water mark and only then pauses, and ``send`` waits only when
the transport's write buffer is above its own high-water mark.

Reads go into one buffer per thread (``asyncio.BufferedProtocol``) and are copied out at
their real size: a plain ``Protocol`` gets a fresh 256 KiB ``recv`` buffer per read, which
glibc serves with ``mmap``/``mremap``/``munmap`` once chunks wait in our buffer (about one
read in ten under keep-alive load).  The stream keeps its loop rather than asking
``asyncio.get_running_loop()``, which on Python 3.11 costs a ``getpid`` system call.

The first write of a loop pass goes out at once; the writes after it in that pass are
made together at its end (:class:`WriteBatch`, one ``call_soon``): the other responses of
the pass leave together, and several writes of one connection become one ``send``.
Sent one by one, between handlers, each response paid to wake a client that had gone
back to sleep (on the loopback benchmark, ``sock_def_readable`` took 15 % of the
server's time, against 8 % for the old asyncio server).  A lone connection (a WebSocket
echo) waits for no batch: its write is the pass's first.

It implements :class:`anyio.abc.ByteStream`, so the connection driver is the same code
on asyncio and trio; on trio, anyio's socket stream is used.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import ClassVar, cast

import anyio
import anyio.abc

from .batched import BatchedStream
from .logs import error_log

#: Written bytes queued before they go to the transport at once (and the writer drains).
_HIGH_WATER = 256 * 1024
#: Bytes read ahead of the connection's reader before the transport stops reading, and
#: where it starts again: what a client that floods a connection makes us hold (the
#: kernel's socket buffer holds the rest).  trio reads on demand, one read at a time.
_READ_HIGH_WATER = 64 * 1024
_READ_LOW_WATER = 16 * 1024
#: Size of the shared read buffer: the most one read takes from the socket.
_READ_BUFFER = 64 * 1024


class _ReadBuffer(threading.local):
    """The buffer every connection of a thread's loop reads into.  A transport calls
    ``get_buffer``, ``recv_into`` and ``buffer_updated`` in one go, and
    ``buffer_updated`` copies the bytes out, so one buffer serves them all."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(_READ_BUFFER))


_read_buffer = _ReadBuffer()


class StreamProtocol(asyncio.BufferedProtocol):
    """Buffers what the transport delivers for :class:`AsyncioSocketStream`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # A list, not a deque: it rarely holds more than one chunk, and an empty deque
        # costs ~600 bytes on every idle connection (a list: 56).
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.reading_paused = False
        self.writing_paused = False
        self.read_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        #: Who to tell, from the loop's LossReaper task, that the peer is gone.
        self.on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    # The callbacks only buffer bytes and resolve futures: no protocol or application
    # work, no task starts (anyio refuses those outside a task, and they would make the
    # two loops behave differently).

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_read_buffer.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_HIGH_WATER and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        self._wake_lost()
        return True  # keep the transport: we may still be writing a response

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_reader()
        self._wake_lost()
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def _wake_lost(self) -> None:
        if self.on_lost is not None:
            LossReaper.of_running_loop().notify(self.on_lost)
            self.on_lost = None

    def _wake_reader(self) -> None:
        if self.read_waiter is not None and not self.read_waiter.done():
            self.read_waiter.set_result(None)


class AsyncioSocketStream(BatchedStream):
    """A connected TCP socket on asyncio, as an anyio byte stream."""

    def __init__(
        self,
        protocol: StreamProtocol,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._protocol = protocol
        self._transport = transport
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._batch = WriteBatch.of(self._loop)
        #: Written, not yet handed to the transport (see WriteBatch), and its size.
        self._unsent: list[bytes] = []
        self._unsent_bytes = 0
        # receive_within's timer (see there) and interrupt's flag.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._interrupted = False
        #: close() came while writes waited for the pass's end: close after them.
        self._close_after_write = False

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> AsyncioSocketStream:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.connect_accepted_socket(StreamProtocol, sock)
        return cls(protocol, transport, loop)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        while not protocol.chunks:
            if protocol.lost:
                raise anyio.BrokenResourceError if not protocol.eof else anyio.EndOfStream
            if protocol.eof:
                raise anyio.EndOfStream
            protocol.read_waiter = self._loop.create_future()
            try:
                await protocol.read_waiter
            finally:
                protocol.read_waiter = None
        chunk = protocol.chunks.pop(0)
        if len(chunk) > max_bytes:
            protocol.chunks.insert(0, chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        protocol.buffered -= len(chunk)
        if protocol.reading_paused and protocol.buffered < _READ_LOW_WATER:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return chunk

    def now(self) -> float:
        """The loop's clock (the unit of ``receive_within``'s deadline)."""
        return self._loop.time()

    async def receive_within(self, deadline: float, max_bytes: int = 65536) -> bytes | None:
        """:meth:`receive`, or None once ``deadline`` (:meth:`now`'s clock) passes or
        :meth:`interrupt` is called first.  No cancel scope: one timer per connection
        resolves the read's future, re-armed only when it fires early (a keep-alive
        request moves the deadline without touching the timer)."""
        protocol = self._protocol
        if not protocol.chunks and not protocol.eof and not protocol.lost:
            loop = self._loop
            while True:
                if deadline < self._timer_at:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = loop.call_at(deadline, self._on_timer)
                    self._timer_at = deadline
                waiter = protocol.read_waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    protocol.read_waiter = None
                if protocol.chunks or protocol.eof or protocol.lost:
                    break
                if self._interrupted:
                    self._interrupted = False
                    return None
                if loop.time() >= deadline:
                    return None
        return await self.receive(max_bytes)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        self._protocol._wake_reader()

    def interrupt(self) -> None:
        """End a pending :meth:`receive_within` early (it returns None)."""
        self._interrupted = True
        self._protocol._wake_reader()

    def watch_loss(self, callback: Callable[[], None] | None) -> None:
        """Have ``callback`` called, once, from the loop's :class:`LossReaper` task
        (never from a loop callback) when the peer closes its side or the connection is
        lost while reading is not paused; None stops watching."""
        protocol = self._protocol
        protocol.on_lost = callback
        if callback is not None and (protocol.eof or protocol.lost):
            protocol._wake_lost()

    async def send(self, item: bytes, max_wait: float | None = None) -> None:
        """Write ``item``; wait while the transport's buffer is over its high-water mark,
        at most ``max_wait`` seconds (then :class:`TimeoutError`)."""
        if not self.write(item):
            await self.drain(max_wait)

    def write(self, item: bytes) -> bool:
        """Hand ``item`` to the transport: at once if it is the loop pass's first write,
        else at the end of the pass (or at once past the high-water mark).  False when
        the transport's buffer is over its high-water mark (then :meth:`drain`)."""
        if self._close_after_write:
            raise anyio.ClosedResourceError
        if self._protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError
        if not self._unsent:
            if self._batch.open_pass():
                # The pass's first write goes at once: a lone connection (a WebSocket
                # echo, one client) waits for no batch; those after it are batched.
                self._transport.write(item)
                return not self._protocol.writing_paused
            self._batch.add(self)
        self._unsent.append(item)
        self._unsent_bytes += len(item)
        if self._unsent_bytes >= _HIGH_WATER:
            self.write_unsent()
        return not self._protocol.writing_paused

    def write_unsent(self) -> None:
        """Hand the queued writes to the transport, as one."""
        unsent = self._unsent
        if not unsent:
            return
        self._unsent, self._unsent_bytes = [], 0
        if not self._transport.is_closing():
            self._transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))
        if self._close_after_write:
            self._close_transport()

    @property
    def unsent_bytes(self) -> int:
        return self._unsent_bytes + self._transport.get_write_buffer_size()

    async def drain(self, max_wait: float | None = None) -> None:
        """Wait until the transport's buffer is below its low-water mark, at most
        ``max_wait`` seconds (then :class:`TimeoutError`)."""
        self.write_unsent()
        protocol = self._protocol
        loop = self._loop
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
        self.write_unsent()
        if self._transport.can_write_eof():
            self._transport.write_eof()

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """:meth:`aclose` without awaiting (it never waits): what was written still goes
        out, then the transport closes.  Writes still waiting for the pass's end go out
        with the others, and the close follows them: a connection that closes after its
        response (``Connection: close``) must not send it alone, waking its client for it
        (measured: 0.77x the old server's new-connection-per-request rate written at
        once, 0.91x deferred, in the same run)."""
        if self._unsent:
            self._close_after_write = True
        else:
            self._close_transport()

    def _close_transport(self) -> None:
        """Stop the timer and close the transport (what it holds still goes out)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
        if not self._transport.is_closing():
            self._transport.close()


class WriteBatch:
    """The streams of one loop with queued writes, written together at the end of the
    loop's pass (a ``call_soon`` callback runs after every task the pass has woken).
    The first write of a pass is made at once (see :meth:`open_pass`)."""

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WriteBatch]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._streams: list[AsyncioSocketStream] = []
        #: A write was made in this pass (its end is scheduled).
        self._in_pass = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> WriteBatch:
        batch = cls._by_loop.get(loop)
        if batch is None:
            batch = cls._by_loop[loop] = cls(loop)
        return batch

    def open_pass(self) -> bool:
        """True for the first write of a pass (make it now; later ones are batched)."""
        if self._in_pass:
            return False
        self._in_pass = True
        self._loop.call_soon(self._write)
        return True

    def add(self, stream: AsyncioSocketStream) -> None:
        self._streams.append(stream)

    def _write(self) -> None:
        self._in_pass = False
        streams, self._streams = self._streams, []
        for stream in streams:
            stream.write_unsent()


def wake_waiter(waiter: asyncio.Future[None]) -> None:
    """Timer callback: end ``waiter``'s wait (a timeout), unless it is already over."""
    if not waiter.done():
        waiter.set_result(None)


class LossReaper:
    """One task per event loop that tells drivers their peer is gone.

    A loop callback may only resolve futures: it queues the driver's callback here and
    wakes this task, which calls it (a driver then cancels the handler running for that
    peer, which needs a task's context).  One task for the whole server, not one per
    connection: an idle connection holds no watcher.
    """

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LossReaper]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self._pending: deque[Callable[[], None]] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    @classmethod
    def of_running_loop(cls) -> LossReaper:
        loop = asyncio.get_running_loop()
        reaper = cls._by_loop.get(loop)
        if reaper is None:
            reaper = cls._by_loop[loop] = cls()
        return reaper

    def notify(self, callback: Callable[[], None]) -> None:
        """Queue ``callback`` (safe from a loop callback: it only resolves a future)."""
        self._pending.append(callback)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(self) -> None:
        """Call queued callbacks as they come (run it in a task; cancel it to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            while self._pending:
                callback = self._pending.popleft()
                try:
                    callback()
                except Exception:
                    error_log.exception("peer-loss callback failed")
            self._wakeup = loop.create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
