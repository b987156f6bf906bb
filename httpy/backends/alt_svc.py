"""``Alt-Svc: h3=":PORT"`` on responses served over TCP, when HTTP/3 is on.

Browsers learn about HTTP/3 from this header (RFC 7838, RFC 9114 3.1.1) and switch to it
for the next requests.  The server wraps the application it runs on TCP in
:func:`with_alt_svc`; HTTP/3 connections run the application unwrapped.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from ..core.application import Application, HTTPStream, LifespanApplication
from ..core.events import Headers
from ..core.websocket import WebSocketHandshake


class _AltSvcStream:
    """An :class:`HTTPStream` that adds one header to the response head."""

    __slots__ = ("_header", "_stream")

    def __init__(self, stream: HTTPStream, header: tuple[bytes, bytes]) -> None:
        self._stream = stream
        self._header = header

    async def send_response(self, status: int, headers: Headers) -> None:
        await self._stream.send_response(status, (*headers, self._header))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _AltSvcApp:
    def __init__(self, app: Application, value: bytes) -> None:
        self.app = app
        self._header = (b"alt-svc", value)

    async def handle_http(self, stream: HTTPStream) -> None:
        if isinstance(stream, WebSocketHandshake):
            # WebSocket routes need the handshake stream itself (isinstance checks), and
            # a 101 has no use for Alt-Svc.
            await self.app.handle_http(stream)
            return
        wrapped: Any = _AltSvcStream(stream, self._header)
        await self.app.handle_http(wrapped)


class _AltSvcLifespanApp(_AltSvcApp):
    def lifespan(self) -> AbstractAsyncContextManager[None]:
        assert isinstance(self.app, LifespanApplication)
        return self.app.lifespan()


def alt_svc_value(ports: list[int], max_age: int = 86400) -> bytes:
    """``h3=":443"; ma=86400`` for each HTTP/3 port (deduplicated, in order)."""
    unique = list(dict.fromkeys(ports))
    return ", ".join(f'h3=":{port}"; ma={max_age}' for port in unique).encode("ascii")


def with_alt_svc(app: Application, value: bytes) -> Application:
    """``app`` whose TCP responses announce HTTP/3 with ``Alt-Svc: value``."""
    if isinstance(app, LifespanApplication):
        return _AltSvcLifespanApp(app, value)
    return _AltSvcApp(app, value)
