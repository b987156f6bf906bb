"""Proxy headers: the client's address, scheme and host as a trusted proxy reports them.

Behind nginx or a load balancer the TCP peer is the proxy; the proxy says who the client
is in ``Forwarded`` (RFC 7239) or the de-facto ``X-Forwarded-For`` / ``-Proto`` /
``-Host``.  Anyone can send those headers, so they are believed only when the TCP peer
is in the server's ``forwarded_allow_ips`` (addresses and CIDR networks; ``*`` trusts
every peer; ``unix:`` trusts unix-socket peers, which have no address).

Which entry wins when several proxies appended theirs: the address list is read from
the right (the nearest proxy) to the left, skipping addresses that are themselves
trusted proxies; the first untrusted one is the client (all trusted: the leftmost).
``Forwarded`` takes the protocol and host of that same element.  ``X-Forwarded-Proto``
and ``-Host`` take their rightmost value (the one our trusted proxy set).  ``Forwarded``,
when present, is used instead of the ``X-Forwarded-*`` headers.

Pure functions over :class:`~httpy.core.application.RequestHead`: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace

from .application import RequestHead
from .events import Headers

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
# RFC 9110 host = uri-host [ ":" port ]: letters, digits and these; nothing else passes.
_HOST_CHARS = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:[]%!$&'()*+,;="
)


class TrustedProxies:
    """The peers whose proxy headers are believed (``forwarded_allow_ips``)."""

    def __init__(self, allow: Iterable[str]) -> None:
        self.everyone = False
        self.unix = False
        self._networks: list[Network] = []
        for item in allow:
            text = item.strip()
            if text == "*":
                self.everyone = True
            elif text == "unix:":
                self.unix = True
            elif text:
                try:
                    self._networks.append(ipaddress.ip_network(text, strict=False))
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {text!r} is not an address or network"
                    ) from None
        self._cache: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        return self.everyone or self.unix or bool(self._networks)

    def trusts_peer(self, client: tuple[str, int] | None) -> bool:
        """Whether the TCP peer ``client`` (None: a unix socket) is a trusted proxy."""
        if client is None:
            return self.unix or self.everyone
        return self.trusts_address(client[0])

    def trusts_address(self, host: str) -> bool:
        if self.everyone:
            return True
        known = self._cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self._networks)
            if len(self._cache) < 4096:  # bounded: peers are many, proxies few
                self._cache[host] = known
        return known


def apply_proxy_headers(head: RequestHead, trusted: TrustedProxies) -> RequestHead:
    """``head`` with client, scheme and ``Host`` from its proxy headers, if the peer is
    trusted and sent some; else ``head`` itself.  Malformed values are ignored."""
    if not trusted.trusts_peer(head.client):
        return head
    forwarded: list[bytes] = []
    xff: list[bytes] = []
    proto: bytes | None = None
    host: bytes | None = None
    for name, value in head.headers:
        if name == b"forwarded":
            forwarded.append(value)
        elif name == b"x-forwarded-for":
            xff.append(value)
        elif name == b"x-forwarded-proto":
            proto = value
        elif name == b"x-forwarded-host":
            host = value
    if forwarded:
        elements = parse_forwarded(b",".join(forwarded))
        if not elements:
            return head
        chosen = _choose([e.get("for", "") for e in elements], trusted)
        element = elements[chosen] if chosen is not None else {}
        return _rewrite(
            head, _parse_node(element.get("for", "")), element.get("proto"), element.get("host")
        )
    if not (xff or proto or host):
        return head
    addresses = [a.strip() for a in b",".join(xff).decode("latin-1").split(",") if a.strip()]
    chosen = _choose(addresses, trusted)
    return _rewrite(
        head,
        _parse_node(addresses[chosen]) if chosen is not None else None,
        _last(proto),
        _last(host),
    )


def _choose(nodes: list[str], trusted: TrustedProxies) -> int | None:
    """Index of the client among proxy-appended ``nodes`` (rightmost untrusted)."""
    if not nodes:
        return None
    for index in range(len(nodes) - 1, -1, -1):
        parsed = _parse_node(nodes[index])
        if parsed is None or not trusted.trusts_address(parsed[0]):
            return index
    return 0


def _last(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.decode("latin-1").split(",")[-1].strip() or None


def _rewrite(
    head: RequestHead, client: tuple[str, int] | None, proto: str | None, host: str | None
) -> RequestHead:
    changes: dict[str, object] = {}
    if client is not None:
        changes["client"] = client
    if proto is not None and proto.lower() in _SCHEMES:
        changes["scheme"] = _SCHEMES[proto.lower()]
    if host and all(byte in _HOST_CHARS for byte in host.encode("latin-1")):
        changes["headers"] = _with_host(head.headers, host.encode("latin-1"))
    return replace(head, **changes) if changes else head  # type: ignore[arg-type]


def _with_host(headers: Headers, host: bytes) -> Headers:
    kept = tuple((n, v) for n, v in headers if n != b"host")
    return ((b"host", host), *kept)


def _parse_node(node: str) -> tuple[str, int] | None:
    """A ``for=`` / X-Forwarded-For node: ``1.2.3.4``, ``1.2.3.4:80``, ``[v6]:80``, ``v6``.

    Obfuscated (``_abc``) and ``unknown`` nodes, and anything else that is not an IP
    address, give None.
    """
    text = node.strip().strip('"')
    port = 0
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        rest = text[end + 1 :]
        text = text[1:end]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            return None
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        if not port_text.isdigit():
            return None
        port = int(port_text)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if port > 65535:
        return None
    return str(address), port


def parse_forwarded(value: bytes) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded``: one dict of lower-cased parameters per element.

    Returns ``[]`` for a value that does not parse (the header is then ignored whole:
    guessing at a half-broken one could trust the wrong address).
    """
    text = value.decode("latin-1")
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        equals = text.find("=", i)
        if equals < 0:
            return []
        name = text[i:equals].strip().lower()
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            return []
        i = equals + 1
        if i < n and text[i] == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                out.append(text[j])
                j += 1
            if j >= n:
                return []
            param = "".join(out)
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in ";, \t":
                j += 1
            param = text[i:j]
            i = j
        current[name] = param
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ";":
            i += 1
        elif i < n and text[i] == ",":
            elements.append(current)
            current = {}
            i += 1
        elif i < n:
            return []
    if current:
        elements.append(current)
    return elements
