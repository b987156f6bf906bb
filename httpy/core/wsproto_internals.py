"""Everything HTTPy needs from wsproto beyond its public API, in one place: when wsproto
changes, this is the module to check.  :func:`check` runs at import and raises
:class:`~httpy.core.private_api.InternalsChanged` naming whatever is missing;
pyproject.toml caps wsproto below its next minor release.

* :func:`wsproto_is_idle` reads the parser state of a low-level ``Connection``:
  ``Connection._proto`` (its ``FrameProtocol``), ``FrameProtocol._frame_decoder``
  (``header``, ``buffer``) and ``FrameProtocol._message_decoder`` (``opcode``,
  ``decoder``), to know when :mod:`.websocket_frames` may parse input without wsproto.

On a wsproto upgrade, besides the import check: ``fuzz/fuzz_websocket.py`` compares the
shortcut's messages with wsproto's, and ``tests/core/test_websocket.py`` covers the
hand-over between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType

from .private_api import require

#: What :func:`check` looks for, per probe (see :func:`probes`).
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "wsproto": {
        "Connection(SERVER)": (
            "_proto._frame_decoder.header",
            "_proto._frame_decoder.buffer",
            "_proto._message_decoder.opcode",
            "_proto._message_decoder.decoder",
        ),
    },
}


def probes() -> dict[str, object]:
    """The objects :data:`REQUIRED` is checked against."""
    return {"Connection(SERVER)": Connection(ConnectionType.SERVER)}


def check(found: Mapping[str, object] | None = None) -> None:
    """Raise ``InternalsChanged`` unless wsproto has everything listed above."""
    found = probes() if found is None else found
    for distribution, required in REQUIRED.items():
        require(distribution, found, required, module=__name__)


check()


def wsproto_is_idle(conn: Connection) -> bool:
    """True when ``conn`` (open) holds no unparsed bytes and is inside no frame and no
    fragmented message, so input it never sees cannot change what it parses next."""
    if conn.state is not ConnectionState.OPEN:
        return False
    proto: Any = conn._proto
    frames: Any = proto._frame_decoder
    message: Any = proto._message_decoder
    return (
        frames.header is None
        and len(frames.buffer) == 0
        and message.opcode is None
        and message.decoder is None
    )
