"""``X-Request-ID``: one identifier per request, from the client or proxy, or ours.

With ``Config.request_id`` on, every request head carries an ``x-request-id`` header
before the application sees it: the incoming one when it is valid (1 to 200 visible
ASCII characters: what a proxy or a calling service generated, so one id follows a
request across services), else a new random one (32 hex digits).  The response echoes
it, unless the application set its own.  Off (the default), nothing of this runs.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from ..core.application import Application, HTTPStream, LifespanApplication, RequestHead
from ..core.events import Headers
from ..core.websocket import WebSocketHandshake

HEADER = b"x-request-id"
MAX_LENGTH = 200


def valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= MAX_LENGTH and all(0x21 <= byte <= 0x7E for byte in value)


def ensure_request_id(head: RequestHead) -> RequestHead:
    """``head`` with exactly one valid ``x-request-id`` (a ``head_hook``)."""
    found = [value for name, value in head.headers if name == HEADER]
    if len(found) == 1 and valid_request_id(found[0]):
        return head
    kept = tuple((n, v) for n, v in head.headers if n != HEADER)
    return replace(head, headers=(*kept, (HEADER, uuid.uuid4().hex.encode("ascii"))))


def request_id_of(head: RequestHead) -> bytes | None:
    for name, value in head.headers:
        if name == HEADER:
            return value
    return None


class _EchoStream:
    """An :class:`HTTPStream` whose response head gets the request's id."""

    __slots__ = ("_stream",)

    def __init__(self, stream: HTTPStream) -> None:
        self._stream = stream

    async def send_response(self, status: int, headers: Headers) -> None:
        value = request_id_of(self._stream.head)
        if value is not None and not any(name.lower() == HEADER for name, _ in headers):
            headers = (*headers, (HEADER, value))
        await self._stream.send_response(status, headers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class RequestIdEchoApp:
    def __init__(self, app: Application) -> None:
        self.app = app

    async def handle_http(self, stream: HTTPStream) -> None:
        if isinstance(stream, WebSocketHandshake):
            # The WebSocket route needs the stream itself (isinstance checks); the id is
            # on the request all the same.
            await self.app.handle_http(stream)
            return
        wrapped: Any = _EchoStream(stream)
        await self.app.handle_http(wrapped)


class RequestIdEchoLifespanApp(RequestIdEchoApp):
    def lifespan(self) -> AbstractAsyncContextManager[None]:
        assert isinstance(self.app, LifespanApplication)
        return self.app.lifespan()


def with_request_id_echo(app: Application) -> Application:
    """``app`` whose responses carry the request's ``x-request-id``."""
    if isinstance(app, LifespanApplication):
        return RequestIdEchoLifespanApp(app)
    return RequestIdEchoApp(app)
