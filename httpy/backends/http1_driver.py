"""The HTTP/1.1 connection driver: socket bytes <-> :class:`HTTP1Connection` <-> the app.

One driver for every event loop and transport (TCP or TLS, asyncio or trio), on the same
stream engine as HTTP/2 and HTTP/3 (:class:`~httpy.backends.streams.Streams`, one
:class:`~httpy.backends.exchange.HTTPExchange` per request).  HTTP/1.1 answers one
request at a time, so the connection's own task does it all: it reads the socket (with
the header and keep-alive timeouts), feeds the core, and runs each handler itself, with
no task switch.  A handler's body reads pull from the socket (``body_timeout`` each), so
a handler that does not read leaves the bytes with the client (back-pressure).

While a handler runs nobody else reads, so a :class:`~httpy.backends.transport.LossWatch`
watches for the client leaving (the asyncio transport's callbacks, or a pump task on
other streams) and a small watcher task then cancels the handler.

The connection may change protocol: the HTTP/2 preface (prior knowledge), ``Upgrade:
h2c`` and ``Upgrade: websocket`` end this driver with a ``Switch...`` result; the server
carries on with :attr:`HTTP1Driver.stream`.
"""

from __future__ import annotations

import math

import anyio
import anyio.abc
import anyio.lowlevel

from ..core.application import ClientDisconnected, RequestBodyError
from ..core.events import (
    CloseConnection,
    Command,
    Event,
    Headers,
    ProtocolError,
    RequestReceived,
    SendInformational,
)
from ..core.http1 import HTTP1Connection
from .connection import (
    READ_SIZE,
    ConnectionContext,
    PrefaceSniffer,
    SwitchToHTTP2,
    SwitchToWebSocket,
    format_peer,
    wants_h2c,
    wants_websocket,
)
from .exchange import HTTPExchange
from .send import finish_send, send_nowait
from .streams import Streams
from .transport import LossWatch, PumpedStream, Watched, close_stream

