"""HTTP/2 test peers: an h2 client connection, and hand-built frames for attack tests.

The client side is the ``h2`` library (what httpx uses), so assertions are about what a
real client sees.  Attacks the h2 client refuses to produce (floods, malformed header
blocks, CONTINUATION without end) are built frame by frame with hyperframe + hpack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import hyperframe.frame as hf

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, CANCEL, REFUSED_STREAM, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x8, 0x7, 0xB

RawHeaders = Sequence[tuple[bytes, bytes]]


def client_connection(
    *,
    enable_push: bool = True,
    initial_window: int | None = None,
    settings: dict[int, int] | None = None,
) -> h2.connection.H2Connection:
    """An h2 client with its preface queued; ``enable_push``/``initial_window`` go in its
    first SETTINGS frame."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    values: dict[int, int] = dict(settings or {})
    if not enable_push:
        values[h2.settings.SettingCodes.ENABLE_PUSH] = 0
    if initial_window is not None:
        values[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = initial_window
    if values:
        conn.local_settings = h2.settings.Settings(client=True, initial_values=values)
    conn.initiate_connection()
    return conn


def request_headers(
    method: str = "GET",
    path: str = "/",
    *,
    authority: str = "example.com",
    scheme: str = "https",
    extra: Iterable[tuple[str, str]] = (),
) -> list[tuple[bytes, bytes]]:
    headers = [
        (b":method", method.encode()),
        (b":path", path.encode()),
        (b":scheme", scheme.encode()),
        (b":authority", authority.encode()),
    ]
    headers.extend((name.encode(), value.encode()) for name, value in extra)
    return headers


# ----------------------------------------------------------------------------- parsing


def parse_frames(data: bytes) -> list[hf.Frame]:
    """Split server output into frames (complete frames only)."""
    out: list[hf.Frame] = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = hf.Frame.parse_frame_header(view[:9])
        if len(view) < 9 + length:
            break
        frame.parse_body(view[9 : 9 + length])
        out.append(frame)
        view = view[9 + length :]
    return out


def complete_frames_length(data: bytes | bytearray) -> int:
    """How many leading bytes of ``data`` are whole frames."""
    pos = 0
    while len(data) - pos >= 9:
        size = 9 + int.from_bytes(data[pos : pos + 3], "big")
        if len(data) - pos < size:
            break
        pos += size
    return pos


def goaway_codes(data: bytes) -> list[int]:
    return [f.error_code for f in parse_frames(data) if isinstance(f, hf.GoAwayFrame)]


def rst_codes(data: bytes) -> dict[int, int]:
    frames = parse_frames(data)
    return {f.stream_id: f.error_code for f in frames if isinstance(f, hf.RstStreamFrame)}


def feed_client(client: h2.connection.H2Connection, data: bytes) -> list[h2.events.Event]:
    """Give server output to the h2 client, frame by frame.

    h2 closes its state machine on any GOAWAY (python-hyper/h2#1181), so after a
    graceful GOAWAY (NO_ERROR) the client is put back to "open": an RFC 9113 client
    still receives the responses to the streams the GOAWAY lets finish.
    """
    events: list[h2.events.Event] = []
    view = memoryview(data)
    while len(view) >= 9:
        frame, length = hf.Frame.parse_frame_header(view[:9])
        size = 9 + length
        got = client.receive_data(bytes(view[:size]))
        events.extend(got)
        if isinstance(frame, hf.GoAwayFrame) and any(
            isinstance(e, h2.events.ConnectionTerminated) and e.error_code == 0 for e in got
        ):
            client.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        view = view[size:]
    if len(view):
        events.extend(client.receive_data(bytes(view)))
    return events


# ----------------------------------------------------------------------------- raw frames


def raw_headers(
    stream_id: int,
    headers: RawHeaders,
    *,
    end_stream: bool = True,
    end_headers: bool = True,
    encoder: hpack.Encoder | None = None,
) -> bytes:
    frame = hf.HeadersFrame(stream_id)
    frame.data = (encoder or hpack.Encoder()).encode(list(headers))
    if end_headers:
        frame.flags.add("END_HEADERS")
    if end_stream:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def raw_continuation(stream_id: int, block: bytes = b"", *, end_headers: bool = False) -> bytes:
    frame = hf.ContinuationFrame(stream_id)
    frame.data = block
    if end_headers:
        frame.flags.add("END_HEADERS")
    return bytes(frame.serialize())


def raw_ping(payload: bytes = b"\0" * 8) -> bytes:
    return bytes(hf.PingFrame(0, opaque_data=payload).serialize())


def raw_settings(settings: dict[int, int] | None = None, *, ack: bool = False) -> bytes:
    frame = hf.SettingsFrame(0, settings=settings or {})
    if ack:
        frame.flags.add("ACK")
    return bytes(frame.serialize())


def raw_data(stream_id: int, data: bytes = b"", *, end_stream: bool = False) -> bytes:
    frame = hf.DataFrame(stream_id, data=data)
    if end_stream:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def raw_rst(stream_id: int, code: int = CANCEL) -> bytes:
    return bytes(hf.RstStreamFrame(stream_id, error_code=code).serialize())


def raw_window_update(stream_id: int, increment: int) -> bytes:
    return bytes(hf.WindowUpdateFrame(stream_id, window_increment=increment).serialize())


def client_preface(settings: dict[int, int] | None = None) -> bytes:
    """The connection preface and an (empty unless given) SETTINGS frame."""
    return PREFACE + raw_settings(settings)


# ----------------------------------------------------------------------------- over a socket


class SocketPeer:
    """An h2 client connection over a real socket (anyio), plus raw-frame sending."""

    def __init__(self, stream: anyio.abc.ByteStream, conn: h2.connection.H2Connection) -> None:
        self.stream = stream
        self.conn = conn
        self.events: list[h2.events.Event] = []
        self.raw = bytearray()  # every byte the server sent (while keep_raw)
        self.keep_raw = True
        self._partial = bytearray()
        self.closed = False
        #: Give flow-control window back for DATA as it arrives (False: a stalling client).
        self.auto_ack = True

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, address: tuple[str, int], local_host: str | None = None, **client_options: Any
    ) -> AsyncIterator[SocketPeer]:
        async with await anyio.connect_tcp(*address, local_host=local_host) as stream:
            peer = cls(stream, client_connection(**client_options))
            await peer.flush()
            yield peer

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            await self.stream.send(data)

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self, timeout: float = 10.0) -> list[h2.events.Event]:
        """One read's worth of events (empty at EOF)."""
        with anyio.fail_after(timeout):
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                self.closed = True
                return []
        if self.keep_raw:
            self.raw += data
        # Whole frames only: feed_client looks at each frame (GOAWAY) before h2 does.
        self._partial += data
        whole = complete_frames_length(self._partial)
        events = feed_client(self.conn, bytes(self._partial[:whole]))
        del self._partial[:whole]
        self.events.extend(events)
        if self.auto_ack:
            for e in events:
                if isinstance(e, h2.events.DataReceived) and e.flow_controlled_length:
                    self.conn.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        await self.flush()
        return events

    async def until(
        self, done: Callable[[list[h2.events.Event]], bool], timeout: float = 10.0
    ) -> list[h2.events.Event]:
        """Read until ``done(all events so far)`` or EOF; return all events."""
        with anyio.fail_after(timeout):
            while not done(self.events) and not self.closed:
                await self.receive()
        return self.events

    async def read_until_closed(self, timeout: float = 10.0) -> bytes:
        """Raw server bytes until it closes the connection."""
        with anyio.fail_after(timeout):
            while True:
                try:
                    data = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                    self.closed = True
                    return bytes(self.raw)
                self.raw += data

    def stream_ended(self, stream_id: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
            and e.stream_id == stream_id
            for e in self.events
        )

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> Response:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            sid, request_headers(method, path, scheme="http"), end_stream=body is None
        )
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        await self.flush()
        await self.until(lambda _: self.stream_ended(sid), timeout)
        return self.response(sid)

    def response(self, stream_id: int) -> Response:
        status, headers, body = 0, [], b""
        for e in self.events:
            if getattr(e, "stream_id", None) != stream_id:
                continue
            if isinstance(e, h2.events.ResponseReceived):
                headers = [(bytes(n), bytes(v)) for n, v in e.headers]
                status = int(dict(headers)[b":status"])
            elif isinstance(e, h2.events.DataReceived):
                body += bytes(e.data)
        return Response(status, headers, body)


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
