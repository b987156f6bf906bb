"""The HTTP/1.1 connection driver: socket bytes <-> :class:`HTTP1Connection` <-> the app.

One driver for every event loop and transport (TCP or TLS, asyncio or trio).  Its own
task is the connection's **reader**: it reads the socket (with the header, body and
keep-alive timeouts), feeds the core, and hands the core's events to the same stream
engine HTTP/2 and HTTP/3 use (:class:`~httpy.backends.streams.Streams`): each request
is an :class:`~httpy.backends.exchange.HTTPExchange` whose handler runs in a task of
its own.  HTTP/1.1 is simply a connection with at most one request being answered: the
core yields a request only once the previous response is complete, so responses keep
request order.

Because the reader keeps reading while a handler runs, a client that disconnects is
noticed at once and the handler is cancelled.  It stops reading when the application is
not consuming the body (``body_buffer_bytes``) or pipelined bytes pile up
(``max_pipeline_bytes``).  Writes from the reader (answers the core gives itself: 400,
408, 413 ...) and from the handler go through one lock.

The connection may change protocol: the HTTP/2 preface (prior knowledge), ``Upgrade:
h2c`` and ``Upgrade: websocket`` end this driver with a ``Switch...`` result for the
server to carry on.
"""

from __future__ import annotations

import math

import anyio
import anyio.abc

