"""WebSocket routes and :class:`WebSocketConnection`, the object a handler gets.

::

    @websocket("/ws/chat/{room}")
    async def chat(ws: WebSocketConnection) -> None:
        await ws.send_text(f"welcome to {ws.path_params['room']}")
        async for message in ws:            # until the client closes
            await ws.send_text(message.text())

A WebSocket handshake goes through the app like any request: middleware and
authentication see it (``request.headers``, ``request.path``) and may refuse it with an
ordinary response (401, 403) before anything is upgraded.  The route's answer is a
:class:`WebSocketResponse` (status 101) that runs the handler when the server sends it.

* The handshake is accepted by ``await ws.accept()``, or implicitly by the first send or
  receive.  A handler that returns, or calls ``close()``, without accepting refuses the
  handshake with 403.  One that raises before accepting gets a 500.
* A handler that raises after accepting closes the connection with 1011 (Internal
  Error); the exception is logged on ``httpy.error``.  One that returns closes with 1000.
* A request for a WebSocket route that is not a valid upgrade is answered 426 (no
  ``Upgrade`` at all) or 400 (a malformed handshake).
"""

from __future__ import annotations

import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import anyio

from ..core.application import HTTPStream
from ..core.events import Headers as RawHeaders
from ..core.headers import HeaderInput, Headers, MutableHeaders
from ..core.routing import Match, MethodNotAllowed, NotFound, Router
from ..core.websocket import (
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    WebSocketChannel,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketHandshake,
)
from .request import QueryParams, Request
from .response import Response, error_response

__all__ = [
    "WebSocketConnection",
    "WebSocketDisconnect",
    "WebSocketHandler",
    "WebSocketMessage",
    "WebSocketResponse",
]

logger = logging.getLogger("httpy.error")

T = TypeVar("T")
WebSocketHandler = Callable[["WebSocketConnection"], Awaitable[None]]


class WebSocketMessage:
    """One received message, or the close.

    ``data`` is ``str`` for a text message, ``bytes`` for a binary one, ``None`` for the
    close; ``code`` and ``reason`` are set on the close only (the peer's code; 1005 if
    it sent none; 1006 if the connection was lost without a close frame).
    """

    __slots__ = ("code", "data", "reason", "type")

    def __init__(
        self,
        type: Literal["text", "binary", "close"],
        data: str | bytes | None = None,
        *,
        code: int | None = None,
        reason: str = "",
    ) -> None:
        self.type = type
        self.data = data
        self.code = code
        self.reason = reason

    @property
    def is_text(self) -> bool:
        return self.type == "text"

    @property
    def is_binary(self) -> bool:
        return self.type == "binary"

    @property
    def is_close(self) -> bool:
        return self.type == "close"

    def text(self) -> str:
        """The message as text (a binary message is decoded as UTF-8; the close: "")."""
        if isinstance(self.data, str):
            return self.data
        if isinstance(self.data, bytes):
            return self.data.decode("utf-8")
        return ""

    def bytes(self) -> bytes:
        """The message as bytes (a text message is encoded as UTF-8; the close: b"")."""
        if isinstance(self.data, bytes):
            return self.data
        if isinstance(self.data, str):
            return self.data.encode("utf-8")
        return b""

    def json(self) -> Any:
        """The message parsed as JSON (ValueError if it is not)."""
        try:
            return json.loads(self.data if self.data is not None else "")
        except RecursionError:
            # [[[[... deeper than the parser's recursion limit: not JSON we can use.
            raise ValueError("message is not valid JSON: nested too deeply") from None

    def __repr__(self) -> str:
        if self.is_close:
            return f"<WebSocketMessage close {self.code} {self.reason!r}>"
        return f"<WebSocketMessage {self.type} {self.data!r:.60}>"


class MessageReceiver(ABC):
    """Reading messages from a WebSocket end, given its :meth:`receive`: what the
    handler's :class:`WebSocketConnection` and the test client's session share."""

    __slots__ = ()

    @abstractmethod
    async def receive(self) -> WebSocketMessage:
        """The next message, or the close (``is_close``) once the connection is closed."""

    async def _receive_data(
        self, expected: Literal["text", "binary"] | None = None
    ) -> WebSocketMessage:
        """The next message; raises WebSocketDisconnect at the close, TypeError for a
        message that is not of the ``expected`` type."""
        message = await self.receive()
        if message.is_close:
            raise WebSocketDisconnect(message.code or 1006, message.reason)
        if expected is not None and message.type != expected:
            raise TypeError(f"expected a {expected} message, got a {message.type} one")
        return message

    async def receive_json(self) -> Any:
        """The next message (text or binary) parsed as JSON."""
        return (await self._receive_data()).json()


