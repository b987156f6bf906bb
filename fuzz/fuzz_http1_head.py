"""Fuzz target: the fast request-head parser never accepts what h11 would not.

``parse_simple_head`` may decline anything (h11 then decides), but a head it accepts must
be one h11 accepts too, with the same method, target, version and fields.  Heads are
built from a grammar of near-valid pieces so that both outcomes are common.
"""

from __future__ import annotations

import h11
from hypothesis import event, example, given
from hypothesis import strategies as st

from httpy.core.http1_head import SimpleHead, httptools, parse_simple_head

if httptools is not None:
    from httpy.core.http1_head import parse_simple_head_httptools

    PARSERS = [parse_simple_head, parse_simple_head_httptools]
else:  # the speed extra is not installed: only ours
    PARSERS = [parse_simple_head]


def check_against_h11(head: bytes) -> bool:
    """Every parser that accepts ``head`` agrees with h11; True if one accepted."""
    accepted = False
    reference = None
    for parse in PARSERS:
        fast: SimpleHead | None = parse(head)
        if fast is None:
            continue  # declined: h11 decides, whatever it says
        accepted = True
        reference = reference or h11_parse(head)
        assert reference is not None, f"{parse.__name__} accepted a head h11 rejects: {head!r}"
        assert (fast.method, fast.target, fast.http_version, fast.headers) == reference
        lengths = [v for n, v in fast.headers if n == b"content-length"]
        assert fast.content_length == (int(lengths[0]) if lengths else 0)
    return accepted

# Valid pieces first and most often (hypothesis favours early choices when shrinking
# and sampling), so that a good share of heads is accepted and compared.
methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"PUT", b"M-SEARCH", b"G ET", b"", b"GET\x00"])
targets = st.sampled_from([b"/", b"/a?b=c", b"*", b"http://x/y", b"/\x7f", b"/a b", b"/\x80", b""])
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1"])
host = st.tuples(st.sampled_from([b"Host", b"host"]), st.just(b": "), st.just(b"example.com"))
names = st.sampled_from(
    [
        b"Host",
        b"host",
        b"HOST",
        b"Content-Length",
        b"content-length",
        b"Transfer-Encoding",
        b"X-A",
        b"Expect",
        b"Connection",
        b"Bad Name",
        b"",
        b"x:y",
        b"\xff",
    ]
)
values = st.one_of(
    st.sampled_from(
        [
            b"example.com",
            b"0",
            b"12",
            b"007",
            b"-1",
            b"1, 1",
            b"chunked",
            b"100-continue",
            b"a\tb",
            b" padded ",
            b"",
            b"\x80\xff",
            b"a\x00b",
            b"a\rb",
            b"1" * 21,
        ]
    ),
    st.binary(max_size=12),
)
separators = st.sampled_from([b":", b": ", b":\t", b" :", b"::"])
field = st.tuples(names, separators, values)
mostly_valid_field = st.tuples(
    st.sampled_from([b"X-A", b"Accept", b"Content-Length", b"Expect", b"Connection"]),
    st.sampled_from([b":", b": ", b":\t"]),
    st.sampled_from([b"1", b"12", b"007", b"keep-alive", b"100-continue", b"a\tb", b" x ", b""]),
)
fields = st.one_of(
    st.lists(field, max_size=6),
    st.tuples(host, st.lists(mostly_valid_field, max_size=4)).map(lambda t: [t[0], *t[1]]),
)


def h11_parse(head: bytes) -> tuple[bytes, bytes, bytes, tuple[tuple[bytes, bytes], ...]] | None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    return (
        bytes(event.method),
        bytes(event.target),
        bytes(event.http_version),
        tuple((bytes(n), bytes(v)) for n, v in event.headers),
    )


valid_methods = st.sampled_from([b"GET", b"POST", b"HEAD", b"M-SEARCH"])
valid_targets = st.sampled_from([b"/", b"/a?b=c", b"*", b"http://x/y", b"/%20"])
valid_versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])


@given(
    method=st.one_of(valid_methods, methods),
    target=st.one_of(valid_targets, targets),
    version=st.one_of(valid_versions, versions),
    fields=fields,
)
@example(method=b"GET", target=b"/", version=b"HTTP/1.1", fields=[(b"Host", b": ", b"x")])
def test_fast_head_parser_agrees_with_h11(
    method: bytes,
    target: bytes,
    version: bytes,
    fields: list[tuple[bytes, bytes, bytes]],
) -> None:
    head = method + b" " + target + b" " + version + b"\r\n"
    head += b"".join(name + sep + value + b"\r\n" for name, sep, value in fields) + b"\r\n"
    event("accepted" if check_against_h11(head) else "declined")


@given(data=st.binary(max_size=200))
def test_fast_head_parser_on_arbitrary_bytes(data: bytes) -> None:
    check_against_h11(data + b"\r\n\r\n")
