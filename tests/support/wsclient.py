"""A small WebSocket client over anyio sockets and wsproto: runs on asyncio and trio, and
can send what well-behaved clients never do (raw frames, bombs, no close frame)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate


class Rejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake rejected with {status}")
        self.status = status
        self.body = body


class WSClient:
    """One connection.  ``recv()`` returns str/bytes messages, or the CloseConnection."""

    def __init__(self, sock: anyio.abc.SocketStream, ws: WSConnection) -> None:
        self.sock = sock
        self.ws = ws
        self.accept: AcceptConnection | None = None
        self._events: list[Event] = []
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        self.close_event: CloseConnection | None = None
        self.eof = False
        #: Payloads of the pongs received, in order.
        self.pongs: list[bytes] = []

    async def send(self, data: str | bytes) -> None:
        event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        await self.sock.send(self.ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        await self.sock.send(data)

    async def close(self, code: int | None = 1000, reason: str = "") -> None:
        await self.sock.send(self.ws.send(CloseConnection(code or 1005, reason)))

    async def _pump(self) -> None:
        try:
            data = await self.sock.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            self.eof = True
            self.ws.receive_data(None)
        else:
            self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, Ping):
                await self.sock.send(self.ws.send(event.response()))
            elif isinstance(event, Pong):
                self.pongs.append(bytes(event.payload))
            else:
                self._events.append(event)

    async def recv(self) -> str | bytes | CloseConnection:
        while True:
            while self._events:
                event = self._events.pop(0)
                if isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        text, self._text = "".join(self._text), []
                        return text
                elif isinstance(event, BytesMessage):
                    self._bytes.append(bytes(event.data))
                    if event.message_finished:
                        data, self._bytes = b"".join(self._bytes), []
                        return data
                elif isinstance(event, CloseConnection):
                    self.close_event = event
                    return event
            if self.eof:
                raise anyio.EndOfStream
            await self._pump()

    async def wait_closed(self) -> CloseConnection:
        """Read until the server's close frame; answer it; return it."""
        while True:
            message = await self.recv()
            if isinstance(message, CloseConnection):
                with suppress(Exception):
                    await self.sock.send(self.ws.send(message.response()))
                return message

    async def read_until_eof(self) -> bytes:
        data = b""
        while True:
            try:
                data += await self.sock.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return data


@asynccontextmanager
async def ws_connect(
    host: str,
    port: int,
    path: str,
    *,
    subprotocols: list[str] | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    deflate: bool = False,
    local_host: str | None = None,
) -> AsyncIterator[WSClient]:
    sock = await anyio.connect_tcp(host, port, local_host=local_host)
    ws = WSConnection(ConnectionType.CLIENT)
    extensions = [PerMessageDeflate()] if deflate else []
    client = WSClient(sock, ws)
    try:
        await sock.send(
            ws.send(
                Request(
                    host=f"{host}:{port}",
                    target=path,
                    subprotocols=subprotocols or [],
                    extensions=extensions,  # type: ignore[arg-type]
                    extra_headers=extra_headers or [],
                )
            )
        )
        status, body = 0, b""
        while client.accept is None:
            data = await sock.receive()
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    client.accept = event
                elif isinstance(event, RejectConnection):
                    status = event.status_code
                    if not event.has_body:
                        raise Rejected(status, b"")
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise Rejected(status, body)
                else:
                    client._events.append(event)
        yield client
    finally:
        with anyio.CancelScope(shield=True):
            await sock.aclose()


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame built by hand (wsproto refuses to build broken ones)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes([first, 0x80 | length])
    elif length < 65536:
        header = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


def handshake_request(path: str, **headers: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    fields = {
        "Host": "test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    fields.update({k.replace("_", "-"): v for k, v in headers.items()})
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v)
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode()
