"""Everything :mod:`httpy.core.http3` needs from aioquic beyond its public API, in one
place: when aioquic changes, this is the module to check.

* :class:`ServerQuicConnection`: a ``QuicConnection`` whose receive windows (MAX_DATA,
  MAX_STREAM_DATA) follow what was consumed, not what arrived.
* :class:`ServerH3Connection`: an ``H3Connection`` whose malformed requests are stream
  errors (it raises :class:`RequestRejected`) instead of closing the connection, which
  refuses a HEADERS frame over the header limit from its frame header (it raises
  :class:`HeadersTooLarge`), and which can send a GOAWAY (aioquic has no call for it).
* Functions reading or setting ``QuicConnection`` state aioquic keeps private: stream
  limits (not in ``QuicConfiguration``), unsent bytes per stream, whether a response's
  bytes were all acknowledged, the connection IDs and their stateless reset tokens.

:func:`check` (below the imports) runs at import and raises
:class:`~httpy.core.private_api.InternalsChanged` naming any of these internals that the
installed aioquic lacks; pyproject.toml caps aioquic below the next minor release not
yet tested.  On an aioquic upgrade, besides the import check: ``tests/core/test_http3.py``
and ``tests/backends/test_http3_*.py`` exercise each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aioquic.h3.connection as h3c
import aioquic.h3.events as h3e
from aioquic.buffer import encode_uint_var
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import MAX_STREAM_DATA_FRAME_CAPACITY, QuicConnection
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.recovery import QuicPacketSpace
from aioquic.quic.stream import QuicStream

from .private_api import InternalsChanged, installed_version, require

#: What a HEADERS frame may carry beyond the field section size it encodes: QPACK's
#: prefix and per-line lengths stay under the 32 bytes RFC 9114 4.2.2 counts per field,
#: so an honest encoder never needs more than a few bytes of slack.
HEADERS_FRAME_SLACK = 64
#: Largest SETTINGS or MAX_PUSH_ID frame on the control stream (aioquic buffers them
#: whole); real ones are a few dozen bytes.
MAX_CONTROL_FRAME = 16 * 1024
#: DATA frames shorter than this are "tiny" (HTTP/2's rule, CVE-2019-9518).
SMALL_DATA = 128
#: QUIC frames that ask for no request: PING, MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS
#: (bidi, uni), DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED (bidi, uni),
#: NEW_CONNECTION_ID, RETIRE_CONNECTION_ID, PATH_CHALLENGE (RFC 9000 19).
CONTROL_FRAME_TYPES = (0x01, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A)

# ---------------------------------------------------------------------- import check

#: What :func:`check` looks for, per probe (see :func:`probes`): the private methods the
#: classes below override (on aioquic's own classes), and the attributes they and the
#: functions at the end read or set.
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "aioquic": {
        "QuicConnection": (
            "_write_connection_limits",
            "_write_stream_limits",
            "_on_max_stream_data_delivery",
        ),
        "QuicConnection()": (
            "_QuicConnection__frame_handlers",
            "_configuration.max_data",
            "_configuration.max_stream_data",
            "_local_max_data.used",
            "_local_max_data.value",
            "_local_max_streams_bidi.value",
            "_local_max_streams_bidi.sent",
            "_local_max_streams_uni.value",
            "_local_max_streams_uni.sent",
            "_streams",
            "_network_paths",
            "_host_cids",
        ),
        "QuicConnection()._host_cids[0]": ("cid", "sequence_number", "stateless_reset_token"),
        "QuicStream()": (
            "max_stream_data_local",
            "max_stream_data_local_sent",
            "receiver.highest_offset",
            "receiver.starting_offset",
            "sender._buffer_start",
            "sender._buffer_stop",
            "sender.is_finished",
            "sender.next_offset",
        ),
        "H3Connection": (
            "_init_connection",
            "_get_local_settings",
            "_check_request_or_push_frame_type",
            "_check_control_frame_type",
            "_handle_request_or_push_frame",
        ),
        "H3Connection()": (
            "_quic",
            "_stream",
            "_peer_control_stream_id",
            "_local_control_stream_id",
            "_settings_received",
            "_max_push_id",
            "_next_push_id",
        ),
        "H3Stream()": ("frame_size", "stream_type", "stream_id"),
        "aioquic.h3.connection": (
            "H3Stream",
            "MessageError",
            "ProtocolError",
            "encode_frame",
            "ErrorCode.H3_EXCESSIVE_LOAD",
            "FrameType.DATA",
            "FrameType.GOAWAY",
            "FrameType.HEADERS",
            "FrameType.MAX_PUSH_ID",
            "FrameType.PUSH_PROMISE",
            "FrameType.SETTINGS",
            "Setting.MAX_FIELD_SECTION_SIZE",
        ),
    },
}


def probes() -> dict[str, object]:
    """The objects :data:`REQUIRED` is checked against (a client connection: a server
    one needs a certificate)."""
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True))
    host_cids = getattr(quic, "_host_cids", None) or [None]
    return {
        "QuicConnection": QuicConnection,
        "QuicConnection()": quic,
        "QuicConnection()._host_cids[0]": host_cids[0],
        "QuicStream()": QuicStream(stream_id=0),
        "H3Connection": h3c.H3Connection,
        "H3Connection()": h3c.H3Connection(quic),
        "H3Stream()": h3c.H3Stream(0),
        "aioquic.h3.connection": h3c,
    }


def check(found: Mapping[str, object] | None = None) -> None:
    """Raise ``InternalsChanged`` unless aioquic has everything listed above, and a frame
    handler for each of :data:`CONTROL_FRAME_TYPES`."""
    found = probes() if found is None else found
    for distribution, required in REQUIRED.items():
        require(distribution, found, required, module=__name__)
    table = getattr(found["QuicConnection()"], "_QuicConnection__frame_handlers", {})
    missing = [hex(t) for t in CONTROL_FRAME_TYPES if t not in table]
    if missing:
        raise InternalsChanged(
            f"HTTPy relies on internals of aioquic that the installed aioquic "
            f"{installed_version('aioquic')} does not have: QuicConnection's frame handler "
            f"table has no entry for frame types {', '.join(missing)}.  Install an aioquic "
            f"release within the bounds in HTTPy's pyproject.toml, or update {__name__}."
        )


check()


class ServerQuicConnection(QuicConnection):
    """Receive windows that follow what was consumed, for a server.

    aioquic doubles a stream's receive limit once half of it has *arrived*, and the
    connection's (MAX_DATA) likewise, so a client may make the server buffer without
    bound.  Here every window is what was consumed plus one window, raised by half a
    window at a time:

    * streams given to :meth:`track` (a request body): what arrived, less the body bytes
      handed to the application (:meth:`deliver`) that it has not consumed yet
      (:meth:`consume`), plus ``max_stream_data``; a slow handler throttles its stream,
      as HTTP/2's window does (framing bytes are credited as they arrive, so a long-lived
      tunnel of small DATA frames never runs dry);
    * request streams not tracked yet (their head is still arriving, buffered by
      ``H3Connection``) or done with (:meth:`untrack`): never raised past the initial
      window; the head's size is bounded by :class:`ServerH3Connection`;
    * the peer's unidirectional streams (control, QPACK): what arrived in order, since
      ``H3Connection`` parses it at once;
    * the connection: ``max_data`` plus every byte received that is no longer held (held:
      a tracked stream's unconsumed bytes, a pending request stream's bytes, out-of-order
      bytes), so at most about 1.5 times ``max_data`` is ever buffered.
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
        #: Tracked streams: body bytes handed to the application, not consumed yet.
        self._unread: dict[int, int] = {}
        #: Request streams done with (answered, refused): their bytes are dropped.
        self._released: set[int] = set()
        #: Control frames (CONTROL_FRAME_TYPES) received since take_control_frames().
        self._control_frames = 0
        # aioquic dispatches frames through a private table of bound handlers: count
        # the control frames on their way in.
        table = self._QuicConnection__frame_handlers  # type: ignore[attr-defined]
        for frame_type in CONTROL_FRAME_TYPES:
            handler, epochs = table[frame_type]
            table[frame_type] = (self._counted(handler), epochs)

    def _counted(self, handler: Callable[..., None]) -> Callable[..., None]:
        def count(*args: object) -> None:
            self._control_frames += 1
            handler(*args)

        return count

    def take_control_frames(self) -> int:
        """Control frames received since the last call."""
        count, self._control_frames = self._control_frames, 0
        return count

    def track(self, stream_id: int) -> None:
        """Request ``stream_id`` has a body: its credit follows the application."""
        self._unread.setdefault(stream_id, 0)

    def deliver(self, stream_id: int, size: int) -> None:
        """``size`` body bytes of ``stream_id`` were handed to the application."""
        if stream_id in self._unread:
            self._unread[stream_id] += size

    def consume(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` bytes it was handed."""
        if stream_id in self._unread:
            self._unread[stream_id] = max(0, self._unread[stream_id] - size)

    def untrack(self, stream_id: int) -> None:
        """Done with request ``stream_id``: what still arrives on it is dropped."""
        self._unread.pop(stream_id, None)
        self._released.add(stream_id)

    def held_bytes(self) -> int:
        """Received bytes the server still holds (see the class docstring)."""
        held = 0
        for sid, stream in self._streams.items():
            receiver = stream.receiver
            unread = self._unread.get(sid)
            if unread is not None:
                done = receiver.starting_offset() - unread
            elif sid % 4 == 0 and sid not in self._released:
                done = 0  # a request whose head is still buffered by H3Connection
            else:
                done = receiver.starting_offset()  # parsed at once, or dropped
            held += max(0, receiver.highest_offset - done)
        return held

    def _write_connection_limits(self, builder: QuicPacketBuilder, space: QuicPacketSpace) -> None:
        max_data = self._local_max_data
        window = self._configuration.max_data
        self._released.intersection_update(self._streams)  # forget discarded streams
        wanted = max_data.used - self.held_bytes() + window
        if wanted - max_data.value >= window // 2:
            max_data.value = wanted
        # aioquic would double MAX_DATA once half of it was used: hide ``used`` from it
        # (it reads it for MAX_DATA only), and let it write the frames.
        used, max_data.used = max_data.used, 0
        try:
            super()._write_connection_limits(builder, space)
        finally:
            max_data.used = used

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: QuicPacketSpace, stream: QuicStream
    ) -> None:
        sid = stream.stream_id
        if sid is None or not stream.max_stream_data_local:
            return  # our own unidirectional streams: nothing to receive
        unread = self._unread.get(sid)
        consumed: int | None = None
        if unread is not None:
            consumed = stream.receiver.starting_offset() - unread
        elif sid % 4 != 0:
            consumed = stream.receiver.starting_offset()  # the peer's control or QPACK
        if consumed is not None:
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


class HeadersTooLarge(Exception):
    """A request stream announced a HEADERS frame longer than the header limit."""

    def __init__(self, stream_id: int, size: int) -> None:
        super().__init__(f"HEADERS frame of {size} bytes")
        self.stream_id = stream_id
        self.size = size


class ExcessiveLoad(h3c.ProtocolError):
    """A connection error (aioquic closes the connection with this code)."""

    error_code = h3c.ErrorCode.H3_EXCESSIVE_LOAD


class ServerH3Connection(h3c.H3Connection):
    """The server's ``H3Connection``.

    aioquic raises ``MessageError`` out of its frame handler and closes the connection;
    for request streams we raise :class:`RequestRejected` instead, which escapes
    aioquic's error handling, for the caller to answer on that stream only.

    aioquic buffers a HEADERS frame whole before decoding it.  Its length is known from
    the frame header: over ``max_field_section`` (plus :data:`HEADERS_FRAME_SLACK`) we
    raise :class:`HeadersTooLarge` at once, before any of it is buffered.  The limit is
    also announced as SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 4.2.2), as HTTP/2
    announces SETTINGS_MAX_HEADER_LIST_SIZE.
    """

    def __init__(self, quic: QuicConnection, *, max_field_section: int) -> None:
        self._max_field_section = max_field_section  # read by _init_connection
        self._control_frames = 0
        super().__init__(quic)

    def take_control_frames(self) -> int:
        """Frames that carried no request since the last call: tiny DATA frames and
        unknown frames on request streams, control-stream frames after SETTINGS."""
        count, self._control_frames = self._control_frames, 0
        return count

    def _get_local_settings(self) -> dict[int, int]:
        settings = super()._get_local_settings()
        settings[h3c.Setting.MAX_FIELD_SECTION_SIZE] = self._max_field_section
        return settings

    def _check_request_or_push_frame_type(self, frame_type: int, stream: h3c.H3Stream) -> None:
        # Called as soon as a frame header is parsed, with stream.frame_size set.
        super()._check_request_or_push_frame_type(frame_type, stream)
        size = stream.frame_size or 0
        if frame_type == h3c.FrameType.HEADERS and size > (
            self._max_field_section + HEADERS_FRAME_SLACK
        ):
            raise HeadersTooLarge(stream.stream_id, size)
        if frame_type == h3c.FrameType.DATA:
            if size < SMALL_DATA:
                self._control_frames += 1
        elif frame_type not in (h3c.FrameType.HEADERS, h3c.FrameType.PUSH_PROMISE):
            self._control_frames += 1  # unknown: aioquic skips it, at a cost

    def _check_control_frame_type(self, frame_type: int) -> None:
        super()._check_control_frame_type(frame_type)
        control = self._stream.get(self._peer_control_stream_id or -1)
        size = control.frame_size if control is not None else None
        if frame_type in (h3c.FrameType.SETTINGS, h3c.FrameType.MAX_PUSH_ID) and (
            size is not None and size > MAX_CONTROL_FRAME
        ):
            raise ExcessiveLoad(f"control frame of {size} bytes")
        if self._settings_received:
            self._control_frames += 1

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


def written_acknowledged(quic: QuicConnection, stream_id: int | None) -> bool:
    """Every byte written so far on ``stream_id`` (a stream that stays open, such as the
    control stream) was acknowledged; True for a stream that does not exist."""
    stream = quic._streams.get(stream_id) if stream_id is not None else None
    if stream is None:
        return True
    sender = stream.sender
    return sender._buffer_start == sender._buffer_stop


def local_control_stream(h3: object) -> int | None:
    """The id of our HTTP/3 control stream (where GOAWAY goes), if known."""
    value = getattr(h3, "_local_control_stream_id", None)
    return value if isinstance(value, int) else None


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
