"""Parse the ``Cookie`` request header (RFC 6265 5.4 ``cookie-string``).

``parse_cookie_header('a=1; b="two"')`` gives ``{"a": "1", "b": "two"}``.  Pure and
forgiving, as browsers are: spaces around pairs and around ``=`` are tolerated, pairs
without ``=`` or with an empty or invalid name are skipped, one pair of surrounding
double quotes is removed from a value, and the first of repeated names wins (browsers
send the cookie with the most specific path first).  Values are returned as sent: no
percent- or octal-decoding.  Never raises.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["parse_cookie_header", "parse_cookie_headers"]

# RFC 9110 token characters: what a cookie name may contain.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def parse_cookie_header(value: str) -> dict[str, str]:
    """The cookies in one ``Cookie`` header value, name -> value."""
    cookies: dict[str, str] = {}
    _parse_into(value, cookies)
    return cookies


def parse_cookie_headers(values: Iterable[str]) -> dict[str, str]:
    """The cookies in several ``Cookie`` header fields (HTTP/2 and HTTP/3 split them)."""
    cookies: dict[str, str] = {}
    for value in values:
        _parse_into(value, cookies)
    return cookies


def _parse_into(value: str, cookies: dict[str, str]) -> None:
    for pair in value.split(";"):
        name, eq, cookie_value = pair.partition("=")
        if not eq:
            continue
        name = name.strip(" \t")
        if not name or name in cookies or not _TOKEN_CHARS.issuperset(name):
            continue
        cookie_value = cookie_value.strip(" \t")
        if len(cookie_value) >= 2 and cookie_value[0] == '"' and cookie_value[-1] == '"':
            cookie_value = cookie_value[1:-1]
        cookies[name] = cookie_value
