"""WebSockets over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220): an extended CONNECT with
``:protocol websocket`` opens a stream; the application sees it as a handshake (as on HTTP/1.1, see
:mod:`httpy.backends.websocket_driver`); accepting it answers 200, and the stream's DATA
frames then carry the WebSocket frames, with the protocol's flow control as
back-pressure.  The stream is an :class:`~httpy.backends.exchange.HTTPExchange`, the
same on both protocols.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc

from ..core.application import Application, RequestHead, StreamError
from ..core.errors import LocalProtocolError
from ..core.events import Headers
from ..core.websocket import (
    WebSocketChannel,
    WebSocketHandshake,
    WebSocketOffer,
    WebSocketProtocol,
    accept_response,
    parse_offer,
)
from .connection import ConnectionContext, format_peer
from .exchange import HTTPExchange
from .websocket_driver import run_exchange, websocket_options
from .websocket_session import WebSocketSession


class HTTP2WebSocketStream(WebSocketHandshake):
    """An HTTP/2 stream opened by an extended CONNECT with ``:protocol websocket``
    (RFC 8441), as the application sees it: an HTTP stream (for refusals) that can be
    accepted as a WebSocket over the stream's DATA frames."""

    def __init__(
        self,
        stream: HTTPExchange,
        offer: WebSocketOffer,
        context: ConnectionContext,
        tasks: anyio.abc.TaskGroup,
    ) -> None:
        self._stream = stream
        self._offer = offer
        self._context = context
        self._tasks = tasks
        self.sessions: list[WebSocketSession] = []

    # -- HTTPStream, delegated -----------------------------------------------------------

    @property
    def head(self) -> RequestHead:
        return self._stream.head

    @property
    def disconnected(self) -> bool:
        return self._stream.disconnected

    @property
    def response_started(self) -> bool:
        return self._stream.response_started

    @property
    def trailers(self) -> Headers:
        return ()

    async def receive(self) -> bytes:
        return b""  # the CONNECT's DATA belongs to the WebSocket, once accepted

    async def send_trailers(self, headers: Headers) -> None:
        await self._stream.send_trailers(headers)

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        await self._stream.send_informational(status, headers)

    async def push(self, path: str) -> bool:
        return False

    async def send_response(self, status: int, headers: Headers) -> None:
        await self._stream.send_response(status, headers)

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        await self._stream.send_body(data, end=end)

    async def send_plain(self, status: int, body: bytes) -> None:
        headers = ((b"content-type", b"text/plain; charset=utf-8"),)
        await self.send_response(status, (*headers, (b"content-length", b"%d" % len(body))))
        await self.send_body(body, end=True)

    # -- WebSocketHandshake ----------------------------------------------------------------

    @property
    def websocket_offer(self) -> WebSocketOffer:
        return self._offer

    async def accept_websocket(
        self, subprotocol: str | None = None, headers: Headers = ()
    ) -> WebSocketChannel:
        if self._stream.response_started:
            raise LocalProtocolError("the handshake was already answered")
        config = self._context.config
        response, extensions = accept_response(
            self._offer, subprotocol, headers, websocket_options(self._context)
        )
        await self._stream.send_response(200, response)
        await self._stream.send_body(b"")  # the HEADERS go out now, not with the first frame
        protocol = WebSocketProtocol(extensions, max_message_bytes=config.ws_max_message_bytes)
        peer = format_peer(self._stream.head.client)
        session = WebSocketSession(
            ExchangeTransport(self._stream), protocol, config, peer, self._context.bad_requests
        )
        session.start(self._tasks)
        self.sessions.append(session)
        tasks = self._tasks
        self._stream.on_shutdown = lambda: session.begin_shutdown(tasks)
        return session


class ExchangeTransport:
    """A :class:`~httpy.backends.websocket_session.Transport` over one HTTP/2 stream:
    DATA in (flow-controlled: the window opens as the session reads), DATA out (waits
    for the peer's window: back-pressure), END_STREAM to end."""

    def __init__(self, stream: HTTPExchange) -> None:
        self._stream = stream

    async def receive(self) -> bytes:
        try:
            return await self._stream.receive()
        except StreamError:
            return b""

    async def send(self, data: bytes, max_wait: float) -> None:
        try:
            with anyio.fail_after(max_wait):
                await self._stream.send_body(data)
        except StreamError as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def aclose(self) -> None:
        if not self._stream.response_complete and not self._stream.disconnected:
            with contextlib.suppress(StreamError, LocalProtocolError):
                await self._stream.send_body(b"", end=True)


async def serve_http2_websocket(
    app: Application, stream: HTTPExchange, context: ConnectionContext
) -> None:
    """Run ``app`` on an extended CONNECT stream (called by the HTTP/2 driver in the
    stream's task).  An invalid handshake (no ``Sec-WebSocket-Version: 13``) is answered
    without the application."""
    offer = parse_offer(stream.head, connect_protocol=b"websocket")
    if not isinstance(offer, WebSocketOffer):
        body = f"{offer.status} {offer.reason}\n".encode()
        headers = (
            *offer.headers,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        )
        await stream.send_response(offer.status, headers)
        await stream.send_body(body, end=True)
        return
    async with anyio.create_task_group() as tasks:
        handshake = HTTP2WebSocketStream(stream, offer, context, tasks)
        try:
            await run_exchange(app, handshake, handshake.sessions)
        finally:
            stream.on_shutdown = None  # the task group is closing: nothing may start in it
            tasks.cancel_scope.cancel()
