"""A pure parser for the ``Range`` request header (RFC 9110 14.1.2, 14.2).

:func:`parse_range` turns a ``Range`` field value and the size of the selected
representation into the byte ranges to send:

* a list of ``(first, last)`` pairs, both inclusive, each with
  ``0 <= first <= last < size``: answer 206 (one part, or ``multipart/byteranges``);
* :data:`UNSATISFIABLE`: the header is valid but no range overlaps the representation:
  answer 416 with ``Content-Range: bytes */size``;
* ``None``: ignore the header and answer 200 with the whole representation.  That is
  the verdict for a unit other than ``bytes``, invalid syntax (RFC 9110 14.2 lets a
  server ignore an invalid ranges-specifier), an empty representation, and requests
  that look like a denial-of-service attempt: more than :data:`MAX_RANGES` range-specs.

Overlapping or adjacent ranges are coalesced (RFC 9110 15.3.7.2 allows it whatever
the order they were asked in), so the parts of a multi-range answer never add up to
more bytes than the representation holds.  When nothing overlaps, the client's order
is kept.

No I/O, no clock: fuzzed in ``fuzz/fuzz_ranges.py``.
"""

from __future__ import annotations

import re
from typing import Final, final

__all__ = ["MAX_RANGES", "UNSATISFIABLE", "Unsatisfiable", "parse_range"]

#: More range-specs than this and the header is ignored (a full 200 is sent instead).
MAX_RANGES: Final = 100

# int-range = first-pos "-" [ last-pos ] / suffix-range = "-" suffix-length (ASCII digits).
_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)")
# range-unit is a token, compared case-insensitively; no whitespace around "=".
_UNIT = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@final
class Unsatisfiable:
    """The verdict for a valid ``Range`` header no range of which can be satisfied."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unsatisfiable)

    def __hash__(self) -> int:
        return hash(Unsatisfiable)

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


#: The one :class:`Unsatisfiable` value: answer 416.
UNSATISFIABLE: Final = Unsatisfiable()


def _number(digits: str, limit: int) -> int:
    """``min(int(digits), limit)`` without converting absurdly long digit strings.

    ``int()`` refuses strings over ``sys.get_int_max_str_digits()`` digits, and a header
    of 32 KiB can hold one; a number with more digits than ``limit`` is larger anyway.
    """
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(limit)):
        return limit
    return min(int(digits), limit)


def _less(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for strings of ASCII digits, however long."""
    a = a.lstrip("0")
    b = b.lstrip("0")
    return (len(a), a) < (len(b), b)


def parse_range(header: str, size: int) -> list[tuple[int, int]] | Unsatisfiable | None:
    """Byte ranges selected by the ``Range`` value ``header`` from ``size`` bytes.

    See the module docstring for the three kinds of answer.  Never raises.
    """
    if size <= 0:
        # Nothing to cut out of an empty representation: send it whole (and empty).
        return None
    unit, eq, range_set = header.strip().partition("=")
    if not eq or _UNIT.fullmatch(unit) is None or unit.lower() != "bytes":
        return None
    # 1#range-spec: empty list elements are allowed, at least one must be non-empty.
    # Count before parsing so a header of thousands of specs costs little.
    if range_set.count(",") >= MAX_RANGES * 4:
        return None
    specs = [item.strip(" \t") for item in range_set.split(",")]
    specs = [item for item in specs if item]
    if not specs or len(specs) > MAX_RANGES:
        return None

    ranges: list[tuple[int, int]] = []
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None:
            return None
        first_text, last_text, suffix_text = match.groups()
        if suffix_text is not None:
            length = _number(suffix_text, size)
            if length > 0:  # "-0" is valid but selects nothing
                ranges.append((size - length, size - 1))
            continue
        first = _number(first_text, size)
        if last_text:
            if _less(last_text, first_text):
                return None  # first-pos > last-pos: invalid, so the whole header is
            if first < size:
                ranges.append((first, _number(last_text, size - 1)))
        elif first < size:
            ranges.append((first, size - 1))

    if not ranges:
        return UNSATISFIABLE
    return _coalesce(ranges)


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or adjacent ranges (sorted); keep the order if none touch."""
    if len(ranges) == 1:
        return ranges
    ordered = sorted(ranges)
    merged: list[tuple[int, int]] = [ordered[0]]
    for first, last in ordered[1:]:
        prev_first, prev_last = merged[-1]
        if first <= prev_last + 1:
            merged[-1] = (prev_first, max(prev_last, last))
        else:
            merged.append((first, last))
    if len(merged) == len(ranges):
        return ranges
    return merged
