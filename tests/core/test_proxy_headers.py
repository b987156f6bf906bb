"""Proxy headers: believed only from trusted peers; which entry is the client."""

from __future__ import annotations

import pytest

from httpy.core.application import RequestHead
from httpy.core.proxy_headers import TrustedProxies, apply_proxy_headers, parse_forwarded

LOCAL = TrustedProxies(["127.0.0.1", "::1", "unix:"])


def head(
    *headers: tuple[bytes, bytes], client: tuple[str, int] | None = ("127.0.0.1", 5000)
) -> RequestHead:
    return RequestHead(
        "GET", "/", b"", ((b"host", b"internal:8000"), *headers), "1.1", client=client
    )


def test_x_forwarded_headers_from_a_trusted_proxy() -> None:
    result = apply_proxy_headers(
        head(
            (b"x-forwarded-for", b"203.0.113.7"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"example.com"),
        ),
        LOCAL,
    )
    assert result.client == ("203.0.113.7", 0)
    assert result.scheme == "https"
    assert dict(result.headers)[b"host"] == b"example.com"
    assert [n for n, _ in result.headers].count(b"host") == 1


def test_untrusted_peer_is_ignored() -> None:
    original = head((b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"),
                    client=("198.51.100.9", 4000))
    assert apply_proxy_headers(original, LOCAL) is original


def test_no_headers_no_change() -> None:
    original = head()
    assert apply_proxy_headers(original, LOCAL) is original


def test_rightmost_untrusted_address_is_the_client() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # A client forging the first entry; two of our proxies appended theirs.
    result = apply_proxy_headers(
        head((b"x-forwarded-for", b"1.1.1.1, 203.0.113.7, 10.1.2.3")), trusted
    )
    assert result.client == ("203.0.113.7", 0)
    # Several header lines are one list.
    result = apply_proxy_headers(
        head((b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"203.0.113.8")), trusted
    )
    assert result.client == ("203.0.113.8", 0)
    # Everyone trusted: the leftmost.
    result = apply_proxy_headers(head((b"x-forwarded-for", b"10.9.9.9, 10.1.1.1")), trusted)
    assert result.client == ("10.9.9.9", 0)


def test_forwarded_header_rfc_7239() -> None:
    result = apply_proxy_headers(
        head((b"forwarded", b'for="[2001:db8:cafe::17]:4711";proto=https;host=example.org')),
        LOCAL,
    )
    assert result.client == ("2001:db8:cafe::17", 4711)
    assert result.scheme == "https"
    assert dict(result.headers)[b"host"] == b"example.org"


def test_forwarded_wins_over_x_forwarded() -> None:
    result = apply_proxy_headers(
        head((b"forwarded", b"for=192.0.2.60;proto=http"), (b"x-forwarded-for", b"192.0.2.99"),
             (b"x-forwarded-proto", b"https")),
        LOCAL,
    )
    assert result.client == ("192.0.2.60", 0)
    assert result.scheme == "http"


def test_unix_socket_peer_trust() -> None:
    forwarded = (b"x-forwarded-for", b"203.0.113.7")
    assert apply_proxy_headers(head(forwarded, client=None), LOCAL).client == ("203.0.113.7", 0)
    tcp_only = TrustedProxies(["127.0.0.1"])
    assert apply_proxy_headers(head(forwarded, client=None), tcp_only).client is None


@pytest.mark.parametrize(
    "headers",
    [
        ((b"x-forwarded-proto", b"gopher"),),
        ((b"x-forwarded-host", b"evil.com/path with space"),),
        ((b"x-forwarded-for", b"not-an-address"),),
        ((b"forwarded", b"for=unknown"),),
        ((b"forwarded", b'for="unterminated'),),
        ((b"forwarded", b"garbage without equals"),),
    ],
)
def test_malformed_values_change_nothing(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    original = head(*headers)
    result = apply_proxy_headers(original, LOCAL)
    assert result.scheme == "http"
    assert result.client in (("127.0.0.1", 5000), ("127.0.0.1", 5000))
    assert dict(result.headers)[b"host"] == b"internal:8000"


def test_wildcard_and_cidr_trust() -> None:
    assert TrustedProxies(["*"]).trusts_peer(("8.8.8.8", 1))
    assert TrustedProxies(["10.0.0.0/8"]).trusts_peer(("10.200.0.1", 1))
    assert not TrustedProxies(["10.0.0.0/8"]).trusts_peer(("11.0.0.1", 1))
    assert TrustedProxies(["fd00::/8"]).trusts_peer(("fd12::1", 1))
    assert not TrustedProxies([]).enabled
    with pytest.raises(ValueError, match="not an address"):
        TrustedProxies(["localhost"])


def test_parse_forwarded() -> None:
    assert parse_forwarded(b'for=192.0.2.43, for="[2001:db8:cafe::17]";by=203.0.113.60') == [
        {"for": "192.0.2.43"},
        {"for": "[2001:db8:cafe::17]", "by": "203.0.113.60"},
    ]
    assert parse_forwarded(b'For="_gazonk"; Proto=HTTPS') == [{"for": "_gazonk", "proto": "HTTPS"}]
    assert parse_forwarded(b"for") == []
