"""The HTTP/1.1 connection driver: socket bytes <-> :class:`HTTP1Connection` <-> the app.

Two tasks per connection, whatever the number of requests:

* the **reader** reads the socket (with the header, body and keep-alive timeouts), feeds
  the core and routes its events to the request in flight.  It keeps reading while a
  handler runs, so a client that disconnects is noticed at once and the handler is
  cancelled.  It stops reading when the application is not consuming the body
  (``body_buffer_bytes``) or pipelined bytes pile up (``max_pipeline_bytes``).
* the **responder** (the connection's own task) runs one handler at a time, in request
  order, and is the only task that writes to the socket.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc

from ..core.application import (
    Application,
    ClientDisconnected,
    RequestBodyError,
    RequestHead,
)
from ..core.config import Config
from ..core.errors import LocalProtocolError
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
from ..core.http2_checks import valid_upgrade_settings
from .logs import HTTPDate, RateLimitedLog, access_line, access_log, error_log
from .proxy import chain, proxy_headers_hook
from .request_id import RequestIdEchoApp, ensure_request_id, with_request_id_echo
from .send import send_all

READ_SIZE = 64 * 1024
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class PrefaceSniffer:
    """Tells HTTP/2 with prior knowledge (RFC 9113 3.3) from HTTP/1.x on a cleartext
    connection, from its first bytes (both HTTP/1.1 drivers use it).

    HTTP/2 is the preface, or a first line that is no HTTP/1.x request line at all: a
    client that is not speaking HTTP/1.x gets its invalid preface answered the HTTP/2
    way, GOAWAY PROTOCOL_ERROR (RFC 9113 3.4), by the HTTP/2 core, as over TLS; an
    HTTP/1.x request line (``... HTTP/x.y``) stays HTTP/1.x, errors included (400/505).
    Undecided until the first line is complete (at most ``max_line`` bytes)."""

    __slots__ = ("_max_line", "held")

    def __init__(self, max_line: int) -> None:
        #: The bytes received so far, all held back until the verdict.
        self.held = b""
        self._max_line = max_line

    def feed(self, data: bytes) -> bool | None:
        """True: HTTP/2 (feed :attr:`held` to its core); False: HTTP/1.x (feed
        :attr:`held` to its parser); None: not yet known."""
        seen = self.held = self.held + data
        if HTTP2_PREFACE.startswith(seen[: len(HTTP2_PREFACE)]):
            return True if len(seen) >= len(HTTP2_PREFACE) else None
        start = 0
        while seen.startswith(b"\r\n", start):  # empty lines before the request line
            start += 2
        # The line ends at its first CR or LF (a bare one is HTTP/1.1's to refuse).
        ends = [i for i in (seen.find(b"\r", start), seen.find(b"\n", start)) if i >= 0]
        if not ends:
            return False if len(seen) - start > self._max_line else None
        line = seen[start : min(ends)]
        if not line:  # a lone CR (a CRLF to come?) or LF: no request line to judge
            return None if seen[start:] == b"\r" else False
        if line == HTTP2_PREFACE[:14]:  # "PRI * HTTP/2.0", then not the rest of a preface
            return True
        return not line.rpartition(b" ")[2].startswith(b"HTTP/")

    def for_http1(self) -> bytes:
        """What to give the HTTP/1.1 parser when the connection times out or ends while
        undecided: the bytes held, unless they are the start of an HTTP/2 preface."""
        if HTTP2_PREFACE.startswith(self.held[: len(HTTP2_PREFACE)]):
            return b""
        return self.held


@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """What every connection of one server shares (one object, not many arguments)."""

    app: Application
    config: Config
    bad_requests: RateLimitedLog
    date: HTTPDate
    scheme: str = "http"
    #: Rewrites each request head before the application sees it: proxy headers from
    #: trusted peers, the TLS client certificate (None: nothing to do, no cost).
    head_hook: Callable[[RequestHead], RequestHead] | None = None

    def server_headers(self, headers: Headers) -> Headers:
        """``headers`` plus what the server adds to every response: Date, and Server
        unless ``Config.server_header`` is empty."""
        extra: Headers = ((b"date", self.date.now()),)
        if self.config.server_header:
            extra += ((b"server", self.config.server_header.encode("latin-1")),)
        return (*headers, *extra)

    @classmethod
    def create(cls, app: Application, config: Config, scheme: str = "http") -> ConnectionContext:
        head_hook = proxy_headers_hook(config)
        if config.request_id:
            head_hook = chain(ensure_request_id, head_hook)
            if not isinstance(app, RequestIdEchoApp):
                app = with_request_id_echo(app)
        return cls(
            app=app,
            config=config,
            bad_requests=RateLimitedLog(error_log, config.bad_request_log_rate),
            date=HTTPDate(),
            scheme=scheme,
            head_hook=head_hook,
        )

    def adjust(self, head: RequestHead) -> RequestHead:
        """``head`` as the application must see it (see ``head_hook``)."""
        return head if self.head_hook is None else self.head_hook(head)


class HTTP1Writer(Protocol):
    """What an :class:`HTTP1Stream` needs of its driver (either HTTP/1.1 driver)."""

    config: Config

    def add_server_headers(self, headers: Headers) -> Headers: ...

    def queue_command(self, command: SendResponse) -> None: ...

    async def write_command(self, command: SendData | SendTrailers | SendInformational) -> None: ...


class HTTP1Stream:
    """The :class:`~httpy.core.application.HTTPStream` of one HTTP/1.1 request."""

    def __init__(self, driver: HTTP1Writer, head: RequestHead, expects_continue: bool) -> None:
        self._driver = driver
        self._head = head
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ended = not head.body_expected
        self._trailers: Headers = ()
        self._error: Exception | None = None
        # Made when first awaited: most requests have no body to wait for.
        self._data_ready: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        #: Called when the application has consumed the buffered body (back-pressure).
        self.on_drained: Callable[[], None] | None = None
        self._expects_continue = expects_continue
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self.bytes_sent = 0
        self.started_at = time.monotonic()
        self._cancel_scope: anyio.CancelScope | None = None

    @property
    def cancel_scope(self) -> anyio.CancelScope:
        """The scope the portable driver runs the handler in (made on first use: the
        asyncio fast path creates streams in protocol callbacks, outside any task)."""
        if self._cancel_scope is None:
            self._cancel_scope = anyio.CancelScope()
        return self._cancel_scope

    # -- HTTPStream ----------------------------------------------------------------

    @property
    def head(self) -> RequestHead:
        return self._head

    @property
    def disconnected(self) -> bool:
        return isinstance(self._error, ClientDisconnected)

    @property
    def buffered(self) -> int:
        """Body bytes received and not yet consumed by the application."""
        return self._buffered

    @property
    def trailers(self) -> Headers:
        return self._trailers

    async def receive(self) -> bytes:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= self._driver.config.body_buffer_bytes:
                    if self._drained is not None:
                        self._drained.set()
                    if self.on_drained is not None:
                        self.on_drained()
                return chunk
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            if self._expects_continue:
                self._expects_continue = False
                await self._driver.write_command(SendInformational(self._head.stream_id, 100))
            self._data_ready = anyio.Event()
            await self._data_ready.wait()
            self._data_ready = None

    async def push(self, path: str) -> bool:
        return False  # HTTP/1.1 has no server push; see 103 Early Hints

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        await self._driver.write_command(SendInformational(self._head.stream_id, status, headers))

    async def send_response(self, status: int, headers: Headers) -> None:
        if self._error is not None and self.disconnected:
            raise self._error
        self._driver.queue_command(
            SendResponse(self._head.stream_id, status, self._driver.add_server_headers(headers))
        )
        self.response_started = True
        self.status = status

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if self.disconnected and self._error is not None:
            raise self._error
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_body")
        self.bytes_sent += len(data)
        if end:
            self.response_complete = True
        await self._driver.write_command(SendData(self._head.stream_id, data, end))

    async def send_trailers(self, headers: Headers) -> None:
        if self.disconnected and self._error is not None:
            raise self._error
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_trailers")
        self.response_complete = True
        await self._driver.write_command(SendTrailers(self._head.stream_id, headers))

    # -- driven by the reader ------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._data_ready is not None:
            self._data_ready.set()

    def end(self) -> None:
        self._ended = True
        if self._data_ready is not None:
            self._data_ready.set()

    def set_trailers(self, headers: Headers) -> None:
        self._trailers = headers

    def fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        if self._data_ready is not None:
            self._data_ready.set()
        if self._drained is not None:
            self._drained.set()

    async def wait_drained(self) -> None:
        while self._buffered > self._driver.config.body_buffer_bytes and self._error is None:
            self._drained = anyio.Event()
            await self._drained.wait()
            self._drained = None


class HTTP1Driver:
    """Runs one HTTP/1.1 connection to completion; see the module docstring."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        *,
        connection: HTTP1Connection | None = None,
        initial_events: list[Event] | None = None,
    ) -> None:
        """``connection`` and ``initial_events`` continue a connection that another
        driver started (the asyncio fast path hands over upgrade requests this way)."""
        self._stream = stream
        self._context = context
        self.config = context.config
        self._conn = connection if connection is not None else HTTP1Connection(context.config)
        self._initial_events = initial_events or []
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
        self._client = client
        self._server = server
        self._current: HTTP1Stream | None = None
        self._pending: HTTP1Stream | None = None
        self._wake = anyio.Event()
        # Made only when the reader waits for pipelined bytes to be consumed.
        self._cycle_done: anyio.Event | None = None
        self._reader_done = False
        self._read_scope: anyio.CancelScope | None = None
        self._head_deadline: float | None = None
        #: Until the first request's first byte: when a connection that sent nothing is
        #: dropped (see _read_timeout).  Set on the first read.
        self._first_byte_deadline: float | None = None
        self._closing = False
        # A connection accepted just before a shutdown has a request coming (that is why
        # the client connected): it is answered, with Connection: close, not dropped.
        self._seen_request = False
        if connection is not None:
            self._sniffer = None  # HTTP/1.1 was settled by the first driver
            # Handed over after a request (an upgrade): the keep-alive rules apply.
            self._seen_request = True

    # -- public --------------------------------------------------------------------

    async def run(self) -> SwitchToHTTP2 | SwitchToWebSocket | None:
        """Serve requests until the connection ends, then close the socket.

        Returns an :class:`SwitchToHTTP2` instead (leaving the socket open) when the client
        upgraded the connection to HTTP/2 with ``Upgrade: h2c``.
        """
        upgrade: SwitchToHTTP2 | SwitchToWebSocket | None = None
        try:
            async with anyio.create_task_group() as tasks:
                if self._initial_events:
                    self._dispatch(self._initial_events)
                tasks.start_soon(self._reader)
                try:
                    await self._respond_loop()
                    if self._h2c is not None:
                        upgrade = await self._switch_to_h2c(self._h2c)
                    elif self._prior_knowledge is not None:
                        upgrade = SwitchToHTTP2(None, self._prior_knowledge)
                    elif self._websocket is not None:
                        upgrade = SwitchToWebSocket(self._websocket, self._conn)
                finally:
                    tasks.cancel_scope.cancel()
        except* (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, TimeoutError):
            # The peer vanished, or stopped reading for send_timeout: nothing left to tell it.
            pass
        finally:
            if upgrade is None:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
        return upgrade

    @property
    def _switching(self) -> bool:
        return (
            self._h2c is not None
            or self._prior_knowledge is not None
            or self._websocket is not None
        )

    async def _switch_to_h2c(self, request: RequestReceived) -> SwitchToHTTP2:
        settings = dict(request.headers).get(b"http2-settings", b"")
        self._conn.send(
            SendInformational(
                request.stream_id, 101, ((b"connection", b"Upgrade"), (b"upgrade", b"h2c"))
            )
        )
        await self._flush()
        return SwitchToHTTP2((settings, request), self._conn.take_unparsed())

    def begin_shutdown(self) -> None:
        """Graceful shutdown: finish the request in flight, then close; idle: close now."""
        self._closing = True
        if self._seen_request:
            # Before the first request, closing the core now would drop the request the
            # client connected to send: it is answered, then closed (see _dispatch).
            self._conn.send(CloseConnection())
        if (
            self._conn.awaiting_head
            and self._current is None
            and self._read_scope is not None
            and self._seen_request
        ):
            self._read_scope.cancel()
        self._wake.set()

    # -- used by HTTP1Stream -------------------------------------------------------

    def add_server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def queue_command(self, command: SendResponse) -> None:
        """Apply a command without writing: the head waits for the first body bytes."""
        self._conn.send(command)

    async def write_command(self, command: SendData | SendTrailers | SendInformational) -> None:
        """Apply ``command`` and write it.  A peer that is gone, or has not read for
        ``send_timeout``, fails the request with :class:`ClientDisconnected` (what the
        application is told, as on the other drivers), not a transport error."""
        self._conn.send(command)
        try:
            await self._flush()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            # (TimeoutError is an OSError: a peer that stopped reading for send_timeout.)
            error = ClientDisconnected(f"connection lost while sending: {exc!r}")
            if self._current is not None:
                self._current.fail(error)
            raise error from exc

    # -- internals -----------------------------------------------------------------

    async def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            await send_all(self._stream, data, self.config.send_timeout)

    async def _respond_loop(self) -> None:
        while True:
            stream = await self._next_request()
            if stream is None:
                break
            self._current = stream
            await self._run_handler(stream)
            self._current = None
            log_exchange(self.config, self._client, stream)
            # Not kept while the connection idles: an idle keep-alive connection should
            # hold no request (its head, headers and cancel scope are ~1 KB).
            del stream
            if self._cycle_done is not None:
                self._cycle_done.set()
                self._cycle_done = None
            if self._read_scope is not None:
                # The reader's pending read was armed while the request was in flight
                # (no timeout); the connection is now idle, so the keep-alive one applies.
                self._read_scope.deadline = anyio.current_time() + self._read_timeout()
            if self._conn.should_close:
                break
            # Pipelined requests already buffered are parsed now, in order.
            self._dispatch(self._conn.receive_data(b""))
        await self._flush()

    async def _next_request(self) -> HTTP1Stream | None:
        while self._pending is None:
            if self._reader_done or self._conn.should_close or self._switching:
                return None
            self._wake = anyio.Event()
            await self._wake.wait()
        stream, self._pending = self._pending, None
        return stream

    async def _run_handler(self, stream: HTTP1Stream) -> None:
        with stream.cancel_scope:
            try:
                await self._context.app.handle_http(stream)
            except ClientDisconnected:
                pass
            except RequestBodyError:
                pass  # the core has answered (413/408/400) and closes the connection
            except Exception:
                error_log.exception(
                    "application error on %s %s", stream.head.method, stream.head.path
                )
        if stream.cancel_scope.cancelled_caught or stream.disconnected:
            if not stream.response_complete and not self._conn.should_close:
                self._conn.send(ResetStream(stream.head.stream_id))
            return
        if not stream.response_complete:
            await self._finish_incomplete(stream)

    async def _finish_incomplete(self, stream: HTTP1Stream) -> None:
        await finish_incomplete_response(stream, self._conn.send)

    async def _reader(self) -> None:
        try:
            while self._reading:
                # One cancel scope for as many reads as pass without a timeout (entering
                # a scope per read cost more than parsing a request): each read moves its
                # deadline; the scope ends when a deadline passes or begin_shutdown
                # cancels it, and that is answered as receive_timeout / receive_eof.
                with anyio.CancelScope() as scope:
                    self._read_scope = scope
                    await self._read_until_timeout(scope)
                self._read_scope = None
                if not scope.cancel_called:
                    break
                self._settle_for_http1()
                events = self._conn.receive_eof() if self._closing else self._conn.receive_timeout()
                self._dispatch(events)
        finally:
            self._read_scope = None
            self._reader_done = True
            self._wake.set()

    def _settle_for_http1(self) -> None:
        """Timed out or ended while still telling HTTP/1.1 from HTTP/2: what came is an
        HTTP/1.1 request's start (answered 408 or 400 as such), or nothing to answer."""
        if self._sniffer is not None:
            held, self._sniffer = self._sniffer.for_http1(), None
            if held:
                self._dispatch(self._conn.receive_data(held))

    @property
    def _reading(self) -> bool:
        return not self._conn.should_close and self._h2c is None and self._websocket is None

    async def _read_until_timeout(self, scope: anyio.CancelScope) -> None:
        """Read and dispatch until the connection stops being HTTP/1.1 or ends; returns
        early only by ``scope`` being cancelled (a timeout or a graceful shutdown)."""
        while self._reading:
            scope.deadline = math.inf  # waiting for the application is not a read
            await self._wait_for_room()
            if self._conn.should_close:
                return
            scope.deadline = anyio.current_time() + self._read_timeout()
            try:
                data = await self._stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                data = b""
            scope.deadline = math.inf
            if not data:
                self._settle_for_http1()
                self._dispatch(self._conn.receive_eof())
                return  # nothing more will come; the responder finishes up
            if self._sniffer is not None:
                # Still deciding between HTTP/1.1 and HTTP/2 prior knowledge.
                http2 = self._sniffer.feed(data)
                if http2 is None:
                    continue
                data, self._sniffer = self._sniffer.held, None
                if http2:
                    self._prior_knowledge = data
                    self._wake.set()
                    return
            self._dispatch(self._conn.receive_data(data))
            if self._h2c is not None or self._websocket is not None:
                return  # what follows is another protocol: the connection changes hands
            current = self._current or self._pending
            if current is not None:
                await current.wait_drained()
                del current  # the next read may wait for a long, idle time

    async def _wait_for_room(self) -> None:
        """Back-pressure: don't read while pipelined bytes pile up unparsed."""
        while self._conn.buffered_bytes > self.config.max_pipeline_bytes:
            if self._cycle_done is None:
                self._cycle_done = anyio.Event()
            await self._cycle_done.wait()

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

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                self._head_deadline = None
                if self._closing and not self._seen_request:
                    self._conn.send(CloseConnection())  # answer it with Connection: close
                self._seen_request = True
                # h2c is cleartext HTTP/2: over TLS, HTTP/2 is chosen by ALPN only.
                if _wants_h2c(event) and not self._closing and self._context.scheme == "http":
                    self._h2c = event
                    self._wake.set()
                    continue
                if _wants_websocket(event) and not self._closing:
                    self._websocket = event  # the WebSocket driver runs the app on it
                    self._wake.set()
                    continue
                self._pending = self._open_stream(event)
                self._wake.set()
            elif isinstance(event, BodyReceived | StreamEnded | TrailersReceived):
                deliver_body_event(self._stream_for(event.stream_id), event)
            elif isinstance(event, StreamReset | ConnectionTerminated):
                self._disconnect()
            elif isinstance(event, ProtocolError):
                self._on_protocol_error(event)

    def _stream_for(self, stream_id: int) -> HTTP1Stream | None:
        for stream in (self._current, self._pending):
            if stream is not None and stream.head.stream_id == stream_id:
                return stream
        return None

    def _open_stream(self, event: RequestReceived) -> HTTP1Stream:
        head = request_head(event, self._context.scheme, self._client, self._server)
        return HTTP1Stream(self, self._context.adjust(head), event.expects_continue)

    def _disconnect(self) -> None:
        for stream in (self._current, self._pending):
            if stream is not None and not stream.response_complete:
                stream.fail(ClientDisconnected("client disconnected"))
                stream.cancel_scope.cancel()
        self._pending = None
        self._wake.set()

    def _on_protocol_error(self, event: ProtocolError) -> None:
        self._context.bad_requests.warning(
            "bad request from %s: %d %s", format_peer(self._client), event.status, event.reason
        )
        stream = self._stream_for(event.stream_id) if event.stream_id is not None else None
        if stream is not None:
            stream.fail(RequestBodyError(event.status, event.reason))
            stream.cancel_scope.cancel()
        self._pending = None
        self._wake.set()


