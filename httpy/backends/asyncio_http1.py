"""The HTTP/1.1 fast path on asyncio: :class:`HTTP1Connection` driven by protocol callbacks.

The portable driver (:class:`~httpy.backends.connection.HTTP1Driver`) reads through an
anyio byte stream with two tasks per connection; per keep-alive request that costs two
task switches, a cancel scope around every read and write and a few ``Event`` objects:
in a profile of the hello benchmark, more time than parsing and the application
together.  On asyncio, this driver does the same work from the transport's callbacks:

* ``data_received`` feeds the core and routes its events synchronously; a complete head
  starts **one task per request** (the task runs the handler; the same task runs
  the pipelined requests that follow);
* responses are written with ``transport.write`` (one write per response); a handler
  waits only when the transport's buffer is above its high-water mark (``send_timeout``);
* the header, body and keep-alive timeouts are one timer per connection that is re-armed
  only when it fires early, so a request costs a float assignment, not a timer;
* back-pressure pauses the transport: when the application leaves ``body_buffer_bytes``
  unread, or pipelined bytes pass ``max_pipeline_bytes``;
* a disconnect or a bad body cancels the handler's task.

Anything unusual is handed to the portable driver on the same transport, with the
parser's state (:class:`Handoff`): a request with an ``Upgrade`` header (h2c,
WebSocket) and the HTTP/2 preface (valid or not).  TLS connections use the portable
driver from the start.  Behaviour, limits and error statuses are those of the portable
driver; the test suite runs against this driver on asyncio and against the portable one
on trio.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import cast

from ..core.application import ClientDisconnected, RequestBodyError
from ..core.events import (
    BodyReceived,
    CloseConnection,
    ConnectionTerminated,
    Event,
    Headers,
    ProtocolError,
    RequestReceived,
    ResetStream,
    SendData,
    SendInformational,
    SendResponse,
    SendTrailers,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from ..core.http1 import HTTP1Connection
from .asyncio_stream import AsyncioSocketStream, StreamProtocol, wake_waiter
from .connection import (
    ConnectionContext,
    HTTP1Stream,
    PrefaceSniffer,
    deliver_body_event,
    finish_incomplete_response,
    format_peer,
    log_exchange,
    request_head,
)
from .logs import error_log


@dataclass(frozen=True, slots=True)
class Handoff:
    """The connection continues on another driver.  ``stream`` is the same transport as
    an anyio byte stream.  With ``prior_knowledge`` (the bytes received so far: the
    HTTP/2 preface, or an invalid one, see PrefaceSniffer) it is HTTP/2; otherwise the
    portable HTTP/1.1 driver takes over ``connection``, the parser with its state, and
    first acts on ``events`` (an upgrade request and what followed it)."""

    stream: AsyncioSocketStream
    connection: HTTP1Connection
    events: list[Event]
    prior_knowledge: bytes | None = None


class AsyncioHTTP1Driver(asyncio.Protocol):
    """One HTTP/1.1 connection on asyncio; see the module docstring.

    ``run()`` returns None when the connection is finished, or a :class:`Handoff` when
    another driver must carry on.
    """

    def __init__(
        self,
        context: ConnectionContext,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
    ) -> None:
        self._context = context
        self.config = context.config
        self._conn = HTTP1Connection(context.config)
        self._client = client
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._done: asyncio.Future[Handoff | None] = self._loop.create_future()
        #: The request whose handler runs, and that handler's task.
        self._current: HTTP1Stream | None = None
        self._task: asyncio.Task[None] | None = None
        self._task_started = False  # has the task's first step run (see _cancel_handler)
        #: The next request, parsed while the current handler was still finishing; the
        #: same task runs it next (responses stay in request order).
        self._pending: HTTP1Stream | None = None
        #: An upgrade request seen while a handler was finishing: handed over after it.
        self._deferred_handoff: list[Event] | None = None
        #: Until HTTP/1.1 or HTTP/2 prior knowledge is settled (RFC 9113 3.3).
        self._sniffer: PrefaceSniffer | None = PrefaceSniffer(context.config.max_request_line_bytes)
        self._closing = False
        # A connection accepted just before a shutdown has a request coming (that is why
        # the client connected): it is answered, with Connection: close, not dropped.
        self._seen_request = False
        self._lost = False
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # The single timer: fires at or before ``_deadline``, re-armed when early.
        self._deadline = math.inf
        self._head_deadline: float | None = None
        #: Until the first request's first byte: when a connection that sent nothing is
        #: dropped (see _update_deadline).  Set when the connection is made.
        self._first_byte_deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    # -- the server's interface ------------------------------------------------------

    async def run(self) -> Handoff | None:
        """Wait until the connection is finished or changes hands (see the class doc)."""
        try:
            return await asyncio.shield(self._done)
        except asyncio.CancelledError:
            # The server gave up on draining: stop everything now.
            self._abort()
            raise

    def begin_shutdown(self) -> None:
        """Graceful shutdown: finish the request in flight, then close; idle: close now."""
        # Idle is judged before CloseConnection: the core counts itself closed after it.
        idle = self._current is None and self._conn.awaiting_head
        self._closing = True
        if self._seen_request:
            # Before the first request, closing the core now would drop the request the
            # client connected to send: it is answered, then closed (see _dispatch).
            self._conn.send(CloseConnection())
        if idle and self._seen_request:
            self._close()
        elif not self._done.done():
            self._update_deadline()  # a fresh connection now gets the header timeout

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._update_deadline()

    def data_received(self, data: bytes) -> None:
        if self._done.done():
            return  # closing: nothing more is read
        if self._sniffer is not None:
            # Still deciding between HTTP/1.1 and HTTP/2 prior knowledge (RFC 9113 3.3).
            http2 = self._sniffer.feed(data)
            if http2 is None:
                return
            data, self._sniffer = self._sniffer.held, None
            if http2:
                self._hand_over([], prior_knowledge=data)
                return
        self._dispatch(self._conn.receive_data(data))
        self._after_input()

    def _settle_for_http1(self) -> None:
        """Timed out or ended while still telling HTTP/1.1 from HTTP/2: what came is an
        HTTP/1.1 request's start (answered 408 or 400 as such), or nothing to answer."""
        if self._sniffer is not None:
            held, self._sniffer = self._sniffer.for_http1(), None
            if held:
                self._dispatch(self._conn.receive_data(held))

    def eof_received(self) -> bool:
        if not self._done.done():
            self._settle_for_http1()
            self._dispatch(self._conn.receive_eof())
            self._after_input()
        return True  # keep the transport: a response may still be on its way

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._disconnect()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None and not self._done.done():
            self._done.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # -- used by HTTP1Stream (the same interface as HTTP1Driver) -----------------------

    def add_server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def queue_command(self, command: SendResponse) -> None:
        """Apply a command without writing: the head waits for the first body bytes."""
        self._conn.send(command)

    async def write_command(self, command: SendData | SendTrailers | SendInformational) -> None:
        # is_closing(): the transport failed a write and will report the loss in a later
        # callback; writing on would only make asyncio log "socket.send() raised".
        if self._lost or (self._transport is not None and self._transport.is_closing()):
            raise ClientDisconnected("client disconnected")
        self._conn.send(command)
        self._write(self._conn.data_to_send())
        if self._writing_paused:
            await self._drain()

    def resume_body(self) -> None:
        """The application consumed buffered body bytes: read again (back-pressure)."""
        self._resume_reading()

    # -- input -------------------------------------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        for index, event in enumerate(events):
            if isinstance(event, RequestReceived):
                self._head_deadline = None
                if self._closing and not self._seen_request:
                    self._conn.send(CloseConnection())  # answer it with Connection: close
                self._seen_request = True
                if event.upgrade is not None and not self._closing:
                    # h2c, WebSocket and other upgrades: the portable driver knows them.
                    if self._task is None:
                        self._hand_over(events[index:])
                    else:
                        self._deferred_handoff = events[index:]
                        self._pause_reading()
                    return
                new = HTTP1Stream(
                    self,
                    self._context.adjust(
                        request_head(event, self._context.scheme, self._client, self._server)
                    ),
                    event.expects_continue,
                )
                new.on_drained = self.resume_body
                if self._task is None:
                    self._start(new)
                else:
                    self._pending = new
            elif isinstance(event, BodyReceived | StreamEnded | TrailersReceived):
                deliver_body_event(self._stream_for(event.stream_id), event)
            elif isinstance(event, StreamReset | ConnectionTerminated):
                self._disconnect()
            elif isinstance(event, ProtocolError):
                self._on_protocol_error(event)

    def _after_input(self) -> None:
        """Write what the core answered by itself, close if it is done, and apply
        back-pressure and the timeout for the state the input left us in."""
        out = self._conn.data_to_send()
        if out:
            self._write(out)
        if self._conn.should_close and self._current is None:
            self._close()
            return
        current = self._current
        if (
            current is not None and current.buffered > self.config.body_buffer_bytes
        ) or self._conn.buffered_bytes > self.config.max_pipeline_bytes:
            self._pause_reading()
        self._update_deadline()

    def _stream_for(self, stream_id: int) -> HTTP1Stream | None:
        for stream in (self._current, self._pending):
            if stream is not None and stream.head.stream_id == stream_id:
                return stream
        return None

    def _disconnect(self) -> None:
        current = self._current
        if current is not None and not current.response_complete:
            current.fail(ClientDisconnected("client disconnected"))
            self._cancel_handler()
        self._pending = None

    def _on_protocol_error(self, event: ProtocolError) -> None:
        self._context.bad_requests.warning(
            "bad request from %s: %d %s", format_peer(self._client), event.status, event.reason
        )
        stream = self._stream_for(event.stream_id) if event.stream_id is not None else None
        if stream is not None:
            stream.fail(RequestBodyError(event.status, event.reason))
            if stream is self._current:
                self._cancel_handler()
        self._pending = None

    def _cancel_handler(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            if not self._task_started:
                # Cancelled before its first step, the task never runs _serve's body,
                # so _serve_done is not called from there.
                self._serve_done(cancelled=True, failure=None)

    # -- the request task ------------------------------------------------------------

    async def _serve(self, stream: HTTP1Stream) -> None:
        """Run ``stream``'s handler, then those of the requests pipelined behind it; then
        :meth:`_serve_done` (called here, not as a done-callback: that costs a loop turn
        per request; only a task cancelled before its first step needs the other way,
        see :meth:`_cancel_handler`)."""
        self._task_started = True
        cancelled = False
        failure: Exception | None = None
        try:
            while True:
                await self._run_handler(stream)
                self._current = None
                log_exchange(self.config, self._client, stream)
                if self._conn.should_close or self._lost:
                    break
                if self._pending is None and self._deferred_handoff is None:
                    # Requests pipelined behind this one were left unparsed until now;
                    # while this task runs, a new one lands in _pending.
                    self._dispatch(self._conn.receive_data(b""))
                if self._deferred_handoff is not None or self._pending is None:
                    break
                stream, self._pending = self._pending, None
                self._current = stream
                self._resume_reading()
                self._after_input()
        except asyncio.CancelledError:
            cancelled = True  # only we cancel this task (see _cancel_handler)
        except Exception as exc:
            failure = exc
        self._serve_done(cancelled, failure)

    def _start(self, stream: HTTP1Stream) -> None:
        """Run ``stream``'s handler (and those pipelined behind it) in a new task."""
        self._current = stream
        self._task_started = False
        self._task = self._loop.create_task(self._serve(stream))

    def _serve_done(self, cancelled: bool, failure: Exception | None) -> None:
        """After the request task, however it ended."""
        self._task = None
        self._current = None
        if failure is not None:
            error_log.error("HTTP/1.1 request task failed", exc_info=failure)
            self._conn.send(CloseConnection())
            self._abort()
            return
        if self._deferred_handoff is not None and not self._lost:
            events, self._deferred_handoff = self._deferred_handoff, None
            self._hand_over(events)
        elif self._conn.should_close or self._lost or cancelled:
            self._flush_core()
            self._close()
        elif not self._done.done():
            pending, self._pending = self._pending, None
            if pending is not None:
                # Parsed after _serve's last look but before it ended.
                self._start(pending)
            self._resume_reading()
            self._after_input()

    async def _run_handler(self, stream: HTTP1Stream) -> None:
        cancelled = False
        try:
            await self._context.app.handle_http(stream)
        except asyncio.CancelledError:
            # Only we cancel this task: the client went away or its body was refused.
            cancelled = True
        except (ClientDisconnected, RequestBodyError):
            pass  # the core has answered (413/408/400) or there is no one to answer
        except Exception:
            error_log.exception("application error on %s %s", stream.head.method, stream.head.path)
        if cancelled or stream.disconnected:
            if not stream.response_complete and not self._conn.should_close:
                self._conn.send(ResetStream(stream.head.stream_id))
            return
        if not stream.response_complete:
            await finish_incomplete_response(stream, self._conn.send)
        self._flush_core()

    # -- output ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is not None and not self._lost and not transport.is_closing():
            transport.write(data)

    def _flush_core(self) -> None:
        out = self._conn.data_to_send()
        if out:
            self._write(out)

    async def _drain(self) -> None:
        """Wait until the transport's buffer drains, at most ``send_timeout``."""
        waiter = self._drain_waiter = self._loop.create_future()
        timer = self._loop.call_later(self.config.send_timeout, wake_waiter, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._drain_waiter = None
        if self._lost:
            raise ClientDisconnected("client disconnected")
        if self._writing_paused:
            # The peer stopped reading for send_timeout: nothing more can reach it.
            self._abort()
            raise ClientDisconnected("client stopped reading (send timeout)")

    # -- flow control and timers -------------------------------------------------------

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._lost:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None and not self._lost:
            current = self._current
            if current is not None and current.buffered > self.config.body_buffer_bytes:
                return
            if self._conn.buffered_bytes > self.config.max_pipeline_bytes:
                return
            self._reading_paused = False
            self._transport.resume_reading()
            self._update_deadline()

    def _update_deadline(self) -> None:
        """The read timeout for the connection's state (that of HTTP1Driver)."""
        conn = self._conn
        now = self._loop.time()
        if self._reading_paused:
            deadline = math.inf  # we stopped reading: the client is not at fault
        elif conn.awaiting_head:
            if conn.idle and self._seen_request:
                self._head_deadline = None
                deadline = now + (0.0 if self._closing else self.config.keepalive_timeout)
            elif conn.idle and not self._closing:
                # A new connection that has sent nothing: header_timeout for its first
                # byte (a shorter keepalive_timeout still applies), as HTTP1Driver.
                if self._first_byte_deadline is None:
                    wait = min(self.config.header_timeout, self.config.keepalive_timeout)
                    self._first_byte_deadline = now + wait
                deadline = self._first_byte_deadline
            else:
                # One deadline for the whole head, from its first byte (slowloris).
                if self._head_deadline is None:
                    self._head_deadline = now + self.config.header_timeout
                deadline = self._head_deadline
        elif conn.receiving_body:
            deadline = now + self.config.body_timeout
        else:
            deadline = math.inf  # request complete: the handler's time is its own
        self._deadline = deadline
        if deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        if self._done.done() or self._lost:
            return
        deadline = self._deadline
        if deadline == math.inf:
            return
        if self._loop.time() < deadline:
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        self._deadline = math.inf
        self._settle_for_http1()
        events = self._conn.receive_eof() if self._closing else self._conn.receive_timeout()
        self._dispatch(events)
        self._after_input()

    # -- endings -----------------------------------------------------------------------

    def _hand_over(self, events: list[Event], prior_knowledge: bytes | None = None) -> None:
        """Give the transport to the portable driver (or the HTTP/2 driver)."""
        transport = self._transport
        assert transport is not None  # data arrived, so the connection was made
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        protocol = StreamProtocol()
        protocol.reading_paused = self._reading_paused
        protocol.writing_paused = self._writing_paused
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        stream = AsyncioSocketStream(protocol, transport)
        self._done.set_result(Handoff(stream, self._conn, events, prior_knowledge))

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None and not self._done.done():
            self._done.set_result(None)

    def _abort(self) -> None:
        self._cancel_handler()
        if self._transport is not None:
            self._transport.abort()
        if not self._done.done():
            self._done.set_result(None)
