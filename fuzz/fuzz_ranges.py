"""Property tests for httpy.core.ranges.parse_range.

1. It never raises, whatever the header text and the size.
2. Whatever it returns is well formed: ``None``, ``UNSATISFIABLE``, or at most
   ``MAX_RANGES`` ranges with ``0 <= first <= last < size`` that do not overlap or touch
   (overlapping and adjacent ranges are coalesced).
3. Differential: for one well-formed range-spec, it agrees with a reference written
   straight from RFC 9110 14.1.2; for several, the bytes it selects are exactly the
   union of the bytes the reference selects for each spec.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from httpy.core.ranges import MAX_RANGES, UNSATISFIABLE, Unsatisfiable, parse_range

sizes = st.integers(min_value=-5, max_value=2**64) | st.integers(min_value=0, max_value=100)
positions = st.integers(min_value=0, max_value=200) | st.integers(min_value=0, max_value=2**70)

# A range-spec as (kind, a, b): ("int", first, last), ("open", first, _), ("suffix", n, _)
specs = st.one_of(
    st.tuples(st.just("int"), positions, positions),
    st.tuples(st.just("open"), positions, st.just(0)),
    st.tuples(st.just("suffix"), positions, st.just(0)),
)


def render(spec: tuple[str, int, int], zeros: int = 0) -> str:
    kind, a, b = spec
    pad = "0" * zeros
    if kind == "int":
        return f"{pad}{a}-{pad}{b}"
    if kind == "open":
        return f"{pad}{a}-"
    return f"-{pad}{a}"


def reference(spec: tuple[str, int, int], size: int) -> tuple[int, int] | Unsatisfiable | None:
    """One range-spec, from the RFC's words (``None``: invalid, so the header is ignored)."""
    kind, a, b = spec
    if kind == "int":
        if b < a:
            return None  # first-pos > last-pos is invalid
        if a >= size:
            return UNSATISFIABLE
        return (a, min(b, size - 1))
    if kind == "open":
        return UNSATISFIABLE if a >= size else (a, size - 1)
    if a == 0:
        return UNSATISFIABLE  # a suffix of zero bytes selects nothing
    return (max(0, size - a), size - 1)


def check_well_formed(result: object, size: int) -> None:
    if result is None or isinstance(result, Unsatisfiable):
        return
    assert isinstance(result, list)
    assert 1 <= len(result) <= MAX_RANGES
    for first, last in result:
        assert 0 <= first <= last < size
    ordered = sorted(result)
    for (_, last), (first, _) in pairwise(ordered):
        assert first > last + 1, "overlapping or adjacent ranges were not coalesced"


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


# --------------------------------------------------------- 1 and 2: never raises


@given(header=st.text(), size=sizes)
def test_never_raises_on_arbitrary_text(header: str, size: int) -> None:
    check_well_formed(parse_range(header, size), size)


range_alphabet = st.sampled_from(list("bytes=-,0123456789 \t;BYTES\x00é٣²"))


@given(header=st.text(alphabet=range_alphabet), size=sizes)
def test_never_raises_on_range_like_text(header: str, size: int) -> None:
    check_well_formed(parse_range(header, size), size)


@given(
    body=st.text(alphabet=range_alphabet),
    unit=st.sampled_from(["bytes=", "BYTES=", "bytes", "items=", "bytes =", ""]),
    size=sizes,
)
def test_never_raises_with_a_unit(body: str, unit: str, size: int) -> None:
    check_well_formed(parse_range(unit + body, size), size)


# ------------------------------------------------------------ 3: differential


@given(spec=specs, size=sizes, zeros=st.integers(0, 3), ws=st.sampled_from(["", " ", "\t "]))
def test_single_range_matches_reference(
    spec: tuple[str, int, int], size: int, zeros: int, ws: str
) -> None:
    result = parse_range(f"bytes={ws}{render(spec, zeros)}{ws}", size)
    if size <= 0:
        assert result is None
        return
    expected = reference(spec, size)
    if isinstance(expected, tuple):
        assert result == [expected]
    else:
        assert result == expected


@given(spec_list=st.lists(specs, min_size=1, max_size=12), size=sizes)
def test_several_ranges_select_the_union(spec_list: list[tuple[str, int, int]], size: int) -> None:
    result = parse_range("bytes=" + ", ".join(render(s) for s in spec_list), size)
    check_well_formed(result, size)
    if size <= 0:
        assert result is None
        return
    expected = [reference(s, size) for s in spec_list]
    if any(e is None for e in expected):
        assert result is None
        return
    satisfiable = [e for e in expected if isinstance(e, tuple)]
    if not satisfiable:
        assert result == UNSATISFIABLE
        return
    assert isinstance(result, list)
    assert merged(result) == merged(satisfiable)
    if len(merged(satisfiable)) == len(satisfiable):
        assert result == satisfiable  # nothing touched: the client's order is kept


@given(
    spec_list=st.lists(specs, min_size=1, max_size=8),
    count=st.integers(min_value=MAX_RANGES + 1, max_value=MAX_RANGES * 5),
    size=sizes,
)
def test_more_than_max_ranges_is_ignored(
    spec_list: list[tuple[str, int, int]], count: int, size: int
) -> None:
    many = [spec_list[i % len(spec_list)] for i in range(count)]
    assert parse_range("bytes=" + ",".join(render(s) for s in many), size) is None


@given(header=st.text(), size=st.integers(min_value=1, max_value=10**6))
def test_garbage_after_a_valid_spec_is_ignored_not_fatal(header: str, size: int) -> None:
    result = parse_range("bytes=0-0," + header, size)
    check_well_formed(result, size)
    # Either the whole header is ignored, or byte 0 is among the ranges selected.
    assert not isinstance(result, Unsatisfiable)
    if result is not None:
        assert any(first == 0 for first, _ in result)