@dataclass(frozen=True, slots=True)
class SwitchToHTTP2:
    """The connection turned out to be HTTP/2: by ``Upgrade: h2c`` (``upgrade`` holds the
    HTTP2-Settings value and the request to answer as stream 1) or by prior knowledge
    (the client opened with the HTTP/2 preface; ``upgrade`` is None).  ``unparsed``
    holds the bytes already received that belong to HTTP/2."""

    upgrade: tuple[bytes, RequestReceived] | None
    unparsed: bytes


def deliver_body_event(
    stream: HTTP1Stream | None, event: BodyReceived | StreamEnded | TrailersReceived
) -> None:
    """Hand a body event of the core to its request's stream (None: no one is waiting
    for it any more, and it is dropped)."""
    if stream is None:
        return
    if isinstance(event, BodyReceived):
        stream.feed(event.data)
    elif isinstance(event, StreamEnded):
        stream.end()
    else:
        stream.set_trailers(event.headers)


def request_head(
    event: RequestReceived,
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
) -> RequestHead:
    """The application's view of an HTTP/1.1 request head."""
    path, _, query = event.target.partition(b"?")
    return RequestHead(
        method=event.method,
        path=path.decode("latin-1"),
        query_string=query,
        headers=event.headers,
        http_version=event.http_version,
        scheme=scheme,
        client=client,
        server=server,
        body_expected=event.body_expected,
        stream_id=event.stream_id,
    )


