"""What the test client's HTTP/1.1, HTTP/2 and HTTP/3 halves share: the request they
send (:class:`OutgoingRequest`), its header block for HTTP/2 and HTTP/3, and the
response they collect (:class:`RawResponse`).

The request is built once, in HTTP/1.1 terms, by :mod:`httpy.framework.testing`; each
half sends it over its own protocol and hands back what arrived, which
:mod:`httpy.framework.testing` turns into a ``TestResponse``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.fields import CONNECTION_SPECIFIC

#: The name the test client calls the server by (``Host``, ``:authority``, TLS SNI).
SERVER_NAME = "testserver"

Fields = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """One request as the test client sends it, in HTTP/1.1 terms: an encoded target,
    lower-case header names (``host`` among them), the whole body, and the trailer
    fields that end it (none: no trailers)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    trailers: tuple[tuple[str, str], ...] = ()

    def header_block(self, scheme: bytes) -> Fields:
        """The HEADERS block for HTTP/2 or HTTP/3: ``host`` becomes ``:authority``;
        connection-specific fields, which both forbid, are dropped, and ``te`` is kept
        only as ``trailers``."""
        authority = SERVER_NAME
        block: Fields = []
        for name, value in self.headers:
            if name == "host":
                authority = value
            elif name.encode() not in CONNECTION_SPECIFIC and (name != "te" or value == "trailers"):
                block.append((name.encode("latin-1"), value.encode("latin-1")))
        pseudo = [
            (b":method", self.method.encode("ascii")),
            (b":scheme", scheme),
            (b":authority", authority.encode("latin-1")),
            (b":path", self.target.encode("latin-1")),
        ]
        return pseudo + block

    def trailer_block(self) -> Fields:
        """The trailer fields as a HEADERS block (empty: the body ends the request)."""
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self.trailers]


@dataclass
class RawResponse:
    """One HTTP/2 or HTTP/3 response as received: the request's or a pushed one."""

    stream_id: int
    path: str | None = None
    status: int = 0
    headers: Fields = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: Fields = field(default_factory=list)
    ended: bool = False
