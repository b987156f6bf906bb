"""Property tests for httpy.core.cookies (the Cookie request header).

1. Robustness: any text (and any bytes decoded as latin-1, as header values are) parses
   without raising into names that are non-empty tokens.
2. Round trip: generated valid cookies (RFC 6265 names and cookie-octets values, some
   quoted), joined with ``"; "`` or ``";"`` and optional spaces, parse back to the same
   name -> value mapping (the first of a repeated name wins).
3. Splitting the pairs across several Cookie headers changes nothing.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from httpy.core.cookies import parse_cookie_header, parse_cookie_headers

TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# RFC 6265 cookie-octet: US-ASCII visible characters except DQUOTE, comma, semicolon, backslash.
COOKIE_OCTETS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in {'"', ",", ";", "\\"})

names = st.text(alphabet=TOKEN, min_size=1, max_size=20)
values = st.text(alphabet=COOKIE_OCTETS, max_size=30)
cookies = st.lists(st.tuples(names, values, st.booleans()), max_size=10)
separators = st.sampled_from(["; ", ";", " ; ", ";  "])


@given(st.text())
def test_any_text_parses(header: str) -> None:
    parsed = parse_cookie_header(header)
    assert all(name and set(name) <= set(TOKEN) for name in parsed)


@given(st.binary())
def test_any_header_bytes_parse(header: bytes) -> None:
    parse_cookie_headers([header.decode("latin-1")])


def _render(pairs: list[tuple[str, str, bool]], separator: str) -> str:
    return separator.join(f'{n}="{v}"' if quoted else f"{n}={v}" for n, v, quoted in pairs)


def _expected(pairs: list[tuple[str, str, bool]]) -> dict[str, str]:
    expected: dict[str, str] = {}
    for name, value, _ in pairs:
        expected.setdefault(name, value)
    return expected


@given(cookies, separators, st.booleans())
def test_round_trip(pairs: list[tuple[str, str, bool]], separator: str, padded: bool) -> None:
    header = _render(pairs, separator)
    if padded:
        header = "  " + header + " ;"
    assert parse_cookie_header(header) == _expected(pairs)


@given(cookies, st.data())
def test_several_headers(pairs: list[tuple[str, str, bool]], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(pairs)))
    headers = [_render(pairs[:cut], "; "), _render(pairs[cut:], "; ")]
    assert parse_cookie_headers(headers) == _expected(pairs)
