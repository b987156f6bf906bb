"""Protocol-neutral events (bytes in -> events out) and commands (commands in -> bytes out).

Every connection class in :mod:`httpy.core` speaks this one vocabulary, whatever the HTTP
version, so the backend drives an HTTP/1.1 request exactly like an HTTP/2 stream.
Events and commands are small frozen dataclasses: plain data, validated where they are
built, safe to share between tasks.

Header names are always lower-case ``bytes``; values are ``bytes`` as received.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[bytes, bytes], ...]


class Event:
    """Base class of everything ``receive_data`` returns."""

    __slots__ = ()


class StreamEvent(Event):
    """Base class of the events about one open stream (``stream_id``) after its head."""

    __slots__ = ()
    stream_id: int


class Command:
    """Base class of everything a connection's ``send`` accepts."""

    __slots__ = ()


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """A request head arrived on ``stream_id``.

    ``target`` is the raw request target (path and query, percent-encoded).
    ``body_expected`` is False when the framing says there is no body at all, so a
    ``StreamEnded`` follows at once.  ``expects_continue`` is True when the client sent
    ``Expect: 100-continue`` and waits for a 100 before sending the body.  ``upgrade``
    holds the lower-cased ``Upgrade`` token for upgrade requests (``b"websocket"``,
    ``b"h2c"``), else None.
    """

    stream_id: int
    method: str
    target: bytes
    headers: Headers
    http_version: str
    body_expected: bool = True
    expects_continue: bool = False
    upgrade: bytes | None = None


@dataclass(frozen=True, slots=True)
class BodyReceived(StreamEvent):
    """A piece of request body for ``stream_id``."""

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnded(StreamEvent):
    """The request on ``stream_id`` is complete: no more body will come."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class TrailersReceived(StreamEvent):
    """Trailer fields that ended the request body on ``stream_id`` (HTTP/1.1 chunked
    trailers, an HTTP/2 trailing HEADERS frame).  A ``StreamEnded`` follows."""

    stream_id: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class StreamReset(StreamEvent):
    """The peer abandoned ``stream_id``; its handler should be cancelled."""

    stream_id: int
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """The peer broke the protocol.

    ``status`` is the HTTP status the connection answered with (when it could still
    answer), ``reason`` says which rule was broken.  ``stream_id`` names the request that
    was in flight, if any.  After this event the connection is closing: send what
    ``data_to_send`` returns, then close the transport.
    """

    status: int
    reason: str
    stream_id: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """The connection is over (peer closed, or we decided to close)."""

    error_code: int = 0
    reason: str = ""


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class SendInformational(Command):
    """An interim 1xx response (100 Continue, 103 Early Hints)."""

    stream_id: int
    status: int
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class SendResponse(Command):
    """The final response head.  Body follows with :class:`SendData`."""

    stream_id: int
    status: int
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class SendData(Command):
    """Response body bytes; ``end_stream`` marks the last piece (``data`` may be empty)."""

    stream_id: int
    data: bytes
    end_stream: bool = False


@dataclass(frozen=True, slots=True)
class SendTrailers(Command):
    """Trailer fields after the response body; completes the response (like a final
    ``SendData(end_stream=True)``).  HTTP/2 sends them as a HEADERS frame; HTTP/1.1 only
    in a chunked body to a client that sent ``TE: trailers``, else they are dropped."""

    stream_id: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class ResetStream(Command):
    """Abandon the response on ``stream_id`` (HTTP/1.1: close the connection)."""

    stream_id: int
    error_code: int = 0


@dataclass(frozen=True, slots=True)
class CloseConnection(Command):
    """Finish the current exchange, then close (graceful shutdown, fatal errors)."""

    error_code: int = 0
    reason: str = field(default="")


@dataclass(frozen=True, slots=True)
class StreamWritable(StreamEvent):
    """Data queued for ``stream_id`` has all been sent: the sender may queue more.

    HTTP/2 and HTTP/3 only: their flow control holds response data until the peer's
    window allows it.
    """

    stream_id: int
