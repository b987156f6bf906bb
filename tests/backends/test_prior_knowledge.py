"""Telling HTTP/1.1 from HTTP/2 with prior knowledge on a cleartext connection (RFC 9113
3.3): :class:`PrefaceSniffer`, and both HTTP/1.1 drivers using it (the asyncio fast path
and the portable driver, on asyncio and trio).

An invalid HTTP/2 preface (a first line that is no HTTP/1.x request line) is HTTP/2's to
answer: GOAWAY PROTOCOL_ERROR (h2spec 3.5/2).  HTTP/1.x requests, however they arrive
(split, after empty lines, never finished, malformed), are answered as before.
"""

from __future__ import annotations

import anyio
import pytest

from httpy import App, Request, Response
from httpy.backends.connection import HTTP2_PREFACE, PrefaceSniffer
from tests.support.raw import exchange, read_response, read_until_closed, status_of
from tests.support.servers import running_server

GOAWAY_PROTOCOL_ERROR = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(7) + b"\x01"


def verdicts(*pieces: bytes, max_line: int = 8192) -> list[bool | None]:
    sniffer = PrefaceSniffer(max_line)
    return [sniffer.feed(piece) for piece in pieces]


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        ((HTTP2_PREFACE,), [True]),
        ((HTTP2_PREFACE[:10], HTTP2_PREFACE[10:] + b"\0\0\0\x04"), [None, True]),
        ((b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",), [False]),
        ((b"GET / HT", b"TP/1.1\r\n"), [None, False]),
        ((b"\r\n\r\nGET / HTTP/1.1\r\n",), [False]),  # empty lines first (RFC 9112 2.2)
        ((b"GET /a b HTTP/1.1\r\n",), [False]),  # malformed, but HTTP/1.1's: 400
        ((b"GET / HTTP/2.0\r\n",), [False]),  # another version: HTTP/1.1's 505
        ((b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",), [True]),  # a preface broken late
        ((b"INVALID CONNECTION PREFACE\r\n\r\n",), [True]),  # h2spec 3.5/2
        ((b"GET /\r\n",), [True]),  # no HTTP/1.x version at all
        ((b"GET /" + b"a" * 20,), [None]),
        ((b"GET / HTTP/1.1\r",), [False]),  # the line is complete at its CR
        ((b"POST / HTTP/1.1\rHost: t\r\n",), [False]),  # a bare CR: HTTP/1.1's 400
        ((b"\r\n\r", b"\nGET / HTTP/1.1\r\n"), [None, False]),  # a CRLF split
        ((b"\nGET / HTTP/1.1\r\n",), [False]),  # a bare LF first: HTTP/1.1's to judge
    ],
)
def test_sniffer_verdicts(pieces: tuple[bytes, ...], expected: list[bool | None]) -> None:
    assert verdicts(*pieces) == expected


def test_sniffer_gives_up_on_a_line_longer_than_the_limit() -> None:
    """A request line over max_request_line_bytes is HTTP/1.1's to refuse (414)."""
    assert verdicts(b"GET /" + b"a" * 95, b"a", max_line=100) == [None, False]


def test_sniffer_hands_http1_what_it_held_but_not_a_partial_preface() -> None:
    sniffer = PrefaceSniffer(8192)
    assert sniffer.feed(b"GET / HT") is None
    assert sniffer.for_http1() == b"GET / HT"
    sniffer = PrefaceSniffer(8192)
    assert sniffer.feed(HTTP2_PREFACE[:10]) is None
    assert sniffer.for_http1() == b""


# ------------------------------------------------------------------- live, both drivers


def make_app() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("hello")

    return app


@pytest.mark.anyio
async def test_invalid_preface_on_cleartext_gets_goaway() -> None:
    async with running_server(make_app()) as address:
        data = await exchange(address, b"INVALID CONNECTION PREFACE\r\n\r\n", timeout=5)
    assert data[3:4] == b"\x04"  # the server's SETTINGS first
    assert data.endswith(GOAWAY_PROTOCOL_ERROR), data


@pytest.mark.anyio
async def test_request_line_in_pieces_after_empty_lines_is_http1() -> None:
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            for piece in (b"\r\n", b"GET / H", b"TTP/1.1\r", b"\nHost: t\r\n\r\n"):
                await stream.send(piece)
                await anyio.sleep(0.02)
            response = await read_response(stream, timeout=5)
    assert status_of(response) == 200
    assert response.endswith(b"hello")


@pytest.mark.anyio
async def test_malformed_http1_request_line_still_gets_400() -> None:
    async with running_server(make_app()) as address:
        data = await exchange(address, b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", timeout=5)
    assert status_of(data) == 400


@pytest.mark.anyio
async def test_unfinished_request_line_still_gets_408() -> None:
    """Bytes held while the first line is incomplete reach the HTTP/1.1 parser when the
    header timeout fires: 408, as for any unfinished head."""
    async with running_server(make_app(), header_timeout=0.3) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(b"GET / HTTP/1.1")  # no line end, ever
            data = await read_until_closed(stream, timeout=5)
    assert status_of(data) == 408


@pytest.mark.anyio
async def test_unfinished_request_line_then_eof_is_closed_unanswered() -> None:
    """The HTTP/1.1 parser decides, as before: a head cut short by EOF is not answered."""
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(b"GET / HTTP/1.1")
            await stream.send_eof()
            data = await read_until_closed(stream, timeout=5)
    assert data == b""
