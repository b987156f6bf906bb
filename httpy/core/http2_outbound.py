"""Response data held per HTTP/2 stream until the peer's flow-control windows take it.

:class:`~httpy.core.http2.HTTP2Connection` keeps one :class:`Outbound` per stream with a
response in progress.  :meth:`Outbound.add` queues body bytes (and, last, the trailers);
:func:`send_window` sends as much as the stream and connection windows allow, one frame
at a time, and says whether the queue is blocked, drained, or the response finished.
The backend sends no more body for a stream until its queue has drained, so this never
holds more than one application chunk per stream.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

import h2.connection

from .events import Headers
from .fields import multiplexed_fields

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
            self.trailers = multiplexed_fields(trailers)
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
