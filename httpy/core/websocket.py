"""WebSockets, sans-IO: the opening handshake (HTTP/1.1 Upgrade, RFC 6455; extended
CONNECT over HTTP/2, RFC 8441) and the connection that follows, over wsproto.

Contract::

    offer = parse_offer(head)                 # RequestHead -> WebSocketOffer | HandshakeRefused
    headers, extensions = accept_response(offer, subprotocol, extra_headers, options)
    await send_plain(stream, 403, b"Forbidden\n")  # a refusal, on any HTTPStream
    ws = WebSocketProtocol(extensions, max_message_bytes=...)
    events = ws.receive_data(data)            # -> WebSocketData / WebSocketPong / WebSocketClose
    events = ws.receive_eof()
    ws.send_message("text" or b"bytes"); ws.send_ping(b""); ws.close(1000, "")
    out = ws.data_to_send()
    ws.finished                               # True: flush, then close the transport

What this class adds to wsproto: whole messages (fragments reassembled), a size limit
per message (1009) that also bounds decompression, automatic pongs, the closing
handshake answered, failures (bad UTF-8: 1007, protocol errors: 1002) answered with
the right close frame, and close codes reported truthfully: the peer's code, 1005 when
its close frame had none, 1006 when the transport ended without one.

The application-facing types (:class:`WebSocketHandshake`, :class:`WebSocketChannel`)
live here too: they are the WebSocket part of the application interface
(:mod:`httpy.core.application`), implemented by the backend, used by the framework.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError, generate_accept_token

from .application import HTTPStream, RequestHead, StreamError
from .events import Headers
from .protocol import QueuedOutput
from .websocket_deflate import BoundedDeflate, MessageSizeLimit, negotiate_deflate
from .websocket_frames import frame_message, parse_simple_messages
from .wsproto_internals import wsproto_is_idle

# Close codes (RFC 6455 7.4.1; 1012 from the IANA registry).
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
INVALID_DATA = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
NO_STATUS_RECEIVED = 1005  # never sent: the peer's close frame had no code
ABNORMAL_CLOSURE = 1006  # never sent: the connection ended without a close frame

#: What the backend reads at a time (:attr:`WebSocketProtocol.read_size`): a large read
#: normally; a small one while a message arrives in many fragments, whose parsing costs
#: per frame (64 KiB of empty fragments is ~10,000 frames, ~50 ms of one core).
LARGE_READ = 64 * 1024
SMALL_READ = 4 * 1024
#: Fragments of one message past which reads are small.
MANY_FRAGMENTS = 64


class WebSocketDisconnect(StreamError):
    """The WebSocket is closed: nothing more can be sent (or received).

    Raised by sends once the closing handshake has started or the peer has gone away,
    and by ``receive_*`` helpers after the close.  ``code`` and ``reason`` are the
    connection's close code (the peer's, 1005, 1006, or ours if we closed first).
    """

    def __init__(self, code: int = ABNORMAL_CLOSURE, reason: str = "") -> None:
        super().__init__(f"WebSocket closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class WebSocketData:
    """A complete message: ``str`` for a text message, ``bytes`` for a binary one."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class WebSocketPong:
    """A pong arrived (answer to our keep-alive ping, or unsolicited)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class WebSocketClose:
    """The connection is closed (or closing: our reply is in ``data_to_send``).

    ``code`` is the peer's code, 1005 if its close frame had none, 1006 if the
    transport ended without one, or the code we failed the connection with.
    """

    code: int
    reason: str = ""


WebSocketEvent = WebSocketData | WebSocketPong | WebSocketClose


# --------------------------------------------------------------------------- handshake


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    """Per-connection protocol settings (from :class:`~httpy.core.config.Config`)."""

    max_message_bytes: int = 16 * 1024 * 1024
    compression: bool = True
    #: Our compressor's window (9..15): 12 bits is 4 KiB of window, most of the ratio
    #: of 15 for an eighth of the memory.
    deflate_window_bits: int = 12


@dataclass(frozen=True, slots=True)
class WebSocketOffer:
    """A valid opening handshake: what the client asked for."""

    #: ``Sec-WebSocket-Key`` (HTTP/1.1), None over HTTP/2 (RFC 8441 has none).
    key: bytes | None
    subprotocols: tuple[str, ...]
    extensions: tuple[str, ...]
    http_version: str


@dataclass(frozen=True, slots=True)
class HandshakeRefused:
    """Not a valid opening handshake: answer ``status`` (400 or 426) with ``headers``."""

    status: int
    reason: str
    headers: Headers = ()


def parse_offer(
    head: RequestHead, *, connect_protocol: bytes | None = None
) -> WebSocketOffer | HandshakeRefused:
    """Validate an opening handshake (RFC 6455 4.2.1; RFC 8441 4 when
    ``connect_protocol`` is the ``:protocol`` of an HTTP/2 extended CONNECT)."""
    fields: dict[bytes, list[bytes]] = {}
    for name, value in head.headers:
        fields.setdefault(name, []).append(value)
    version_refused = HandshakeRefused(
        426, "unsupported WebSocket version", ((b"sec-websocket-version", b"13"),)
    )
    h2 = connect_protocol is not None
    if h2:
        if head.method != "CONNECT" or connect_protocol != b"websocket":
            return HandshakeRefused(400, "not a WebSocket extended CONNECT")
    else:
        if head.method != "GET":
            return HandshakeRefused(400, "WebSocket handshake must be a GET")
        if head.http_version != "1.1":
            return HandshakeRefused(400, "WebSocket handshake needs HTTP/1.1")
        upgrade = b",".join(fields.get(b"upgrade", []))
        connection = b",".join(fields.get(b"connection", []))
        if b"websocket" not in _tokens(upgrade) or b"upgrade" not in _tokens(connection):
            return HandshakeRefused(400, "missing Upgrade: websocket / Connection: Upgrade")
    versions = fields.get(b"sec-websocket-version", [])
    if len(versions) != 1 or versions[0].strip() != b"13":
        return version_refused
    key: bytes | None = None
    if not h2:
        keys = fields.get(b"sec-websocket-key", [])
        if len(keys) != 1:
            return HandshakeRefused(400, "missing or repeated Sec-WebSocket-Key")
        key = keys[0].strip()
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError("key is not 16 bytes")
        except (binascii.Error, ValueError):
            return HandshakeRefused(400, "invalid Sec-WebSocket-Key")
    protocols = tuple(
        token.decode("latin-1")
        for value in fields.get(b"sec-websocket-protocol", [])
        for token in _tokens(value, lower=False)
    )
    extensions = tuple(
        item.strip().decode("latin-1")
        for value in fields.get(b"sec-websocket-extensions", [])
        for item in value.split(b",")
        if item.strip()
    )
    return WebSocketOffer(key, protocols, extensions, head.http_version)


def accept_response(
    offer: WebSocketOffer,
    subprotocol: str | None,
    extra_headers: Headers,
    options: WebSocketOptions,
) -> tuple[Headers, list[Extension]]:
    """Headers of the answer that accepts ``offer`` (101 on HTTP/1.1, 200 on HTTP/2;
    without Date/Server) and the wsproto extensions for the connection.

    ``subprotocol`` must be one the client offered (ValueError otherwise).
    """
    check_subprotocol(offer, subprotocol)
    headers: list[tuple[bytes, bytes]] = []
    if offer.key is not None:
        headers += [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(offer.key)),
        ]
    if subprotocol is not None:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
    extensions: list[Extension] = []
    if options.compression:
        agreed = negotiate_deflate(list(offer.extensions), options.deflate_window_bits)
        if agreed is not None:
            headers.append((b"sec-websocket-extensions", agreed.response().encode("latin-1")))
            extensions.append(BoundedDeflate(agreed, options.max_message_bytes))
    reserved = {name for name, _ in headers}
    headers += [(n.lower(), v) for n, v in extra_headers if n.lower() not in reserved]
    return tuple(headers), extensions


def check_subprotocol(offer: WebSocketOffer, subprotocol: str | None) -> None:
    """Raise ValueError unless ``subprotocol`` is None or one the client offered."""
    if subprotocol is not None and subprotocol not in offer.subprotocols:
        raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")


async def send_plain(stream: HTTPStream, status: int, body: bytes, headers: Headers = ()) -> None:
    """Answer ``stream`` with a complete ``text/plain`` response: how a handshake is
    refused when the application did not answer it (or could not be asked)."""
    length = b"%d" % len(body)
    plain = ((b"content-type", b"text/plain; charset=utf-8"), (b"content-length", length))
    await stream.send_response(status, (*headers, *plain))
    await stream.send_body(body, end=True)


def _tokens(value: bytes, *, lower: bool = True) -> list[bytes]:
    if lower:
        value = value.lower()
    return [token.strip() for token in value.split(b",") if token.strip()]


# --------------------------------------------------------------------------- connection


class WebSocketProtocol(QueuedOutput):
    """The server side of one WebSocket connection after the handshake.  Not
    thread-safe: one task at a time calls into it (the backend holds a lock)."""

    def __init__(
        self,
        extensions: list[Extension],
        *,
        max_message_bytes: int,
        message_timeout: float | None = None,
    ) -> None:
        # The size limit comes after permessage-deflate: wsproto runs inbound hooks in
        # order, so it counts inflated bytes.
        hooks = [*extensions, MessageSizeLimit(max_message_bytes)]
        self._conn = Connection(ConnectionType.SERVER, hooks)
        self._max_message_bytes = max_message_bytes
        # Whole simple frames may skip wsproto (websocket_frames); not when a negotiated
        # extension (permessage-deflate) transforms payloads.
        self._simple_input = not extensions
        self._out: list[bytes] = []
        self._text_parts: list[str] = []
        self._byte_parts: list[bytes] = []
        #: The close code and reason once known (see :class:`WebSocketClose`).
        self.close_code: int | None = None
        self.close_reason = ""
        self._sent_close = False
        self._finished = False
        #: How long a message may take to arrive (see ``Config.ws_message_timeout``), and
        #: when the one in progress began (None: none is).
        self._message_timeout = message_timeout
        self._message_since: float | None = None
        #: Frames of the message in progress (reassembled so far).
        self._fragments = 0

    # -- inspection --------------------------------------------------------------------

    @property
    def closing(self) -> bool:
        """True once a close frame was sent or received (or the transport ended):
        no more messages may be sent."""
        return self._sent_close or self.close_code is not None

    @property
    def has_data_to_send(self) -> bool:
        """True when ``data_to_send`` would return bytes."""
        return bool(self._out)

    @property
    def read_size(self) -> int:
        """How many bytes the backend should read next (see :data:`SMALL_READ`); it
        should also let other tasks run between two small reads."""
        return SMALL_READ if self._fragments > MANY_FRAGMENTS else LARGE_READ

    @property
    def finished(self) -> bool:
        """True once the closing handshake is complete, failed, or the transport ended:
        flush ``data_to_send`` and close the transport."""
        return self._finished

    # -- input -------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run (the clock of ``now``): the end of the time
        the message in progress has to arrive whole; None while no message is partial."""
        if self._message_since is None or self._message_timeout is None:
            return None
        return self._message_since + self._message_timeout

    def handle_timer(self, now: float) -> list[WebSocketEvent]:
        """The deadline of :meth:`next_deadline` may have passed: a message still partial
        then fails the connection with 1008 (policy violation)."""
        deadline = self.next_deadline()
        if self._finished or deadline is None or now < deadline:
            return []
        reason = f"message not complete within {self._message_timeout:g} s"
        self.abort(POLICY_VIOLATION, reason)
        self.close_code, self.close_reason = POLICY_VIOLATION, reason
        return [WebSocketClose(POLICY_VIOLATION, reason)]

    def pause_timer(self, seconds: float) -> None:
        """The backend did not read for ``seconds`` (the application's queue was full):
        the peer is not to blame, so its message gets that much longer."""
        if self._message_since is not None:
            self._message_since += seconds

    def receive_data(self, data: bytes, now: float = 0.0) -> list[WebSocketEvent]:
        """Feed bytes from the peer; return the events they complete.  ``now`` (any
        monotonic clock) starts the time a message has to arrive whole."""
        if self._finished or not data:
            return []
        if self._simple_input and self._message_since is None and wsproto_is_idle(self._conn):
            messages = parse_simple_messages(data, self._max_message_bytes)
            if messages is not None:
                return [WebSocketData(message) for message in messages]
        events = self._receive(data)
        if self._message_timeout is not None:
            # Partial (a frame cut by the read, or a message in fragments) from this read
            # on, unless it already was; whole again: no deadline.
            if self._finished or wsproto_is_idle(self._conn):
                self._message_since = None
            elif self._message_since is None:
                self._message_since = now
        return events

    def _receive(self, data: bytes) -> list[WebSocketEvent]:
        self._conn.receive_data(data)
        events: list[WebSocketEvent] = []
        for event in self._conn.events():
            if isinstance(event, TextMessage | BytesMessage):
                message = self._reassemble(event)
                if message is not None:
                    events.append(message)
            elif isinstance(event, Ping):
                if not self._sent_close:
                    self._out.append(self._conn.send(event.response()))
            elif isinstance(event, Pong):
                events.append(WebSocketPong(bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                events.append(self._on_close(event))
                break
        return events

    def receive_eof(self) -> list[WebSocketEvent]:
        """The transport ended.  Without a completed closing handshake this is an
        abnormal closure (1006)."""
        if self._finished:
            return []
        self._finished = True
        if self.close_code is None:
            self.close_code = ABNORMAL_CLOSURE
            return [WebSocketClose(ABNORMAL_CLOSURE, "connection lost")]
        return []

    # -- output ------------------------------------------------------------------------

    def send_message(self, data: str | bytes) -> None:
        """Queue a whole message (text for ``str``); raises :class:`WebSocketDisconnect`
        once the connection is closing."""
        if self.closing:
            raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
        if self._simple_input and isinstance(data, str | bytes):
            # No extension to transform it: the frame is fixed by RFC 6455 (the same
            # bytes wsproto would write, without its per-message machinery).
            self._out.append(frame_message(data))
            return
        self._out.append(self._conn.send(_message(data)))

    def send_ping(self, payload: bytes = b"") -> None:
        if self.closing:
            raise WebSocketDisconnect(self.close_code or ABNORMAL_CLOSURE, self.close_reason)
        self._out.append(self._conn.send(Ping(payload)))

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (no-op once closing).  The connection is
        ``finished`` when the peer's close frame arrives."""
        if self.closing or self._finished:
            return
        self._send_close(code, reason)

    def abort(self, code: int, reason: str = "") -> None:
        """Fail the connection: send a close frame if none was sent, and finish without
        waiting for the peer's (a keep-alive timeout, a peer that stopped reading)."""
        if not self._sent_close and self._conn.state is ConnectionState.OPEN:
            self._send_close(code, reason)
        self._finished = True
        if self.close_code is None:
            self.close_code, self.close_reason = ABNORMAL_CLOSURE, reason

    # -- internals ---------------------------------------------------------------------

    def _reassemble(self, event: TextMessage | BytesMessage) -> WebSocketData | None:
        # wsproto hands over frames as they arrive (text already decoded and
        # UTF-8-checked incrementally); a message is complete at message_finished.
        if not event.message_finished:
            self._fragments += 1
        else:
            self._fragments = 0
        if isinstance(event, TextMessage):
            self._text_parts.append(event.data)
            if not event.message_finished:
                return None
            text, self._text_parts = "".join(self._text_parts), []
            return WebSocketData(text)
        self._byte_parts.append(bytes(event.data))
        if not event.message_finished:
            return None
        data, self._byte_parts = b"".join(self._byte_parts), []
        return WebSocketData(data)

    def _on_close(self, event: CloseConnection) -> WebSocketClose:
        code, reason = int(event.code), event.reason or ""
        if self._conn.state is ConnectionState.OPEN:
            # wsproto reports our own parse failure as a CloseConnection without a state
            # change: the peer broke the protocol (1002), sent bad UTF-8 (1007) or an
            # oversized message (1009).  Fail the connection with that code.
            if code == INVALID_DATA:
                # wsproto passes on the decoder's message, whose byte position depends
                # on how the input was split into reads: report the same thing always.
                reason = "invalid UTF-8 in a text message"
            self.abort(code, reason)
            self.close_code, self.close_reason = code, reason
            return WebSocketClose(code, reason)
        if self._conn.state is ConnectionState.REMOTE_CLOSING:
            # The peer closed first: answer with its code (none for 1005), then finish.
            self._out.append(self._conn.send(event.response()))
            self._sent_close = True
        # Either way (our close answered, or the peer's answered above) the closing
        # handshake is complete; the server closes the TCP connection first (RFC 6455 7.1.1).
        self._finished = True
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        return WebSocketClose(code, reason)

    def _send_close(self, code: int, reason: str) -> None:
        try:
            self._out.append(self._conn.send(CloseConnection(code, reason)))
        except LocalProtocolError:
            self._finished = True
        self._sent_close = True


def _message(data: str | bytes) -> TextMessage | BytesMessage:
    if isinstance(data, str):
        return TextMessage(data)
    if isinstance(data, bytes | bytearray | memoryview):
        return BytesMessage(bytes(data))
    raise TypeError(f"a WebSocket message is str or bytes, not {type(data).__name__}")


# --------------------------------------------------------------------------- app interface


class WebSocketChannel(Protocol):
    """An accepted WebSocket, as the backend gives it to the application.

    ``send`` from several tasks at once is safe: messages go out whole, in the order
    the sends were called.  ``send`` waits while the peer is not reading (back-pressure)
    and raises :class:`WebSocketDisconnect` once the connection is closing or gone.
    """

    @property
    def close_code(self) -> int | None:
        """None while open; then the close code (see :class:`WebSocketClose`)."""
        ...

    @property
    def close_reason(self) -> str: ...

    @property
    def closing(self) -> bool:
        """True once a close frame was sent or received, or the connection was lost."""
        ...

    async def receive(self) -> WebSocketData | WebSocketClose:
        """The next message; a :class:`WebSocketClose` once closed (every time after)."""
        ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame and wait (up to the close timeout) for the peer's."""
        ...


class WebSocketHandshake(ABC):
    """Mixed into the stream of a valid WebSocket opening handshake.

    The application either answers it like any HTTP request (``send_response``: a
    refusal, the connection then closes) or accepts it with :meth:`accept_websocket`.
    """

    @property
    @abstractmethod
    def websocket_offer(self) -> WebSocketOffer:
        """What the client asked for (subprotocols, extensions)."""

    @abstractmethod
    async def accept_websocket(
        self, subprotocol: str | None = None, headers: Headers = ()
    ) -> WebSocketChannel:
        """Send the accepting answer (101 / 200) and return the open channel."""


class HandshakeRequest(ABC):
    """The HTTP side of a WebSocket handshake stream, the same on every HTTP version and
    under ASGI: the request has no body and no trailers, and nothing is pushed.  By
    default no interim (1xx) answer is sent (on HTTP/1.1 it would be read as the 101)
    and a refusal's trailers just end it; an HTTP/2 stream passes both on.  Subclasses
    send the response (and may accept the handshake: :class:`WebSocketHandshake`)."""

    @property
    @abstractmethod
    def head(self) -> RequestHead: ...

    @property
    def disconnected(self) -> bool:
        return False

    @property
    def trailers(self) -> Headers:
        return ()

    async def receive(self) -> bytes:
        return b""  # any bytes after the request belong to the WebSocket, once accepted

    async def push(self, path: str) -> bool:
        return False

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        return None  # not sent (see the class docstring)

    @abstractmethod
    async def send_response(self, status: int, headers: Headers) -> None: ...

    @abstractmethod
    async def send_body(self, data: bytes, *, end: bool = False) -> None: ...

    async def send_trailers(self, headers: Headers) -> None:
        await self.send_body(b"", end=True)
