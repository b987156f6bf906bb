"""WebSockets in the test clients: the real HTTP/1.1 driver hands the upgrade to the real
WebSocket driver, over an in-memory connection; the client side is wsproto.

Async::

    async with AsyncTestClient(app) as client:
        async with client.websocket_connect("/ws/chat/lobby") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi"

Sync (``TestClient``), the same methods without ``await``::

    with TestClient(app).websocket_connect("/ws") as ws:
        ws.send_json({"a": 1})

A refused handshake raises :class:`WebSocketRejected` with the HTTP response.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from ..backends.connection import ConnectionContext, SwitchToWebSocket
from ..backends.http1_driver import HTTP1Driver
from ..backends.memory import MemoryByteStream, memory_stream_pair
from ..backends.websocket_driver import WebSocketDriver
from ..core.websocket import WebSocketDisconnect
from .websocket import MessageReceiver, WebSocketMessage

_CLIENT = ("testclient", 50000)
_SERVER = ("testserver", 80)


class WebSocketRejected(Exception):
    """The server answered the handshake with ``status`` instead of accepting it."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(f"WebSocket handshake refused with {status}")
        self.status = status
        self.headers = headers
        self.body = body


class WebSocketTestSession(MessageReceiver):
    """The client end of a WebSocket to the application under test (``receive_text`` and
    ``receive_bytes`` convert a message of the other type rather than refuse it)."""

    __test__ = False

    def __init__(self, stream: MemoryByteStream, ws: WSConnection) -> None:
        self._stream = stream
        self._ws = ws
        self._pending: list[WebSocketMessage] = []
        self._parts: list[str | bytes] = []
        #: The subprotocol the server chose, and the extra headers of its 101.
        self.subprotocol: str | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        #: The server's close code once it closed (None while open).
        self.close_code: int | None = None

    async def send_text(self, text: str) -> None:
        await self._send(TextMessage(text))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(BytesMessage(data))

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def _send(self, event: TextMessage | BytesMessage | CloseConnection) -> None:
        if self.close_code is not None:
            raise WebSocketDisconnect(self.close_code)
        await self._stream.send(self._ws.send(event))

    async def receive(self) -> WebSocketMessage:
        """The next message, or the close (``is_close``) once the server closed."""
        while not self._pending:
            if self.close_code is not None:
                return WebSocketMessage("close", code=self.close_code)
            try:
                data = await self._stream.receive()
            except anyio.EndOfStream:
                self._ws.receive_data(None)
            else:
                self._ws.receive_data(data)
            await self._handle_events()
        return self._pending.pop(0)

    async def _handle_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                data = event.data
                self._parts.append(data if isinstance(data, str) else bytes(data))
                if event.message_finished:
                    parts, self._parts = self._parts, []
                    if isinstance(event, TextMessage):
                        text = "".join(p for p in parts if isinstance(p, str))
                        self._pending.append(WebSocketMessage("text", text))
                    else:
                        joined = b"".join(p for p in parts if isinstance(p, bytes))
                        self._pending.append(WebSocketMessage("binary", joined))
            elif isinstance(event, Ping):
                await self._stream.send(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                self._pending.append(
                    WebSocketMessage("close", code=event.code, reason=event.reason or "")
                )
                # The server may already be gone: then there is nothing to answer.
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await self._stream.send(self._ws.send(event.response()))

    async def receive_text(self) -> str:
        return (await self._receive_data()).text()

    async def receive_bytes(self) -> bytes:
        return (await self._receive_data()).bytes()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close and wait for the server's answer."""
        if self.close_code is not None:
            return
        await self._stream.send(self._ws.send(CloseConnection(code, reason)))
        with anyio.move_on_after(5):
            while self.close_code is None:
                await self.receive()


async def _serve(stream: MemoryByteStream, context: ConnectionContext) -> None:
    """What the server does with a new connection, up to the WebSocket driver."""
    context = context.for_connection(_CLIENT, _SERVER)
    http1 = HTTP1Driver(stream, context)
    switch = await http1.run()
    if isinstance(switch, SwitchToWebSocket):
        # http1.stream: with what HTTP/1.1 read ahead of the handshake, if anything.
        await WebSocketDriver(http1.stream, context, switch).run()


@asynccontextmanager
async def websocket_connect(
    context: ConnectionContext,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    subprotocols: list[str] | None = None,
    compression: bool = False,
) -> AsyncIterator[WebSocketTestSession]:
    """Open a WebSocket to the application (see the module docstring)."""
    client_end, server_end = memory_stream_pair()
    ws = WSConnection(ConnectionType.CLIENT)
    session = WebSocketTestSession(client_end, ws)
    request = Request(
        host=_SERVER[0],
        target=path,
        subprotocols=subprotocols or [],
        extensions=[PerMessageDeflate()] if compression else [],
        extra_headers=[(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    )
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_serve, server_end, context)
            try:
                await client_end.send(ws.send(request))
                await _handshake(client_end, ws, session)
                yield session
                await session.close()
            finally:
                await client_end.aclose()
    except BaseExceptionGroup as group:
        # The task group wraps what the test raised (an assertion, WebSocketRejected):
        # give the test its own exception back.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _handshake(
    stream: MemoryByteStream, ws: WSConnection, session: WebSocketTestSession
) -> None:
    status, body = 0, b""
    response_headers: list[tuple[bytes, bytes]] = []
    while True:
        try:
            ws.receive_data(await stream.receive())
        except anyio.EndOfStream as exc:
            raise WebSocketRejected(status or 502, response_headers, body) from exc
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                session.subprotocol = event.subprotocol
                session.headers = list(event.extra_headers)
                return
            if isinstance(event, RejectConnection):
                status, response_headers = event.status_code, list(event.headers)
                if not event.has_body:
                    raise WebSocketRejected(status, response_headers, b"")
            elif isinstance(event, RejectData):
                body += event.data
                if event.body_finished:
                    raise WebSocketRejected(status, response_headers, body)


class SyncWebSocketTestSession:
    """:class:`WebSocketTestSession` for synchronous tests (calls run in the portal)."""

    __test__ = False

    def __init__(self, portal: BlockingPortal, session: WebSocketTestSession) -> None:
        self._portal = portal
        self._session = session

    @property
    def subprotocol(self) -> str | None:
        return self._session.subprotocol

    @property
    def close_code(self) -> int | None:
        return self._session.close_code

    def send_text(self, text: str) -> None:
        self._portal.call(self._session.send_text, text)

    def send_bytes(self, data: bytes) -> None:
        self._portal.call(self._session.send_bytes, data)

    def send_json(self, data: Any) -> None:
        self._portal.call(self._session.send_json, data)

    def receive(self) -> WebSocketMessage:
        return self._portal.call(self._session.receive)

    def receive_text(self) -> str:
        return self._portal.call(self._session.receive_text)

    def receive_bytes(self) -> bytes:
        return self._portal.call(self._session.receive_bytes)

    def receive_json(self) -> Any:
        return self._portal.call(self._session.receive_json)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._portal.call(self._session.close, code, reason)


@contextmanager
def sync_websocket_connect(
    portal: BlockingPortal, context: ConnectionContext, path: str, **options: Any
) -> Iterator[SyncWebSocketTestSession]:
    with portal.wrap_async_context_manager(websocket_connect(context, path, **options)) as session:
        yield SyncWebSocketTestSession(portal, session)