class WebSocketConnection(MessageReceiver):
    """A WebSocket as its handler sees it; see the module docstring.

    Sends (``send_text``, ``send_bytes``, ``send_json``) may be called from several
    tasks at once: each message goes out whole, in call order.  They wait while the
    client is not reading (back-pressure) and raise :class:`WebSocketDisconnect` once
    the connection is closing or the client has gone.
    """

    def __init__(self, request: Request, handshake: WebSocketHandshake, stream: HTTPStream) -> None:
        self._request = request
        self._handshake = handshake
        self._stream = stream  # the same object, as an HTTP stream (for a refusal)
        self._channel: WebSocketChannel | None = None
        self._refused = False
        self._accept_lock = anyio.Lock()
        #: Parameters converted from the route's ``{param}`` segments.
        self.path_params: dict[str, Any] = dict(request.path_params)
        self.headers: Headers = request.headers
        self.query: QueryParams = request.query
        #: Subprotocols the client offered (``Sec-WebSocket-Protocol``), in its order.
        self.subprotocols: list[str] = list(handshake.websocket_offer.subprotocols)
        self.path: str = request.path
        self.client: tuple[str, int] | None = request.client
        #: The handshake request, as middleware saw it.
        self.request = request

    # -- state -------------------------------------------------------------------------

    @property
    def accepted(self) -> bool:
        return self._channel is not None

    @property
    def closed(self) -> bool:
        """True once a close frame was sent or received, the connection was lost, or
        the handshake was refused."""
        return self._refused or (self._channel is not None and self._channel.closing)

    @property
    def close_code(self) -> int | None:
        """None while open; then the peer's close code, 1005 if its close frame had none,
        1006 if the connection was lost without one (our own code if the peer never
        answered ours)."""
        return self._channel.close_code if self._channel is not None else None

    @property
    def close_reason(self) -> str:
        return self._channel.close_reason if self._channel is not None else ""

    # -- handshake ---------------------------------------------------------------------

    async def accept(self, subprotocol: str | None = None, headers: HeaderInput = None) -> None:
        """Accept the handshake, choosing ``subprotocol`` (one of ``subprotocols``) and
        adding ``headers`` to the 101 answer.  A second call does nothing."""
        async with self._accept_lock:  # sends from several tasks may all accept at once
            if self._channel is not None:
                return
            if self._refused:
                raise WebSocketDisconnect(1006, "the handshake was refused")
            raw: RawHeaders = MutableHeaders(headers).raw() if headers else ()
            self._channel = await self._handshake.accept_websocket(subprotocol, raw)

    async def _open(self) -> WebSocketChannel:
        if self._channel is None:
            await self.accept()
        assert self._channel is not None  # set by accept(), which raises otherwise
        return self._channel

    # -- sending -----------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"send_text takes a str, not {type(text).__name__}")
        await (await self._open()).send(text)

    async def send_bytes(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"send_bytes takes bytes, not {type(data).__name__}")
        await (await self._open()).send(bytes(data))

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "binary":
            await self.send_bytes(text.encode("utf-8"))
        else:
            await self.send_text(text)

    # -- receiving ---------------------------------------------------------------------

    async def receive(self) -> WebSocketMessage:
        """The next message; the close (``is_close``) once the connection is closed,
        and again on every later call."""
        channel = await self._open()
        event = await channel.receive()
        if isinstance(event, WebSocketClose):
            return WebSocketMessage("close", code=event.code, reason=event.reason)
        if isinstance(event.data, str):
            return WebSocketMessage("text", event.data)
        return WebSocketMessage("binary", event.data)

    async def receive_text(self) -> str:
        """The next message's text; raises WebSocketDisconnect at the close, TypeError
        for a binary message."""
        return (await self._receive_data("text")).text()

    async def receive_bytes(self) -> bytes:
        """The next message's bytes; raises WebSocketDisconnect at the close, TypeError
        for a text message."""
        return (await self._receive_data("binary")).bytes()

    def __aiter__(self) -> AsyncIterator[WebSocketMessage]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WebSocketMessage]:
        """Messages until the close (which is not yielded)."""
        while True:
            message = await self.receive()
            if message.is_close:
                return
            yield message

    # -- closing -----------------------------------------------------------------------

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Close with ``code`` and wait (bounded) for the client's answer.  Before the
        handshake was accepted this refuses it with 403 instead."""
        if self._channel is None:
            if not self._refused:
                self._refused = True
                await error_response(403, "Forbidden", None, "").write(self._stream)
            return
        await self._channel.close(code, reason)

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.path} close_code={self.close_code}>"


class WebSocketResponse(Response):
    """The answer of a WebSocket route: runs ``handler`` on the connection when the
    server sends it (so middleware sees this response, status 101, before the upgrade)."""

    def __init__(self, handler: WebSocketHandler, request: Request) -> None:
        super().__init__(b"", status=101)
        self._handler = handler
        self._request = request

    async def write(self, stream: HTTPStream) -> None:
        if not isinstance(stream, WebSocketHandshake):  # a route matched only for these
            await error_response(426, "Upgrade Required", _UPGRADE_REQUIRED, "").write(stream)
            return
        ws = WebSocketConnection(self._request, stream, stream)
        try:
            await self._handler(ws)
        except WebSocketDisconnect:
            pass  # the client went away: nothing to tell it
        except Exception as exc:
            logger.error(
                "unhandled %s in WebSocket %s", type(exc).__name__, self._request.path, exc_info=exc
            )
            if ws.accepted:
                await _close_quietly(ws, INTERNAL_ERROR, "internal error")
            elif not ws.closed:
                await error_response(500, "Internal Server Error", None, "").write(stream)
            return
        if not ws.accepted:
            await ws.close()  # never accepted: 403
        elif not ws.closed:
            await _close_quietly(ws, NORMAL_CLOSURE, "")

    def __repr__(self) -> str:
        return f"<WebSocketResponse {self._request.path}>"


async def _close_quietly(ws: WebSocketConnection, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        await ws.close(code, reason)


_UPGRADE_REQUIRED: Mapping[str, str] = {
    "upgrade": "websocket",
    "connection": "Upgrade",
    "sec-websocket-version": "13",
}


def websocket_endpoint(handler: WebSocketHandler) -> Callable[[Request], Awaitable[Response]]:
    """The HTTP handler of a WebSocket route: answers with a :class:`WebSocketResponse`."""

    async def endpoint(request: Request) -> Response:
        return WebSocketResponse(handler, request)

    return endpoint


def route_websocket(
    router: Router[T], refusal: T, stream: HTTPStream, path: str, match: object
) -> Match[T] | None:
    """The match to use for a request when the app has WebSocket routes (``router``):
    their match for a valid handshake; for a plain request to one of them that no HTTP
    route serves, ``refusal`` (426/400, :func:`refuse_plain_request`); else None (keep
    ``match``)."""
    if isinstance(stream, WebSocketHandshake):
        found = router.match("GET", path)
        return found if isinstance(found, Match) else None
    if not isinstance(match, NotFound | MethodNotAllowed):
        return None
    found = router.match("GET", path)
    if not isinstance(found, Match):
        return None
    return Match(found.route, refusal, found.params)


async def refuse_plain_request(request: Request) -> Response:
    accept = request.headers.get("accept", "")
    version = request.headers.get("sec-websocket-version")
    if "upgrade" in request.headers and version is not None and version.strip() != "13":
        # RFC 6455 4.4: a version we don't speak; the header names the one we do.
        return error_response(426, "unsupported WebSocket version", _UPGRADE_REQUIRED, accept)
    if "upgrade" in request.headers:
        # An upgrade that is not a valid opening handshake (RFC 6455 4.2.1: 400).
        detail = "invalid WebSocket handshake"
        return error_response(400, detail, _UPGRADE_REQUIRED, accept)
    return error_response(426, "this is a WebSocket endpoint", _UPGRADE_REQUIRED, accept)
