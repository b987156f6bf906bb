"""Fuzz target: the HTTP/2 request-header shortcut never accepts what h2 would not.

``plainly_valid_request`` may decline anything (h2's own RFC 9113 section 8 checks then
decide), but a block it accepts must pass h2's ``validate_headers``.  Blocks are built
from near-valid pieces so that both outcomes are common.
"""

from __future__ import annotations

import h2.exceptions
import h2.utilities
from hypothesis import event, example, given
from hypothesis import strategies as st

from httpy.core.http2_checks import REQUEST_RULES, malformed, plainly_valid_request

Header = tuple[bytes, bytes]

PSEUDO = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/a?b=c"),
    (b":authority", b"example.com"),
]
NAMES = st.sampled_from(
    [b"accept", b"user-agent", b"x-id", b"cookie", b"te", b"host", b"connection",
     b"Accept", b"x y", b"", b":path", b":method", b":protocol", b":status", b"a:b",
     b"x\x00", b"\xff", b"upgrade", b"transfer-encoding", b"content-length"]
)  # fmt: skip
SOME_VALUES = [
    b"", b"x", b"trailers", b"CONNECT", b"GET", b" x", b"x ", b"\tx", b"a\x00b",
    b"a\rb", b"a\nb", b"example.com", b"other.org", b"a\x7fb", b"\xff\xfe",
]  # fmt: skip
VALUES = st.one_of(st.sampled_from(SOME_VALUES), st.binary(max_size=8))


def h2_accepts(headers: list[Header]) -> bool:
    try:
        for _ in h2.utilities.validate_headers(headers, REQUEST_RULES):
            pass
    except h2.exceptions.ProtocolError:
        return False
    return True


@st.composite
def header_blocks(draw: st.DrawFn) -> list[Header]:
    """The usual four pseudo-headers, some dropped, changed or moved, plus fields."""
    block = [p for p in PSEUDO if draw(st.integers(0, 9)) > 0]
    for i in range(len(block)):
        if draw(st.integers(0, 7)) == 0:
            block[i] = (block[i][0], draw(VALUES))
    fields = draw(st.lists(st.tuples(NAMES, VALUES), max_size=6))
    block += fields
    if block and draw(st.integers(0, 5)) == 0:
        block.insert(draw(st.integers(0, len(block))), block.pop(0))
    return block


@example([*PSEUDO, (b"x-id", b"1")])
@example([*PSEUDO, (b"host", b"other.org")])
@example([*PSEUDO, (b"te", b"gzip")])
@example([*PSEUDO[:3], (b"host", b"example.com")])
@example([(b":method", b"CONNECT"), (b":authority", b"example.com")])
@given(header_blocks())
def test_shortcut_accepts_only_what_h2_accepts(block: list[Header]) -> None:
    shortcut = plainly_valid_request(block)
    reference = h2_accepts(block)
    event(f"shortcut={shortcut} h2={reference}")
    if shortcut:
        assert reference, f"shortcut accepted a block h2 rejects: {block!r}"
    # Whatever the shortcut says, the verdict users see is h2's.
    assert (malformed(block, REQUEST_RULES) is None) == reference
