"""A WebSocket client over HTTP/2 (RFC 8441): an h2 client connection (h2c with prior
knowledge) opens extended CONNECT streams; wsproto's frame layer runs over each
stream's DATA.  anyio sockets, so it runs on asyncio and trio."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import h2.connection
import h2.events
import h2.settings
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from tests.support.h2peer import client_connection


class H2WebSocket:
    """One WebSocket on one stream of a shared :class:`H2Client` connection."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.ws = Connection(ConnectionType.CLIENT)
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.ended = False
        self.reset: int | None = None
        self._messages: list[str | bytes | CloseConnection] = []
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        self.changed = anyio.Event()

    def on_data(self, data: bytes) -> None:
        if self.status != 200:
            self.body += data
            return
        if not data or self.ws.state is ConnectionState.CLOSED:
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    self._messages.append("".join(self._text))
                    self._text = []
            elif isinstance(event, BytesMessage):
                self._bytes.append(bytes(event.data))
                if event.message_finished:
                    self._messages.append(b"".join(self._bytes))
                    self._bytes = []
            elif isinstance(event, Ping):
                self.client.queue_data(self.stream_id, self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._messages.append(event)

    async def send(self, data: str | bytes) -> None:
        event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        self.client.queue_data(self.stream_id, self.ws.send(event))
        await self.client.flush()
        with anyio.fail_after(10):
            while self.client.pending(self.stream_id):  # flow control: wait for window
                await self.client.wait_change(self)
                await self.client.flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.client.queue_data(self.stream_id, self.ws.send(CloseConnection(code, reason)))
        await self.client.flush()

    async def recv(self) -> str | bytes | CloseConnection:
        with anyio.fail_after(10):
            while not self._messages:
                if self.ended and not self._messages:
                    raise anyio.EndOfStream
                await self.client.wait_change(self)
        return self._messages.pop(0)

    async def wait_ended(self) -> None:
        with anyio.fail_after(10):
            while not self.ended:
                await self.client.wait_change(self)


class H2Client:
    def __init__(self, sock: anyio.abc.SocketStream) -> None:
        self.sock = sock
        self.conn: h2.connection.H2Connection = client_connection()
        self.streams: dict[int, H2WebSocket] = {}
        self.connect_protocol_enabled = False
        self._reading = False
        self._pending: dict[int, bytearray] = {}

    def queue_data(self, stream_id: int, data: bytes) -> None:
        self._pending.setdefault(stream_id, bytearray()).extend(data)

    def pending(self, stream_id: int) -> int:
        return len(self._pending.get(stream_id, b""))

    async def flush(self) -> None:
        for stream_id, buffer in self._pending.items():
            while buffer:
                room = min(
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                )
                if room <= 0:
                    break
                self.conn.send_data(stream_id, bytes(buffer[:room]))
                del buffer[:room]
        data = self.conn.data_to_send()
        if data:
            await self.sock.send(data)

    async def wait_change(self, stream: H2WebSocket) -> None:
        """Read and dispatch one batch of input (one reader at a time)."""
        if self._reading:
            await stream.changed.wait()
            stream.changed = anyio.Event()
            return
        self._reading = True
        try:
            data = await self.sock.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            for s in self.streams.values():
                s.ended = True
            data = b""
        finally:
            self._reading = False
        if data:
            for event in self.conn.receive_data(data):
                self._dispatch(event)
            await self.flush()
        for s in self.streams.values():
            s.changed.set()

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
            if setting is not None:
                self.connect_protocol_enabled = setting.new_value == 1
            return
        stream_id = getattr(event, "stream_id", None)
        stream = self.streams.get(stream_id) if stream_id is not None else None
        if stream is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            headers = dict(event.headers)
            stream.status = int(headers.pop(b":status"))
            stream.headers = headers
        elif isinstance(event, h2.events.DataReceived):
            stream.on_data(event.data)
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = event.error_code
            stream.ended = True

    async def open(
        self, path: str, *, extra: list[tuple[bytes, bytes]] | None = None
    ) -> H2WebSocket:
        stream_id = self.conn.get_next_available_stream_id()
        stream = H2WebSocket(self, stream_id)
        self.streams[stream_id] = stream
        headers = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"localhost"),
            (b"sec-websocket-version", b"13"),
            *(extra or []),
        ]
        self.conn.send_headers(stream_id, headers)
        await self.flush()
        with anyio.fail_after(10):
            while stream.status == 0 and not stream.ended:
                await self.wait_change(stream)
        return stream


@asynccontextmanager
async def h2_connect(
    host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[H2Client]:
    """h2c with prior knowledge, or HTTP/2 over TLS (ALPN h2) with ``ssl_context``."""
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["h2"])
        sock: anyio.abc.SocketStream = await anyio.connect_tcp(  # type: ignore[assignment]
            host, port, tls=True, ssl_context=ssl_context, tls_hostname="localhost",
            tls_standard_compatible=False,
        )  # fmt: skip
    else:
        sock = await anyio.connect_tcp(host, port)
    client = H2Client(sock)
    try:
        await client.flush()
        with anyio.fail_after(10):
            while not client.connect_protocol_enabled:
                data = await sock.receive()
                for event in client.conn.receive_data(data):
                    client._dispatch(event)
                await client.flush()
        yield client
    finally:
        with anyio.CancelScope(shield=True):
            await sock.aclose()
