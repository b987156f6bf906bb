"""PROXY protocol v1 and v2 headers (the HAProxy specification's examples)."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from httpy.core.proxy_protocol import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
    proxy_header_length,
)


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def v2_tcp4(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    body = (ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
            + struct.pack("!HH", sport, dport) + tlvs)
    return v2(0x1, 0x11, body)


def test_v1_tcp4_and_tcp6() -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    assert proxy_header_length(line + b"GET / HTTP/1.1\r\n") == len(line)
    assert parse_proxy_header(line) == ProxyHeader(
        1, ("192.0.2.1", 56324), ("198.51.100.2", 443)
    )
    line6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\n"
    assert parse_proxy_header(line6).client == ("2001:db8::1", 1000)
    assert parse_proxy_header(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").client is None
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n") == ProxyHeader(1, None, None)


def test_v2_tcp4_tcp6_local_unix() -> None:
    header = v2_tcp4("203.0.113.5", "10.0.0.1", 40000, 8443, tlvs=b"\x04\x00\x01x")
    assert proxy_header_length(header[:16]) == len(header)
    assert parse_proxy_header(header) == ProxyHeader(
        2, ("203.0.113.5", 40000), ("10.0.0.1", 8443)
    )
    body6 = (ipaddress.ip_address("2001:db8::5").packed + ipaddress.ip_address("::1").packed
             + struct.pack("!HH", 1, 2))
    assert parse_proxy_header(v2(0x1, 0x21, body6)).client == ("2001:db8::5", 1)
    assert parse_proxy_header(v2(0x0, 0x00, b"")) == ProxyHeader(2, None, None)  # LOCAL
    assert parse_proxy_header(v2(0x1, 0x31, b"\x00" * 216)).client is None  # AF_UNIX


def test_incomplete_headers_ask_for_more() -> None:
    line = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
    for cut in range(len(line) - 1):
        assert proxy_header_length(line[:cut]) is None
    header = v2_tcp4("203.0.113.5", "10.0.0.1", 1, 2)
    for cut in range(16):
        assert proxy_header_length(header[:cut]) is None
    assert proxy_header_length(header[:20]) == len(header)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 70000 443\r\n",
        b"PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
        b"PROXY " + b"A" * 120 + b"\r\n",
        b"PROXY TCP4 1.2.3.4\n",
        V2_SIGNATURE + b"\x11\x11\x00\x00",  # version 1 in a v2 header
        V2_SIGNATURE + b"\x21\x11\x00\x04abcd",  # addresses longer than the header
        V2_SIGNATURE + b"\x2f\x11\x00\x00",  # unknown command
        V2_SIGNATURE + b"\x21\x51\x00\x00",  # unknown family
    ],
)
def test_malformed_headers_raise_proxy_protocol_error(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        length = proxy_header_length(data)
        parse_proxy_header(data[:length] if length else data)
