"""Response data held per HTTP/2 stream until the peer's flow-control windows take it.

:class:`~httpy.core.http2.HTTP2Connection` keeps one :class:`Outbound` per stream with a
response in progress.  :meth:`Outbound.add` queues body bytes (and, last, the trailers);
:func:`send_window` sends as much as the stream and connection windows allow, one frame
at a time, and says whether the queue is blocked, drained, or the response finished.
The backend sends no more body for a stream until its queue has drained, so this never
holds more than one application chunk per stream.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Literal

import h2.connection

from .errors import LocalProtocolError
from .events import Headers

#: Header fields that are meaningful only to one HTTP/1.1 hop (RFC 9113 8.2.2).
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

# RFC 9110 5.1 / 5.5: a field name is a token (lower-case on HTTP/2, RFC 9113 8.2.1); a
# value has no CR, LF or NUL and no surrounding whitespace.  h2's own outbound checks are
# off (they cost ~10% of a request): these replace them.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")


def response_fields(headers: Headers) -> list[tuple[bytes, bytes]]:
    """``headers`` as HTTP/2 sends them: lower-case names, connection-specific and
    pseudo-header fields left out, every field checked (LocalProtocolError)."""
    fields = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in CONNECTION_SPECIFIC or name.startswith(b":"):
            continue
        if _NAME.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid header name {raw_name!r}")
        if _BAD_VALUE.search(value) is not None:
            raise LocalProtocolError(f"invalid value for header {raw_name!r}")
        fields.append((name, value))
    return fields


#: What :func:`send_window` left: data waiting for window, nothing waiting, or the
#: response complete (END_STREAM sent).
Progress = Literal["blocked", "drained", "finished"]


class Outbound:
    """Response data waiting for flow-control window on one stream.

    ``offset`` is how much of ``chunks[0]`` was sent already: a large chunk goes out one
    frame at a time without re-slicing the rest of it each time.
    """

    __slots__ = ("chunks", "end", "offset", "size", "trailers")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.offset = 0
        self.size = 0
        self.end = False
        #: Trailer fields to send (a HEADERS frame with END_STREAM) once the data is out.
        self.trailers: list[tuple[bytes, bytes]] | None = None

    def add(self, data: bytes, end: bool, trailers: Headers | None) -> None:
        """Queue ``data``; ``end`` completes the response, with ``trailers`` if given."""
        if data:
            self.chunks.append(data)
            self.size += len(data)
        if trailers:
            # RFC 9113 8.1: no pseudo-header fields in trailers; 8.2.2: nor
            # connection-specific ones.  Names are lower-case on the wire (8.2).
            self.trailers = response_fields(trailers)
        self.end = end


def send_window(
    h2conn: h2.connection.H2Connection, stream_id: int, outbound: Outbound
) -> tuple[int, Progress]:
    """Send as much of ``outbound`` as the windows allow; returns the number of DATA
    frames sent and how far the response got."""
    frames = 0
    while outbound.chunks:
        window = min(h2conn.local_flow_control_window(stream_id), h2conn.max_outbound_frame_size)
        if window <= 0:
            return frames, "blocked"
        head, start = outbound.chunks[0], outbound.offset
        stop = min(len(head), start + window)
        chunk = head if start == 0 and stop == len(head) else head[start:stop]
        if stop == len(head):
            outbound.chunks.popleft()
            outbound.offset = 0
        else:
            outbound.offset = stop
        outbound.size -= len(chunk)
        last = outbound.end and not outbound.chunks and not outbound.trailers
        h2conn.send_data(stream_id, chunk, end_stream=last)
        frames += 1
        if last:
            return frames, "finished"
    if outbound.end:
        if outbound.trailers:
            h2conn.send_headers(stream_id, outbound.trailers, end_stream=True)
        else:
            h2conn.end_stream(stream_id)
        return frames, "finished"
    return frames, "drained"
