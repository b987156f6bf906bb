"""Request smuggling: the known HTTP/1.1 desync shapes, sent to a live server.

Each shape is followed on the same connection by a second, smuggled request.  A server
that disagrees with a proxy about where the first request ends would answer the second
as its own request; ours must answer exactly one 400 with ``Connection: close`` and then
close, never two responses.  The server keeps serving other clients afterwards.
Runs on asyncio (fast path) and trio (portable driver).
"""

from __future__ import annotations

import pytest

from httpy import App, Request, Response
from tests.support.raw import exchange, status_of
from tests.support.servers import running_server

pytestmark = pytest.mark.anyio

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"


def make_app() -> App:
    app = App()

    @app.post("/")
    async def post(request: Request) -> Response:
        return Response(await request.body())

    @app.get("/")
    async def get(request: Request) -> Response:
        return Response.text("ok")

    @app.get("/smuggled")
    async def smuggled(request: Request) -> Response:
        return Response.text("SMUGGLED")

    return app


def post(headers: bytes, body: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n" + body


CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"

#: name -> request bytes (the smuggled request is appended by the test)
SHAPES: dict[str, bytes] = {
    # Content-Length and Transfer-Encoding together (CL.TE / TE.CL)
    "cl-te": post(b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY),
    "te-cl": post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", CHUNKED_BODY),
    # Content-Length variants
    "cl-duplicate-same": post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "cl-duplicate-different": post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    "cl-list": post(b"Content-Length: 5, 5\r\n", b"hello"),
    "cl-plus-sign": post(b"Content-Length: +5\r\n", b"hello"),
    "cl-negative": post(b"Content-Length: -1\r\n", b"hello"),
    "cl-hex": post(b"Content-Length: 0x5\r\n", b"hello"),
    "cl-inner-space": post(b"Content-Length: 1 0\r\n", b"helloworld"),
    "cl-space-before-colon": post(b"Content-Length : 5\r\n", b"hello"),
    # Transfer-Encoding obfuscations
    "te-not-final": post(b"Transfer-Encoding: chunked, identity\r\n", CHUNKED_BODY),
    "te-identity": post(b"Transfer-Encoding: identity\r\n", CHUNKED_BODY),
    "te-xchunked": post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_BODY),
    "te-repeated": post(
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED_BODY
    ),
    "te-repeated-list": post(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_BODY),
    "te-space-before-colon": post(b"Transfer-Encoding : chunked\r\n", CHUNKED_BODY),
    "te-vertical-tab": post(b"Transfer-Encoding:\x0bchunked\r\n", CHUNKED_BODY),
    "te-obs-fold": post(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_BODY),
    "te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + CHUNKED_BODY,
    # invalid chunks
    "chunk-size-not-hex": post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-negative": post(b"Transfer-Encoding: chunked\r\n", b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-0x": post(b"Transfer-Encoding: chunked\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-overflow": post(
        b"Transfer-Encoding: chunked\r\n", b"1" + b"0" * 30 + b"\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-line-too-long": post(
        b"Transfer-Encoding: chunked\r\n", b"5;" + b"x" * 100_000 + b"\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-extension-bare-lf": post(
        b"Transfer-Encoding: chunked\r\n", b"5;a=b\nhello\r\n0\r\n\r\n"
    ),
    "chunk-data-longer-than-size": post(
        b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n"
    ),
    # line endings and characters
    "bare-lf-head": b"POST / HTTP/1.1\nHost: t\nContent-Length: 5\n\nhello",
    "bare-cr-head": b"POST / HTTP/1.1\rHost: t\r\nContent-Length: 5\r\n\r\nhello",
    "obs-fold-header": post(b"X-A: a\r\n b\r\nContent-Length: 5\r\n", b"hello"),
    "nul-in-value": post(b"X-A: a\x00b\r\nContent-Length: 5\r\n", b"hello"),
    "nul-in-name": post(b"X-\x00A: b\r\nContent-Length: 5\r\n", b"hello"),
    "control-in-value": post(b"X-A: a\x01b\r\nContent-Length: 5\r\n", b"hello"),
    "del-in-value": post(b"X-A: a\x7fb\r\nContent-Length: 5\r\n", b"hello"),
    "space-in-name": post(b"X A: b\r\nContent-Length: 5\r\n", b"hello"),
    # request-target forms
    "authority-form": b"CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n",
    "asterisk-outside-options": b"GET * HTTP/1.1\r\nHost: t\r\n\r\n",
    "absolute-form-userinfo": b"GET http://user@t/ HTTP/1.1\r\nHost: t\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no-host-http11": b"GET / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
async def test_desync_shape_is_rejected_and_connection_closed(shape: str) -> None:
    async with running_server(make_app()) as address:
        data = await exchange(address, SHAPES[shape] + SMUGGLED)
        assert data.startswith(b"HTTP/1.1 "), data[:80]
        assert status_of(data) == 400, data[:200]
        assert data.count(b"HTTP/1.1 ") == 1, "a second response: the request was smuggled"
        assert b"SMUGGLED" not in data
        assert b"connection: close" in data.lower()
        ok = await exchange(address, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert status_of(ok) == 200


async def test_http10_keep_alive_with_transfer_encoding_closes_after_answering() -> None:
    """RFC 9112 6.1: the chunked HTTP/1.0 request is answered, the one behind it is not:
    the connection closes, although the client asked for keep-alive."""
    request = (
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        + CHUNKED_BODY
    )
    async with running_server(make_app()) as address:
        data = await exchange(address, request + SMUGGLED)
        assert status_of(data) == 200
        assert data.count(b"HTTP/1.1 ") == 1, "a second response: the request was smuggled"
        assert b"SMUGGLED" not in data
        assert b"connection: close" in data.lower()


async def test_absolute_form_target_uses_its_authority() -> None:
    """RFC 9112 3.2.2: absolute-form must be accepted; its authority replaces Host."""
    app = App()

    @app.get("/where")
    async def where(request: Request) -> Response:
        return Response.text(f"{request.path} {request.headers.get('host')}")

    async with running_server(app) as address:
        data = await exchange(
            address,
            b"GET http://example.com:8080/where?x=1 HTTP/1.1\r\nHost: other\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert status_of(data) == 200
    assert data.endswith(b"/where example.com:8080")


async def test_valid_chunked_and_length_requests_still_pipeline() -> None:
    """The rules above don't reject the legitimate forms of the same requests."""
    async with running_server(make_app()) as address:
        data = await exchange(
            address,
            post(b"Transfer-Encoding: Chunked\r\n", CHUNKED_BODY)
            + post(b"Content-Length:\t5 \r\n", b"world")
            + b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"
            + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    assert data.count(b"HTTP/1.1 200 ") == 3
    assert data.count(b"HTTP/1.1 ") == 4
    assert b"hello" in data and b"world" in data