from ..core.application import ClientDisconnected, RequestBodyError
from ..core.events import (
    BodyReceived,
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
from .send import send_all
from .streams import Streams

_TRANSPORT_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class HTTP1Driver:
    """Runs one HTTP/1.1 connection to completion; see the module docstring."""

    #: An abandoned response cannot be reset on HTTP/1.1: the core closes instead.
    cancel_code = 0
    #: The reader enforces ``body_timeout`` (the core answers 408 and closes), so an
    #: exchange does not time its own body reads.
    body_timeout = math.inf

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
    ) -> None:
        self._stream = stream
        self._context = context
        self.config = context.config
        self._conn = HTTP1Connection(context.config)
        self._client = client
        self._streams = Streams(
            self, context, client, server, "HTTP/1.1", on_finished=self._exchange_finished
        )
        # fast_acquire: no checkpoint when uncontended (nearly every write).
        self._write_lock = anyio.Lock(fast_acquire=True)
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
        #: Body bytes fed to the exchange and not yet consumed by its handler.
        self._unconsumed = 0
        #: Set when the reader may go on: body consumed, or a request cycle finished.
        self._room: anyio.Event | None = None
        self._read_scope: anyio.CancelScope | None = None
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
        turns out to be HTTP/2 or a WebSocket.
        """
        upgrade: SwitchToHTTP2 | SwitchToWebSocket | None = None
        try:
            async with anyio.create_task_group() as tasks:
                self._streams.bind(tasks)
                await self._read_loop()
                # Nothing more is read; the request in flight (if any) finishes, and
                # one still waiting for its body is told that none will come.
                for exchange in self._streams.open.values():
                    exchange.input_ended()
            await self.flush()
            if self._h2c is not None:
                upgrade = await self._switch_to_h2c(self._h2c)
            elif self._prior_knowledge is not None:
                upgrade = SwitchToHTTP2(None, self._prior_knowledge)
            elif self._websocket is not None:
                upgrade = SwitchToWebSocket(self._websocket, self._conn)
        except* (*_TRANSPORT_ERRORS, TimeoutError, ClientDisconnected):
            # The peer vanished, or stopped reading for send_timeout: nothing left to tell it.
            pass
        finally:
            if upgrade is None:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
        return upgrade

    def begin_shutdown(self) -> None:
        """Graceful shutdown: finish the request in flight, then close; idle: close now."""
        # Idle is judged before CloseConnection: the core counts itself closed after it.
        idle = self._conn.awaiting_head and not self._streams.open
        self._closing = True
        if self._seen_request:
            # Before the first request, closing the core now would drop the request the
            # client connected to send: it is answered, then closed (see _on_request).
            self._conn.send(CloseConnection())
        if idle and self._read_scope is not None and self._seen_request:
            self._read_scope.cancel()
        self._wake_reader()

    # -- StreamPort (used by the exchange) ------------------------------------------

    def server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def queue(self, command: Command) -> None:
        """Apply a command without writing: the head waits for the first body bytes."""
        self._conn.send(command)

    async def submit(self, command: Command) -> None:
        """Apply ``command`` and write it.  A peer that is gone, or has not read for
        ``send_timeout``, fails the request with :class:`ClientDisconnected` (what the
        application is told, as on the other protocols), not a transport error."""
        self._conn.send(command)
        await self.flush()

    def pending_bytes(self, stream_id: int) -> int:
        return 0  # a write returns once the transport has taken the bytes

    async def acknowledge(self, stream_id: int, size: int) -> None:
        self._unconsumed -= size
        if self._unconsumed <= self.config.body_buffer_bytes:
            self._wake_reader()

    async def push(self, parent: HTTPExchange, path: str) -> bool:
        return False  # HTTP/1.1 has no server push; see 103 Early Hints

    async def body_timed_out(self, exchange: HTTPExchange) -> None:
        raise AssertionError("unreachable: HTTP/1.1 body reads are not timed per exchange")

    async def flush(self) -> None:
        """Write what the core has queued (one writer at a time)."""
        async with self._write_lock:
            data = self._conn.data_to_send()
            if not data:
                return
            try:
                await send_all(self._stream, data, self.config.send_timeout)
            except (*_TRANSPORT_ERRORS, TimeoutError) as exc:
                # (A TimeoutError: a peer that stopped reading for send_timeout.)
                error = ClientDisconnected(f"connection lost while sending: {exc!r}")
                for exchange in self._streams.open.values():
                    exchange.fail(error)
                self._broken = True
                if self._read_scope is not None:
                    self._read_scope.cancel()
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
        while self._reading:
            # One cancel scope for as many reads as pass without a timeout (entering a
            # scope per read cost more than parsing a request): each read moves its
            # deadline; the scope ends when a deadline passes or begin_shutdown cancels
            # it, and that is answered as receive_timeout / receive_eof.
            ended = False
            with anyio.CancelScope() as scope:
                self._read_scope = scope
                ended = await self._read_until_timeout(scope)
            self._read_scope = None
            if ended or not self._reading:
                break
            if not scope.cancel_called:
                break
            self._settle_for_http1()
            self._dispatch(
                self._conn.receive_eof() if self._closing else self._conn.receive_timeout()
            )
            await self._flush_between_requests()

    async def _read_until_timeout(self, scope: anyio.CancelScope) -> bool:
        """Read and dispatch until the connection stops being HTTP/1.1; True when the
        input ended (EOF).  Returns early (False) when ``scope`` is cancelled: a
        timeout, a graceful shutdown, or the connection ending from a write."""
        while self._reading:
            scope.deadline = math.inf  # waiting for the application is not a read
            await self._wait_for_room()
            if not self._reading:
                return False
            scope.deadline = anyio.current_time() + self._read_timeout()
            try:
                data = await self._stream.receive(READ_SIZE)
            except (anyio.EndOfStream, *_TRANSPORT_ERRORS):
                data = b""
            scope.deadline = math.inf
            if not data:
                self._settle_for_http1()
                self._dispatch(self._conn.receive_eof())
                await self._flush_between_requests()
                return True
            if self._sniffer is not None:
                # Still deciding between HTTP/1.1 and HTTP/2 prior knowledge.
                http2 = self._sniffer.feed(data)
                if http2 is None:
                    continue
                data, self._sniffer = self._sniffer.held, None
                if http2:
                    self._prior_knowledge = data
                    return False
            self._dispatch(self._conn.receive_data(data))
            await self._flush_between_requests()
        return False

    async def _flush_between_requests(self) -> None:
        """Write what the core answered by itself (an error status), unless a handler
        is writing: then its next write takes it along."""
        if not self._streams.open:
            await self.flush()

    async def _wait_for_room(self) -> None:
        """Back-pressure: don't read while the handler leaves ``body_buffer_bytes``
        unconsumed, or pipelined bytes pile up unparsed."""
        while (
            self._unconsumed > self.config.body_buffer_bytes
            or self._conn.buffered_bytes > self.config.max_pipeline_bytes
        ) and self._streams.open:
            self._room = anyio.Event()
            await self._room.wait()

    def _wake_reader(self) -> None:
        if self._room is not None:
            self._room.set()

    def _settle_for_http1(self) -> None:
        """Timed out or ended while still telling HTTP/1.1 from HTTP/2: what came is an
        HTTP/1.1 request's start (answered 408 or 400 as such), or nothing to answer."""
        if self._sniffer is not None:
            held, self._sniffer = self._sniffer.for_http1(), None
            if held:
                self._dispatch(self._conn.receive_data(held))

    def _read_timeout(self) -> float:
        conn = self._conn
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
                now = anyio.current_time()
                if self._first_byte_deadline is None:
                    wait = min(self.config.header_timeout, self.config.keepalive_timeout)
                    self._first_byte_deadline = now + wait
                return max(0.0, self._first_byte_deadline - now)
            # One deadline for the whole head, from its first byte: a client dripping a
            # byte at a time (slowloris) must not reset it with every read.
            now = anyio.current_time()
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
                if isinstance(event, BodyReceived):
                    self._unconsumed += len(event.data)
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
        self._unconsumed = 0
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
            "bad request from %s: %d %s", format_peer(self._client), event.status, event.reason
        )
        exchange = self._streams.open.get(event.stream_id) if event.stream_id is not None else None
        if exchange is not None:
            # The core has answered (413, 408, 400) and closes the connection.
            exchange.fail(RequestBodyError(event.status, event.reason))
            exchange.cancel_scope.cancel()

    async def _exchange_finished(self, exchange: HTTPExchange) -> None:
        """A handler is done: write what is left, then serve what is pipelined behind
        it, or let the reader end the connection."""
        self._unconsumed = 0
        if not self._conn.should_close and not self._broken:
            # Pipelined requests already buffered are parsed now, in order.
            self._dispatch(self._conn.receive_data(b""))
        try:
            if not self._streams.open:
                await self.flush()
        except ClientDisconnected:
            pass  # the reader sees the connection end
        finally:
            self._wake_reader()
            if self._read_scope is not None:
                if (self._conn.should_close or self._broken) and not self._streams.open:
                    self._read_scope.cancel()
                elif not self._streams.open:
                    # The pending read was armed while the request was in flight (no
                    # timeout); the connection is now idle, so the keep-alive one applies.
                    self._read_scope.deadline = anyio.current_time() + self._read_timeout()

    async def _switch_to_h2c(self, request: RequestReceived) -> SwitchToHTTP2:
        settings = dict(request.headers).get(b"http2-settings", b"")
        self._conn.send(
            SendInformational(
                request.stream_id, 101, ((b"connection", b"Upgrade"), (b"upgrade", b"h2c"))
            )
        )
        await self.flush()
        return SwitchToHTTP2((settings, request), self._conn.take_unparsed())
