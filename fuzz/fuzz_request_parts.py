"""Fuzz targets: query strings, request headers, and response header values.

* ``QueryParams`` takes any query string without raising; ``get`` is the first of
  ``getlist``; generated parameters survive ``urlencode`` exactly.
* ``Headers`` (what a handler reads) answers consistently for any received pairs:
  case-insensitive, ``get`` is the first of ``getlist``, ``in`` agrees with ``get``.
* ``MutableHeaders`` (what a handler sets) either refuses a field with ``ValueError`` or
  stores it, and the response head the HTTP/1.1 writer makes from accepted fields has
  exactly one line per field: no header injection, no response splitting.
"""

from __future__ import annotations

from urllib.parse import urlencode

from hypothesis import assume, example, given
from hypothesis import strategies as st

from httpy.core.errors import LocalProtocolError
from httpy.core.headers import Headers, MutableHeaders
from httpy.core.http1_writer import start_response
from httpy.framework.request import QueryParams

text = st.text(max_size=30)
TCHAR = "abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~"
# Received names are tokens, lower-cased by the parsers (h11, h2, aioquic).
raw_name = st.text(alphabet=TCHAR, min_size=1, max_size=12).map(lambda s: s.encode("ascii"))
raw_value = st.binary(max_size=30)


@given(query=st.binary(max_size=200))
def test_query_string_never_raises_and_is_consistent(query: bytes) -> None:
    params = QueryParams(query)
    for key in params:
        values = params.getlist(key)
        assert values and params.get(key) == values[0]
    assert len(params.multi_items()) >= len(params)


@given(pairs=st.lists(st.tuples(text, text), max_size=8))
def test_query_string_round_trips_urlencode(pairs: list[tuple[str, str]]) -> None:
    params = QueryParams(urlencode(pairs).encode("ascii"))
    # parse_qsl decodes to text with latin-1 read bytes; our QueryParams does the same,
    # so compare after the same round trip the framework documents (UTF-8 percent-encoding
    # decoded as UTF-8 by parse_qsl).
    assert params.multi_items() == pairs


@given(pairs=st.lists(st.tuples(raw_name, raw_value), max_size=10), probe=raw_name)
def test_received_headers_lookup_is_consistent(
    pairs: list[tuple[bytes, bytes]], probe: bytes
) -> None:
    headers = Headers(raw=tuple(pairs))
    names = {n.decode("latin-1") for n, _ in pairs}
    assert set(headers) == names
    for name in [*names, probe.decode("latin-1")]:
        values = headers.getlist(name)
        assert (name in headers) == bool(values)
        assert headers.get(name) == (values[0] if values else None)
        assert headers.get(name.upper()) == headers.get(name)


# Framing and connection fields are the writer's own business: it checks or replaces
# them (tests/core/test_http1.py).  Any other accepted field goes out as given.
FRAMING = {"content-length", "transfer-encoding", "connection"}
response_name = text.filter(lambda name: name.strip().lower() not in FRAMING)


@given(fields=st.lists(st.tuples(response_name, text), max_size=6))
def test_response_header_values_cannot_inject_fields(fields: list[tuple[str, str]]) -> None:
    headers = MutableHeaders()
    accepted = 0
    for name, value in fields:
        try:
            headers.append(name, value)
        except ValueError:
            continue
        accepted += 1
    raw = headers.raw()
    assert len(raw) == accepted
    for name, value in raw:
        assert not any(c in name + value for c in (b"\r", b"\n", b"\x00"))
        assert b":" not in name
    head, _writer = start_response(
        200,
        (*raw, (b"content-length", b"0")),
        request_method_head=False,
        request_version=b"1.1",
        keep_alive=True,
    )
    lines = head.split(b"\r\n")
    assert lines[-2:] == [b"", b""]  # the head ends once, at its end
    # status line + one line per field (+ any the writer adds itself, like Date: none)
    assert len(lines) - 2 >= 1 + len(raw) + 1
    for name, value in raw:
        assert name + b": " + value in lines or name + b":" + value in lines


FIELD_BYTES = st.one_of(
    st.sampled_from(
        [b"x", b"a b", b" a", b"a ", b"\ta", b"a\r\nb: c", b"a\rb", b"a\nb", b"\x00", b""]
    ),
    st.binary(max_size=6),
)


def field_is_valid(name: bytes, value: bytes) -> bool:
    """The writer's rule for one field, written out plainly (RFC 9110 5.1, 5.5)."""
    token = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if not name or any(c not in token for c in name):
        return False
    if any(c in b"\x00\r\n" for c in value):
        return False
    return not value or (value[:1] not in (b" ", b"\t") and value[-1:] not in (b" ", b"\t"))


@example(fields=[(b"x", b"a\r\nb: c")])
@example(fields=[(b"x", b"a"), (b"y", b"")])
@given(fields=st.lists(st.tuples(FIELD_BYTES, FIELD_BYTES), max_size=5))
def test_response_fields_accepted_exactly_when_each_is_valid(
    fields: list[tuple[bytes, bytes]],
) -> None:
    assume(not any(n.lower() in {b"content-length", b"transfer-encoding"} for n, _ in fields))
    expected = all(field_is_valid(name, value) for name, value in fields)
    try:
        head, _writer = start_response(
            200, tuple(fields), request_method_head=False, request_version=b"1.1", keep_alive=True
        )
    except LocalProtocolError:
        assert not expected, fields
        return
    assert expected, fields
    lines = head.split(b"\r\n")[1:-2]
    kept = [(n.lower(), v) for n, v in fields if n.lower() != b"connection"]
    assert lines[: len(kept)] == [n + b": " + v for n, v in kept]
