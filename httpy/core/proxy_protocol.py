"""The PROXY protocol header (HAProxy, versions 1 and 2): who connected to the proxy.

A load balancer working at the TCP level (HAProxy, AWS NLB, nginx ``stream``) puts one
header in front of the connection's bytes, before TLS and HTTP.  With
``Config.proxy_protocol`` every connection must start with one; the server reads exactly
the header's bytes, and the addresses in it become the request's client and server.

* v1 is a text line: ``PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\\r\\n`` (at most 107
  bytes; ``PROXY UNKNOWN ...`` when the proxy does not know).
* v2 is binary: a 12-byte signature, version/command, family/protocol, a 16-bit length,
  the addresses, then TLVs (ignored here).  ``LOCAL`` (a health check from the proxy
  itself) and unsupported families carry no client address.

Pure functions, for the backend and the fuzz target (``fuzz/fuzz_proxy_protocol.py``):
:func:`proxy_header_length` says how much to read, :func:`parse_proxy_header` parses.
Anything malformed raises :class:`ProxyProtocolError`, nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
#: The longest v1 line, CRLF included (the specification's limit).
V1_MAX_LENGTH = 107
_V2_HEADER = 16


class ProxyProtocolError(ValueError):
    """The connection does not start with a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the proxy said.  ``client``/``server`` are None when it did not say
    (``UNKNOWN``, ``LOCAL``, unix or unspecified families)."""

    version: int
    client: tuple[str, int] | None
    server: tuple[str, int] | None


def proxy_header_length(data: bytes) -> int | None:
    """The header's total length, once ``data`` (the connection's first bytes) shows it.

    None: not known yet, and every byte of ``data`` belongs to the header, so the
    caller may consume them all and read on.  Raises :class:`ProxyProtocolError` as soon
    as ``data`` cannot be the start of a header.
    """
    if data[:1] == b"P" or not data:
        prefix = data[: len(V1_PREFIX)]
        if not V1_PREFIX.startswith(prefix):
            raise ProxyProtocolError("not a PROXY protocol header")
        end = data.find(b"\r\n")
        if end >= 0:
            if end + 2 > V1_MAX_LENGTH:
                raise ProxyProtocolError("PROXY v1 line longer than 107 bytes")
            return end + 2
        if len(data) >= V1_MAX_LENGTH or b"\n" in data:
            raise ProxyProtocolError("PROXY v1 line without CRLF within 107 bytes")
        return None
    if not V2_SIGNATURE.startswith(data[: len(V2_SIGNATURE)]):
        raise ProxyProtocolError("not a PROXY protocol header")
    if len(data) < _V2_HEADER:
        return None
    if data[12] >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {data[12] >> 4}")
    return _V2_HEADER + int.from_bytes(data[14:16], "big")


def parse_proxy_header(data: bytes) -> ProxyHeader:
    """Parse a complete header: exactly ``proxy_header_length(data)`` bytes."""
    length = proxy_header_length(data)
    if length is None or length != len(data):
        raise ProxyProtocolError("incomplete PROXY protocol header")
    if data.startswith(V1_PREFIX):
        return _parse_v1(data[:-2])
    return _parse_v2(data)


def _parse_v1(line: bytes) -> ProxyHeader:
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return ProxyHeader(1, None, None)  # the rest of the line is to be ignored
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProxyProtocolError("PROXY v1: expected PROXY TCP4|TCP6 src dst sport dport")
    version = 4 if parts[1] == b"TCP4" else 6
    source = _address(parts[2], version)
    destination = _address(parts[3], version)
    return ProxyHeader(1, (source, _port(parts[4])), (destination, _port(parts[5])))


def _address(raw: bytes, version: int) -> str:
    try:
        address = ipaddress.ip_address(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProxyProtocolError(f"PROXY v1: bad address {raw[:50]!r}") from None
    if address.version != version:
        raise ProxyProtocolError(f"PROXY v1: {raw[:50]!r} is not IPv{version}")
    return str(address)


def _port(raw: bytes) -> int:
    # Decimal without a leading zero (the specification's 0..65535 rule).
    if not raw.isdigit() or (len(raw) > 1 and raw[:1] == b"0") or int(raw) > 65535:
        raise ProxyProtocolError(f"PROXY v1: bad port {raw[:10]!r}")
    return int(raw)


def _parse_v2(data: bytes) -> ProxyHeader:
    command = data[12] & 0x0F
    family, transport = data[13] >> 4, data[13] & 0x0F
    body = data[_V2_HEADER:]
    if command == 0x0:  # LOCAL: the proxy's own connection (health check)
        return ProxyHeader(2, None, None)
    if command != 0x1:
        raise ProxyProtocolError(f"PROXY v2: unknown command {command}")
    if transport not in (0x0, 0x1, 0x2):
        raise ProxyProtocolError(f"PROXY v2: unknown transport {transport}")
    if family == 0x1:  # AF_INET: 4 + 4 + 2 + 2 bytes
        size, width = 12, 4
    elif family == 0x2:  # AF_INET6: 16 + 16 + 2 + 2 bytes
        size, width = 36, 16
    elif family in (0x0, 0x3):  # unspecified, AF_UNIX: no address to report
        return ProxyHeader(2, None, None)
    else:
        raise ProxyProtocolError(f"PROXY v2: unknown address family {family}")
    if len(body) < size:
        raise ProxyProtocolError("PROXY v2: addresses longer than the header")
    source = str(ipaddress.ip_address(body[:width]))
    destination = str(ipaddress.ip_address(body[width : 2 * width]))
    source_port = int.from_bytes(body[2 * width : 2 * width + 2], "big")
    destination_port = int.from_bytes(body[2 * width + 2 : 2 * width + 4], "big")
    return ProxyHeader(2, (source, source_port), (destination, destination_port))
