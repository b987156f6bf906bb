"""Unit tests for httpy.core.headers: the read-only ``Headers`` and ``MutableHeaders``."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from httpy.core.headers import Headers, MutableHeaders

RAW = (
    (b"host", b"example.com"),
    (b"accept", b"text/html"),
    (b"set-cookie", b"a=1"),
    (b"set-cookie", b"b=2"),
    (b"x-latin", b"caf\xe9"),
)

# ------------------------------------------------------------------------------ Headers


def test_headers_is_a_mapping() -> None:
    headers = Headers(raw=RAW)
    assert isinstance(headers, Mapping)


def test_headers_get_ignores_case() -> None:
    headers = Headers(raw=RAW)
    assert headers.get("Host") == "example.com"
    assert headers.get("HOST") == "example.com"
    assert headers["ACCEPT"] == "text/html"


def test_headers_get_returns_first_value_and_default() -> None:
    headers = Headers(raw=RAW)
    assert headers.get("set-cookie") == "a=1"
    assert headers.get("missing") is None
    assert headers.get("missing", "fallback") == "fallback"
    with pytest.raises(KeyError):
        headers["missing"]


def test_headers_getlist_keeps_every_value_in_order() -> None:
    headers = Headers(raw=RAW)
    assert headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert headers.getlist("missing") == []


def test_headers_values_are_latin1() -> None:
    assert Headers(raw=RAW)["x-latin"] == "café"


def test_headers_raw_is_what_was_given() -> None:
    assert Headers(raw=RAW).raw is RAW


def test_headers_contains() -> None:
    headers = Headers(raw=RAW)
    assert "host" in headers
    assert "Set-Cookie" in headers
    assert "missing" not in headers
    not_names: list[object] = [b"host", 42, None]
    for key in not_names:  # only str names are keys
        assert key not in headers


def test_headers_iter_len_keys_are_unique_names() -> None:
    headers = Headers(raw=RAW)
    assert list(headers) == ["host", "accept", "set-cookie", "x-latin"]
    assert len(headers) == 4
    assert dict(headers)["set-cookie"] == "a=1"
    assert headers.multi_items()[2:4] == [("set-cookie", "a=1"), ("set-cookie", "b=2")]


def test_headers_from_mapping_and_pairs_lowercases_names() -> None:
    from_mapping = Headers({"Content-Type": "text/plain"})
    assert from_mapping.raw == ((b"content-type", b"text/plain"),)
    from_pairs = Headers([("X-A", "1"), ("x-a", "2")])
    assert from_pairs.raw == ((b"x-a", b"1"), (b"x-a", b"2"))
    assert from_pairs.getlist("X-A") == ["1", "2"]


def test_headers_empty() -> None:
    headers = Headers()
    assert len(headers) == 0
    assert headers.raw == ()
    assert headers.get("x") is None
    assert repr(headers) == "Headers([])"


# ------------------------------------------------------------------------ MutableHeaders


def test_mutable_set_replaces_every_field_of_that_name() -> None:
    headers = MutableHeaders([("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X", "y")])
    headers["SET-COOKIE"] = "c=3"
    assert headers.getlist("set-cookie") == ["c=3"]
    assert headers["x"] == "y"
    assert headers.raw() == ((b"x", b"y"), (b"set-cookie", b"c=3"))


def test_mutable_append_keeps_existing_fields() -> None:
    headers = MutableHeaders()
    headers.append("Set-Cookie", "a=1")
    headers.append("set-cookie", "b=2")
    assert headers.getlist("SET-COOKIE") == ["a=1", "b=2"]
    assert headers["set-cookie"] == "a=1"
    assert len(headers) == 2
    assert list(headers) == ["set-cookie"]


def test_mutable_get_and_contains_ignore_case() -> None:
    headers = MutableHeaders({"Content-Type": "text/html"})
    assert headers.get("content-type") == "text/html"
    assert headers["CONTENT-TYPE"] == "text/html"
    assert "Content-TYPE" in headers
    assert "missing" not in headers
    assert 1 not in headers
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        headers["missing"]


def test_mutable_delete_removes_every_field_of_that_name() -> None:
    headers = MutableHeaders([("A", "1"), ("a", "2"), ("B", "3")])
    del headers["A"]
    assert "a" not in headers
    assert headers.items() == [("b", "3")]
    del headers["not-there"]  # deleting a missing name is not an error
    assert headers.items() == [("b", "3")]


def test_mutable_setdefault() -> None:
    headers = MutableHeaders()
    assert headers.setdefault("Server", "httpy") == "httpy"
    assert headers.setdefault("server", "other") == "httpy"
    assert headers.getlist("server") == ["httpy"]


def test_mutable_raw_is_lowercase_latin1_bytes() -> None:
    headers = MutableHeaders({"X-Name": "café"})
    assert headers.raw() == ((b"x-name", b"caf\xe9"),)
    assert "MutableHeaders" in repr(headers)


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nInjected: yes", "a\x00b", "\n"])
def test_mutable_refuses_cr_lf_nul_in_values(value: str) -> None:
    headers = MutableHeaders()
    with pytest.raises(ValueError):
        headers["x"] = value
    with pytest.raises(ValueError):
        headers.append("x", value)
    with pytest.raises(ValueError):
        MutableHeaders({"x": value})
    assert len(headers) == 0


def test_mutable_refuses_values_that_are_not_latin1() -> None:
    with pytest.raises(ValueError):
        MutableHeaders().append("x", "snow ☃")


@pytest.mark.parametrize("name", ["", "a b", "a:b", "a\tb", "a\rb", "a\nb", "a\x00b", "x:"])
def test_mutable_refuses_invalid_names(name: str) -> None:
    headers = MutableHeaders()
    with pytest.raises(ValueError):
        headers[name] = "v"
    with pytest.raises(ValueError):
        headers.append(name, "v")
    assert len(headers) == 0


def test_mutable_headers_refuse_names_that_are_not_tokens() -> None:
    """Found by fuzz/fuzz_request_parts.py: a non-latin-1 or control-character name was
    accepted and failed only when the response was written."""
    headers = MutableHeaders()
    for name in ("Ā", "\x08", "x y", "a:b", ""):
        with pytest.raises(ValueError, match="invalid header name"):
            headers[name] = "v"
    headers["X-Ok_1"] = "v"
    assert headers.raw() == ((b"x-ok_1", b"v"),)


def test_mutable_headers_drop_surrounding_whitespace() -> None:
    """Found by the long fuzz profile: a value of " " was stored, and the HTTP/1.1 writer
    refused it only when the response was written (a late 500)."""
    headers = MutableHeaders()
    headers["x-a"] = " a b\t"
    headers.append("x-b", " ")
    assert headers.raw() == ((b"x-a", b"a b"), (b"x-b", b""))
