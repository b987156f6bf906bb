"""The byte stream under an accepted TCP connection: the one place that picks one per
event loop, and the read side the HTTP/1.1 driver needs on top of it.

Every driver reads and writes an :class:`anyio.abc.ByteStream`.  On asyncio that is
:class:`~httpy.backends.asyncio_transport.AsyncioSocketStream` (a protocol-callback
transport that only buffers bytes and resolves futures, measured cheaper than anyio's
own asyncio stream); on trio, :class:`~httpy.backends.trio_transport.TrioSocketStream`.
Both batch their writes per loop pass (:mod:`~httpy.backends.batched`).  TLS, when the listener
has it, is layered on top by :func:`~httpy.backends.tls.tls_handshake`.

The HTTP/1.1 driver runs each handler in its reader's task, so something else must
notice a client that leaves meanwhile: a :class:`LossWatch` (see :class:`Watched`).  The
asyncio stream sees EOF and loss in its callbacks, which hand the news to one
:class:`~httpy.backends.asyncio_transport.LossReaper` task per server (start it with
:func:`run_transport_services`); any other stream gets a :class:`PumpedStream`, whose
pump task reads ahead into a bounded buffer and so sees the end as it comes.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import anyio.abc
import sniffio

from .asyncio_transport import AsyncioSocketStream, LossReaper
from .batched import BatchedStream

READ_SIZE = 64 * 1024
#: The pump stops reading ahead past this many unread bytes (and resumes below LOW).
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024

_TRANSPORT_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


async def run_transport_services() -> None:
    """What the loop's transports need running while the server serves (on asyncio, the
    LossReaper); returns at once elsewhere.  Run it in a task; cancel it to stop."""
    if sniffio.current_async_library() == "asyncio":
        await LossReaper.of_running_loop().run()


async def close_stream(stream: anyio.abc.ByteStream) -> None:
    """Close ``stream`` even if the caller is being cancelled.  Our TCP streams close
    without waiting, so they need no shielding scope (two cancel-scope switches saved
    per connection)."""
    if isinstance(stream, BatchedStream):
        stream.close()
        return
    with anyio.CancelScope(shield=True):
        await stream.aclose()


async def open_socket_stream(sock: socket.socket) -> anyio.abc.ByteStream:
    """A byte stream over the connected, non-blocking ``sock`` (which it then owns)."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        return await AsyncioSocketStream.from_socket(sock)
    if library == "trio":
        from .trio_transport import TrioSocketStream  # imports trio: only on trio

        return await TrioSocketStream.from_socket(sock)
    return await anyio.abc.SocketStream.from_socket(sock)


class LossWatch(Protocol):
    """The read side the HTTP/1.1 driver needs: reads with a deadline and no cancel
    scope of the caller's, an interrupt, and a signal when the peer is gone."""

    def now(self) -> float:
        """The clock ``receive_within``'s deadline is measured on."""
        ...

    async def receive_within(self, deadline: float, max_bytes: int = READ_SIZE) -> bytes | None:
        """The next bytes; None when ``deadline`` passed or :meth:`interrupt` came
        first.  Raises :class:`anyio.EndOfStream` at the end of the input, or a
        transport error."""
        ...

    def interrupt(self) -> None:
        """End a pending :meth:`receive_within` early."""
        ...

    def watch_loss(self, callback: Callable[[], None] | None) -> None:
        """Have ``callback`` called once, from a task, when the peer has closed its side
        or the connection is lost; None stops watching."""
        ...


class Watched:
    """``async with Watched(stream) as reader``: ``stream`` itself where it watches on
    its own (asyncio), else a :class:`PumpedStream` with its pump running until the
    block ends.  (A class, not an async generator: one per connection, and asyncio
    tracks every async generator it starts.)"""

    __slots__ = ("_pumped", "_stream", "_tasks")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._pumped: PumpedStream | None = None
        self._tasks: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> LossWatch:
        if isinstance(self._stream, AsyncioSocketStream):
            return self._stream
        self._pumped = PumpedStream(self._stream)
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._pumped.pump)
        return self._pumped

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        if self._tasks is None:
            return None
        self._tasks.cancel_scope.cancel()
        return await self._tasks.__aexit__(*exc_info)


class PumpedStream:
    """Reads ``inner`` ahead from a pump task into a bounded buffer (at most about
    ``HIGH_WATER`` bytes), so the end of the input is seen while nobody is reading."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self._inner = inner
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._end: BaseException | None = None  # EndOfStream, or why reading failed
        self._arrived = anyio.Event()
        self._room: anyio.Event | None = None
        self._on_lost: Callable[[], None] | None = None
        self._waiting: anyio.CancelScope | None = None

    async def pump(self) -> None:
        """Read until the input ends (run it in a task; cancel it to stop reading)."""
        try:
            while True:
                while self._buffered >= HIGH_WATER:
                    self._room = anyio.Event()
                    await self._room.wait()
                data = await self._inner.receive(READ_SIZE)
                self._chunks.append(data)
                self._buffered += len(data)
                self._arrived.set()
        except anyio.EndOfStream as end:
            self._end = end
        except _TRANSPORT_ERRORS as exc:
            self._end = exc
        if self._end is not None:
            self._arrived.set()
            self._lost()

    def now(self) -> float:
        return anyio.current_time()

    def interrupt(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    async def receive_within(self, deadline: float, max_bytes: int = READ_SIZE) -> bytes | None:
        if not self._chunks and self._end is None:
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            with anyio.CancelScope(deadline=deadline) as self._waiting:
                await self._arrived.wait()
            self._waiting = None
            if not self._chunks and self._end is None:
                return None
        return await self.receive(max_bytes)

    async def receive(self, max_bytes: int = READ_SIZE) -> bytes:
        while not self._chunks:
            if isinstance(self._end, anyio.EndOfStream):
                raise anyio.EndOfStream
            if self._end is not None:
                raise anyio.BrokenResourceError from self._end
            if self._arrived.is_set():
                self._arrived = anyio.Event()
            await self._arrived.wait()
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self._buffered -= len(chunk)
        if self._room is not None and self._buffered < LOW_WATER:
            self._room.set()
        return chunk

    def watch_loss(self, callback: Callable[[], None] | None) -> None:
        self._on_lost = callback
        if self._end is not None:
            self._lost()

    def _lost(self) -> None:
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()

    def detach(self) -> anyio.abc.ByteStream:
        """The stream to go on with once the pump is stopped: what it read ahead, then
        ``inner`` (for the driver the connection switches to)."""
        if not self._chunks:
            return self._inner
        return PrefixedStream(b"".join(self._chunks), self._inner)


class PrefixedStream(anyio.abc.ByteStream):
    """``prefix`` first, then ``inner``: bytes read ahead, handed to the next reader."""

    def __init__(self, prefix: bytes, inner: anyio.abc.ByteStream) -> None:
        self._prefix = prefix
        self._inner = inner

    async def receive(self, max_bytes: int = READ_SIZE) -> bytes:
        if self._prefix:
            chunk, self._prefix = self._prefix[:max_bytes], self._prefix[max_bytes:]
            return chunk
        return await self._inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Any:
        return self._inner.extra_attributes
