"""The HTTP/2 connection driver: socket bytes <-> :class:`HTTP2Connection` <-> the app.

One reader task per connection feeds the core; each stream's handler runs in its own
task, so one slow handler never stalls the others (its stream's window simply stays
closed until it reads).  Every write goes through one lock, so frames from concurrent
handlers are never interleaved mid-write.
"""

from __future__ import annotations

import contextlib
import math

import anyio
import anyio.abc

from ..core.application import ClientDisconnected
from ..core.events import (
    CloseConnection,
    Command,
    Event,
    RequestReceived,
)
from ..core.http2 import HTTP2Connection
from .connection import READ_SIZE, ConnectionContext
from .exchange import HTTPExchange
from .send import send_all
from .streams import FedStreamsPort, Streams
from .tls import half_close

#: How long a connection we said GOAWAY on keeps reading (and dropping) the client's
#: bytes before it is closed (see ``HTTP2Driver._linger``).
LINGER_SECONDS = 2.0


class HTTP2Driver(FedStreamsPort):
    """Runs one HTTP/2 connection to completion: the reader and the writer of its
    socket; its streams are :class:`~httpy.backends.streams.Streams`'."""

    #: RST_STREAM CANCEL: a handler abandoned its response, or the window stayed shut.
    cancel_code = 0x8
    _conn: HTTP2Connection

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
        *,
        initial_data: bytes = b"",
        upgrade: tuple[bytes, RequestReceived] | None = None,
    ) -> None:
        self._stream = stream
        self._context = context
        self.config = context.config
        self._conn = HTTP2Connection(
            context.config,
            upgrade=upgrade,
            flood_budgets=context.flood_budgets(anyio.current_time()),
        )
        self._initial = initial_data
        self._streams = Streams(
            self,
            context,
            "HTTP/2",
            on_finished=self._stream_finished,
            on_orphan_data=self._conn.acknowledge,  # handler gone: give the window back
        )
        # fast_acquire: no checkpoint when uncontended (a plain acquire costs a
        # scheduling round trip, 4-6 us, on every write).
        self._write_lock = anyio.Lock(fast_acquire=True)
        self._read_scope: anyio.CancelScope | None = None
        self._read_interrupted = False
        self._broken = False
        self._closing = False
        #: Since when no stream has been open (None: one is).  The idle timeout counts
        #: from there: streams opening and closing are activity, frames alone (PING,
        #: SETTINGS, WINDOW_UPDATE, a header block in progress) are not.
        self._idle_since: float | None = None
        #: A request has arrived: until then the idle time is header_timeout's, as for a
        #: new HTTP/1.1 connection (the client connected to send one).
        self._had_request = False
        #: When the header block being received began (None: none is); header_timeout.
        self._head_since: float | None = None

    # -- public ------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve streams until the connection ends; always closes the socket."""
        try:
            async with anyio.create_task_group() as tasks:
                self._streams.bind(tasks)
                self._dispatch(self._conn.initial_events())
                await self.flush()
                await self._read_loop()
                # The connection is over (EOF, GOAWAY done, or a connection error):
                # handlers still running have no one to answer.
                tasks.cancel_scope.cancel()
            await self.flush()
            if self._conn.said_goodbye and not self._broken:
                await self._linger()
        except* (
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
            TimeoutError,
            ClientDisconnected,
        ):
            pass  # the peer vanished or stopped reading; nothing left to tell it
        finally:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _linger(self) -> None:
        """Lingering close after our GOAWAY: stop sending (a FIN; a close_notify over
        TLS), then read and drop what the client still sends until it closes, for at most
        ``LINGER_SECONDS``.  Closing a socket with unread input makes the kernel answer
        with a reset, which can destroy the GOAWAY before the client has read it."""
        with anyio.move_on_after(LINGER_SECONDS):
            await half_close(self._stream)
            while True:
                try:
                    await self._stream.receive(READ_SIZE)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    return

    def begin_shutdown(self) -> None:
        """Graceful shutdown: GOAWAY, let open streams finish, then close."""
        self._closing = True
        self._conn.send(CloseConnection())
        self._streams.begin_shutdown()
        self._interrupt_read()  # the reader flushes the GOAWAY (and closes if idle)

    # -- StreamPort (used by the streams' exchanges) ----------------------------------

    def queue(self, command: Command) -> None:
        self._conn.send(command)

    async def submit(self, command: Command) -> None:
        self._conn.send(command)
        await self.flush()
        if self._conn.should_close:
            self._interrupt_read()  # the last stream after GOAWAY is done

    async def _send_queued(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write what the core has queued.  Raises :class:`ClientDisconnected` when the
        peer is gone or takes less than the send-progress rule asks; the reader then
        ends the connection."""
        async with self._write_lock:
            data = self._conn.data_to_send()
            if data:
                try:
                    # Atomic: a handler cancelled mid-write (its stream was reset, the
                    # connection is ending) would leave half a frame on the wire, and a
                    # TLS stream broken, for every other stream.  The send-progress
                    # rule (send_timeout, min_send_rate) bounds it.
                    await send_all(self._stream, data, self.config, atomic=True)
                except (
                    anyio.BrokenResourceError,
                    anyio.ClosedResourceError,
                    OSError,
                    TimeoutError,
                ) as exc:
                    self._broken = True
                    self._interrupt_read()
                    raise ClientDisconnected(f"connection lost while sending: {exc!r}") from exc

    # -- internals ---------------------------------------------------------------------

    def _interrupt_read(self) -> None:
        """Wake the reader without input: it flushes and re-checks the connection state."""
        if self._read_scope is not None:
            self._read_interrupted = True
            self._read_scope.cancel()

    async def _read_loop(self) -> None:
        if self._initial:
            self._dispatch(self._conn.receive_data(self._initial, anyio.current_time()))
        while not self._conn.should_close:
            # Flush right before reading: whatever was queued while this task waited
            # (a GOAWAY from begin_shutdown) goes out now, not with the next input.
            await self.flush()
            if self._conn.should_close:
                break
            data: bytes | None = None
            self._read_interrupted = False
            with anyio.CancelScope(deadline=self._read_deadline()) as scope:
                self._read_scope = scope
                try:
                    data = await self._stream.receive(READ_SIZE)
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    data = b""
            self._read_scope = None
            if self._broken:
                data = b""  # a write failed: the peer is gone
            if data is None:
                events = [] if self._read_interrupted else self._conn.receive_timeout()
            elif data:
                events = self._conn.receive_data(data, anyio.current_time())
            else:
                events = self._conn.receive_eof()
            self._dispatch(events)

    def _read_deadline(self) -> float:
        """When the reader stops waiting for input (then ``receive_timeout``): the idle
        timeout after the last stream closed (before the first request: header_timeout,
        if shorter), and ``header_timeout`` after a header block began; no deadline while
        streams are open (their handlers and ``body_timeout`` bound them)."""
        now = anyio.current_time()
        deadline = math.inf
        if self._conn.idle:
            if self._closing:
                return now  # GOAWAY sent and nothing left to serve
            if self._idle_since is None:
                self._idle_since = now
            idle = self.config.keepalive_timeout
            if not self._had_request:
                idle = min(idle, self.config.header_timeout)
            deadline = self._idle_since + idle
        else:
            self._idle_since = None
        if self._conn.receiving_header_block:
            if self._head_since is None:
                self._head_since = now
            deadline = min(deadline, self._head_since + self.config.header_timeout)
        else:
            self._head_since = None
        return deadline

    def _dispatch(self, events: list[Event]) -> None:
        if any(isinstance(event, RequestReceived) for event in events):
            self._idle_since = None  # a new stream: the idle time starts again
            self._had_request = True
        self._streams.dispatch(events)

    async def _stream_finished(self, stream: HTTPExchange) -> None:
        """A handler is done.  Body bytes it never read still hold connection window:
        give them back.  If that left no stream open, the reader's wait (without a
        deadline while streams were open) now gets the idle timeout."""
        unread = stream.discard_unread()
        if unread:
            self._conn.acknowledge(stream.head.stream_id, unread)
            with contextlib.suppress(ClientDisconnected):
                await self.flush()
        if self._read_scope is not None and self._conn.idle and not self._closing:
            self._read_scope.deadline = self._read_deadline()
