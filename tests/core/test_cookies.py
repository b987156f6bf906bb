"""httpy.core.cookies: the Cookie request header."""

from __future__ import annotations

import pytest

from httpy.core.cookies import parse_cookie_header, parse_cookie_headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2", {"a": "1", "b": "2"}),
        ("a=1;b=2", {"a": "1", "b": "2"}),
        ("  a = 1 ;  b=2  ", {"a": "1", "b": "2"}),
        ('a="quoted value"', {"a": "quoted value"}),
        ('a=""', {"a": ""}),
        ('a="', {"a": '"'}),
        ("a=", {"a": ""}),
        ("a=1=2", {"a": "1=2"}),
        ("a=1; a=2", {"a": "1"}),
        ("novalue; a=1", {"a": "1"}),
        ("=x; a=1", {"a": "1"}),
        ("bad name=1; a=1", {"a": "1"}),
        ("a=%20x", {"a": "%20x"}),
        (";;;", {}),
        ("\x00=1; a=\x00", {"a": "\x00"}),
    ],
)
def test_parse_cookie_header(header: str, expected: dict[str, str]) -> None:
    assert parse_cookie_header(header) == expected


def test_several_cookie_headers() -> None:
    assert parse_cookie_headers(["a=1; b=2", "b=3; c=4"]) == {"a": "1", "b": "2", "c": "4"}
    assert parse_cookie_headers([]) == {}
