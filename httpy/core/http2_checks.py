"""Input checks :class:`~httpy.core.http2.HTTP2Connection` makes around h2.

* :func:`malformed`: h2's own RFC 9113 section 8 header rules, run by us so that a
  malformed request is a *stream* error (h2 makes it a connection error).
* :class:`FrameLengthGuard`: each frame's length, checked as soon as its 9-byte header
  arrives (h2 checks only once the whole frame is buffered).
* :func:`valid_upgrade_settings`: the ``HTTP2-Settings`` of an ``Upgrade: h2c`` request,
  checked before the server answers 101.
"""

from __future__ import annotations

from collections.abc import Iterable

import h2.config
import h2.connection
import h2.exceptions
import h2.utilities
import hpack.struct
import hyperframe.exceptions

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

REQUEST_RULES = h2.utilities.HeaderValidationFlags(
    is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
)
TRAILER_RULES = REQUEST_RULES._replace(is_trailer=True)


def malformed(
    headers: Iterable[hpack.struct.Header], rules: h2.utilities.HeaderValidationFlags
) -> str | None:
    """Why the header block breaks RFC 9113 section 8 (h2's own checks), or None."""
    try:
        for _ in h2.utilities.validate_headers(headers, rules):
            pass
    except h2.exceptions.ProtocolError as exc:
        return str(exc) or "malformed header block"
    return None


class FrameLengthGuard:
    """Follows frame boundaries in the client's byte stream (after its preface) and
    refuses a frame whose header announces more than the limit, before its payload is
    buffered: a header announcing 16 MiB would otherwise make h2 buffer 16 MiB."""

    __slots__ = ("_header", "_skip")

    def __init__(self) -> None:
        self._skip = len(PREFACE)  # bytes of the current frame (at first: the preface)
        self._header = b""  # a frame header split across reads

    def check(self, data: bytes, limit: int) -> str | None:
        """Scan ``data``; return why it is refused, or None."""
        view = memoryview(data)
        pos, size = 0, len(view)
        while pos < size:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
                continue
            take = 9 - len(self._header)
            self._header += bytes(view[pos : pos + take])
            pos += take
            if len(self._header) == 9:
                length = int.from_bytes(self._header[:3], "big")
                self._header = b""
                if length > limit:
                    return f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE {limit}"
                self._skip = length
        return None


def valid_upgrade_settings(value: bytes) -> bool:
    """True when ``value``, an ``HTTP2-Settings`` header, holds valid SETTINGS (RFC 7540
    3.2.1): check it before answering 101, since h2 rejects it only after the switch."""
    probe = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    try:
        probe.initiate_upgrade_connection(value)
    except (ValueError, h2.exceptions.H2Error, hyperframe.exceptions.HyperframeError):
        return False  # binascii.Error is a ValueError
    return True
