"""Everything :mod:`httpy.core.http3` needs from aioquic beyond its public API, in one
place: when aioquic changes, this is the module to check.

* :class:`ServerH3Connection`: an ``H3Connection`` whose malformed requests are stream
  errors (it raises :class:`RequestRejected`) instead of closing the connection, and
  which can send a GOAWAY (aioquic has no call for it).
* Functions reading or setting ``QuicConnection`` state aioquic keeps private: stream
  limits (not in ``QuicConfiguration``), unsent bytes per stream, whether a response's
  bytes were all acknowledged, the connection IDs and their stateless reset tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import aioquic.h3.connection as h3c
import aioquic.h3.events as h3e
from aioquic.buffer import encode_uint_var
from aioquic.quic.connection import QuicConnection


class RequestRejected(Exception):
    """A request stream's header block broke RFC 9114 4.1.2 (a stream error)."""

    def __init__(self, stream_id: int, reason: str) -> None:
        super().__init__(reason)
        self.stream_id = stream_id


class ServerH3Connection(h3c.H3Connection):
    """The server's ``H3Connection``.

    aioquic raises ``MessageError`` out of its frame handler and closes the connection;
    for request streams we raise :class:`RequestRejected` instead, which escapes
    aioquic's error handling, for the caller to answer on that stream only.
    """

    def _handle_request_or_push_frame(
        self,
        frame_type: int,
        frame_data: bytes | None,
        stream: h3c.H3Stream,
        stream_ended: bool,
    ) -> list[h3e.H3Event]:
        try:
            return super()._handle_request_or_push_frame(
                frame_type, frame_data, stream, stream_ended
            )
        except h3c.MessageError as exc:
            if stream.stream_type is not None:  # a push stream; servers never get those
                raise
            raise RequestRejected(stream.stream_id, exc.reason_phrase or "malformed") from exc

    @property
    def push_allowed(self) -> bool:
        """The client sent MAX_PUSH_ID and push IDs are left under it (RFC 9114 4.6)."""
        return self._max_push_id is not None and self._next_push_id <= self._max_push_id

    def send_goaway(self, first_refused: int) -> None:
        """GOAWAY on the control stream: requests from ``first_refused`` on will not be
        processed (RFC 9114 5.2)."""
        control = self._local_control_stream_id
        if control is not None:
            frame = h3c.encode_frame(h3c.FrameType.GOAWAY, encode_uint_var(first_refused))
            self._quic.send_stream_data(control, frame)

    def forget_stream(self, stream_id: int) -> None:
        """Drop the state of a request stream we refused (its later frames are ignored)."""
        self._stream.pop(stream_id, None)


def set_stream_limits(quic: QuicConnection, bidi: int, uni: int) -> None:
    """Concurrent streams the peer may open.  They become transport parameters at the
    handshake, so call this before the first datagram."""
    for limit, value in ((quic._local_max_streams_bidi, bidi), (quic._local_max_streams_uni, uni)):
        limit.value = limit.sent = value


def unsent_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Bytes written on ``stream_id`` that flow or congestion control still holds."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    return max(0, sender._buffer_stop - sender.next_offset)


def all_acknowledged(quic: QuicConnection, stream_id: int) -> bool:
    """Every byte sent on ``stream_id`` (and its end) was acknowledged, or it was reset."""
    stream = quic._streams.get(stream_id)
    return stream is None or stream.sender.is_finished


def has_peer(quic: QuicConnection) -> bool:
    """True once a packet was decrypted (aioquic learns the peer's address from it)."""
    return bool(quic._network_paths)


def connection_ids(quic: QuicConnection) -> list[bytes]:
    """The connection IDs the peer may use to reach ``quic``."""
    return [c.cid for c in quic._host_cids]


def derive_reset_tokens(
    quic: QuicConnection, token: Callable[[bytes], bytes], done: set[int]
) -> None:
    """Replace aioquic's random stateless reset tokens with ``token(cid)`` for every
    connection ID not in ``done`` (sequence numbers), before it is announced (transport
    parameters, NEW_CONNECTION_ID frames): so a server that lost the connection's state
    can still derive the token and reset it (RFC 9000 10.3.2)."""
    for cid in quic._host_cids:
        if cid.sequence_number not in done:
            cid.stateless_reset_token = token(cid.cid)
            done.add(cid.sequence_number)
