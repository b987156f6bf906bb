"""Everything :mod:`httpy.core.http3` needs from aioquic beyond its public API, in one
place: when aioquic changes, this is the module to check.

* :class:`ServerQuicConnection`: a ``QuicConnection`` whose request streams get credit
  (MAX_STREAM_DATA) as the application consumes their data, not as it arrives.
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
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import MAX_STREAM_DATA_FRAME_CAPACITY, QuicConnection
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream


class ServerQuicConnection(QuicConnection):
    """Request-body back-pressure for QUIC.

    aioquic doubles a stream's receive limit once half of it has *arrived*, so a client
    may send as fast as the network allows however slowly the handler reads.  For the
    streams given to :meth:`track`, the limit is instead what the application consumed
    (:meth:`consume`) plus one window (``max_stream_data``), raised by half a window at a
    time: a slow handler throttles its own stream, as HTTP/2's window does.
    """

    def __init__(
        self,
        *,
        configuration: QuicConfiguration,
        original_destination_connection_id: bytes | None = None,
        retry_source_connection_id: bytes | None = None,
    ) -> None:
        super().__init__(
            configuration=configuration,
            original_destination_connection_id=original_destination_connection_id,
            retry_source_connection_id=retry_source_connection_id,
        )
        self._consumed: dict[int, int] = {}

    def track(self, stream_id: int) -> None:
        self._consumed.setdefault(stream_id, 0)

    def consume(self, stream_id: int, size: int) -> None:
        if stream_id in self._consumed:
            self._consumed[stream_id] += size

    def untrack(self, stream_id: int) -> None:
        self._consumed.pop(stream_id, None)

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream
    ) -> None:
        sid = stream.stream_id
        consumed = self._consumed.get(sid) if sid is not None else None
        if sid is None or consumed is None:
            super()._write_stream_limits(builder, space, stream)
            return
        window = self._configuration.max_stream_data
        wanted = consumed + window
        if wanted - stream.max_stream_data_local >= window // 2:
            stream.max_stream_data_local = wanted
        if stream.max_stream_data_local_sent != stream.max_stream_data_local:
            buf = builder.start_frame(
                QuicFrameType.MAX_STREAM_DATA,
                capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                handler=self._on_max_stream_data_delivery,
                handler_args=(stream,),
            )
            buf.push_uint_var(sid)
            buf.push_uint_var(stream.max_stream_data_local)
            stream.max_stream_data_local_sent = stream.max_stream_data_local


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
