"""Property tests for httpy.core.proxy_protocol and httpy.core.proxy_headers.

1. Robustness: arbitrary bytes, and mutations of valid headers, never raise anything but
   ``ProxyProtocolError`` from ``proxy_header_length`` / ``parse_proxy_header``.
2. The reading contract the server relies on: feeding a stream (header + payload) in
   arbitrary pieces, consuming only what ``proxy_header_length`` allows, ends exactly at
   the header's end (never a payload byte), and parses to the generated addresses.
3. Round trip: generated v1 and v2 headers parse to the addresses they were built from.
4. Proxy headers: arbitrary header values from a trusted peer never raise, and a client
   address taken from them is a valid IP address.
"""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from httpy.core.application import RequestHead
from httpy.core.proxy_headers import TrustedProxies, apply_proxy_headers
from httpy.core.proxy_protocol import (
    V2_SIGNATURE,
    ProxyProtocolError,
    parse_proxy_header,
    proxy_header_length,
)

ports = st.integers(min_value=0, max_value=65535)
ipv4 = st.ip_addresses(v=4)
ipv6 = st.ip_addresses(v=6)


@st.composite
def headers(draw: st.DrawFn) -> tuple[bytes, tuple[str, int], tuple[str, int]]:
    """A valid header and the (client, server) it encodes."""
    v6 = draw(st.booleans())
    src = draw(ipv6 if v6 else ipv4)
    dst = draw(ipv6 if v6 else ipv4)
    sport, dport = draw(ports), draw(ports)
    if draw(st.booleans()):
        family = b"TCP6" if v6 else b"TCP4"
        data = b"PROXY %s %s %s %d %d\r\n" % (
            family, str(src).encode(), str(dst).encode(), sport, dport,
        )
    else:
        tlvs = draw(st.binary(max_size=40))
        body = src.packed + dst.packed + struct.pack("!HH", sport, dport) + tlvs
        data = (V2_SIGNATURE + bytes([0x21, 0x21 if v6 else 0x11])
                + struct.pack("!H", len(body)) + body)
    return data, (str(src), sport), (str(dst), dport)


def read_like_the_server(stream: bytes, pieces: list[int]) -> tuple[bytes, int]:
    """Consume ``stream`` as ``read_proxy_header`` does: peek what arrived, take only
    what surely is header.  Returns the header and the bytes consumed."""
    data, arrived = b"", 0
    for size in [*pieces, len(stream)]:
        arrived = min(len(stream), arrived + max(1, size))
        while True:
            length = proxy_header_length(data)
            if length is not None and len(data) >= length:
                return data, len(data)
            peeked = stream[len(data) : arrived]
            if not peeked:
                break
            if length is None:
                total = proxy_header_length(data + peeked)
                want = len(peeked) if total is None else min(len(peeked), total - len(data))
            else:
                want = min(len(peeked), length - len(data))
            data += peeked[:want]
    raise AssertionError("the stream ended before the header did")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_proxy_protocol_error(data: bytes) -> None:
    try:
        length = proxy_header_length(data)
        if length is not None and length <= len(data):
            parse_proxy_header(data[:length])
    except ProxyProtocolError:
        pass


@given(headers(), st.data())
def test_mutated_headers_raise_only_proxy_protocol_error(
    generated: tuple[bytes, tuple[str, int], tuple[str, int]], data: st.DataObject
) -> None:
    header = bytearray(generated[0])
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(header) - 1))
        header[index] = data.draw(st.integers(0, 255))
    try:
        length = proxy_header_length(bytes(header))
        if length is not None and length <= len(header):
            parse_proxy_header(bytes(header[:length]))
    except ProxyProtocolError:
        pass


@given(headers(), st.binary(max_size=50), st.lists(st.integers(0, 40), max_size=20))
def test_reading_stops_exactly_at_the_header_end(
    generated: tuple[bytes, tuple[str, int], tuple[str, int]],
    payload: bytes,
    pieces: list[int],
) -> None:
    header, client, server = generated
    consumed, count = read_like_the_server(header + payload, pieces)
    assert count == len(header)
    assert consumed == header
    parsed = parse_proxy_header(consumed)
    assert parsed.client == client
    assert parsed.server == server


forwarding_values = st.one_of(
    st.binary(max_size=80),
    st.lists(
        st.sampled_from([b"for=", b"proto=", b"host=", b";", b",", b'"', b"[", b"]", b":",
                         b"192.0.2.1", b"2001:db8::1", b"unknown", b"https", b" ", b"\\"]),
        max_size=12,
    ).map(b"".join),
)


@given(st.lists(st.tuples(
    st.sampled_from([b"forwarded", b"x-forwarded-for", b"x-forwarded-proto",
                     b"x-forwarded-host"]),
    forwarding_values,
), max_size=4))
def test_proxy_headers_never_raise(fields: list[tuple[bytes, bytes]]) -> None:
    head = RequestHead("GET", "/", b"", ((b"host", b"a"), *fields), "1.1",
                       client=("127.0.0.1", 1))
    result = apply_proxy_headers(head, TrustedProxies(["127.0.0.1", "10.0.0.0/8"]))
    assert result.scheme in ("http", "https")
    assert result.client is not None
    ipaddress.ip_address(result.client[0])
    assert 0 <= result.client[1] <= 65535
