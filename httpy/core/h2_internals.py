"""Everything HTTPy needs from h2 (and from hpack, its HPACK library) beyond their public
API, in one place: when h2 or hpack changes, this is the module to check.  :func:`check`
(below the imports) runs at import and raises
:class:`~httpy.core.private_api.InternalsChanged` naming whatever is missing;
pyproject.toml caps both libraries below their next major release.

* :class:`ServerH2Connection` overrides the private ``H2Connection._begin_new_stream``
  to make every stream a :class:`_LengthBlindStream`, which overrides the private
  ``H2Stream._initialize_content_length`` and sets ``_expected_content_length`` (read by
  ``H2Stream._track_content_length``): content-length is checked by
  :class:`~httpy.core.http2.HTTP2Connection`, as a stream error.
* :func:`install_decoder` replaces ``H2Connection.decoder`` (the ``hpack.Decoder`` h2
  decodes every header block with).
* :func:`replace_local_settings` replaces ``H2Connection.local_settings`` outright
  (initial values that never go through ``update_settings``).
* :func:`reopen_after_goaway`, :func:`is_closed`: the connection's state machine
  (``H2Connection.state_machine.state``, ``h2.connection.ConnectionState``); h2 closes
  it on any GOAWAY (python-hyper/h2#1181).
* :func:`get_stream`, :func:`closed_by_end_stream`: ``H2Connection.streams``,
  ``H2Stream.closed``, ``H2Stream.closed_by`` and ``h2.stream.StreamClosedBy``.
* :func:`fix_table_size_updates`: hpack's ``Encoder.table_size_changes`` and
  ``Encoder.header_table.resized``.
* ``h2.utilities`` (undocumented): ``validate_headers``, ``HeaderValidationFlags``,
  ``CONNECTION_HEADERS``, re-exported here for :mod:`.http2_checks`.

On an h2 or hpack upgrade, besides the import check: ``tests/core/test_http2*.py`` and
``tests/backends/test_http2_conformance.py`` exercise each of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

import h2.config
import h2.connection
import h2.settings
import h2.stream
import h2.utilities
import hpack
import hpack.struct

from .private_api import require

# ---------------------------------------------------------------------- import check

#: What :func:`check` looks for: per library, per probe (see :func:`probes`), the
#: attributes used below.
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "h2": {
        "h2.connection": ("ConnectionState.SERVER_OPEN", "ConnectionState.CLOSED"),
        "h2.connection.H2Connection": ("_begin_new_stream",),
        "H2Connection()": (
            "decoder",
            "encoder",
            "local_settings",
            "state_machine.state",
            "streams",
        ),
        "h2.stream": ("StreamClosedBy.RECV_END_STREAM", "StreamClosedBy.SEND_END_STREAM"),
        "h2.stream.H2Stream": (
            "_initialize_content_length",
            "_track_content_length",
            "closed",
            "closed_by",
        ),
        "H2Stream()": ("_expected_content_length",),
        "h2.utilities": ("validate_headers", "HeaderValidationFlags", "CONNECTION_HEADERS"),
    },
    "hpack": {"hpack.Encoder()": ("table_size_changes", "header_table.resized")},
}


def probes() -> dict[str, object]:
    """The objects :data:`REQUIRED` is checked against."""
    config = h2.config.H2Configuration(client_side=False)
    return {
        "h2.connection": h2.connection,
        "h2.connection.H2Connection": h2.connection.H2Connection,
        "H2Connection()": h2.connection.H2Connection(config),
        "h2.stream": h2.stream,
        "h2.stream.H2Stream": h2.stream.H2Stream,
        "H2Stream()": h2.stream.H2Stream(1, config, 65535, 65535),
        "h2.utilities": h2.utilities,
        "hpack.Encoder()": hpack.Encoder(),
    }


def check(found: Mapping[str, object] | None = None) -> None:
    """Raise ``InternalsChanged`` unless h2 and hpack have everything listed above."""
    found = probes() if found is None else found
    for distribution, required in REQUIRED.items():
        require(distribution, found, required, module=__name__)


check()

#: Undocumented helpers of h2 that :mod:`.http2_checks` uses.
validate_headers = h2.utilities.validate_headers
HeaderValidationFlags: TypeAlias = h2.utilities.HeaderValidationFlags
CONNECTION_HEADERS: frozenset[bytes] = frozenset(h2.utilities.CONNECTION_HEADERS)


class _LengthBlindStream(h2.stream.H2Stream):
    """An h2 stream that never checks its body against content-length."""

    def _initialize_content_length(self, headers: Iterable[hpack.struct.Header]) -> None:
        self._expected_content_length = None


class ServerH2Connection(h2.connection.H2Connection):
    """h2's connection with content-length left to its caller.

    h2 makes an invalid content-length, or DATA that disagrees with it, a connection
    error (ProtocolError / InvalidBodyLengthError out of ``receive_data``, even when the
    HEADERS and DATA came in one read, before the caller saw the request).  RFC 9113 8.1.1
    makes it a stream error, so :class:`~httpy.core.http2.HTTP2Connection` checks the
    value and counts the DATA itself.  h2 has no switch for this: its streams are made of
    a subclass whose content-length is never set.
    """

    def _begin_new_stream(
        self, stream_id: int, allowed_ids: h2.connection.AllowedStreamIDs
    ) -> h2.stream.H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = _LengthBlindStream  # no state of its own: only the check differs
        return stream


def install_decoder(conn: h2.connection.H2Connection, decoder: hpack.Decoder) -> None:
    """Make ``conn`` decode header blocks with ``decoder``."""
    conn.decoder = decoder


def replace_local_settings(
    conn: h2.connection.H2Connection, values: Mapping[h2.settings.SettingCodes, int]
) -> None:
    """Make ``values`` ``conn``'s local settings as if acknowledged, without sending them."""
    conn.local_settings = h2.settings.Settings(client=False, initial_values=dict(values))


def reopen_after_goaway(conn: h2.connection.H2Connection) -> None:
    """Undo h2's closing of its state machine on a client's graceful GOAWAY, so the
    responses still owed can be sent."""
    conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN


def is_closed(conn: h2.connection.H2Connection) -> bool:
    """True once h2 considers the connection closed (it sent or received GOAWAY)."""
    return conn.state_machine.state is h2.connection.ConnectionState.CLOSED


def get_stream(conn: h2.connection.H2Connection, stream_id: int) -> h2.stream.H2Stream | None:
    """h2's state for ``stream_id``, or None once h2 has forgotten it."""
    return conn.streams.get(stream_id)


_CLOSED_BY_END = (
    h2.stream.StreamClosedBy.RECV_END_STREAM,
    h2.stream.StreamClosedBy.SEND_END_STREAM,
)


def closed_by_end_stream(stream: h2.stream.H2Stream) -> bool:
    """True when ``stream`` closed by END_STREAM both ways (not by a reset)."""
    return stream.closed_by in _CLOSED_BY_END


def fix_table_size_updates(conn: h2.connection.H2Connection) -> None:
    """Make the next header block signal SETTINGS_HEADER_TABLE_SIZE changes right.

    hpack queues every change and signals them all; RFC 7541 4.2 wants the smallest,
    then the final one (a client whose limit went 1 then 0 rejects "1, 0").  And the
    same value set twice clears hpack's "resized" flag, so a pending change would not
    be signalled at all.
    """
    encoder = conn.encoder
    changes = encoder.table_size_changes
    if changes:
        smallest, final = min(changes), changes[-1]
        changes[:] = [final] if smallest == final else [smallest, final]
        encoder.header_table.resized = True
