"""WebSocket drivers: the opening handshake as an application call, then the session.

The application sees a WebSocket handshake as an ordinary request (middleware,
authentication, routing all apply).  Its stream is also a
:class:`~httpy.core.websocket.WebSocketHandshake` when the handshake is valid: the
application either answers it like any request (a 401/403 refusal; the connection then
closes) or calls ``accept_websocket``, which sends the accepting answer and returns a
running :class:`~httpy.backends.websocket_session.WebSocketSession`.  When the
application's call returns, the session is closed (1000 if it is still open) and the
closing handshake completes, bounded by ``ws_close_timeout``.

* :class:`WebSocketDriver` takes an HTTP/1.1 connection after
  :class:`~httpy.backends.connection.SwitchToWebSocket` (RFC 6455 Upgrade): 101, then the
  socket carries WebSocket frames.
* :mod:`httpy.backends.http2_websocket` does the same over an HTTP/2 or HTTP/3 stream
  opened by an extended CONNECT (RFC 8441, RFC 9220).

Both are a :class:`HandshakePort` under the one handshake written here
(:func:`serve_handshake`, :class:`UpgradeStream`, :class:`WebSocketExchange`): refusals,
the accepting answer and the session's start are the same code on every HTTP version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import anyio
import anyio.abc

from ..core.application import Application, ClientDisconnected, RequestHead, StreamError
from ..core.errors import LocalProtocolError
from ..core.events import CloseConnection, Headers, SendData, SendInformational, SendResponse
from ..core.http1 import HTTP1Connection
from ..core.websocket import (
    HandshakeRefused,
    HandshakeRequest,
    WebSocketChannel,
    WebSocketHandshake,
    WebSocketOffer,
    WebSocketOptions,
    WebSocketProtocol,
    accept_response,
    parse_offer,
    send_plain,
)
from .connection import (
    ConnectionContext,
    SwitchToWebSocket,
    format_peer,
    log_access,
)
from .logs import error_log
from .send import send_all
from .websocket_session import StreamTransport, Transport, WebSocketSession

_SEND_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, TimeoutError)


class HandshakePort(Protocol):
    """What the handshake needs of its HTTP version: the HTTP/1.1 connection after an
    ``Upgrade: websocket`` request (:class:`WebSocketDriver`), or an extended CONNECT
    stream (:class:`~httpy.backends.http2_websocket.ExchangePort`)."""

    @property
    def disconnected(self) -> bool: ...

    async def send_informational(self, status: int, headers: Headers) -> None: ...

    async def send_response(self, status: int, headers: Headers) -> None: ...

    async def send_body(self, data: bytes, end: bool) -> None: ...

    async def send_trailers(self, headers: Headers) -> None: ...

    async def accept(self, headers: Headers) -> tuple[Transport, bytes]:
        """Send the accepting answer (101, or 200) with ``headers``; return the session's
        transport and what the peer already sent behind its handshake."""
        ...

    def watch_shutdown(self, begin: Callable[[], None] | None) -> None:
        """Call ``begin`` on server shutdown (now, if it has begun); None: no more."""
        ...


def websocket_options(context: ConnectionContext) -> WebSocketOptions:
    config = context.config
    return WebSocketOptions(
        max_message_bytes=config.ws_max_message_bytes, compression=config.ws_compression
    )


class UpgradeStream(HandshakeRequest):
    """The :class:`~httpy.core.application.HTTPStream` of a handshake request, on any
    HTTP version (its :class:`HandshakePort`); any response refuses it."""

    def __init__(self, port: HandshakePort, head: RequestHead) -> None:
        self._port = port
        self._head = head
        self.response_started = False
        #: The session, once :meth:`WebSocketExchange.accept_websocket` opened it.
        self.session: WebSocketSession | None = None

    @property
    def head(self) -> RequestHead:
        return self._head

    @property
    def disconnected(self) -> bool:
        return self._port.disconnected

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        await self._port.send_informational(status, headers)

    async def send_response(self, status: int, headers: Headers) -> None:
        if self.response_started:
            raise LocalProtocolError("response already started")
        await self._port.send_response(status, headers)
        self.response_started = True

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_body")
        await self._port.send_body(data, end)

    async def send_trailers(self, headers: Headers) -> None:
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_trailers")
        await self._port.send_trailers(headers)


class WebSocketExchange(UpgradeStream, WebSocketHandshake):
    """A valid opening handshake, on any HTTP version: :meth:`accept_websocket` answers
    it and starts the :class:`~httpy.backends.websocket_session.WebSocketSession`."""

    def __init__(
        self,
        port: HandshakePort,
        head: RequestHead,
        offer: WebSocketOffer,
        context: ConnectionContext,
        tasks: anyio.abc.TaskGroup,
    ) -> None:
        super().__init__(port, head)
        self._offer = offer
        self._context = context
        self._tasks = tasks

    @property
    def websocket_offer(self) -> WebSocketOffer:
        return self._offer

    async def accept_websocket(
        self, subprotocol: str | None = None, headers: Headers = ()
    ) -> WebSocketChannel:
        if self.response_started:
            raise LocalProtocolError("the handshake was already answered")
        response, extensions = accept_response(
            self._offer, subprotocol, headers, websocket_options(self._context)
        )
        transport, leftover = await self._port.accept(response)
        self.response_started = True
        config = self._context.config
        protocol = WebSocketProtocol(
            extensions,
            max_message_bytes=config.ws_max_message_bytes,
            message_timeout=config.ws_message_timeout,
        )
        peer = format_peer(self.head.client)
        session = WebSocketSession(transport, protocol, config, peer, self._context.bad_requests)
        session.start(self._tasks, leftover)
        self.session = session
        tasks = self._tasks
        self._port.watch_shutdown(lambda: session.begin_shutdown(tasks))
        return session


async def serve_handshake(
    app: Application,
    port: HandshakePort,
    head: RequestHead,
    offer: WebSocketOffer | HandshakeRefused,
    context: ConnectionContext,
) -> None:
    """Run ``app`` on a handshake request (a :class:`WebSocketExchange` when
    ``offer`` is valid), then end the session it opened, or answer 500 if it neither
    accepted nor answered."""
    async with anyio.create_task_group() as tasks:
        stream = (
            WebSocketExchange(port, head, offer, context, tasks)
            if isinstance(offer, WebSocketOffer)
            else UpgradeStream(port, head)
        )
        try:
            await _run_app(app, stream)
        finally:
            port.watch_shutdown(None)  # the task group is closing: nothing may start in it
            tasks.cancel_scope.cancel()


async def _run_app(app: Application, stream: UpgradeStream) -> None:
    try:
        await app.handle_http(stream)
    except StreamError:
        pass  # the peer went away (ClientDisconnected, WebSocketDisconnect)
    except Exception:
        error_log.exception("application error on WebSocket %s", stream.head.path)
    if stream.session is not None:
        await stream.session.finish()
    elif not stream.response_started:
        # Neither accepted nor answered: the application has no such WebSocket.
        await send_plain(stream, 500, b"Internal Server Error\n")


# --------------------------------------------------------------------------- HTTP/1.1


class WebSocketDriver:
    """Runs an HTTP/1.1 connection from its ``Upgrade: websocket`` request to the end
    of the WebSocket; always closes the socket.  The :class:`HandshakePort` of the
    HTTP/1.1 handshake: any answer but the 101 closes the connection after it."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
        switch: SwitchToWebSocket,
    ) -> None:
        self._stream = stream
        self._context = context
        self.config = context.config
        self._conn: HTTP1Connection = switch.connection
        self._head = context.request_head(switch.request)
        self._on_shutdown: Callable[[], None] | None = None
        self._closing = False
        # For the access log.
        self._status = 0
        self._bytes_sent = 0

    async def run(self) -> None:
        started = time.monotonic()
        try:
            offer = parse_offer(self._head)
            await serve_handshake(self._context.app, self, self._head, offer, self._context)
        except* (*_SEND_ERRORS, ClientDisconnected):
            pass  # the peer vanished; nothing left to tell it
        finally:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            log_access(
                self.config,
                self._context.client,
                self._head,
                self._status,
                self._bytes_sent,
                started,
            )

    def begin_shutdown(self) -> None:
        """Server shutdown: an open WebSocket is closed with 1012 (the handler sees the
        close); a handshake still being decided is closed with 1012 once accepted."""
        self._closing = True
        if self._on_shutdown is not None:
            self._on_shutdown()

    # -- HandshakePort -------------------------------------------------------------------

    @property
    def disconnected(self) -> bool:
        return False

    async def send_informational(self, status: int, headers: Headers) -> None:
        pass  # an interim answer to an upgrade request would be read as the 101

    async def send_response(self, status: int, headers: Headers) -> None:
        # After answering an upgrade request with anything but 101 we close: the client
        # may have sent frames behind its request.
        self._conn.send(CloseConnection())
        self._conn.send(
            SendResponse(self._head.stream_id, status, self._context.server_headers(headers))
        )
        self._status = status

    async def send_body(self, data: bytes, end: bool) -> None:
        self._bytes_sent += len(data)
        self._conn.send(SendData(self._head.stream_id, data, end))
        await self._write(self._conn.data_to_send())

    async def send_trailers(self, headers: Headers) -> None:
        await self.send_body(b"", end=True)  # a refusal is a plain response: no trailers

    async def accept(self, headers: Headers) -> tuple[Transport, bytes]:
        response = SendInformational(
            self._head.stream_id, 101, self._context.server_headers(headers)
        )
        self._conn.send(response)
        await self._write(self._conn.data_to_send())
        self._status = 101
        return StreamTransport(self._stream, self.config), self._conn.take_unparsed()

    def watch_shutdown(self, begin: Callable[[], None] | None) -> None:
        self._on_shutdown = begin
        if begin is not None and self._closing:
            begin()

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            await send_all(self._stream, data, self.config)
        except _SEND_ERRORS as exc:
            raise ClientDisconnected(f"connection lost during the handshake: {exc!r}") from exc
