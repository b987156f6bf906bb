"""Responses beyond the plain one: cookies, redirects, streaming, server-sent events and
files (validators, 304, ranges, 416), through real servers over real sockets, on
asyncio and trio, with httpx, aiohttp and curl."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import pytest

from httpy import (
    App,
    EventSourceResponse,
    FileResponse,
    HTTPException,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)
from httpy.framework import files as files_module
from httpy.framework.files import content_disposition, etag_matches
from httpy.framework.response import format_cookie, format_sse
from tests.support.raw import exchange, status_of
from tests.support.servers import ThreadEvent, free_port, running_server, server_thread

ROOT = Path(__file__).resolve().parents[2]
CONTENT = bytes(range(256)) * 800 + b"tail"  # 204,804 bytes: several 64 KiB chunks
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


# ------------------------------------------------------------------- helpers


def parse_byteranges(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """Strictly parse a multipart/byteranges body: ``[(content_type, range, data)]``."""
    match = re.fullmatch(
        r"multipart/byteranges; boundary=([0-9A-Za-z'()+_,\-./:=?]+)", content_type
    )
    assert match, content_type
    delimiter = b"--" + match.group(1).encode()
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(b"\r\n" + delimiter + b"--\r\n")
    inner = body[len(delimiter) + 2 : -(len(delimiter) + 6)]
    parts = []
    for part in inner.split(b"\r\n" + delimiter + b"\r\n"):
        head, _, data = part.partition(b"\r\n\r\n")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        parts.append((fields[b"Content-Type"].decode(), fields[b"Content-Range"].decode(), data))
    return parts


def parse_sse(lines: list[str]) -> list[dict[str, Any]]:
    """The client side of text/event-stream (WHATWG HTML 9.2.6), enough for the tests."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    event_type, last_id, retry = "", "", None
    for line in lines:
        if line == "":
            if data:
                events.append(
                    {"event": event_type or "message", "data": "\n".join(data), "id": last_id}
                )
            data, event_type = [], ""
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
        elif field == "id" and "\x00" not in value:
            last_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
    if retry is not None:
        events.append({"retry": retry})
    return events


class Gate:
    """A generator step the test releases (to prove chunks leave one at a time)."""

    def __init__(self) -> None:
        self.event = ThreadEvent()  # set by the test, awaited in the server's thread
        self.log: list[str] = []


def make_app(tmp: Path, gate: Gate | None = None) -> App:
    app = App()
    data = tmp / "data.bin"
    if not data.exists():
        data.write_bytes(CONTENT)
        (tmp / "notes.txt").write_text("héllo\n", encoding="utf-8")
        (tmp / "empty.txt").write_bytes(b"")
        (tmp / "picture.png").write_bytes(b"\x89PNG fake")
        (tmp / "blob.unknownext").write_bytes(b"?")
    gate = gate or Gate()

    @app.get("/file/{name}")
    async def file(request: Request) -> Response:
        filename = request.query.get("download")
        return Response.file(tmp / request.path_params["name"], filename=filename)

    @app.get("/vanishing")
    async def vanishing(request: Request) -> Response:
        path = tmp / "vanishing.txt"
        path.write_text("soon gone")
        response = FileResponse(path)
        path.unlink()
        return response

    @app.get("/text")
    async def text(request: Request) -> Response:
        return Response.text("plain ü")

    @app.get("/redirect")
    async def redirect(request: Request) -> Response:
        status = int(request.query.get("status", "307"))
        return Response.redirect(request.query.get("to", "/text"), status=status)

    @app.post("/redirect")
    async def redirect_post(request: Request) -> Response:
        return RedirectResponse("/echo", status=int(request.query.get("status", "307")))

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/cookies")
    async def cookies(request: Request) -> Response:
        response = Response.text("cookies")
        response.set_cookie("session", "abc123", max_age=3600, httponly=True, secure=True)
        response.set_cookie("theme", "dark", path="/app", domain="example.org", samesite="strict")
        response.set_cookie("plain", "v", samesite=None)
        response.delete_cookie("old")
        return response

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        async def produce() -> AsyncIterator[bytes | str]:
            try:
                gate.log.append("first")
                yield b"first"
                await gate.event.wait()
                gate.log.append("second")
                yield "second"
            finally:
                gate.log.append("closed")

        return StreamingResponse(produce(), media_type="text/plain")

    @app.get("/stream-list")
    async def stream_list(request: Request) -> Response:
        return StreamingResponse([b"a", "b", b"", "c"], headers={"x-kind": "list"})

    @app.get("/events")
    async def events(request: Request) -> Response:
        async def produce() -> AsyncIterator[str | dict[str, Any]]:
            yield "hello"
            await gate.event.wait()
            yield {"event": "update", "id": "7", "data": "line one\nline two\r\nline three"}
            yield {"comment": "keep-alive"}
            yield {"data": {"json": [1, 2]}}
            yield {"retry": 1500}

        return EventSourceResponse(produce())

    return app


@pytest.fixture
def file_dir(tmp_path: Path) -> Path:
    make_app(tmp_path)  # writes the files
    return tmp_path


# ------------------------------------------------------------- unit: cookies, SSE


def test_format_cookie_attributes() -> None:
    value = format_cookie(
        "id",
        "a3fWa",
        max_age=timedelta(hours=1),
        expires=datetime(2030, 1, 2, 3, 4, 5),
        path="/docs",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="none",
    )
    assert value == (
        "id=a3fWa; Max-Age=3600; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/docs; "
        "Domain=example.com; Secure; HttpOnly; SameSite=None"
    )
    assert format_cookie("q", '"quoted"', samesite=None) == 'q="quoted"; Path=/'
    assert format_cookie("n", "", path=None, samesite="Strict") == "n=; SameSite=Strict"
    expires_in = format_cookie("e", "1", expires=60)
    stamp = re.search(r"Expires=([^;]+)", expires_in)
    assert stamp is not None
    parsed = datetime.strptime(stamp.group(1), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs((parsed - datetime.now(UTC)).total_seconds() - 60) < 5


@pytest.mark.parametrize(
    ("key", "value", "options"),
    [
        ("bad name", "v", {}),
        ("semi;colon", "v", {}),
        ("", "v", {}),
        ("k\r\n", "v", {}),
        ("k", "a;b", {}),
        ("k", "a\r\nSet-Cookie: evil=1", {}),
        ("k", "a\nb", {}),
        ("k", "with space", {}),
        ("k", "comma,", {}),
        ("k", 'bare"quote', {}),
        ("k", "back\\slash", {}),
        ("k", "é", {}),
        ("k", "v", {"path": "/a;b"}),
        ("k", "v", {"path": "/a\r\n"}),
        ("k", "v", {"domain": "x.org; Secure"}),
        ("k", "v", {"samesite": "sometimes"}),
        ("k", "v", {"samesite": "none"}),  # needs secure
        ("k", "v", {"expires": "Thu\r\n"}),
        ("__Secure-k", "v", {}),
        ("__Host-k", "v", {"secure": True, "path": "/app"}),
        ("__Host-k", "v", {"secure": True, "domain": "x.org"}),
    ],
)
def test_set_cookie_refuses_injection_and_invalid_input(
    key: str, value: str, options: dict[str, Any]
) -> None:
    response = Response()
    with pytest.raises(ValueError):
        response.set_cookie(key, value, **options)
    assert "set-cookie" not in response.headers


def test_set_and_delete_cookie_append_headers() -> None:
    response = Response()
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    response.delete_cookie("c", path="/x", domain="example.org")
    assert response.headers.getlist("set-cookie") == [
        "a=1; Path=/; SameSite=Lax",
        "b=2; Path=/; HttpOnly; SameSite=Lax",
        "c=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/x; Domain=example.org; "
        "SameSite=Lax",
    ]


def test_format_sse() -> None:
    assert format_sse("x") == "data: x\n\n"
    assert format_sse("") == "data: \n\n"
    assert format_sse("a\nb\r\nc\rd") == "data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert format_sse({"event": "e", "id": 1, "retry": 5, "data": "d"}) == (
        "event: e\nid: 1\nretry: 5\ndata: d\n\n"
    )
    assert format_sse({"comment": "ping"}) == ": ping\n\n"
    assert format_sse({"data": [1, "ü"]}) == 'data: [1,"ü"]\n\n'
    for bad in (
        {"event": "a\nb"},
        {"id": "1\r"},
        {"id": "1\x00"},
        {"retry": "soon"},
        {"retry": -1},
        {"unknown": 1},
    ):
        with pytest.raises(ValueError):
            format_sse(bad)


def test_content_disposition() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition("a.txt", "inline") == 'inline; filename="a.txt"'
    assert content_disposition("résumé.pdf") == (
        "attachment; filename=\"resume.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    )
    assert content_disposition("日本.txt") == (
        "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"
    )
    assert content_disposition('quo"te\\.txt') == (
        "attachment; filename=\"quo_te_.txt\"; filename*=UTF-8''quo%22te%5C.txt"
    )
    assert "\r" not in content_disposition("evil\r\nX-Injected: 1.txt")


def test_etag_matching() -> None:
    tag = 'W/"abc"'
    assert etag_matches('W/"abc"', tag, weak=True)
    assert etag_matches('"abc"', tag, weak=True)
    assert etag_matches('"x", W/"abc"', tag, weak=True)
    assert etag_matches('"x",W/"abc" , "y"', tag, weak=True)
    assert etag_matches("*", tag, weak=True)
    assert etag_matches(" * ", tag, weak=False)
    assert not etag_matches('"abcd"', tag, weak=True)
    assert not etag_matches('"a,bc"', tag, weak=True)
    assert not etag_matches('"abc', tag, weak=True)  # unterminated
    assert not etag_matches('W/"abc"', tag, weak=False)  # If-Match: weak never matches
    assert etag_matches('"s"', '"s"', weak=False)


def test_redirect_and_file_constructors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RedirectResponse("/x", status=200)
    redirect = Response.redirect("/a b?q=ü#frag", status=303)
    assert isinstance(redirect, RedirectResponse)
    assert redirect.headers["location"] == "/a%20b?q=%C3%BC#frag"
    assert Response.redirect("/x\r\nSet-Cookie: a=b").headers["location"] == (
        "/x%0D%0ASet-Cookie:%20a=b"
    )
    with pytest.raises(HTTPException) as missing:
        Response.file(tmp_path / "missing")
    assert missing.value.status == 404
    with pytest.raises(HTTPException):
        FileResponse(tmp_path)  # a directory
    with pytest.raises(HTTPException):
        FileResponse(str(tmp_path) + "/x\x00y")


# ------------------------------------------------------- text, redirects, cookies


@pytest.mark.anyio
async def test_text_and_redirects(tmp_path: Path) -> None:
    async with running_server(make_app(tmp_path)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get("/text")
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.text == "plain ü"

            response = await client.get("/redirect")
            assert response.status_code == 307
            assert response.headers["location"] == "/text"
            assert response.content == b""
            for status in (301, 302, 303, 308):
                response = await client.get("/redirect", params={"status": status})
                assert response.status_code == status
            response = await client.get("/redirect", params={"to": "/ü x"})
            assert response.headers["location"] == "/%C3%BC%20x"

            followed = await client.get("/redirect", follow_redirects=True)
            assert followed.status_code == 200
            assert followed.text == "plain ü"
            # 307 keeps the method and the body; 303 turns them into a GET.
            kept = await client.post("/redirect", content=b"body", follow_redirects=True)
            assert (kept.status_code, kept.content) == (200, b"body")
            changed = await client.post(
                "/redirect", params={"status": 303}, content=b"body", follow_redirects=True
            )
            assert changed.status_code == 405  # GET /echo does not exist


@pytest.mark.anyio
async def test_set_cookie_headers_reach_the_client(tmp_path: Path) -> None:
    async with running_server(make_app(tmp_path)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get("/cookies")
            assert response.headers.get_list("set-cookie") == [
                "session=abc123; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax",
                "theme=dark; Path=/app; Domain=example.org; SameSite=Strict",
                "plain=v; Path=/",
                "old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax",
            ]
            # The client's cookie jar accepts what applies to it (not Secure, not the
            # other domain, not the expired one).
            assert client.cookies.get("plain") == "v"
            assert client.cookies.get("old") is None


# ------------------------------------------------------------------- streaming


@pytest.mark.anyio
async def test_streaming_response_is_received_incrementally(tmp_path: Path) -> None:
    gate = Gate()
    async with running_server(make_app(tmp_path, gate)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            async with client.stream("GET", "/stream") as response:
                assert response.status_code == 200
                assert response.headers["transfer-encoding"] == "chunked"
                assert "content-length" not in response.headers
                assert response.headers["content-type"] == "text/plain; charset=utf-8"
                chunks = response.aiter_bytes()
                received = b""
                with anyio.fail_after(5):  # a buffering server would hang here
                    while len(received) < 5:
                        received += await chunks.__anext__()
                assert received == b"first"
                assert gate.log == ["first"]  # the generator is parked on the gate
                gate.event.set()
                received += b"".join([chunk async for chunk in chunks])
            assert received == b"firstsecond"
    assert gate.log == ["first", "second", "closed"]


@pytest.mark.anyio
async def test_streaming_response_generator_closed_when_client_leaves(tmp_path: Path) -> None:
    gate = Gate()
    async with running_server(make_app(tmp_path, gate)) as (host, port):
        async with await anyio.connect_tcp(host, port) as sock:
            await sock.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            with anyio.fail_after(5):
                while b"first" not in received:
                    received += await sock.receive()
        # The connection is closed while the generator waits on the gate.
        with anyio.fail_after(5):
            while "closed" not in gate.log:
                await anyio.sleep(0.01)
    assert gate.log == ["first", "closed"]


@pytest.mark.anyio
async def test_streaming_response_framing_on_the_wire(tmp_path: Path) -> None:
    gate = Gate()
    async with running_server(make_app(tmp_path, gate)) as (host, port):
        raw = await exchange(
            (host, port), b"GET /stream-list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"x-kind: list" in head
        assert body == b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n"
        # HTTP/1.0: no chunked coding, the body ends when the connection closes.
        raw = await exchange((host, port), b"GET /stream-list HTTP/1.0\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower()
        assert body == b"abc"
        # HEAD: headers only, and the generator never runs.
        raw = await exchange(
            (host, port), b"HEAD /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5
        )
        assert status_of(raw) == 200
        assert raw.endswith(b"\r\n\r\n")
        assert gate.log == []


# ---------------------------------------------------------- server-sent events


@pytest.mark.anyio
async def test_event_source_response_parsed_by_client(tmp_path: Path) -> None:
    gate = Gate()
    async with running_server(make_app(tmp_path, gate)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            async with client.stream("GET", "/events") as response:
                assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
                assert response.headers["cache-control"] == "no-cache"
                lines = response.aiter_lines()
                first: list[str] = []
                with anyio.fail_after(5):  # the first event arrives before the second exists
                    while not first or first[-1] != "":
                        first.append(await lines.__anext__())
                assert parse_sse(first) == [{"event": "message", "data": "hello", "id": ""}]
                gate.event.set()
                rest = [line async for line in lines]
    assert parse_sse(first + rest) == [
        {"event": "message", "data": "hello", "id": ""},
        {"event": "update", "data": "line one\nline two\nline three", "id": "7"},
        {"event": "message", "data": '{"json":[1,2]}', "id": "7"},
        {"retry": 1500},
    ]


# ------------------------------------------------------------------------ files


@pytest.mark.anyio
async def test_file_response_headers_and_body(file_dir: Path) -> None:
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get("/file/data.bin")
            assert response.status_code == 200
            assert response.content == CONTENT
            stat = (file_dir / "data.bin").stat()
            assert response.headers["content-length"] == str(len(CONTENT))
            assert response.headers["content-type"] == "application/octet-stream"
            assert response.headers["accept-ranges"] == "bytes"
            assert response.headers["etag"] == f'W/"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            assert response.headers["last-modified"] == formatdate(stat.st_mtime, usegmt=True)
            assert "content-disposition" not in response.headers

            response = await client.get("/file/notes.txt")
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.text == "héllo\n"
            response = await client.get("/file/picture.png")
            assert response.headers["content-type"] == "image/png"
            response = await client.get("/file/blob.unknownext")
            assert response.headers["content-type"] == "application/octet-stream"
            response = await client.get("/file/empty.txt", headers={"range": "bytes=0-"})
            assert (response.status_code, response.content) == (200, b"")
            assert response.headers["content-length"] == "0"

            response = await client.get("/file/notes.txt", params={"download": "rapport été.txt"})
            assert response.headers["content-disposition"] == (
                'attachment; filename="rapport ete.txt"; '
                "filename*=UTF-8''rapport%20%C3%A9t%C3%A9.txt"
            )
            response = await client.get("/file/notes.txt", params={"download": "plain.txt"})
            assert response.headers["content-disposition"] == 'attachment; filename="plain.txt"'

            for missing in ("/file/nope.txt", "/vanishing"):
                response = await client.get(missing)
                assert response.status_code == 404
                assert response.text == "Not Found\n"


@pytest.mark.anyio
async def test_file_conditional_requests(file_dir: Path) -> None:
    stat = (file_dir / "data.bin").stat()
    last_modified = formatdate(stat.st_mtime, usegmt=True)
    earlier = formatdate(stat.st_mtime - 60, usegmt=True)
    later = formatdate(stat.st_mtime + 60, usegmt=True)
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            etag = (await client.get("/file/data.bin")).headers["etag"]
            strong_form = etag.removeprefix("W/")

            async def status(headers: dict[str, str], method: str = "GET") -> httpx.Response:
                return await client.request(method, "/file/data.bin", headers=headers)

            for value in (etag, strong_form, f'"nope", {etag}', f'"a","b",{strong_form}', "*"):
                response = await status({"if-none-match": value})
                assert response.status_code == 304, value
                assert response.content == b""
                assert response.headers["etag"] == etag
                assert response.headers["last-modified"] == last_modified
                assert "content-length" not in response.headers
                assert "content-type" not in response.headers
            assert (await status({"if-none-match": etag}, "HEAD")).status_code == 304
            assert (await status({"if-none-match": '"other"'})).status_code == 200
            # If-None-Match is a list field: repeated fields count as one list
            repeated = [("if-none-match", '"a"'), ("if-none-match", etag)]
            response = await client.get("/file/data.bin", headers=repeated)
            assert response.status_code == 304
            assert (await status({"if-modified-since": last_modified})).status_code == 304
            assert (await status({"if-modified-since": later})).status_code == 304
            assert (await status({"if-modified-since": earlier})).status_code == 200
            assert (await status({"if-modified-since": "not a date"})).status_code == 200
            # asctime format is an HTTP-date too (RFC 9110 5.6.7)
            asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(stat.st_mtime))
            assert (await status({"if-modified-since": asctime})).status_code == 304
            # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3)
            both = {"if-none-match": '"other"', "if-modified-since": later}
            assert (await status(both)).status_code == 200
            # If-Match / If-Unmodified-Since: 412 when they fail
            assert (await status({"if-match": "*"})).status_code == 200
            assert (await status({"if-match": etag})).status_code == 412  # weak: never
            response = await status({"if-unmodified-since": earlier})
            assert response.status_code == 412
            assert response.content == b""
            assert (await status({"if-unmodified-since": later})).status_code == 200
            # Conditionals on a Range request: 304 wins over 206
            conditional_range = {"if-none-match": etag, "range": "bytes=0-9"}
            assert (await status(conditional_range)).status_code == 304


@pytest.mark.anyio
async def test_file_ranges(file_dir: Path) -> None:
    size = len(CONTENT)
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:

            async def get(range_header: str, **headers: str) -> httpx.Response:
                return await client.get(
                    "/file/data.bin", headers={"range": range_header, **headers}
                )

            for header, first, last in [
                ("bytes=0-9", 0, 9),
                ("bytes=100-", 100, size - 1),
                ("bytes=-500", size - 500, size - 1),
                ("bytes=70000-140000", 70000, 140000),  # crosses 64 KiB chunks
                ("bytes=10-10", 10, 10),
                ("bytes=5-999999999", 5, size - 1),
                ("bytes=-999999999", 0, size - 1),
                ("BYTES=0-1", 0, 1),
                ("bytes=0-4,5-9", 0, 9),  # adjacent: coalesced into one part
                ("bytes=0-50,10-20", 0, 50),  # overlapping: coalesced
            ]:
                response = await get(header)
                assert response.status_code == 206, header
                assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
                assert response.headers["content-length"] == str(last - first + 1)
                assert response.headers["content-type"] == "application/octet-stream"
                assert response.content == CONTENT[first : last + 1]

            response = await get("bytes=0-9, 200-209,-5")
            assert response.status_code == 206
            assert "content-range" not in response.headers
            parts = parse_byteranges(response.headers["content-type"], response.content)
            assert int(response.headers["content-length"]) == len(response.content)
            assert parts == [
                ("application/octet-stream", f"bytes 0-9/{size}", CONTENT[0:10]),
                ("application/octet-stream", f"bytes 200-209/{size}", CONTENT[200:210]),
                ("application/octet-stream", f"bytes {size - 5}-{size - 1}/{size}", CONTENT[-5:]),
            ]
            # Several ranges in non-ascending order keep their order when disjoint.
            response = await get("bytes=150000-150099,0-65599")
            parts = parse_byteranges(response.headers["content-type"], response.content)
            assert [p[2] for p in parts] == [CONTENT[150000:150100], CONTENT[0:65600]]
            # Unsatisfiable specs are dropped when another one is satisfiable.
            response = await get(f"bytes={size}-,0-0")
            assert (response.status_code, response.content) == (206, CONTENT[:1])

            for unsatisfiable in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
                response = await get(unsatisfiable)
                assert response.status_code == 416, unsatisfiable
                assert response.headers["content-range"] == f"bytes */{size}"
                assert response.content == b""

            for invalid in (
                "bytes=5-1",
                "bytes=abc",
                "bytes=1-2-3",
                "bytes=",
                "bytes 0-1",
                "items=0-1",
                "bytes=0x10-20",
                "bytes=-",
                "bytes=1,2",
                "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(101)),  # > 100 ranges
            ):
                response = await get(invalid)
                assert response.status_code == 200, invalid
                assert response.content == CONTENT

            # Two Range fields: ignored
            response = await client.get(
                "/file/data.bin", headers=[("range", "bytes=0-1"), ("range", "bytes=2-3")]
            )
            assert response.status_code == 200

            # HEAD ignores Range (it is defined for GET only)
            response = await client.head("/file/data.bin", headers={"range": "bytes=0-9"})
            assert response.status_code == 200
            assert response.headers["content-length"] == str(size)


@pytest.mark.anyio
async def test_file_if_range(file_dir: Path) -> None:
    stat = (file_dir / "data.bin").stat()
    last_modified = formatdate(stat.st_mtime, usegmt=True)
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            etag = (await client.get("/file/data.bin")).headers["etag"]

            async def get(if_range: str) -> httpx.Response:
                return await client.get(
                    "/file/data.bin", headers={"range": "bytes=0-9", "if-range": if_range}
                )

            response = await get(last_modified)
            assert (response.status_code, response.content) == (206, CONTENT[:10])
            # Changed since that date, or an entity tag (ours are weak, and If-Range needs
            # a strong comparison): the whole file.
            for stale in (formatdate(stat.st_mtime - 3600, usegmt=True), etag, '"x"', "junk"):
                response = await get(stale)
                assert response.status_code == 200, stale
                assert response.content == CONTENT


@pytest.mark.anyio
async def test_file_head_never_opens_the_file(
    file_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    real_open_file = files_module.anyio.open_file

    async def tracking_open_file(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return await real_open_file(*args, **kwargs)

    monkeypatch.setattr(files_module.anyio, "open_file", tracking_open_file)
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.head("/file/data.bin")
            assert response.status_code == 200
            assert response.headers["content-length"] == str(len(CONTENT))
            assert response.headers["etag"].startswith('W/"')
            assert response.content == b""
            assert opened == []
            assert (await client.get("/file/data.bin")).content == CONTENT
            assert len(opened) == 1


@pytest.mark.anyio
async def test_file_is_read_in_64k_chunks(file_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    real_open_file = files_module.anyio.open_file

    class Tracking:
        def __init__(self, file: Any) -> None:
            self.file = file

        async def aclose(self) -> None:
            await self.file.aclose()

        async def seek(self, offset: int) -> int:
            return int(await self.file.seek(offset))

        async def read(self, size: int) -> bytes:
            reads.append(size)
            return bytes(await self.file.read(size))

    async def tracking_open_file(*args: Any, **kwargs: Any) -> Tracking:
        return Tracking(await real_open_file(*args, **kwargs))

    monkeypatch.setattr(files_module.anyio, "open_file", tracking_open_file)
    async with running_server(make_app(file_dir)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/file/data.bin")).content == CONTENT
    assert reads == [65536, 65536, 65536, len(CONTENT) - 3 * 65536]


@pytest.mark.anyio
async def test_client_leaving_mid_file_is_not_an_error(
    file_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (file_dir / "large.bin").write_bytes(b"x" * (8 << 20))
    async with running_server(make_app(file_dir)) as (host, port):
        async with await anyio.connect_tcp(host, port) as sock:
            await sock.send(b"GET /file/large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            with anyio.fail_after(5):
                assert b"200 OK" in await sock.receive()
        # The server notices, stops reading the file, and keeps serving.
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/file/data.bin")).content == CONTENT
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text


@pytest.mark.anyio
async def test_file_shrinking_while_sent_closes_the_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = App()

    @app.get("/shrinking")
    async def shrinking(request: Request) -> Response:
        path = tmp_path / "shrinking.bin"
        path.write_bytes(b"s" * 300_000)
        response = FileResponse(path)  # announces 300,000 bytes
        path.write_bytes(b"s" * 1000)
        return response

    async with running_server(app) as address:
        raw = await exchange(address, b"GET /shrinking HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"content-length: 300000" in head
        assert body == b"s" * 1000  # then the server closed the connection
    assert "ended 299000 bytes early" in caplog.text


# ------------------------------------------------- aiohttp and curl, server thread


@pytest.fixture(params=["asyncio", "trio"])
def file_server(request: pytest.FixtureRequest, file_dir: Path) -> Iterator[str]:
    with server_thread(make_app(file_dir), str(request.param)) as (host, port):
        yield f"http://{host}:{port}"


def test_aiohttp_files_ranges_cookies_and_events(file_server: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession(file_server) as session:
            async with session.get("/file/data.bin") as response:
                assert response.status == 200
                assert await response.read() == CONTENT
                etag = response.headers["ETag"]
            async with session.get("/file/data.bin", headers={"If-None-Match": etag}) as response:
                assert response.status == 304
                assert await response.read() == b""
            async with session.get(
                "/file/data.bin", headers={"Range": "bytes=1000-1999,-100"}
            ) as response:
                assert response.status == 206
                assert response.content_type == "multipart/byteranges"
                reader = aiohttp.MultipartReader.from_response(response)
                parts = []
                while (part := await reader.next()) is not None:
                    assert isinstance(part, aiohttp.BodyPartReader)
                    parts.append((part.headers["Content-Range"], await part.read()))
                size = len(CONTENT)
                assert parts == [
                    (f"bytes 1000-1999/{size}", CONTENT[1000:2000]),
                    (f"bytes {size - 100}-{size - 1}/{size}", CONTENT[-100:]),
                ]
            async with session.get("/file/data.bin", headers={"Range": "bytes=-10"}) as response:
                assert response.status == 206
                assert await response.read() == CONTENT[-10:]
            async with session.get(
                "/file/data.bin", headers={"Range": "bytes=999999-"}
            ) as response:
                assert response.status == 416
                assert response.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
            async with session.get("/cookies") as response:
                assert len(response.headers.getall("Set-Cookie")) == 4
                assert response.cookies["plain"].value == "v"
                assert response.cookies["session"]["httponly"] is True
            async with session.get("/redirect", allow_redirects=False) as response:
                assert response.status == 307
                assert response.headers["Location"] == "/text"
            async with session.get("/stream-list") as response:
                assert await response.read() == b"abc"

    asyncio.run(main())


@needs_curl
def test_curl_files(file_server: str, tmp_path: Path) -> None:
    def curl(*args: str) -> bytes:
        return subprocess.run(
            ["curl", "-s", "--max-time", "10", *args], capture_output=True, check=True
        ).stdout

    url = f"{file_server}/file/data.bin"
    assert curl(url) == CONTENT
    assert curl("-r", "0-9", url) == CONTENT[:10]
    head = curl("-sI", url)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-length: {len(CONTENT)}\r\n".encode() in head
    # curl -z: If-Modified-Since from a file's mtime; an old copy is refreshed, a
    # current one gets 304.
    stale = tmp_path / "stale"
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))
    assert curl("-z", str(stale), "-o", "/dev/null", "-w", "%{http_code}", url) == b"200"
    tomorrow = formatdate(time.time() + 86400, usegmt=True)
    assert curl("-z", tomorrow, "-o", "/dev/null", "-w", "%{http_code}", url) == b"304"
    # resume a partial download with -C -
    partial = tmp_path / "partial"
    partial.write_bytes(CONTENT[:1000])
    curl("-C", "-", "-o", str(partial), url)
    assert partial.read_bytes() == CONTENT
    # -J -O: the server's file name (Content-Disposition)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["curl", "-s", "-J", "-O", f"{file_server}/file/notes.txt?download=saved.txt"],
        cwd=out,
        check=True,
        capture_output=True,
    )
    assert (out / "saved.txt").read_text(encoding="utf-8") == "héllo\n"
    # streaming responses are chunked, and curl reassembles them
    assert curl(f"{file_server}/stream-list") == b"abc"
    assert curl("-sI", f"{file_server}/redirect").startswith(b"HTTP/1.1 307")
    assert curl("-L", f"{file_server}/redirect") == "plain ü".encode()


# -------------------------------------------------------------- 1 GiB download

BIG_APP = "tests.framework.bigfile_app:app"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_one_gib_download_streams_in_constant_memory(tmp_path: Path, backend: str) -> None:
    size = 1 << 30
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(size)  # sparse: no disk space, reads as zeros
    expected = hashlib.sha256()
    with open(big, "rb") as f:
        while chunk := f.read(1 << 20):
            expected.update(chunk)

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "httpy", BIG_APP, "--port", str(port),
            "--backend", backend, "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HTTPY_BIGFILE": str(big)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/big"
        deadline = time.monotonic() + 20
        while True:
            try:
                # Warm up (worker threads, buffers) with a first 4 MiB range.
                warm = httpx.get(url, headers={"range": "bytes=0-4194303"}, timeout=5)
                assert warm.status_code == 206
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else b""
                    raise AssertionError(f"server did not start: {output.decode()}") from None
                time.sleep(0.1)
        baseline = _rss_kib(process.pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_kib(process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        digest = hashlib.sha256()
        received = 0
        started = time.monotonic()
        try:
            with httpx.stream("GET", url, timeout=30) as response:
                assert response.status_code == 200
                assert response.headers["content-length"] == str(size)
                for chunk in response.iter_raw(1 << 20):
                    digest.update(chunk)
                    received += len(chunk)
        finally:
            elapsed = time.monotonic() - started
            done.set()
            sampler.join()
        growth_mib = (peak - baseline) / 1024
        print(
            f"\n1 GiB download on {backend}: {elapsed:.1f} s "
            f"({size / elapsed / 1e6:.0f} MB/s), server RSS {baseline / 1024:.1f} MiB "
            f"-> peak {peak / 1024:.1f} MiB (growth {growth_mib:.1f} MiB)"
        )
        assert received == size
        assert digest.hexdigest() == expected.hexdigest()
        assert growth_mib < 100
        assert elapsed < 60
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
