"""A request head as HTTP/2 and HTTP/3 carry it, mapped once to what HTTP/1.1 gives.

Both versions send the request line as pseudo-header fields (``:method``, ``:path``,
``:authority``, ``:protocol``) in an HPACK or QPACK field section.  ``MultiplexedHead``
turns such a section into the backend's vocabulary (a ``Host`` field from
``:authority``, a :class:`~httpy.core.events.RequestReceived`) and checks the request
limits HTTP/1.1 enforces on its head, so that no version can forget one.
``BodyCounter`` counts body bytes per stream against ``max_body_bytes``.

The field section's grammar (pseudo-header order, forbidden fields) has been checked
before (:mod:`httpy.core.http2_checks`); this module only maps and measures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import events as ev
from .config import Config

#: RFC 7541 4.1 / RFC 9113 6.5.2 / RFC 9114 4.2.2: a field counts its name, its value
#: and 32 octets of overhead.
FIELD_OVERHEAD = 32


@dataclass(frozen=True, slots=True)
class MultiplexedHead:
    """The request head of one HTTP/2 or HTTP/3 stream.

    ``headers`` are the regular fields, with ``host`` first (from ``:authority``) when
    the client sent none.  ``protocol`` is the ``:protocol`` of an extended CONNECT
    (RFC 8441, RFC 9220): the stream is then a tunnel, not a request body.
    ``section_size`` is the field section's size as HPACK and QPACK count it.
    """

    method: bytes
    path: bytes
    protocol: bytes | None
    headers: ev.Headers
    section_size: int

    @classmethod
    def parse(cls, fields: Iterable[tuple[bytes, bytes]]) -> MultiplexedHead:
        """Map a checked field section (names lower-case, pseudo-headers first)."""
        method = path = b""
        authority: bytes | None = None
        protocol: bytes | None = None
        regular: list[tuple[bytes, bytes]] = []
        has_host = False
        size = 0
        for raw_name, raw_value in fields:
            name, value = bytes(raw_name), bytes(raw_value)
            size += len(name) + len(value) + FIELD_OVERHEAD
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":protocol":
                protocol = value
            elif name.startswith(b":"):
                continue  # :scheme
            else:
                has_host = has_host or name == b"host"
                regular.append((name, value))
        if authority is not None and not has_host:
            regular.insert(0, (b"host", authority))
        return cls(method, path, protocol, tuple(regular), size)

    @property
    def declared_length(self) -> int | None:
        """The body length ``Content-Length`` declares (checked valid before), if any."""
        declared = next((v for n, v in self.headers if n == b"content-length"), b"")
        return int(declared) if declared.isdigit() else None

    def limit_problem(self, config: Config) -> tuple[int, str] | None:
        """The status and reason to answer when the head breaks a request limit."""
        if self.section_size > config.max_header_bytes:
            return 431, f"header section over {config.max_header_bytes} bytes"
        if len(self.headers) > config.max_header_count:
            return 431, f"more than {config.max_header_count} header fields"
        limit, declared = config.max_body_bytes, self.declared_length
        if limit is not None and declared is not None and declared > limit:
            return 413, f"Content-Length {declared} over the {limit} limit"
        return None

    def request_event(
        self, stream_id: int, http_version: str, *, body_expected: bool
    ) -> ev.RequestReceived:
        """The backend's event for this head."""
        return ev.RequestReceived(
            stream_id=stream_id,
            method=self.method.decode("ascii", "replace"),
            target=self.path,
            headers=self.headers,
            http_version=http_version,
            body_expected=body_expected,
            upgrade=self.protocol.lower() if self.protocol is not None else None,
        )


class BodyCounter:
    """Request body bytes received per stream, against ``max_body_bytes``.

    Tunnels (extended CONNECT) carry no request body: a core does not count them.
    """

    __slots__ = ("_limit", "_received")

    def __init__(self, limit: int | None) -> None:
        self._limit = limit
        self._received: dict[int, int] = {}

    @property
    def limit(self) -> int | None:
        """``max_body_bytes``: None means no limit."""
        return self._limit

    def accept(self, stream_id: int, size: int) -> bool:
        """Count ``size`` more bytes on ``stream_id``; False once over the limit."""
        received = self._received.get(stream_id, 0) + size
        self._received[stream_id] = received
        return self._limit is None or received <= self._limit

    def forget(self, stream_id: int) -> None:
        """The stream is over: drop its count."""
        self._received.pop(stream_id, None)
