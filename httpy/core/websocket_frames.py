"""The common case of WebSocket traffic without wsproto: whole, small, single-frame data
messages from a client (:func:`parse_simple_messages`), and whole messages to it
(:func:`frame_message`).

wsproto stays the parser of record (:class:`~httpy.core.websocket.WebSocketProtocol`
feeds it everything else): its generator-based frame decoder costs more than the rest of
an echo round trip on the server.  But most client input is one read holding one or more
complete frames, each ``FIN`` + text or binary, masked (RFC 6455 5.3: clients always
mask), no RSV bits, a payload under 64 KiB.  :func:`parse_simple_messages` takes exactly
such input and declines (None) anything else, whole: control frames, fragments, a partial
frame, RSV bits, an unmasked frame, a non-minimal length, a 64-bit length, invalid UTF-8
in a text message, a message over the size limit.  Declined input goes to wsproto, which
then decides and words every error.  ``fuzz/fuzz_websocket.py`` checks that the messages
are those wsproto would give.

:func:`~.wsproto_internals.wsproto_is_idle` tells the caller when bypassing wsproto is
sound: no bytes buffered, no frame or fragmented message in progress.
"""

from __future__ import annotations

_TEXT = 0x81  # FIN + opcode 1; RSV bits clear
_BINARY = 0x82  # FIN + opcode 2
_MASKED = 0x80


def parse_simple_messages(data: bytes, max_message_bytes: int) -> list[str | bytes] | None:
    """The messages ``data`` holds if it is only whole simple frames (see the module
    docstring), in order; None to let wsproto parse all of it."""
    messages: list[str | bytes] = []
    end = len(data)
    pos = 0
    while pos < end:
        if end - pos < 6:  # 2 header bytes + 4 mask bytes, at the least
            return None
        first, second = data[pos], data[pos + 1]
        if first not in (_TEXT, _BINARY) or not second & _MASKED:
            return None
        length = second & 0x7F
        pos += 2
        if length == 126:
            length = int.from_bytes(data[pos : pos + 2], "big")
            if length < 126:  # RFC 6455 5.2: the minimal length encoding is required
                return None
            pos += 2
        elif length == 127:
            return None
        if length > max_message_bytes or end - pos < 4 + length:
            return None
        mask = data[pos : pos + 4]
        pos += 4
        payload = _unmask(data[pos : pos + length], mask)
        pos += length
        if first == _TEXT:
            try:
                messages.append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                return None
        else:
            messages.append(payload)
    return messages


def frame_message(data: str | bytes) -> bytes:
    """One whole, unmasked server frame carrying ``data`` (text for ``str``): what
    wsproto writes for a message when no extension is negotiated (RFC 6455 5.2)."""
    if isinstance(data, str):
        payload, first = data.encode("utf-8"), _TEXT
    else:
        payload, first = bytes(data), _BINARY
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 5.3: XOR with the 4-byte key, repeated (as two big integers: C speed)."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )
