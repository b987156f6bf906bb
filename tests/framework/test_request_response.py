"""Tests for Request and Response as plain objects (no server), the HTTP_xxx status
constants and AIOQUIC_AVAILABLE."""

from __future__ import annotations

import importlib.util
import json
from http import HTTPStatus

import pytest

import httpy
from httpy import FormData, HTTPException, QueryParams, Request, Response
from httpy.framework import status

# ----------------------------------------------------------------- Request


def test_request_constructor_as_the_seed_uses_it() -> None:
    request = Request(
        method="GET",
        path="/api/users/1",
        headers={},
        body=b"",
        path_params={"id": "1"},
    )
    assert request.method == "GET"
    assert request.path == "/api/users/1"
    assert request.path_params == {"id": "1"}
    assert len(request.headers) == 0
    assert request.query.get("anything") is None
    # The seed reassigns path_params between calls.
    request.path_params = {"id": "999"}
    assert request.path_params["id"] == "999"


def test_request_defaults_and_normalisation() -> None:
    request = Request()
    assert (request.method, request.path, request.path_params) == ("GET", "/", {})
    assert request.http_version == "1.1"
    assert request.scheme == "http"
    assert request.client is None

    request = Request(method="post", path="/a%20b/c?x=1&y=2&x=3")
    assert request.method == "POST"
    assert request.path == "/a b/c"
    assert request.raw_path == "/a%20b/c"
    assert request.query.get("x") == "1"
    assert request.query.getlist("x") == ["1", "3"]
    assert request.query_params is request.query


def test_request_explicit_query_string_wins() -> None:
    request = Request(path="/p?a=inline", query_string=b"a=explicit&b=%C3%A9")
    assert request.query.get("a") == "explicit"
    assert request.query.get("b") == "é"  # percent-escapes decode as UTF-8


def test_query_params_mapping() -> None:
    query = QueryParams("a=1&b=&a=2&c=x+y")
    assert dict(query) == {"a": "1", "b": "", "c": "x y"}
    assert query["a"] == "1"
    assert query.getlist("a") == ["1", "2"]
    assert query.getlist("zzz") == []
    assert query.multi_items() == [("a", "1"), ("b", ""), ("a", "2"), ("c", "x y")]
    assert len(query) == 3
    assert "b" in query
    with pytest.raises(KeyError):
        query["zzz"]
    assert repr(query) == "QueryParams([('a', '1'), ('b', ''), ('a', '2'), ('c', 'x y')])"


def test_form_data_is_the_same_multi_dict() -> None:
    form = FormData([("a", "1"), ("b", ""), ("a", "2")])
    assert (dict(form), form["a"], form.getlist("a"), len(form)) == (
        {"a": "1", "b": ""},
        "1",
        ["1", "2"],
        2,
    )
    assert form.multi_items() == [("a", "1"), ("b", ""), ("a", "2")]
    assert "b" in form and "zzz" not in form and form.files() == []
    assert repr(form) == "FormData([('a', '1'), ('b', ''), ('a', '2')])"


def test_request_headers_are_case_insensitive() -> None:
    request = Request(
        headers={"Content-Type": "application/json", "X-Custom-Header": "Value"},
    )
    assert request.headers.get("content-type") == "application/json"
    assert request.headers.get("CONTENT-TYPE") == "application/json"
    assert request.headers.get("x-custom-header") == "Value"  # values keep their case
    assert request.headers["X-CUSTOM-HEADER"] == "Value"
    assert "content-TYPE" in request.headers
    assert request.headers.get("missing") is None
    assert request.headers.get("missing", "default") == "default"


def test_request_headers_keep_repeated_fields() -> None:
    request = Request(headers=[("Accept", "text/html"), ("accept", "application/json")])
    assert request.headers.get("Accept") == "text/html"
    assert request.headers.getlist("ACCEPT") == ["text/html", "application/json"]


def test_request_json() -> None:
    request = Request(method="POST", body=b'{"name": "x", "tags": [1, 2]}')
    assert request.json() == {"name": "x", "tags": [1, 2]}
    assert request.json() is request.json()  # parsed once
    assert Request(body=b"").json() is None
    assert Request(body='"caf\u00e9"'.encode()).json() == "café"


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b"[1, 2"])
def test_request_invalid_json_raises_400(body: bytes) -> None:
    with pytest.raises(HTTPException) as info:
        Request(method="POST", body=body).json()
    assert info.value.status == 400
    assert info.value.detail.startswith("request body is not valid JSON")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("multipart/form-data; boundary=abc", True),
        ("Multipart/Form-Data; boundary=abc", True),
        ("multipart/mixed", True),
        ("application/json", False),
        ("application/x-www-form-urlencoded", False),
        (None, False),
    ],
)
def test_request_is_multipart(content_type: str | None, expected: bool) -> None:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    assert Request(method="POST", headers=headers).is_multipart() is expected


def test_request_content_type_strips_parameters() -> None:
    request = Request(headers={"Content-Type": "Text/Plain; charset=latin-1"})
    assert request.content_type == "text/plain"
    assert Request().content_type == ""


@pytest.mark.anyio
async def test_request_body_text_and_stream_of_built_request() -> None:
    request = Request(
        method="POST",
        headers={"content-type": "text/plain; charset=latin-1"},
        body="café".encode("latin-1"),
    )
    assert await request.body() == b"caf\xe9"
    assert await request.text() == "café"
    assert [chunk async for chunk in request.stream()] == [b"caf\xe9"]
    assert [chunk async for chunk in Request(body=b"").stream()] == []


# ----------------------------------------------------------------- Response


def test_response_constructor() -> None:
    response = Response(b"hello", status=201, headers={"X-Thing": "1"})
    assert response.status == 201
    assert response.status_code == 201
    assert response.body == b"hello"
    assert response.headers["x-thing"] == "1"
    assert response.headers.get("X-THING") == "1"
    assert "content-type" not in response.headers

    response = Response("héllo")
    assert response.status == 200
    assert response.body == "héllo".encode()

    assert Response().body == b""
    assert Response(None).body == b""
    assert Response().push_resources == []


def test_response_positional_status() -> None:
    response = Response("created", 201)
    assert response.status == 201


@pytest.mark.parametrize("bad_status", [0, 99, 1000, -1])
def test_response_rejects_invalid_status(bad_status: int) -> None:
    with pytest.raises(ValueError, match="status"):
        Response(b"", status=bad_status)


def test_response_json() -> None:
    data = {"id": 1, "name": "Ünïcode", "items": [1, None, True]}
    response = Response.json(data)
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json_body() == data
    assert json.loads(response.body.decode("utf-8")) == data
    assert "Ünïcode".encode() in response.body  # UTF-8, not \u escapes

    response = Response.json({"error": "User not found"}, status=404, headers={"X-A": "b"})
    assert response.status == 404
    assert response.headers["x-a"] == "b"
    assert response.json_body() == {"error": "User not found"}

    assert Response.json([1, 2]).json_body() == [1, 2]
    assert Response.json(None).json_body() is None


def test_response_json_keeps_explicit_content_type() -> None:
    response = Response.json({"x": 1}, headers={"Content-Type": "application/problem+json"})
    assert response.headers.getlist("content-type") == ["application/problem+json"]


def test_response_html_and_text() -> None:
    html = Response.html("<h1>Hi</h1>", status=202)
    assert html.status == 202
    assert html.body == b"<h1>Hi</h1>"
    assert html.headers["content-type"] == "text/html; charset=utf-8"

    text = Response.text("plain ✓")
    assert text.status == 200
    assert text.body == "plain ✓".encode()
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text_body() == "plain ✓"


def test_response_json_body_of_non_json_raises() -> None:
    with pytest.raises(ValueError):
        Response.text("not json").json_body()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nSet-Cookie: stolen=1"),
        ("X-Evil", "a\nb"),
        ("X-Evil", "a\rb"),
        ("X-Evil", "a\x00b"),
        ("X-Evil\r\nSet-Cookie", "x"),
        ("X Evil", "x"),
        ("X-Evil:", "x"),
        ("", "x"),
        ("X-Evil", "snowman \u2603"),
    ],
)
def test_response_header_injection_raises(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Response(b"", headers={name: value})
    response = Response(b"")
    with pytest.raises(ValueError):
        response.headers[name] = value
    with pytest.raises(ValueError):
        response.headers.append(name, value)
    assert name.lower() not in response.headers


def test_response_header_manipulation() -> None:
    response = Response(b"", headers=[("Set-Cookie", "a=1"), ("set-cookie", "b=2")])
    assert response.headers.getlist("SET-COOKIE") == ["a=1", "b=2"]
    response.headers["Set-Cookie"] = "c=3"
    assert response.headers.getlist("set-cookie") == ["c=3"]
    response.headers.append("set-cookie", "d=4")
    assert response.headers.getlist("set-cookie") == ["c=3", "d=4"]
    del response.headers["SET-cookie"]
    assert "set-cookie" not in response.headers
    assert response.headers.setdefault("X-A", "1") == "1"
    assert response.headers.setdefault("x-a", "2") == "1"
    with pytest.raises(KeyError):
        response.headers["missing"]


def test_raw_headers_compute_content_length() -> None:
    response = Response(b"12345", headers={"Content-Length": "999", "X-A": "1"})
    raw = dict(response.raw_headers())
    assert raw[b"content-length"] == b"5"
    assert raw[b"x-a"] == b"1"
    assert [n for n, _ in response.raw_headers()].count(b"content-length") == 1

    for no_body_status in (204, 304):
        names = [n for n, _ in Response(b"", status=no_body_status).raw_headers()]
        assert b"content-length" not in names


# ----------------------------------------------------------------- status constants


def test_status_constants_for_every_http_status() -> None:
    # __members__ includes aliases (e.g. HTTPStatus.CONTENT_TOO_LARGE on 3.13+).
    for name, member in HTTPStatus.__members__.items():
        constant = f"HTTP_{member.value}_{name}"
        assert getattr(status, constant) == member.value, constant
        assert getattr(httpy, constant) == member.value, constant
        assert constant in httpy.__all__, constant


def test_status_constants_examples_and_rfc9110_names() -> None:
    from httpy import (
        HTTP_200_OK,
        HTTP_401_UNAUTHORIZED,
        HTTP_404_NOT_FOUND,
        HTTP_413_CONTENT_TOO_LARGE,
        HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        HTTP_414_URI_TOO_LONG,
        HTTP_416_RANGE_NOT_SATISFIABLE,
        HTTP_422_UNPROCESSABLE_CONTENT,
        HTTP_500_INTERNAL_SERVER_ERROR,
    )

    assert HTTP_200_OK == 200
    assert HTTP_401_UNAUTHORIZED == 401
    assert HTTP_404_NOT_FOUND == 404
    assert HTTP_413_CONTENT_TOO_LARGE == 413
    assert HTTP_413_REQUEST_ENTITY_TOO_LARGE == 413
    assert HTTP_414_URI_TOO_LONG == 414
    assert HTTP_416_RANGE_NOT_SATISFIABLE == 416
    assert HTTP_422_UNPROCESSABLE_CONTENT == 422
    assert HTTP_500_INTERNAL_SERVER_ERROR == 500


def test_status_constants_are_plain_ints_matching_their_names() -> None:
    names = [name for name in dir(status) if name.startswith("HTTP_")]
    assert len(names) >= len(HTTPStatus)
    for name in names:
        value = getattr(status, name)
        assert type(value) is int, name
        assert name.split("_")[1] == str(value), name


def test_star_import_exposes_status_constants() -> None:
    namespace: dict[str, object] = {}
    exec("from httpy import *", namespace)
    assert namespace["HTTP_401_UNAUTHORIZED"] == 401
    assert namespace["HTTP_413_CONTENT_TOO_LARGE"] == 413
    assert namespace["Response"] is Response


# ----------------------------------------------------------------- AIOQUIC_AVAILABLE


def test_aioquic_available_is_a_bool() -> None:
    assert isinstance(httpy.AIOQUIC_AVAILABLE, bool)
    assert httpy.AIOQUIC_AVAILABLE is (importlib.util.find_spec("aioquic") is not None)
