"""A byte stream over a trio socket, used for TCP connections on trio.

Reads are plain ``recv`` calls.  Writes are batched (see :mod:`.batched`): the first
write of a scheduler batch goes out at once; the writes after it are queued on their
streams, and one :class:`WriteBatch` task per ``trio.run`` makes them together, in the
scheduler batch after the one that queued them (a task rescheduled during a batch runs
in the next).  Measured on the loopback hello benchmark, on one core against the same
server writing at once: +22-28 % requests/s.  A lone connection (a WebSocket echo) waits
for no batch: its write is the batch's first.

When the kernel takes only part of a write (a client that reads slowly, a big body), a
drain task of the stream's own writes the rest as the socket becomes writable; the
stream's writer waits for it in :meth:`TrioSocketStream.drain`.  A close waits for
queued bytes the same way, at most :data:`CLOSE_FLUSH_SECONDS`.

This module imports trio: :func:`~httpy.backends.transport.open_socket_stream` imports it
only when the server runs on trio (the ``trio`` extra).
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import trio
from anyio.abc import SocketAttribute

from .batched import BatchedStream
from .logs import error_log

#: Queued bytes past which :meth:`TrioSocketStream.write` asks its writer to drain.
_HIGH_WATER = 256 * 1024
#: How long a closed stream keeps trying to deliver what was written before the close
#: (a peer that stopped reading would otherwise hold the socket forever).
CLOSE_FLUSH_SECONDS = 10.0


class TrioSocketStream(BatchedStream):
    """A connected TCP (or Unix) socket on trio, as an anyio byte stream."""

    def __init__(self, sock: socket.socket) -> None:
        self._raw = sock
        self._sock = trio.socket.from_stdlib_socket(sock)
        self._batch = WriteBatch.current()
        #: Written, not yet handed to the kernel, and their size.
        self._chunks: list[bytes] = []
        self._queued = 0
        self._in_batch = False
        #: What the kernel did not take; the drain task writes it (and later writes).
        self._rest = b""
        self._drained: trio.Event | None = None
        self._drain_scope: trio.CancelScope | None = None
        self._error: OSError | None = None
        self._close_after_write = False
        self._closed = False

    @classmethod
    async def from_socket(cls, sock: socket.socket) -> TrioSocketStream:
        return cls(sock)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._raw
        return {
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: sock.getsockname,
            SocketAttribute.remote_address: sock.getpeername,
        }

    # -- reading -----------------------------------------------------------------------

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            data = await self._sock.recv(max_bytes)
        except trio.ClosedResourceError as exc:
            raise anyio.ClosedResourceError from exc
        except OSError as exc:
            raise anyio.BrokenResourceError from exc
        if not data:
            raise anyio.EndOfStream
        return data

    # -- writing -----------------------------------------------------------------------

    def write(self, item: bytes) -> bool:
        if self._closed or self._close_after_write:
            raise anyio.ClosedResourceError
        if self._error is not None:
            raise anyio.BrokenResourceError from self._error
        self._chunks.append(item)
        self._queued += len(item)
        if self._drained is not None:
            return False  # the drain task is writing: it takes these after its rest
        if not self._in_batch:
            if self._batch.open_pass():
                # The batch's first write goes at once: a lone connection (a WebSocket
                # echo, one client) waits for no batch; those after it are batched.
                self.flush()
                return self._drained is None
            self._in_batch = True
            self._batch.add(self)
        return self._queued < _HIGH_WATER

    @property
    def unsent_bytes(self) -> int:
        return self._queued + len(self._rest)

    async def drain(self, max_wait: float | None = None) -> None:
        self.flush()
        drained = self._drained
        if drained is not None:
            with trio.move_on_after(math.inf if max_wait is None else max_wait):
                await drained.wait()
            if self._drained is drained:
                raise TimeoutError("peer did not read for the send timeout")
        if self._error is not None:
            raise anyio.BrokenResourceError from self._error

    async def send(self, item: bytes) -> None:
        if not self.write(item):
            await self.drain()

    def flush(self) -> None:
        """Hand the queued writes to the kernel, as one ``send``; what it does not take
        goes to the drain task.  (The batch calls this at the end of the pass.)"""
        self._in_batch = False
        if self._drained is not None or not self._chunks:
            return
        chunks, self._chunks, self._queued = self._chunks, [], 0
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            sent = self._raw.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._error = exc
            self._close_if_asked()
            return
        if sent < len(data):
            self._rest = data[sent:]
            self._drained = trio.Event()
            trio.lowlevel.spawn_system_task(self._drain_rest, name="httpy write drain")
            return
        self._close_if_asked()

    async def _drain_rest(self) -> None:
        """Write :attr:`_rest` and what is written meanwhile, as the socket takes it.  A
        system task: it must not raise (its errors are the stream's, for the writer)."""
        drained = self._drained
        assert drained is not None
        deadline = math.inf if not self._close_after_write else self._close_deadline()
        try:
            with trio.CancelScope(deadline=deadline) as self._drain_scope:
                while True:
                    if self._chunks:
                        self._rest += b"".join(self._chunks)
                        self._chunks, self._queued = [], 0
                    if not self._rest:
                        break
                    await trio.lowlevel.wait_writable(self._raw)
                    try:
                        sent = self._raw.send(self._rest)
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    self._rest = self._rest[sent:]
        except OSError as exc:  # the peer is gone
            self._error = exc
        except trio.ClosedResourceError:  # closed under us: nothing more to write
            pass
        except Exception:  # a system task must not raise: log it, end the stream
            error_log.exception("trio write drain failed")
            self._error = OSError("write drain failed")
        finally:
            self._rest = b""
            self._drain_scope = None
            self._drained = None
            drained.set()
            self._close_if_asked()

    # -- closing -----------------------------------------------------------------------

    async def send_eof(self) -> None:
        await self.drain()
        try:
            self._raw.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise anyio.BrokenResourceError from exc

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        if self._chunks or self._drained is not None:
            self._close_after_write = True  # the batch or the drain closes after writing
            if self._drain_scope is not None:
                self._drain_scope.deadline = self._close_deadline()
            return
        self._closed = True
        self._sock.close()

    def _close_if_asked(self) -> None:
        if self._close_after_write and not self._chunks and self._drained is None:
            self._close_after_write = False
            self.close()

    @staticmethod
    def _close_deadline() -> float:
        return trio.current_time() + CLOSE_FLUSH_SECONDS


class WriteBatch:
    """The streams of one ``trio.run`` with queued writes, and the system task that
    writes them in the scheduler batch after the one that queued them."""

    _current: trio.lowlevel.RunVar[WriteBatch] = trio.lowlevel.RunVar("httpy_write_batch")

    def __init__(self) -> None:
        self._streams: list[TrioSocketStream] = []
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        #: A write was made in this scheduler batch (the task runs in the next one).
        self._in_pass = False

    @classmethod
    def current(cls) -> WriteBatch:
        """This run's batch (started on first use)."""
        try:
            return cls._current.get()
        except LookupError:
            batch = cls()
            cls._current.set(batch)
            trio.lowlevel.spawn_system_task(batch._run, name="httpy write batch")
            return batch

    def open_pass(self) -> bool:
        """True for the first write of a scheduler batch (make it now; later ones are
        queued until the batch task runs, in the next batch)."""
        if self._in_pass:
            return False
        self._in_pass = True
        self._wake()
        return True

    def add(self, stream: TrioSocketStream) -> None:
        self._streams.append(stream)
        self._wake()

    def _wake(self) -> None:
        if self._parked:
            self._parked = False
            assert self._task is not None
            trio.lowlevel.reschedule(self._task)

    async def _run(self) -> None:
        self._task = trio.lowlevel.current_task()
        while True:
            self._in_pass = False
            while self._streams:
                streams, self._streams = self._streams, []
                for stream in streams:
                    try:
                        stream.flush()
                    except Exception:  # a system task must not raise
                        error_log.exception("trio write batch failed")
            self._parked = True
            await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED
