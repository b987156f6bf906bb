"""WebSockets across ASGI, both ways.

**An HTTPy app's WebSocket routes under an ASGI server** (``uvicorn module:app``).

The ASGI server has done the opening handshake's checks and speaks the frames; this
module turns a ``websocket`` scope into the same handshake stream HTTPy's own server
gives the app (:class:`~httpy.core.websocket.WebSocketHandshake`), so middleware,
routing, ``WebSocketConnection`` and close codes behave the same:

* ``accept_websocket`` sends ``websocket.accept`` (subprotocol, extra headers);
* messages come from ``websocket.receive``, the close from ``websocket.disconnect``
  (its code: the peer's, 1005, or 1006 as the server reports it);
* an ordinary response (a middleware's 401/403) goes out through the ASGI
  ``websocket.http.response`` extension when the server offers it, else as
  ``websocket.close`` before accept (the server answers 403).

**Any ASGI app's WebSockets on HTTPy's server** (:func:`run_asgi_websocket`, used by
``ASGIAdapter``): the handshake stream becomes a ``websocket`` scope with the
``websocket.http.response`` extension.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import anyio

from ..core.application import Application, HTTPStream, RequestHead
from ..core.events import Headers
from ..core.websocket import (
    ABNORMAL_CLOSURE,
    INTERNAL_ERROR,
    NORMAL_CLOSURE,
    HandshakeRequest,
    WebSocketChannel,
    WebSocketClose,
    WebSocketData,
    WebSocketDisconnect,
    WebSocketHandshake,
    WebSocketOffer,
    check_subprotocol,
    send_plain,
)

if TYPE_CHECKING:  # the ASGI vocabulary is asgi.py's (which imports this module)
    from .asgi import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("httpy.error")

#: How long our close waits for the server to report the peer's answer.
CLOSE_TIMEOUT = 10.0


class ASGIWebSocketChannel:
    """A :class:`~httpy.core.websocket.WebSocketChannel` over ASGI messages."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._lock = anyio.Lock()
        self._close: WebSocketClose | None = None
        self._sent_close = False

    @property
    def close_code(self) -> int | None:
        return self._close.code if self._close is not None else None

    @property
    def close_reason(self) -> str:
        return self._close.reason if self._close is not None else ""

    @property
    def closing(self) -> bool:
        return self._sent_close or self._close is not None

    async def receive(self) -> WebSocketData | WebSocketClose:
        if self._close is not None:
            return self._close
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                return WebSocketData(str(text))
            return WebSocketData(bytes(message.get("bytes") or b""))
        # websocket.disconnect (anything else means the server is done with us too)
        self._close = WebSocketClose(
            int(message.get("code", ABNORMAL_CLOSURE)), str(message.get("reason") or "")
        )
        return self._close

    async def send(self, data: str | bytes) -> None:
        if self.closing:
            raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
        message: Message = {"type": "websocket.send"}
        message["text" if isinstance(data, str) else "bytes"] = data
        async with self._lock:
            try:
                await self._send(message)
            except Exception as exc:  # ASGI servers raise their own errors (OSError, ...)
                self._close = WebSocketClose(ABNORMAL_CLOSURE, "connection lost")
                raise WebSocketDisconnect(ABNORMAL_CLOSURE, "connection lost") from exc

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        if not self.closing:
            self._sent_close = True
            async with self._lock:
                try:
                    await self._send({"type": "websocket.close", "code": code, "reason": reason})
                except Exception:  # already gone: the disconnect below says how
                    self._close = WebSocketClose(ABNORMAL_CLOSURE, "connection lost")
                    return
        with anyio.move_on_after(CLOSE_TIMEOUT):
            while self._close is None:
                await self.receive()  # messages after our close are dropped
        if self._close is None:
            self._close = WebSocketClose(ABNORMAL_CLOSURE, "no close frame from the peer")


class ASGIWebSocketStream(HandshakeRequest, WebSocketHandshake):
    """The handshake stream of an ASGI ``websocket`` scope (see the module docstring)."""

    def __init__(self, head: RequestHead, scope: Scope, receive: Receive, send: Send) -> None:
        self._head = head
        self._receive = receive
        self._send = send
        self._offer = WebSocketOffer(
            key=None,  # the ASGI server checked it and computes the accept token
            subprotocols=tuple(str(p) for p in scope.get("subprotocols") or ()),
            extensions=(),  # and negotiates extensions itself
            http_version=head.http_version,
        )
        self._can_respond = "websocket.http.response" in (scope.get("extensions") or {})
        self.channel: ASGIWebSocketChannel | None = None
        self.response_started = False

    # -- HTTPStream (the rest: HandshakeRequest) -----------------------------------

    @property
    def head(self) -> RequestHead:
        return self._head

    async def send_response(self, status: int, headers: Headers) -> None:
        self.response_started = True
        if self._can_respond:
            await self._send(
                {"type": "websocket.http.response.start", "status": status, "headers": headers}
            )
        else:
            # The server turns a close before accept into its own 403.
            await self._send({"type": "websocket.close", "code": 1000})

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if self._can_respond:
            await self._send(
                {"type": "websocket.http.response.body", "body": data, "more_body": not end}
            )

    # -- WebSocketHandshake ----------------------------------------------------------

    @property
    def websocket_offer(self) -> WebSocketOffer:
        return self._offer

    async def accept_websocket(
        self, subprotocol: str | None = None, headers: Headers = ()
    ) -> WebSocketChannel:
        check_subprotocol(self._offer, subprotocol)
        await self._send(
            {"type": "websocket.accept", "subprotocol": subprotocol, "headers": list(headers)}
        )
        self.response_started = True
        self.channel = ASGIWebSocketChannel(self._receive, self._send)
        return self.channel