_TRANSPORT_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class HTTP1Driver:
    """Runs one HTTP/1.1 connection to completion; see the module docstring."""

    #: An abandoned response cannot be reset on HTTP/1.1: the core closes instead.
    cancel_code = 0
    #: Body reads are pulls through :meth:`pull_body`, which applies ``body_timeout``.
    body_timeout = math.inf
    pulls_body = True

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
    ) -> None:
        #: The stream to write to (and, after a switch, to go on with).
        self.stream = stream
        self._reader: LossWatch | None = None
        self._context = context
        self.config = context.config
        self._conn = HTTP1Connection(context.config)
        self._handler_scope = anyio.CancelScope()
        #: Requests opened and not yet run, and the one whose handler runs.
        self._pending: list[HTTPExchange] = []
        self._current: HTTPExchange | None = None
        self._streams = Streams(self, context, "HTTP/1.1", on_request=self._pending.append)
        #: An ``Upgrade: h2c`` request to switch on, once seen (RFC 7540 3.2).
        self._h2c: RequestReceived | None = None
        #: An ``Upgrade: websocket`` request, handed to the WebSocket driver (RFC 6455).
        self._websocket: RequestReceived | None = None
        #: The first bytes, when they are HTTP/2 (the preface, or an invalid one: RFC
        #: 9113 3.3, see PrefaceSniffer).
        self._prior_knowledge: bytes | None = None
        # Prior knowledge is for cleartext only: over TLS, HTTP/2 is chosen by ALPN (RFC
        # 9113 3.3), so there the preface is just a bad HTTP/1.1 request (505).
        self._sniffer: PrefaceSniffer | None = (
            PrefaceSniffer(context.config.max_request_line_bytes)
            if context.scheme == "http"
            else None
        )
        self._head_deadline: float | None = None
        #: Until the first request's first byte: when a connection that sent nothing is
        #: dropped (see _read_timeout).  Set on the first read.
        self._first_byte_deadline: float | None = None
        self._closing = False
        #: A write failed: the peer is gone, nothing more is read.
        self._broken = False
        # A connection accepted just before a shutdown has a request coming (that is why
        # the client connected): it is answered, with Connection: close, not dropped.
        self._seen_request = False

    # -- public --------------------------------------------------------------------

    async def run(self) -> SwitchToHTTP2 | SwitchToWebSocket | None:
        """Serve requests until the connection ends, then close the socket.

        Returns a ``Switch...`` instead (leaving the socket open) when the connection
        turns out to be HTTP/2 or a WebSocket; go on with :attr:`stream`.
        """
        upgrade: SwitchToHTTP2 | SwitchToWebSocket | None = None
        try:
            async with Watched(self.stream) as reader:
                self._reader = reader
                reader.watch_loss(self._client_left)
                # Handlers run in this scope: cancelling it (the client left, or broke the
                # protocol mid-body) ends the connection, which closes anyway then.
                with self._handler_scope:
                    await self._read_loop()
                reader.watch_loss(None)
            if isinstance(reader, PumpedStream):
                self.stream = reader.detach()
            await self.flush()
            if self._h2c is not None:
                upgrade = await self._switch_to_h2c(self._h2c)
            elif self._prior_knowledge is not None:
                upgrade = SwitchToHTTP2(None, self._prior_knowledge)
            elif self._websocket is not None:
                upgrade = SwitchToWebSocket(self._websocket, self._conn)
        except* (*_TRANSPORT_ERRORS, TimeoutError, ClientDisconnected):
            # The peer vanished, or stopped reading (send_timeout): nothing left to tell it.
            pass
        finally:
            if upgrade is None:
                await close_stream(self.stream)
            # The driver and its stream engine refer to each other (and the stream to
            # the driver's loss callback): parted here, the connection's objects go when
            # its task ends instead of waiting, in a reference cycle, for the garbage
            # collector to walk them (measured: ~24 objects per connection, and a
            # quarter fewer collections with a new connection per request).
            del self._streams
            self._reader = None
        return upgrade

    def begin_shutdown(self) -> None:
        """Graceful shutdown: finish the request in flight, then close; idle: close now."""
        # Idle is judged before CloseConnection: the core counts itself closed after it.
        idle = self._conn.awaiting_head and self._current is None
        self._closing = True
        if self._seen_request:
            # Before the first request, closing the core now would drop the request the
            # client connected to send: it is answered, then closed (see _on_request).
            self._conn.send(CloseConnection())
        if idle and self._reader is not None and self._seen_request:
            self._reader.interrupt()

    # -- StreamPort (used by the exchange) ------------------------------------------

    def server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def queue(self, command: Command) -> None:
        """Apply a command without writing: the head waits for the first body bytes."""
        self._conn.send(command)

    async def submit(self, command: Command) -> None:
        """Apply ``command`` and write it.  A peer that is gone, or does not read at
        ``min_send_rate`` (see :mod:`httpy.core.send_progress`), fails the request with
        :class:`ClientDisconnected` (what the application is told, as on the other
        protocols), not a transport error."""
        self._conn.send(command)
        await self.flush()

    def pending_bytes(self, stream_id: int) -> int:
        return 0  # a write returns once the transport has taken the bytes

    async def acknowledge(self, stream_id: int, size: int) -> None:
        pass  # a pulled body needs no window: what was not pulled was not read

    async def pull_body(self, exchange: HTTPExchange) -> None:
        """Read more of ``exchange``'s body; ``body_timeout`` without a byte: 408."""
        reader = self._reader
        assert reader is not None
        try:
            data = await reader.receive_within(reader.now() + self.config.body_timeout)
        except (anyio.EndOfStream, *_TRANSPORT_ERRORS):
            data = b""
        conn = self._conn
        if data is None:
            events = conn.receive_timeout()
        else:
            events = conn.receive_data(data) if data else conn.receive_eof()
        self._dispatch(events)

    async def push(self, parent: HTTPExchange, path: str) -> bool:
        return False  # HTTP/1.1 has no server push; see 103 Early Hints

    async def body_timed_out(self, exchange: HTTPExchange) -> None:
        raise AssertionError("unreachable: HTTP/1.1 body reads are not timed per exchange")

    async def flush(self) -> None:
        """Write what the core has queued.  Only the connection's task writes (handlers
        run in it), so writes never interleave."""
        data = self._conn.data_to_send()
        if not data:
            return
        try:
            rest = send_nowait(self.stream, data)  # usually all of it: no await below
            if rest is not None:
                # Atomic: bytes taken from the core must not be lost to a cancellation
                # (a handler cancelled while its connection's answer goes out).
                await finish_send(self.stream, data, rest, self.config, atomic=True)
        except (*_TRANSPORT_ERRORS, TimeoutError) as exc:
            # (A TimeoutError: a peer that takes less than min_send_rate.)
            error = ClientDisconnected(f"connection lost while sending: {exc!r}")
            for exchange in self._streams.open.values():
                exchange.fail(error)
            self._broken = True
            if self._reader is not None:
                self._reader.interrupt()
            raise error from exc

    # -- the reader ----------------------------------------------------------------

    @property
    def _reading(self) -> bool:
        return (
            not self._conn.should_close
            and not self._broken
            and self._h2c is None
            and self._websocket is None
            and self._prior_knowledge is None
        )

    async def _read_loop(self) -> None:
        """Read, dispatch and run handlers until the connection stops being HTTP/1.1 or
        its input ends.  A read that times out (header, keep-alive) or is interrupted (a
        graceful shutdown) is answered as ``receive_timeout`` / ``receive_eof``."""
        reader = self._reader
        assert reader is not None
        conn = self._conn
        while self._reading:
            deadline = reader.now() + self._read_timeout()
            try:
                data = await reader.receive_within(deadline, READ_SIZE)
            except (anyio.EndOfStream, *_TRANSPORT_ERRORS):
                data = b""
            if data is None:
                if not self._reading:
                    return
                self._settle_for_http1()
                self._dispatch(conn.receive_eof() if self._closing else conn.receive_timeout())
                await self._flush_between_requests()
                continue
            if not data:
                self._settle_for_http1()
                self._dispatch(conn.receive_eof())
                await self._flush_between_requests()
                return
            if self._sniffer is not None:
                # Still deciding between HTTP/1.1 and HTTP/2 prior knowledge.
                http2 = self._sniffer.feed(data)
                if http2 is None:
                    continue
                data, self._sniffer = self._sniffer.held, None
                if http2:
                    self._prior_knowledge = data
                    return
            self._dispatch(conn.receive_data(data))
            await self._run_pending()

    async def _run_pending(self) -> None:
        """Run the handlers of the requests received, one after the other, and those
        pipelined behind them; then write what the core answered by itself.

        Between two pipelined requests the connection yields to the others: a client
        that pipelines thousands of requests per write would otherwise keep the loop
        (its handlers need not wait for anything) until its socket buffer filled, and
        every other client waited (a neighbour's p99: 190 ms on trio; on asyncio the
        pipeliner got no second batch answered in 3 s)."""
        while self._pending:
            exchange = self._current = self._pending.pop(0)
            try:
                await self._streams.run(exchange)
            finally:
                self._current = None
            if self._conn.should_close or self._broken:
                break
            if self._conn.buffered_bytes:
                # Pipelined requests already buffered are parsed now, in order, each
                # after the other connections have had a turn.
                await anyio.lowlevel.checkpoint()
                self._dispatch(self._conn.receive_data(b""))
        self._pending.clear()
        await self._flush_between_requests()

    async def _flush_between_requests(self) -> None:
        """Write what the core answered by itself (an error status)."""
        if self._current is None:
            await self.flush()

    def _client_left(self) -> None:
        """The client left (EOF or a lost connection): cancel the handler that runs, if
        its response is not complete (the reader sees the end when it reads next).
        Called from a task (the pump, or the loop's LossReaper)."""
        exchange = self._current
        if exchange is not None and not exchange.response_complete:
            exchange.fail(ClientDisconnected("client disconnected"))
            self._handler_scope.cancel()

    def _settle_for_http1(self) -> None:
        """Timed out or ended while still telling HTTP/1.1 from HTTP/2: what came is an
        HTTP/1.1 request's start (answered 408 or 400 as such), or nothing to answer."""
        if self._sniffer is not None:
            held, self._sniffer = self._sniffer.for_http1(), None
            if held:
                self._dispatch(self._conn.receive_data(held))

    def _read_timeout(self) -> float:
        conn = self._conn
        reader = self._reader
        assert reader is not None
        if conn.awaiting_head:
            if self._closing and self._seen_request:
                return 0.0
            if conn.idle and not self._closing:
                self._head_deadline = None
                if self._seen_request:
                    return self.config.keepalive_timeout
                # A new connection (after its TLS handshake, if any) that has sent
                # nothing: it was opened for a request, so it gets header_timeout for
                # its first byte, not the keep-alive idle time (as nginx's
                # client_header_timeout); a shorter keepalive_timeout still applies.
                # One deadline: bytes of a partial HTTP/2 preface do not move it.
                now = reader.now()
                if self._first_byte_deadline is None:
                    wait = min(self.config.header_timeout, self.config.keepalive_timeout)
                    self._first_byte_deadline = now + wait
                return max(0.0, self._first_byte_deadline - now)
            # One deadline for the whole head, from its first byte: a client dripping a
            # byte at a time (slowloris) must not reset it with every read.
            now = reader.now()
            if self._head_deadline is None:
                self._head_deadline = now + self.config.header_timeout
            return max(0.0, self._head_deadline - now)
        if conn.receiving_body:
            return self.config.body_timeout
        return math.inf  # request complete: read only to notice a disconnect

    # -- events --------------------------------------------------------------------

    def _dispatch(self, events: list[Event]) -> None:
        """HTTP/1.1's own decisions (upgrades, shutdown, bad requests), then the stream
        engine for the rest."""
        shared: list[Event] = []
        for event in events:
            if isinstance(event, RequestReceived):
                if self._on_request(event):
                    shared.append(event)
            elif isinstance(event, ProtocolError):
                # In order: the request it ends must be open first.
                self._streams.dispatch(shared)
                shared = []
                self._on_protocol_error(event)
            else:
                shared.append(event)
        if shared:
            self._streams.dispatch(shared)

    def _on_request(self, event: RequestReceived) -> bool:
        """True when ``event`` is an HTTP request for the stream engine; False when the
        connection changes protocol instead."""
        self._head_deadline = None
        if self._closing and not self._seen_request:
            self._conn.send(CloseConnection())  # answer it with Connection: close
        self._seen_request = True
        # h2c is cleartext HTTP/2: over TLS, HTTP/2 is chosen by ALPN only.
        if wants_h2c(event) and not self._closing and self._context.scheme == "http":
            self._h2c = event
            return False
        if wants_websocket(event) and not self._closing:
            self._websocket = event  # the WebSocket driver runs the app on it
            return False
        return True

    def _on_protocol_error(self, event: ProtocolError) -> None:
        self._context.bad_requests.warning(
            "bad request from %s: %d %s",
            format_peer(self._context.client),
            event.status,
            event.reason,
        )
        exchange = self._streams.open.get(event.stream_id) if event.stream_id is not None else None
        if exchange is not None:
            # The core has answered (413, 408, 400) and closes the connection.  A
            # handler not started yet sees the error at its first body read.
            exchange.fail(RequestBodyError(event.status, event.reason))
            if exchange is self._current:
                self._handler_scope.cancel()

    async def _switch_to_h2c(self, request: RequestReceived) -> SwitchToHTTP2:
        settings = dict(request.headers).get(b"http2-settings", b"")
        self._conn.send(
            SendInformational(
                request.stream_id, 101, ((b"connection", b"Upgrade"), (b"upgrade", b"h2c"))
            )
        )
        await self.flush()
        return SwitchToHTTP2((settings, request), self._conn.take_unparsed())
