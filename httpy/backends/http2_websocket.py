"""WebSockets over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220): an extended CONNECT with
``:protocol websocket`` opens a stream; the application sees it as a handshake (the same
:func:`~httpy.backends.websocket_driver.serve_handshake` as on HTTP/1.1); accepting it
answers 200, and the stream's DATA frames then carry the WebSocket frames, with the
protocol's flow control as back-pressure.  The stream is an
:class:`~httpy.backends.exchange.HTTPExchange`, the same on both protocols;
:class:`ExchangePort` adapts it to the handshake and the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import anyio

from ..core.application import Application, StreamError
from ..core.errors import LocalProtocolError
from ..core.events import Headers
from ..core.websocket import WebSocketOffer, parse_offer, send_plain
from .connection import ConnectionContext
from .exchange import HTTPExchange
from .websocket_driver import serve_handshake
from .websocket_session import Transport


class ExchangePort:
    """An extended CONNECT stream as the handshake's
    :class:`~httpy.backends.websocket_driver.HandshakePort` (a refusal is its response;
    accepting answers 200) and, once accepted, as the session's
    :class:`~httpy.backends.websocket_session.Transport`: DATA in (flow-controlled: the
    window opens as the session reads), DATA out (waits for the peer's window:
    back-pressure), END_STREAM to end."""

    def __init__(self, stream: HTTPExchange) -> None:
        self._stream = stream

    # -- HandshakePort -------------------------------------------------------------------

    @property
    def disconnected(self) -> bool:
        return self._stream.disconnected

    async def send_informational(self, status: int, headers: Headers) -> None:
        await self._stream.send_informational(status, headers)

    async def send_response(self, status: int, headers: Headers) -> None:
        await self._stream.send_response(status, headers)

    async def send_body(self, data: bytes, end: bool) -> None:
        await self._stream.send_body(data, end=end)

    async def send_trailers(self, headers: Headers) -> None:
        await self._stream.send_trailers(headers)

    async def accept(self, headers: Headers) -> tuple[Transport, bytes]:
        await self._stream.send_response(200, headers)
        await self._stream.send_body(b"")  # the HEADERS go out now, not with the first frame
        return self, b""

    def watch_shutdown(self, begin: Callable[[], None] | None) -> None:
        self._stream.on_shutdown = begin

    # -- Transport -----------------------------------------------------------------------

    async def receive(self, max_bytes: int) -> bytes:
        # DATA as it came (at most a frame, 16 KiB): max_bytes is only a hint.
        try:
            return await self._stream.receive()
        except StreamError:
            return b""

    async def send(self, data: bytes) -> None:
        # The exchange applies the send-progress rule (and resets the stream).
        try:
            await self._stream.send_body(data)
        except StreamError as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def linger(self) -> None:
        pass  # the HTTP/2 connection lingers itself after a GOAWAY; a stream need not

    async def aclose(self) -> None:
        if not self._stream.response_complete and not self._stream.disconnected:
            with contextlib.suppress(StreamError, LocalProtocolError):
                await self._stream.send_body(b"", end=True)


async def serve_http2_websocket(
    app: Application, stream: HTTPExchange, context: ConnectionContext
) -> None:
    """Run ``app`` on an extended CONNECT stream (called by the stream engine in
    the stream's task).  An invalid handshake (no ``Sec-WebSocket-Version: 13``) is
    answered without the application."""
    offer = parse_offer(stream.head, connect_protocol=b"websocket")
    if not isinstance(offer, WebSocketOffer):
        body = f"{offer.status} {offer.reason}\n".encode()
        await send_plain(stream, offer.status, body, offer.headers)
        return
    await serve_handshake(app, ExchangePort(stream), stream.head, offer, context)