async def serve_asgi_websocket(
    app: Application, head: RequestHead, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run ``app`` for one ASGI ``websocket`` scope; ``head`` is the scope's request head."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake reached us
    stream = ASGIWebSocketStream(head, scope, receive, send)
    await app.handle_http(stream)
    if stream.channel is not None:
        if not stream.channel.closing:
            await stream.channel.close()
    elif not stream.response_started:
        await send({"type": "websocket.close", "code": 1000})  # the server answers 403


# ------------------------------------------------- any ASGI app on HTTPy's server


def websocket_scope(http_scope: Scope, offer: WebSocketOffer) -> Scope:
    """The ASGI ``websocket`` scope for a handshake, from the request's ``http`` scope."""
    scope = dict(http_scope)
    scope.pop("method", None)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if http_scope.get("scheme") == "https" else "ws"
    scope["subprotocols"] = list(offer.subprotocols)
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


class _ASGIWebSocketSession:
    """ASGI ``receive``/``send`` for an ASGI app, over HTTPy's handshake stream."""

    def __init__(self, handshake: WebSocketHandshake, stream: HTTPStream) -> None:
        self._handshake = handshake
        self._stream = stream
        self._connected = False
        self.channel: WebSocketChannel | None = None
        self.responded = False

    async def receive(self) -> Message:
        if not self._connected:
            self._connected = True
            return {"type": "websocket.connect"}
        if self.channel is None:  # refused (or asked before accepting): nothing will come
            return {"type": "websocket.disconnect", "code": ABNORMAL_CLOSURE, "reason": ""}
        event = await self.channel.receive()
        if isinstance(event, WebSocketClose):
            return {"type": "websocket.disconnect", "code": event.code, "reason": event.reason}
        if isinstance(event.data, str):
            return {"type": "websocket.receive", "text": event.data}
        return {"type": "websocket.receive", "bytes": event.data}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept":
            headers = tuple((bytes(n), bytes(v)) for n, v in message.get("headers") or ())
            self.channel = await self._handshake.accept_websocket(
                message.get("subprotocol"), headers
            )
        elif kind == "websocket.send":
            if self.channel is None:
                raise RuntimeError("websocket.send before websocket.accept")
            text = message.get("text")
            await self.channel.send(text if text is not None else bytes(message["bytes"]))
        elif kind == "websocket.close":
            if self.channel is not None:
                await self.channel.close(
                    int(message.get("code", NORMAL_CLOSURE)), str(message.get("reason") or "")
                )
            elif not self.responded:
                await self._refuse()
        elif kind == "websocket.http.response.start":
            self.responded = True
            headers = tuple((bytes(n), bytes(v)) for n, v in message.get("headers") or ())
            await self._stream.send_response(int(message["status"]), headers)
        elif kind == "websocket.http.response.body":
            more = bool(message.get("more_body", False))
            await self._stream.send_body(bytes(message.get("body", b"")), end=not more)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on a websocket scope")

    async def _refuse(self) -> None:
        self.responded = True
        await send_plain(self._stream, 403, b"Forbidden\n")


async def run_asgi_websocket(app: ASGIApp, scope: Scope, stream: HTTPStream) -> None:
    """Run an ASGI app for a WebSocket handshake ``stream`` (a
    :class:`~httpy.core.websocket.WebSocketHandshake`) received by HTTPy's server: the
    app's ``websocket.*`` messages map to accept, sends, close and refusals.  An app that
    raises closes with 1011 (or answers 500 before accepting); one that returns without
    accepting refuses with 403."""
    if not isinstance(stream, WebSocketHandshake):
        raise TypeError("run_asgi_websocket needs a WebSocket handshake stream")
    session = _ASGIWebSocketSession(stream, stream)
    try:
        await app(websocket_scope(scope, stream.websocket_offer), session.receive, session.send)
    except WebSocketDisconnect:
        return
    except Exception:
        logger.exception("ASGI application error on WebSocket %s", scope.get("path"))
        if session.channel is not None:
            with contextlib.suppress(WebSocketDisconnect):
                await session.channel.close(INTERNAL_ERROR, "internal error")
        elif not session.responded:
            session.responded = True
            await stream.send_response(500, ((b"content-length", b"0"),))
            await stream.send_body(b"", end=True)
        return
    if session.channel is None and not session.responded:
        await session._refuse()
