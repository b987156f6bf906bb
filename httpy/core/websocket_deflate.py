"""permessage-deflate (RFC 7692) with a bound on what one message may inflate to, and a
message-size limit, both as wsproto extensions.

wsproto's own ``PerMessageDeflate`` inflates each frame chunk in full: a 64 KiB chunk of
zeros can become 64 MiB before anyone can count it (a decompression bomb).  Here every
``decompress`` call is given ``max_length`` = what the message may still grow by, plus one
byte, so the first byte over the limit fails the connection with 1009 and nothing beyond
it is ever produced.

Negotiation (:func:`negotiate_deflate`) is ours too: wsproto's parser raises on a
malformed ``*_max_window_bits`` value instead of declining the offer.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 7.2.1: removed by the sender, appended here
_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION)


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """What both sides agreed on for one connection."""

    #: Our compressor's window (what the client must be able to inflate).
    server_max_window_bits: int = 15
    #: True: our compressor starts afresh for every message.
    server_no_context_takeover: bool = False
    #: True: the client promised to reset its compressor, so we reset our inflater.
    client_no_context_takeover: bool = False

    def response(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value that accepts the offer."""
        parts = ["permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits < 15:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        return "; ".join(parts)


def negotiate_deflate(offers: list[str], window_bits: int) -> DeflateParameters | None:
    """Accept the first valid ``permessage-deflate`` offer, or None.

    ``offers`` are the comma-separated items of ``Sec-WebSocket-Extensions``.  An offer
    with an unknown, repeated or out-of-range parameter is declined (RFC 7692 5.1) and
    the next one is tried.  ``window_bits`` (9..15) caps our compressor's window; we
    never limit the client's window (we inflate with 15 bits, which reads any window).
    """
    for offer in offers:
        name, *raw_params = (part.strip() for part in offer.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        params: dict[str, str | None] = {}
        valid = True
        for raw in raw_params:
            key, eq, value = raw.partition("=")
            key = key.strip().lower()
            if key in params:
                valid = False
                break
            params[key] = value.strip().strip('"') if eq else None
        if not valid:
            continue
        server_bits = window_bits
        ok = True
        for key, param in params.items():
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                ok = param is None
            elif key == "server_max_window_bits":
                bits = _window_bits(param)
                # 8 is valid for the client to ask, but zlib cannot compress with an
                # 8-bit raw window: decline rather than promise what we can't keep.
                ok = bits is not None and bits >= 9
                if ok and bits is not None:
                    server_bits = min(server_bits, bits)
            elif key == "client_max_window_bits":
                ok = param is None or _window_bits(param) is not None
            else:
                ok = False
            if not ok:
                break
        if not ok:
            continue
        return DeflateParameters(
            server_max_window_bits=server_bits,
            server_no_context_takeover="server_no_context_takeover" in params,
            client_no_context_takeover="client_no_context_takeover" in params,
        )
    return None


def _window_bits(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 2:
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


class _MessageMeter(Extension):
    """What both extensions share: server side only (never offered, always enabled
    once accepted), and the size of the data message being received, against
    ``max_message_bytes``."""

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        #: The frame being received carries message data (not a control frame).
        self._frame_is_data = False
        self._message_bytes = 0

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool | str:
        return False

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        self._frame_is_data = opcode in _DATA_OPCODES
        return self._frame_started(opcode, rsv, payload_length)

    def _frame_started(
        self, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        """A frame's header arrived (``_frame_is_data`` is set): the RSV bits this
        extension claims, or why the connection fails."""
        raise NotImplementedError

    def _count(self, size: int) -> bool:
        """Add ``size`` bytes to the message; False once it is over the limit."""
        self._message_bytes += size
        return self._message_bytes <= self._max


class BoundedDeflate(_MessageMeter):
    """Server side of permessage-deflate, inflating at most ``max_message_bytes`` per
    message (more: close 1009)."""

    name = "permessage-deflate"

    def __init__(self, parameters: DeflateParameters, max_message_bytes: int) -> None:
        super().__init__(max_message_bytes)
        self._params = parameters
        self._inflater: zlib._Decompress | None = None
        self._deflater: zlib._Compress | None = None
        self._message_compressed: bool | None = None

    # -- inbound ---------------------------------------------------------------------

    def _frame_started(
        self, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if rsv.rsv1 and (opcode.iscontrol() or opcode is Opcode.CONTINUATION):
            return CloseReason.PROTOCOL_ERROR  # RFC 7692 6.1: only a message's first frame
        if self._frame_is_data and self._message_compressed is None:
            self._message_compressed = rsv.rsv1
            self._message_bytes = 0
            if rsv.rsv1 and self._inflater is None:
                self._inflater = zlib.decompressobj(-15)
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if not self._frame_is_data or not self._message_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not self._frame_is_data or not fin:
            return None
        compressed, self._message_compressed = self._message_compressed, None
        if not compressed:
            return None
        result = self._inflate(_TAIL)
        if self._params.client_no_context_takeover:
            self._inflater = None
        return result

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        if inflater is None:  # invariant: created with the message's first frame
            return CloseReason.INTERNAL_ERROR
        room = self._max - self._message_bytes
        try:
            out = inflater.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        return out if self._count(len(out)) else CloseReason.MESSAGE_TOO_BIG

    # -- outbound --------------------------------------------------------------------

    def frame_outbound(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        data: bytes,
        fin: bool,
    ) -> tuple[RsvBits, bytes]:
        if opcode not in _DATA_OPCODES:
            return rsv, data
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        if self._deflater is None:
            # memLevel 5 instead of 8: about 64 KiB less per connection for a few
            # percent of ratio (the websockets library makes the same trade).
            self._deflater = zlib.compressobj(
                6, zlib.DEFLATED, -self._params.server_max_window_bits, 5
            )
        out = self._deflater.compress(data)
        if fin:
            out += self._deflater.flush(zlib.Z_SYNC_FLUSH)
            if out.endswith(_TAIL):
                out = out[:-4]
            if self._params.server_no_context_takeover:
                self._deflater = None
        return rsv, out


#: What a continuation frame counts toward ``max_message_bytes`` at the least: an
#: endless run of empty fragments would otherwise never reach the limit while it keeps a
#: core busy (16 MiB / 64 = 262,144 empty fragments per message at the default).
MIN_FRAGMENT_COST = 64


class MessageSizeLimit(_MessageMeter):
    """Counts the (inflated) bytes of each data message; more than ``max_message_bytes``
    fails the connection with 1009.  A continuation frame counts at least
    :data:`MIN_FRAGMENT_COST` bytes (a message in 64-byte fragments counts what it
    carries).

    Not a negotiated extension: it uses wsproto's extension hooks, which see every frame
    chunk after decompression, to bound messages whatever their framing (one huge frame
    or many fragments).  It claims no RSV bit.
    """

    name = "httpy-message-size-limit"

    def _frame_started(
        self, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._message_bytes = 0
        short = MIN_FRAGMENT_COST - payload_length
        if opcode is Opcode.CONTINUATION and short > 0 and not self._count(short):
            return CloseReason.MESSAGE_TOO_BIG
        return RsvBits(False, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self._frame_is_data and not self._count(len(data)):
            return CloseReason.MESSAGE_TOO_BIG
        return data