async def finish_incomplete_response(
    stream: HTTP1Stream, send: Callable[[ResetStream], None]
) -> None:
    """The handler returned or failed without completing its response: answer 500 if
    nothing was sent yet, else abandon the response (``send(ResetStream)`` closes)."""
    try:
        if not stream.response_started:
            body = b"Internal Server Error\n"
            await stream.send_response(
                500,
                (
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ),
            )
            await stream.send_body(body, end=True)
        else:
            send(ResetStream(stream.head.stream_id))
    except (ClientDisconnected, LocalProtocolError):
        pass


@dataclass(frozen=True, slots=True)
class SwitchToWebSocket:
    """An ``Upgrade: websocket`` request arrived: the WebSocket driver takes the
    connection.  ``connection`` is mid-exchange with ``request`` (so a refusal is still
    an HTTP/1.1 response) and holds the bytes received behind it."""

    request: RequestReceived
    connection: HTTP1Connection


def _wants_websocket(event: RequestReceived) -> bool:
    # A body would have to be read over HTTP/1.1 first: such requests stay HTTP.
    return (
        event.upgrade is not None
        and b"websocket" in (t.strip() for t in event.upgrade.split(b","))
        and event.method == "GET"
        and not event.body_expected
    )


def _wants_h2c(event: RequestReceived) -> bool:
    # Upgrade with a body would need the body read over HTTP/1.1 first; such requests
    # are simply answered over HTTP/1.1, which RFC 9113 3.2 allows.
    # Exactly one HTTP2-Settings, and valid (RFC 7540 3.2.1); otherwise no upgrade.
    if event.upgrade != b"h2c" or event.body_expected:
        return False
    settings = [value for name, value in event.headers if name == b"http2-settings"]
    return len(settings) == 1 and valid_upgrade_settings(settings[0])


def log_access(
    config: Config,
    client: tuple[str, int] | None,
    head: RequestHead,
    status: int,
    bytes_sent: int,
    started_at: float,
) -> None:
    """One ``httpy.access`` line for a finished exchange (any HTTP version)."""
    if not config.access_log or not access_log.isEnabledFor(logging.INFO):
        return
    line = access_line(config.access_log_format)
    access_log.info(
        "%s", line.format(client, head, status, bytes_sent, time.monotonic() - started_at)
    )


class Exchange(Protocol):
    """What an access-log line needs of a finished request (every driver's stream)."""

    @property
    def head(self) -> RequestHead: ...

    status: int
    bytes_sent: int
    started_at: float


def log_exchange(config: Config, client: tuple[str, int] | None, stream: Exchange) -> None:
    """:func:`log_access` for a finished stream of any HTTP version."""
    log_access(config, client, stream.head, stream.status, stream.bytes_sent, stream.started_at)


def format_peer(peer: tuple[str, int] | None) -> str:
    if peer is None:
        return "-"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
