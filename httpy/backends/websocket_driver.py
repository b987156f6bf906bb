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
* :mod:`httpy.backends.http2_websocket` does the same over an HTTP/2 stream opened by
  an extended CONNECT (RFC 8441).
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio
import anyio.abc

from ..core.application import (
    Application,
    ClientDisconnected,
    HTTPStream,
    RequestHead,
    StreamError,
)
from ..core.errors import LocalProtocolError
from ..core.events import (
    CloseConnection,
    Headers,
    SendData,
    SendInformational,
    SendResponse,
)
from ..core.http1 import HTTP1Connection
from ..core.websocket import (
    WebSocketChannel,
    WebSocketHandshake,
    WebSocketOffer,
    WebSocketOptions,
    WebSocketProtocol,
    accept_response,
    parse_offer,
)
from .connection import ConnectionContext, SwitchToWebSocket, format_peer, log_access
from .logs import error_log
from .send import send_all
from .websocket_session import StreamTransport, WebSocketSession

_SEND_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, TimeoutError)


class HandshakeStream(HTTPStream, Protocol):
    """What :func:`run_exchange` needs of a handshake stream, beyond HTTPStream."""

    @property
    def response_started(self) -> bool: ...

    async def send_plain(self, status: int, body: bytes) -> None: ...


def websocket_options(context: ConnectionContext) -> WebSocketOptions:
    config = context.config
    return WebSocketOptions(
        max_message_bytes=config.ws_max_message_bytes, compression=config.ws_compression
    )


async def run_exchange(
    app: Application,
    stream: HandshakeStream,
    sessions: list[WebSocketSession],
) -> None:
    """Run the application on a handshake stream, then end the session it opened.

    ``sessions`` receives the session once accepted (one at most)."""
    try:
        await app.handle_http(stream)
    except StreamError:
        pass  # the peer went away (ClientDisconnected, WebSocketDisconnect)
    except Exception:
        error_log.exception("application error on WebSocket %s", stream.head.path)
    if sessions:
        await sessions[0].finish()
    elif not stream.response_started:
        # Neither accepted nor answered: the application has no such WebSocket.
        await stream.send_plain(500, b"Internal Server Error\n")


# --------------------------------------------------------------------------- HTTP/1.1


class HTTP1UpgradeStream:
    """The :class:`~httpy.core.application.HTTPStream` of an ``Upgrade: websocket``
    request over HTTP/1.1.  The request has no body; any response closes the
    connection afterwards."""

    def __init__(self, driver: WebSocketDriver, head: RequestHead) -> None:
        self._driver = driver
        self._head = head
        self.response_started = False
        self.status = 0
        self.bytes_sent = 0

    @property
    def head(self) -> RequestHead:
        return self._head

    @property
    def disconnected(self) -> bool:
        return False

    @property
    def trailers(self) -> Headers:
        return ()

    async def receive(self) -> bytes:
        return b""

    async def send_trailers(self, headers: Headers) -> None:
        # A refusal is a plain response: end it without trailers.
        await self.send_body(b"", end=True)

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        pass  # an interim answer to an upgrade request would be read as the 101

    async def push(self, path: str) -> bool:
        return False

    async def send_response(self, status: int, headers: Headers) -> None:
        if self.response_started:
            raise LocalProtocolError("response already started")
        self._driver.refuse(status, headers)
        self.response_started = True
        self.status = status

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_body")
        self.bytes_sent += len(data)
        await self._driver.write_body(data, end)

    async def send_plain(self, status: int, body: bytes) -> None:
        headers = ((b"content-type", b"text/plain; charset=utf-8"),)
        await self.send_response(status, (*headers, (b"content-length", b"%d" % len(body))))
        await self.send_body(body, end=True)


