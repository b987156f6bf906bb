"""Trailers: the HTTP/1.1 core's chunked trailers, the framework API (``Response``
trailers, ``await request.trailers()``) through the test client on HTTP/1.1 and HTTP/2,
and the ASGI ``http.response.trailers`` extension both ways."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import h11
import pytest

from httpy import App, Request, Response
from httpy.core.errors import LocalProtocolError
from httpy.core.events import (
    BodyReceived,
    SendData,
    SendResponse,
    SendTrailers,
    StreamEnded,
    TrailersReceived,
)
from httpy.core.http1 import HTTP1Connection
from httpy.framework.asgi import ASGIAdapter, Message, Receive, Scope, Send
from httpy.framework.response import StreamingResponse
from httpy.testing import AsyncTestClient, TestClient

pytestmark = pytest.mark.anyio

CHUNKED_POST = (
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other: y\r\n\r\n"
)

# ----------------------------------------------------------------------------- HTTP/1.1 core


def test_http1_request_trailers_become_an_event() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(CHUNKED_POST)
    assert events[1:] == [
        BodyReceived(1, b"abc"),
        TrailersReceived(1, ((b"x-checksum", b"42"), (b"x-other", b"y"))),
        StreamEnded(1),
    ]


def http1_response(request: bytes, trailers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    conn = HTTP1Connection()
    conn.receive_data(request)
    conn.send(SendResponse(1, 200, ((b"content-type", b"text/plain"),)))
    conn.send(SendData(1, b"hello"))
    conn.send(SendTrailers(1, trailers))
    return conn.data_to_send()


def test_http1_response_trailers_need_te_trailers() -> None:
    with_te = http1_response(
        b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n", ((b"x-a", b"1"),)
    )
    assert with_te.endswith(b"5\r\nhello\r\n0\r\nx-a: 1\r\n\r\n")
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "a")]))
    client.receive_data(with_te)
    kinds = []
    while (event := client.next_event()) is not h11.NEED_DATA:
        kinds.append(event)
        if isinstance(event, h11.EndOfMessage):
            assert list(event.headers) == [(b"x-a", b"1")]
            break
    without = http1_response(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", ((b"x-a", b"1"),))
    assert without.endswith(b"5\r\nhello\r\n0\r\n\r\n")
    # TE with parameters and other codings still counts; "trailersx" does not.
    assert b"x-a: 1" in http1_response(
        b"GET / HTTP/1.1\r\nHost: a\r\nTE: gzip;q=0.5, trailers\r\n\r\n", ((b"x-a", b"1"),)
    )
    assert b"x-a: 1" not in http1_response(
        b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailersx\r\n\r\n", ((b"x-a", b"1"),)
    )


def test_http1_trailers_dropped_with_content_length_and_refused_when_invalid() -> None:
    conn = HTTP1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
    conn.send(SendResponse(1, 200, ((b"content-length", b"2"),)))
    conn.send(SendData(1, b"ok"))
    conn.send(SendTrailers(1, ((b"x-a", b"1"),)))
    assert conn.data_to_send().endswith(b"\r\n\r\nok")
    assert not conn.should_close  # the exchange completed normally

    conn = HTTP1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
    conn.send(SendResponse(1, 200))
    with pytest.raises(LocalProtocolError):
        conn.send(SendTrailers(1, ((b"x-a", b"bad\r\nvalue"),)))
    assert conn.should_close


def test_http1_too_many_trailer_fields_is_431() -> None:
    from httpy.core.config import Config

    conn = HTTP1Connection(Config(max_header_count=2))
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(3))
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + fields + b"\r\n"
    )
    assert events[-1].status == 431  # type: ignore[attr-defined]
    assert conn.data_to_send().startswith(b"HTTP/1.1 431 ")


# ----------------------------------------------------------------------------- framework


def make_app() -> App:
    app = App()

    @app.get("/fixed")
    async def fixed(request: Request) -> Response:
        return Response("body", trailers={"x-checksum": "abc"})

    @app.get("/streamed")
    async def streamed(request: Request) -> Response:
        digest = hashlib.sha256()

        async def produce() -> AsyncIterator[bytes]:
            for piece in (b"one ", b"two"):
                digest.update(piece)
                yield piece
            response.trailers["x-sha256"] = digest.hexdigest()  # known only at the end

        response = StreamingResponse(produce(), headers={"trailer": "x-sha256"})
        return response

    @app.get("/empty")
    async def empty(request: Request) -> Response:
        return Response(b"", trailers={"x-checksum": "none"})

    @app.get("/forbidden")
    async def forbidden(request: Request) -> Response:
        return Response("x", trailers={"content-length": "1"})

    @app.post("/upload", stream=True)
    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        trailers = await request.trailers()
        return Response.json({"size": size, "trailers": trailers.multi_items()})

    @app.post("/buffered")
    async def buffered(request: Request) -> Response:
        # The body was read before the handler: the trailers are already known.
        return Response.json(
            {
                "body": (await request.body()).decode(),
                "sig": (await request.trailers()).get("x-sig"),
            }
        )

    return app


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_response_trailers(version: str) -> None:
    client = TestClient(make_app(), http_version=version)
    response = client.get("/fixed", headers={"te": "trailers"})
    assert response.text == "body"
    assert response.headers["trailer"] == "x-checksum"
    assert "content-length" not in response.headers
    assert dict(response.trailers) == {"x-checksum": "abc"}
    expected = hashlib.sha256(b"one two").hexdigest()
    response = client.get("/streamed", headers={"te": "trailers"})
    assert (response.text, response.trailers.get("x-sha256")) == ("one two", expected)


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_response_trailers_after_an_empty_body(version: str) -> None:
    response = TestClient(make_app(), http_version=version).get(
        "/empty", headers={"te": "trailers"}
    )
    assert (response.status_code, response.content) == (200, b"")
    assert dict(response.trailers) == {"x-checksum": "none"}


def test_http1_response_trailers_are_dropped_without_te() -> None:
    client = TestClient(make_app())
    response = client.get("/fixed")
    assert (response.status_code, response.text, dict(response.trailers)) == (200, "body", {})
    assert response.headers["transfer-encoding"] == "chunked"


def test_http2_response_trailers_do_not_need_te() -> None:
    response = TestClient(make_app(), http_version="2").get("/fixed")
    assert dict(response.trailers) == {"x-checksum": "abc"}


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_forbidden_trailer_fields_are_refused(version: str) -> None:
    response = TestClient(make_app(), http_version=version).get("/forbidden")
    # Refused before the head goes out: an application error, so a 500.
    assert response.status_code == 500
    assert response.trailers.get("content-length") is None


def test_forbidden_trailer_names() -> None:
    response = Response("x", trailers={"Content-Type": "text/plain"})
    with pytest.raises(ValueError, match="content-type"):
        response.raw_trailers()


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_request_trailers(version: str) -> None:
    client = TestClient(make_app(), http_version=version)
    response = client.post("/upload", content=b"x" * 1000, trailers={"x-sig": "s1"})
    assert response.json() == {"size": 1000, "trailers": [["x-sig", "s1"]]}
    response = client.post("/buffered", content=b"abc", trailers={"x-sig": "s2"})
    assert response.json() == {"body": "abc", "sig": "s2"}
    response = client.post("/upload", content=b"abc")
    assert response.json() == {"size": 3, "trailers": []}


async def test_request_built_by_hand_takes_trailers() -> None:
    request = Request("POST", "/", body=b"x", trailers={"x-sig": "1"})
    assert (await request.trailers())["x-sig"] == "1"
    assert len(await Request("GET", "/").trailers()) == 0


# ----------------------------------------------------------------------------- ASGI


class RecordingServer:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def scope(extensions: dict[str, Any] | None) -> Scope:
    result: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": "GET",
        "scheme": "https",
        "path": "/fixed",
        "raw_path": b"/fixed",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
    }
    if extensions is not None:
        result["extensions"] = extensions
    return result


async def test_httpy_app_sends_asgi_trailers_when_the_server_offers_them() -> None:
    server = RecordingServer()
    await make_app()(scope({"http.response.trailers": {}}), server.receive, server.send)
    start, *rest = server.sent
    assert start["trailers"] is True
    assert [m["type"] for m in rest][-1] == "http.response.trailers"
    assert rest[-1]["headers"] == [(b"x-checksum", b"abc")]
    assert rest[-2]["type"] == "http.response.body" and rest[-2]["more_body"] is False


async def test_httpy_app_drops_trailers_under_a_server_without_the_extension() -> None:
    server = RecordingServer()
    await make_app()(scope(None), server.receive, server.send)
    assert "trailers" not in server.sent[0]
    assert [m["type"] for m in server.sent][-1] == "http.response.body"
    assert server.sent[-1]["more_body"] is False


def asgi_trailing_app(seen: list[Scope]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")  # does not speak lifespan
        seen.append(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"grpc-status")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"grpc-status", b"0")],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"grpc-message", b"ok")]})

    return app


@pytest.mark.parametrize("version", ["1.1", "2"])
async def test_asgi_app_trailers_on_httpy_server(version: str) -> None:
    seen: list[Scope] = []
    async with AsyncTestClient(ASGIAdapter(asgi_trailing_app(seen)), http_version=version) as c:
        response = await c.get("/", headers={"te": "trailers"})
    assert seen[0]["extensions"] == {"http.response.trailers": {}}
    assert response.content == b"data"
    assert response.trailers.multi_items() == [("grpc-status", "0"), ("grpc-message", "ok")]
