"""The request streams of one multiplexed connection (HTTP/2 or HTTP/3), run once for both.

A protocol driver owns the I/O (TCP reads with their deadlines, or routed datagrams and
QUIC timers) and feeds its core's events to :meth:`Streams.dispatch`.  Everything that
follows is the same for both protocols and lives here: the request head mapped for the
application, one :class:`~httpy.backends.exchange.HTTPExchange` and one task per
stream, body events handed to the stream, resets and connection loss cancelling its
handler, bad input logged once, server push, and the end-of-handler rules (500 or a
reset for an unfinished response, the access-log line).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio.abc

from ..core.application import ClientDisconnected, RequestBodyError, RequestHead
from ..core.config import Config
from ..core.errors import LocalProtocolError
from ..core.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    Headers,
    ProtocolError,
    RequestReceived,
    StreamEnded,
    StreamEvent,
    StreamReset,
    StreamWritable,
    TrailersReceived,
)
from ..core.websocket import send_plain
from .connection import ConnectionContext, format_peer, log_exchange
from .exchange import HTTPExchange, StreamPort, pushed_request
from .http2_websocket import serve_http2_websocket
from .logs import error_log


class MultiplexedCore(Protocol):
    """What :class:`FedStreamsPort` needs of a core (HTTP2Connection, HTTP3Connection)."""

    def pending_bytes(self, stream_id: int) -> int: ...

    def acknowledge(self, stream_id: int, size: int) -> None: ...

    def push(
        self, stream_id: int, method: str, path: str, authority: bytes, scheme: str
    ) -> int | None: ...


class FedStreamsPort(ABC):
    """The :class:`~httpy.backends.exchange.StreamPort` members of a driver whose reader
    feeds every stream's body (HTTP/2, HTTP/3): each exchange times its own body reads
    (408 or a reset on its stream) and never pulls.

    The driver provides ``config``, ``_context``, ``_conn``, ``_streams`` and
    :meth:`_send_queued`: how bytes the core queued outside a write get sent.
    """

    config: Config
    pulls_body = False
    _context: ConnectionContext
    _conn: MultiplexedCore
    _streams: Streams

    @abstractmethod
    async def _send_queued(self) -> None:
        """Send (or have the connection's task send) what the core has queued."""

    @property
    def body_timeout(self) -> float:
        return self.config.body_timeout

    async def pull_body(self, exchange: HTTPExchange) -> None:
        raise NotImplementedError("streams are fed by the connection's reader")

    def server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def pending_bytes(self, stream_id: int) -> int:
        return self._conn.pending_bytes(stream_id)

    async def acknowledge(self, stream_id: int, size: int) -> None:
        self._conn.acknowledge(stream_id, size)
        await self._send_queued()  # the WINDOW_UPDATE / MAX_STREAM_DATA

    async def body_timed_out(self, exchange: HTTPExchange) -> None:
        await self._streams.body_timed_out(exchange)

    async def push(self, parent: HTTPExchange, path: str) -> bool:
        head = parent.head
        authority = dict(head.headers).get(b"host", b"")
        promised = self._conn.push(head.stream_id, "GET", path, authority, head.scheme)
        if promised is None:
            return False
        await self._send_queued()  # the PUSH_PROMISE goes out before the pushed response
        self._streams.start_push(parent, path, promised)
        return True


def _abort(stream: HTTPExchange, reason: str) -> None:
    """The client is gone from ``stream``: its reads fail and its handler is cancelled."""
    stream.fail(ClientDisconnected(reason))
    stream.cancel_scope.cancel()


def _on_reset(stream: HTTPExchange, event: StreamReset) -> None:
    _abort(stream, f"stream reset ({event.error_code:#x})")


def _on_body(stream: HTTPExchange, event: BodyReceived) -> None:
    stream.feed(event.data)


def _on_trailers(stream: HTTPExchange, event: TrailersReceived) -> None:
    stream.set_trailers(event.headers)


#: The events about one open stream, and what its exchange does with each (one lookup
#: per event: this runs for every request on every protocol).
_STREAM_EVENTS: dict[type[StreamEvent], Callable[[HTTPExchange, Any], None]] = {
    BodyReceived: _on_body,
    StreamEnded: lambda stream, event: stream.end(),
    TrailersReceived: _on_trailers,
    StreamWritable: lambda stream, event: stream.wake(),
    StreamReset: _on_reset,
}


class Streams:
    """The open streams of one connection and their handlers' tasks.

    ``protocol`` names the protocol in log lines ("HTTP/2", "HTTP/3").  ``on_finished``
    runs after each handler (the driver returns unread body window, re-arms its idle
    timer); ``on_orphan_data`` gets body bytes for a stream whose handler is gone.

    By default each request's handler runs in a task of its own.  With ``on_request`` the
    driver is handed each new exchange instead and runs it itself with :meth:`run`
    (HTTP/1.1 answers one request at a time: its reader runs the handler, no task).
    """

    def __init__(
        self,
        port: StreamPort,
        context: ConnectionContext,
        protocol: str,
        *,
        on_finished: Callable[[HTTPExchange], Awaitable[None]] | None = None,
        on_orphan_data: Callable[[int, int], None] | None = None,
        on_request: Callable[[HTTPExchange], None] | None = None,
    ) -> None:
        self._port = port
        self._context = context
        self._protocol = protocol
        self._on_finished = on_finished
        self._on_orphan_data = on_orphan_data
        self._on_request = on_request
        #: A driver that runs handlers itself cancels them through a scope of its own.
        self._scoped = on_request is None
        self._tasks: anyio.abc.TaskGroup | None = None
        self.open: dict[int, HTTPExchange] = {}

    def bind(self, tasks: anyio.abc.TaskGroup) -> None:
        """The task group the handlers run in (the connection's)."""
        self._tasks = tasks

    # -- events from the core ---------------------------------------------------------

    def dispatch(self, events: list[Event]) -> list[Event]:
        """Act on the events every multiplexed protocol has; return the others, in order,
        for the driver (connection-ID changes on QUIC, for instance)."""
        others: list[Event] = []
        streams = self.open
        for event in events:
            if isinstance(event, StreamEvent):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    _STREAM_EVENTS[type(event)](stream, event)
                elif isinstance(event, BodyReceived) and self._on_orphan_data is not None:
                    self._on_orphan_data(event.stream_id, len(event.data))
            elif isinstance(event, RequestReceived):
                self._open(event)
            elif isinstance(event, ProtocolError):
                self._context.bad_requests.warning(
                    "bad %s input from %s: %s",
                    self._protocol,
                    format_peer(self._context.client),
                    event.reason,
                )
            elif isinstance(event, ConnectionTerminated):
                for stream in streams.values():
                    _abort(stream, event.reason)
            else:
                others.append(event)
        return others

    def begin_shutdown(self) -> None:
        """Graceful shutdown: streams that hold a long-lived session (a WebSocket) close it."""
        for stream in list(self.open.values()):
            if stream.on_shutdown is not None:
                stream.on_shutdown()

    # -- streams ------------------------------------------------------------------------

    def _open(self, event: RequestReceived) -> None:
        stream = self.start(self._context.request_head(event), ended=not event.body_expected)
        stream.expects_continue = event.expects_continue
        if event.method == "CONNECT":
            stream.connect_protocol = event.upgrade

    def start(self, head: RequestHead, ended: bool) -> HTTPExchange:
        """A new stream for ``head`` (a request, or a push we promised), its handler
        started in the connection's task group."""
        stream = HTTPExchange(self._port, head, ended)
        self.open[head.stream_id] = stream
        if self._on_request is not None:
            self._on_request(stream)
            return stream
        if self._tasks is None:
            raise RuntimeError("Streams.bind() must come before the first stream")
        self._tasks.start_soon(self.run, stream)
        return stream

    def start_push(self, parent: HTTPExchange, path: str, promised: int) -> None:
        """Run the handler of a push promised on stream ``promised``."""
        self.start(pushed_request(parent.head, path, promised), ended=True)

    async def _call_app(self, stream: HTTPExchange) -> None:
        context = self._context
        if context.config.client_request_rate is not None and await self._over_rate(stream):
            return
        try:
            if stream.connect_protocol == b"websocket":
                # RFC 8441 (HTTP/2) and RFC 9220 (HTTP/3): the same handshake and session,
                # over this stream's DATA frames.
                await serve_http2_websocket(self._context.app, stream, self._context)
            else:
                await self._context.app.handle_http(stream)
        except (ClientDisconnected, RequestBodyError):
            pass  # RequestBodyError: the protocol has answered (408, 413, 400)
        except Exception:
            error_log.exception("application error on %s %s", stream.head.method, stream.head.path)

    async def _over_rate(self, stream: HTTPExchange) -> bool:
        """``client_request_rate``: True (and the stream answered 429, with a log line)
        when the request's client is over it."""
        clients, client = self._context.clients, stream.head.client
        if clients is None or clients.allow_request(client, anyio.current_time()):
            return False
        self._context.bad_requests.warning(
            "%s request from %s over client_request_rate: 429", self._protocol, format_peer(client)
        )
        retry = (b"retry-after", b"%d" % clients.retry_after())
        with contextlib.suppress(ClientDisconnected, LocalProtocolError):
            await send_plain(stream, 429, b"429 Too Many Requests\n", (retry,))
        return True

    async def body_timed_out(self, stream: HTTPExchange) -> None:
        """The request body stalled for ``body_timeout``: 408 or a reset (see
        :meth:`HTTPExchange.answer_body_timeout`), and a log line."""
        await stream.answer_body_timeout()
        self._context.bad_requests.warning(
            "%s request body from %s timed out (stream %d)",
            self._protocol,
            format_peer(self._context.client),
            stream.head.stream_id,
        )

    async def run(self, stream: HTTPExchange) -> None:
        """Run ``stream``'s handler to the end (in the caller's task)."""
        try:
            if self._scoped:
                with stream.cancel_scope:
                    await self._call_app(stream)
            else:
                await self._call_app(stream)
            if not stream.response_complete and not stream.disconnected:
                await stream.finish_incomplete()
        finally:
            self.open.pop(stream.head.stream_id, None)
            try:
                if self._on_finished is not None:
                    await self._on_finished(stream)
            finally:
                log_exchange(self._context.config, self._context.client, stream)