class HTTP1HandshakeStream(HTTP1UpgradeStream, WebSocketHandshake):
    """An ``Upgrade: websocket`` request that is a valid opening handshake."""

    def __init__(self, driver: WebSocketDriver, head: RequestHead, offer: WebSocketOffer) -> None:
        super().__init__(driver, head)
        self._offer = offer

    @property
    def websocket_offer(self) -> WebSocketOffer:
        return self._offer

    async def accept_websocket(
        self, subprotocol: str | None = None, headers: Headers = ()
    ) -> WebSocketChannel:
        if self.response_started:
            raise LocalProtocolError("the handshake was already answered")
        session = await self._driver.accept(self._offer, subprotocol, headers)
        self.response_started = True
        self.status = 101
        return session


class WebSocketDriver:
    """Runs an HTTP/1.1 connection from its ``Upgrade: websocket`` request to the end
    of the WebSocket; always closes the socket."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        context: ConnectionContext,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        switch: SwitchToWebSocket,
    ) -> None:
        self._stream = stream
        self._context = context
        self.config = context.config
        self._conn: HTTP1Connection = switch.connection
        self._client = client
        request = switch.request
        path, _, query = request.target.partition(b"?")
        self._head = RequestHead(
            method=request.method,
            path=path.decode("latin-1"),
            query_string=query,
            headers=request.headers,
            http_version=request.http_version,
            scheme=context.scheme,
            client=client,
            server=server,
            body_expected=False,
            stream_id=request.stream_id,
        )
        self._tasks: anyio.abc.TaskGroup | None = None
        self._sessions: list[WebSocketSession] = []
        self._closing = False

    async def run(self) -> None:
        offer = parse_offer(self._head)
        stream = (
            HTTP1HandshakeStream(self, self._head, offer)
            if isinstance(offer, WebSocketOffer)
            else HTTP1UpgradeStream(self, self._head)
        )
        started = time.monotonic()
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                await run_exchange(self._context.app, stream, self._sessions)
                self._tasks = None  # finished: no task may start in the group now
                tasks.cancel_scope.cancel()
        except* (*_SEND_ERRORS, ClientDisconnected):
            pass  # the peer vanished; nothing left to tell it
        finally:
            with anyio.CancelScope(shield=True):
                await self._stream.aclose()
            log_access(
                self.config, self._client, self._head, stream.status, stream.bytes_sent, started
            )

    def begin_shutdown(self) -> None:
        """Server shutdown: an open WebSocket is closed with 1012 (the handler sees the
        close); a handshake still being decided is closed with 1012 once accepted."""
        self._closing = True
        if self._sessions and self._tasks is not None:
            self._sessions[0].begin_shutdown(self._tasks)

    # -- used by the streams -----------------------------------------------------------

    def _server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def refuse(self, status: int, headers: Headers) -> None:
        # After answering an upgrade request with anything but 101 we close: the client
        # may have sent frames behind its request.
        self._conn.send(CloseConnection())
        self._conn.send(SendResponse(self._head.stream_id, status, self._server_headers(headers)))

    async def write_body(self, data: bytes, end: bool) -> None:
        self._conn.send(SendData(self._head.stream_id, data, end))
        await self._write(self._conn.data_to_send())

    async def accept(
        self, offer: WebSocketOffer, subprotocol: str | None, headers: Headers
    ) -> WebSocketSession:
        response, extensions = accept_response(
            offer, subprotocol, headers, websocket_options(self._context)
        )
        self._conn.send(
            SendInformational(self._head.stream_id, 101, self._server_headers(response))
        )
        await self._write(self._conn.data_to_send())
        leftover = self._conn.take_unparsed()
        protocol = WebSocketProtocol(extensions, max_message_bytes=self.config.ws_max_message_bytes)
        session = WebSocketSession(
            StreamTransport(self._stream),
            protocol,
            self.config,
            format_peer(self._client),
            self._context.bad_requests,
        )
        assert self._tasks is not None  # invariant: accept runs inside run()
        session.start(self._tasks, leftover)
        self._sessions.append(session)
        if self._closing:
            session.begin_shutdown(self._tasks)
        return session

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            await send_all(self._stream, data, self.config.send_timeout)
        except _SEND_ERRORS as exc:
            raise ClientDisconnected(f"connection lost during the handshake: {exc!r}") from exc
