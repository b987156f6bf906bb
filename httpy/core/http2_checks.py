"""Input checks :class:`~httpy.core.http2.HTTP2Connection` makes around h2.

* :func:`malformed`: h2's own RFC 9113 section 8 header rules, run by us so that a
  malformed request is a *stream* error (h2 makes it a connection error).
* :class:`FrameLengthGuard`: each frame's header, checked as soon as its 9 bytes arrive
  (h2 checks only once the whole frame is buffered): its length, a SETTINGS ACK with a
  payload, DATA on a stream closed by END_STREAM both ways (connection errors h2 gets
  wrong or late).
* :class:`TokenBucket`: the flood budgets (resets, control frames), refilled over time;
  :class:`FloodBudgets`: the pair a connection spends, its own or its client's.
* :class:`~.h2_internals.ServerH2Connection` (re-exported): h2 with its content-length
  checks left to the caller, so a bad or disagreeing content-length is a stream error (h2
  ends the connection).
* :class:`StrictDecoder`: HPACK decoding errors as COMPRESSION_ERROR (h2 says
  PROTOCOL_ERROR; RFC 9113 4.3 wants COMPRESSION_ERROR).
* :func:`valid_upgrade_settings`: the ``HTTP2-Settings`` of an ``Upgrade: h2c`` request,
  checked before the server answers 101.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import hpack
import hpack.exceptions
import hpack.struct
import hyperframe.exceptions

# h2's private internals and undocumented helpers live in .h2_internals (checked when
# imported); ServerH2Connection is re-exported for .http2.
from .config import Config
from .h2_internals import CONNECTION_HEADERS, HeaderValidationFlags, validate_headers
from .h2_internals import ServerH2Connection as ServerH2Connection

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

REQUEST_RULES = HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)
TRAILER_RULES = REQUEST_RULES._replace(is_trailer=True)


# A lowercase token (RFC 9110 5.1, RFC 9113 8.2.1: no uppercase in HTTP/2 names).
_LOWER_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
# A value with no NUL, CR or LF and no surrounding space or tab (RFC 9113 8.2.1).
_PLAIN_VALUE = re.compile(rb"(?:[^\x00\r\n\t ](?:[^\x00\r\n]*[^\x00\r\n\t ])?)?")
_PLAIN_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority"))
# Regular names whose rules involve more than their characters: h2 decides those.
_SPECIAL_NAMES = CONNECTION_HEADERS | {b"te", b"host"}


def plainly_valid_request(headers: Iterable[hpack.struct.Header]) -> bool:
    """True when ``headers`` is an ordinary request block that h2's section 8 rules
    accept: the four usual pseudo-headers once each, first, with a non-CONNECT method
    and a non-empty path; lowercase token names; plain values; none of the names h2
    treats specially (connection-specific ones, ``te``, ``host``).

    False means only "not sure": :func:`malformed` then asks h2.  It is a shortcut,
    because h2's generator chain costs about as much as the rest of the request.
    """
    seen: set[bytes] = set()
    regular = False
    token = _LOWER_TOKEN.fullmatch
    plain = _PLAIN_VALUE.fullmatch
    for name, value in headers:
        if not plain(value):
            return False
        if name[:1] == b":":
            if regular or name in seen or name not in _PLAIN_PSEUDO:
                return False
            seen.add(name)
            if name == b":method" and value == b"CONNECT":
                return False
            if name == b":path" and not value:
                return False
        elif not token(name) or name in _SPECIAL_NAMES:
            return False
        else:
            regular = True
    return len(seen) == 4


def malformed(headers: Iterable[hpack.struct.Header], rules: HeaderValidationFlags) -> str | None:
    """Why the header block breaks RFC 9113 section 8 (h2's own checks), or None."""
    if rules is REQUEST_RULES and plainly_valid_request(headers):
        return None
    try:
        for _ in validate_headers(headers, rules):
            pass
    except h2.exceptions.ProtocolError as exc:
        return str(exc) or "malformed header block"
    return None


class CompressionError(h2.exceptions.ProtocolError):
    """A header block that does not decode (RFC 9113 4.3: COMPRESSION_ERROR)."""

    error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR


class StrictDecoder(hpack.Decoder):
    """h2's HPACK decoder, with decoding errors raised as :class:`CompressionError` so
    h2 ends the connection with COMPRESSION_ERROR (an oversized header list stays h2's
    ENHANCE_YOUR_CALM)."""

    def decode(self, data: bytes, raw: bool = False) -> Iterable[hpack.struct.HeaderTuple]:
        try:
            return super().decode(data, raw)
        except hpack.exceptions.OversizedHeaderListError:
            raise
        except (hpack.exceptions.HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise CompressionError(f"Error decoding header block: {exc}") from exc


FRAME_SIZE_ERROR = h2.errors.ErrorCodes.FRAME_SIZE_ERROR
STREAM_CLOSED = h2.errors.ErrorCodes.STREAM_CLOSED
ENHANCE_YOUR_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
_WINDOW_UPDATE, _CONTINUATION = 0x8, 0x9
_END_HEADERS = 0x4


class FrameLengthGuard:
    """Follows frame boundaries in the client's byte stream (after its preface) and
    checks each frame header before its payload is buffered:

    * a length over the limit (a header announcing 16 MiB would otherwise make h2 buffer
      16 MiB): FRAME_SIZE_ERROR;
    * a SETTINGS ACK with a payload (RFC 9113 6.5): FRAME_SIZE_ERROR (h2: PROTOCOL_ERROR);
    * DATA on a stream in ``ended``, closed by END_STREAM both ways (RFC 9113 5.1,
      "closed"): STREAM_CLOSED as a connection error (h2 resets the stream only);
    * a header block (HEADERS and its CONTINUATION frames) announced longer than
      ``max_header_block`` bytes (the connection passes twice ``max_header_bytes``):
      ENHANCE_YOUR_CALM.  h2 buffers a block until its END_HEADERS frame (up to 64
      CONTINUATION frames of up to 16 KiB, ~1 MiB per connection) before the decoded
      size is checked; compressed bytes never outnumber the decoded list's size (RFC
      7541 4.1: name + value + 32 per field), so a block cut here would have been
      refused after decoding anyway (past twice the limit: GOAWAY as well).

    It finds the WINDOW_UPDATE frames with an increment of 0 on a stream the client has
    opened (:attr:`zero_window_updates`, offsets in the scanned data): RFC 9113 6.9 makes
    them a *stream* error, and hyperframe refuses to parse them, which h2 turns into a
    connection error; the caller takes them out and resets their streams.  (Such a frame
    whose header is split across reads is left to h2: a connection error.)

    It counts the RST_STREAM frames of each scan (:attr:`resets`): a read with more than
    the reset budget holds is refused before h2 parses any of it (a rapid-reset burst
    would otherwise cost a full parse of every stream it opens, reconnection after
    reconnection).

    It also tells whether a header block is partly received (:attr:`in_header_block`):
    h2 buffers one silently until its END_HEADERS frame is whole, and the backend bounds
    that time by ``header_timeout``; and where the last scan's first GOAWAY frame ended
    with more bytes behind it (:attr:`after_goaway`).
    """

    __slots__ = (
        "_block",
        "_block_bytes",
        "_block_ends",
        "_goaway",
        "_header",
        "_highest_stream",
        "_max_block",
        "_skip",
        "after_goaway",
        "resets",
        "zero_window_updates",
    )

    def __init__(self, max_header_block: float = float("inf")) -> None:
        self._max_block = max_header_block
        self._block_bytes = 0  # payload bytes announced by the header block so far
        self._skip = len(PREFACE)  # bytes of the current frame (at first: the preface)
        self._header = b""  # a frame header split across reads
        self._block = False  # a HEADERS frame's header seen, its END_HEADERS frame not whole
        self._block_ends = False  # the frame being skipped ends that block
        self._goaway = False  # the frame being skipped is a GOAWAY
        #: Offset in the last scanned data just past a GOAWAY frame, when bytes follow it
        #: there (h2 would read them in a state it has closed: see HTTP2Connection).
        self.after_goaway: int | None = None
        self._highest_stream = 0  # the highest stream a HEADERS frame has opened
        #: In the last scanned data: (start, end, stream id) of each WINDOW_UPDATE frame
        #: with increment 0 on an opened stream.
        self.zero_window_updates: list[tuple[int, int, int]] = []
        #: RST_STREAM frames whose header is in the last scanned data.
        self.resets = 0

    @property
    def in_header_block(self) -> bool:
        """True from a HEADERS frame's header until the frame carrying END_HEADERS
        (it, or the last CONTINUATION) has been received whole."""
        return self._block

    def check(self, data: bytes, limit: int, ended: Container[int] = ()) -> tuple[int, str] | None:
        """Scan ``data``; return the error code and why it is refused, or None."""
        view = memoryview(data)
        pos, size = 0, len(view)
        self.after_goaway = None
        self.resets = 0
        if self.zero_window_updates:
            self.zero_window_updates = []
        while pos < size:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
                if self._block_ends and not self._skip:
                    self._block = self._block_ends = False
                if self._goaway and not self._skip:
                    self._goaway = False
                    if pos < size and self.after_goaway is None:
                        self.after_goaway = pos
                continue
            take = 9 - len(self._header)
            whole = take == 9  # the frame header is in this data, from pos
            self._header += bytes(view[pos : pos + take])
            pos += take
            if len(self._header) == 9:
                header, self._header = self._header, b""
                length, kind = int.from_bytes(header[:3], "big"), header[3]
                if kind == _WINDOW_UPDATE and length == 4 and whole and size - pos >= 4:
                    stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                    increment = int.from_bytes(view[pos : pos + 4], "big") & 0x7FFFFFFF
                    if not increment and 0 < stream_id <= self._highest_stream:
                        self.zero_window_updates.append((pos - 9, pos + 4, stream_id))
                if length > limit:
                    reason = f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE {limit}"
                    return FRAME_SIZE_ERROR, reason
                if kind == _SETTINGS and header[4] & 0x1 and length:
                    return FRAME_SIZE_ERROR, "SETTINGS ACK with a payload"
                if kind == _RST_STREAM:
                    self.resets += 1
                elif kind == _DATA:
                    stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                    if stream_id in ended:
                        return STREAM_CLOSED, f"DATA on stream {stream_id}, closed"
                elif kind in (_HEADERS, _CONTINUATION):
                    if kind == _HEADERS:
                        stream_id = int.from_bytes(header[5:9], "big") & 0x7FFFFFFF
                        self._highest_stream = max(self._highest_stream, stream_id)
                    # (A CONTINUATION without its HEADERS is h2's to refuse.)
                    self._block_bytes = length if kind == _HEADERS else self._block_bytes + length
                    if self._block_bytes > self._max_block:
                        reason = f"header block of over {self._max_block} bytes"
                        return ENHANCE_YOUR_CALM, reason
                    self._block = True
                    self._block_ends = bool(header[4] & _END_HEADERS)
                self._goaway = kind == _GOAWAY and length > 0
                self._skip = length
                if self._block_ends and not length:
                    self._block = self._block_ends = False
        return None


class TokenBucket:
    """A flood budget: ``capacity`` tokens, refilled at ``rate`` per second of the
    caller's clock (``now``, in seconds; the core never reads a clock).  ``take`` spends
    one and says whether the budget still holds; ``give`` credits earned tokens."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.stamp: float | None = None

    def take(self, now: float, count: float = 1.0) -> bool:
        """Spend ``count`` tokens at time ``now``; False once the budget is overdrawn."""
        if self.stamp is not None and now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= count
        return self.tokens >= 0

    def give(self, count: float) -> None:
        self.tokens = min(self.capacity, self.tokens + count)

    def available(self, now: float) -> float:
        """Tokens there would be to spend at ``now`` (spends none)."""
        if self.stamp is None or now <= self.stamp:
            return self.tokens
        return min(self.capacity, self.tokens + (now - self.stamp) * self.rate)

    def full(self, now: float) -> bool:
        """True if the budget is whole again at ``now``."""
        if self.stamp is None:
            return self.tokens >= self.capacity
        return self.tokens + max(0.0, now - self.stamp) * self.rate >= self.capacity


class FloodBudgets:
    """The flood budgets an HTTP/2 or HTTP/3 connection spends: stream resets (its
    client's and those its input provokes) and control frames.

    One object per connection, or one shared by every connection of a client (the
    backend's client table): a client that reconnects after GOAWAY ENHANCE_YOUR_CALM
    then finds its budget as it left it, instead of a fresh one per connection.
    """

    __slots__ = ("control", "resets")

    def __init__(self, config: Config) -> None:
        self.resets = TokenBucket(config.h2_max_reset_streams, config.h2_reset_rate)
        self.control = TokenBucket(config.h2_max_control_frames, config.h2_control_frame_rate)

    def full(self, now: float) -> bool:
        """True once both budgets have refilled by ``now`` (nothing left to remember)."""
        return self.resets.full(now) and self.control.full(now)


def valid_upgrade_settings(value: bytes) -> bool:
    """True when ``value``, an ``HTTP2-Settings`` header, holds valid SETTINGS (RFC 7540
    3.2.1): check it before answering 101, since h2 rejects it only after the switch."""
    probe = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    try:
        probe.initiate_upgrade_connection(value)
    except (ValueError, h2.exceptions.H2Error, hyperframe.exceptions.HyperframeError):
        return False  # binascii.Error is a ValueError
    return True
