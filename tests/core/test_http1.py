"""Unit tests for httpy.core.http1: the sans-IO HTTP/1.1 server connection, bytes in and out.

Responses are parsed back with an h11 *client* connection, so the assertions are about
what a real client would see, not about our own serialisation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import h11
import pytest

from httpy.core import http1, http1_head
from httpy.core.config import Config
from httpy.core.errors import LocalProtocolError, StreamClosedError
from httpy.core.events import (
    BodyReceived,
    CloseConnection,
    ConnectionTerminated,
    Event,
    ProtocolError,
    RequestReceived,
    ResetStream,
    SendData,
    SendInformational,
    SendResponse,
    StreamEnded,
    StreamReset,
)
from httpy.core.http1 import HTTP1Connection


@pytest.fixture(autouse=True, scope="module", params=["python", "httptools"])
def _head_parser(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here runs with both request-head parsers (h11 handles the rest)."""
    if request.param == "httptools" and http1_head.httptools is None:
        pytest.skip("httptools is not installed (the speed extra)")
    chosen = http1_head.head_parser(request.param)
    original = http1.head_parser
    http1.head_parser = lambda name: chosen  # type: ignore[assignment]
    yield
    http1.head_parser = original


GET = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"


# ----------------------------------------------------------------------------- helpers


def respond(
    conn: HTTP1Connection,
    stream_id: int,
    body: bytes = b"",
    status: int = 200,
    headers: Sequence[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete response with a Content-Length body (unless ``headers`` say otherwise)."""
    if headers is None:
        headers = ((b"content-length", str(len(body)).encode()),)
    conn.send(SendResponse(stream_id, status, tuple(headers)))
    conn.send(SendData(stream_id, body, end_stream=True))


def parse_responses(
    data: bytes, methods: Sequence[bytes] = (b"GET",)
) -> list[tuple[h11.Response, list[h11.InformationalResponse], bytes]]:
    """Parse ``data`` as the responses to requests with ``methods``, in order, like a client.

    Returns (final response, interim responses, body) per complete response.
    """
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    out: list[tuple[h11.Response, list[h11.InformationalResponse], bytes]] = []
    for method in methods:
        if out:
            if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                break
            client.start_next_cycle()
        client.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        client.send(h11.EndOfMessage())
        interim: list[h11.InformationalResponse] = []
        response: h11.Response | None = None
        body = b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return out
            if isinstance(event, h11.InformationalResponse):
                interim.append(event)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                out.append((response, interim, body))
                break
    return out


def only_response(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    responses = parse_responses(data, [method])
    assert len(responses) == 1, data
    response, _interim, body = responses[0]
    return response, body


def header(response: h11.Response, name: bytes) -> list[bytes]:
    return [bytes(v) for n, v in response.headers if n == name]


def merge_body(events: Sequence[Event]) -> list[Event]:
    """Join adjacent BodyReceived events of one stream: how a body is split is not meaningful."""
    merged: list[Event] = []
    for event in events:
        last = merged[-1] if merged else None
        if (
            isinstance(event, BodyReceived)
            and isinstance(last, BodyReceived)
            and last.stream_id == event.stream_id
        ):
            merged[-1] = BodyReceived(event.stream_id, last.data + event.data)
        else:
            merged.append(event)
    return merged


def assert_rejected(conn: HTTP1Connection, events: Sequence[Event], status: int) -> None:
    """The connection answered ``status`` once, reported it, and is closing."""
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert len(errors) == 1, events
    assert errors[0].status == status
    assert errors[0].reason
    assert events[-1] is errors[0]  # nothing follows a protocol error
    out = conn.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode()), out
    response, _body = only_response(out)
    assert response.status_code == status
    assert header(response, b"connection") == [b"close"]
    assert conn.should_close
    assert not conn.idle
    assert conn.receive_data(GET) == []
    assert conn.data_to_send() == b""


# -------------------------------------------------------------------------- basic GET


def test_simple_get_events() -> None:
    conn = HTTP1Connection()
    assert conn.idle and conn.awaiting_head and not conn.receiving_body
    events = conn.receive_data(
        b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Custom-Header: Value\r\n\r\n"
    )
    assert events == [
        RequestReceived(
            stream_id=1,
            method="GET",
            target=b"/path?q=1",
            headers=((b"host", b"example.com"), (b"x-custom-header", b"Value")),
            http_version="1.1",
            body_expected=False,
            expects_continue=False,
            upgrade=None,
        ),
        StreamEnded(1),
    ]
    assert conn.current_stream_id == 1
    assert not conn.idle and not conn.awaiting_head and not conn.receiving_body
    assert not conn.should_close


def test_request_with_content_length_body() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(
        b"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello"
    )
    assert isinstance(events[0], RequestReceived)
    assert events[0].method == "POST" and events[0].body_expected
    assert events[1:] == [BodyReceived(1, b"hello")]
    assert conn.receiving_body
    assert conn.receive_data(b" world") == [BodyReceived(1, b" world"), StreamEnded(1)]
    assert not conn.receiving_body


def test_empty_lines_before_request_line_are_ignored() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(b"\r\n\r\n" + GET)
    assert [type(e) for e in events] == [RequestReceived, StreamEnded]


# ------------------------------------------------------------------ response serialisation


def test_response_with_content_length() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(
        SendResponse(
            1, 200, ((b"content-type", b"text/plain"), (b"content-length", b"13"), (b"x-a", b"b"))
        )
    )
    conn.send(SendData(1, b"Hello, "))
    conn.send(SendData(1, b"world!", end_stream=True))
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-type: text/plain\r\n" in out
    assert out.endswith(b"\r\n\r\nHello, world!")
    response, body = only_response(out)
    assert response.status_code == 200
    assert response.reason == b"OK"
    assert response.http_version == b"1.1"
    assert header(response, b"content-length") == [b"13"]
    assert header(response, b"x-a") == [b"b"]
    assert body == b"Hello, world!"
    assert not conn.should_close
    assert conn.idle


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (201, b"HTTP/1.1 201 Created\r\n"),
        (404, b"HTTP/1.1 404 Not Found\r\n"),
        (418, b"HTTP/1.1 418 I'm a Teapot\r\n"),
        (500, b"HTTP/1.1 500 Internal Server Error\r\n"),
        (599, b"HTTP/1.1 599 \r\n"),  # unknown status: empty reason phrase
    ],
)
def test_status_line_reason_phrase(status: int, line: bytes) -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    respond(conn, 1, b"x", status=status)
    out = conn.data_to_send()
    assert out.startswith(line)
    assert only_response(out)[0].status_code == status


def test_chunked_response_without_content_length() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(SendResponse(1, 200, ((b"content-type", b"text/plain"),)))
    conn.send(SendData(1, b"first,"))
    conn.send(SendData(1, b"second"))
    conn.send(SendData(1, b"", end_stream=True))
    out = conn.data_to_send()
    assert b"transfer-encoding: chunked\r\n" in out.lower()
    assert out.endswith(b"0\r\n\r\n")
    response, body = only_response(out)
    assert header(response, b"transfer-encoding") == [b"chunked"]
    assert header(response, b"content-length") == []
    assert body == b"first,second"
    assert not conn.should_close


def test_data_to_send_drains() -> None:
    conn = HTTP1Connection()
    assert conn.data_to_send() == b""
    conn.receive_data(GET)
    respond(conn, 1, b"ok")
    assert conn.data_to_send()
    assert conn.data_to_send() == b""


def test_informational_103_then_response() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(SendInformational(1, 103, ((b"link", b"</style.css>; rel=preload"),)))
    respond(conn, 1, b"ok")
    out = conn.data_to_send()
    assert out.startswith(b"HTTP/1.1 103 Early Hints\r\n")
    [(response, interim, body)] = parse_responses(out)
    assert [i.status_code for i in interim] == [103]
    assert response.status_code == 200 and body == b"ok"


# ----------------------------------------------------------------- keep-alive, pipelining


def test_keep_alive_sequential_requests_get_odd_stream_ids() -> None:
    conn = HTTP1Connection()
    first = conn.receive_data(GET)
    assert isinstance(first[0], RequestReceived) and first[0].stream_id == 1
    respond(conn, 1, b"one")
    assert not conn.should_close and conn.idle
    second = conn.receive_data(b"GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(second[0], RequestReceived)
    assert second[0].stream_id == 3 and second[0].target == b"/two"
    assert second[1:] == [StreamEnded(3)]
    respond(conn, 3, b"two")
    third = conn.receive_data(GET)
    assert isinstance(third[0], RequestReceived) and third[0].stream_id == 5
    respond(conn, 5, b"three")
    responses = parse_responses(conn.data_to_send(), [b"GET"] * 3)
    assert [body for _r, _i, body in responses] == [b"one", b"two", b"three"]


def test_ten_pipelined_requests_answered_in_order() -> None:
    conn = HTTP1Connection()
    raw = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(10))
    events = conn.receive_data(raw)
    seen: list[tuple[int, bytes]] = []
    for _ in range(10):
        assert len(events) == 2, events
        request, ended = events
        assert isinstance(request, RequestReceived)
        assert ended == StreamEnded(request.stream_id)
        seen.append((request.stream_id, request.target))
        # The rest waits, unparsed, until this response is complete.
        assert conn.receive_data(b"") == []
        respond(conn, request.stream_id, b"body of " + request.target)
        events = conn.receive_data(b"")
    assert events == []
    assert seen == [(2 * i + 1, b"/%d" % i) for i in range(10)]
    assert conn.buffered_bytes == 0 and conn.idle
    responses = parse_responses(conn.data_to_send(), [b"GET"] * 10)
    assert [body for _r, _i, body in responses] == [b"body of /%d" % i for i in range(10)]


def test_pipelined_bytes_are_buffered_not_parsed() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    assert conn.buffered_bytes == 0
    assert conn.receive_data(GET + GET) == []
    assert conn.buffered_bytes == 2 * len(GET)
    respond(conn, 1)
    events = conn.receive_data(b"")
    assert [type(e) for e in events] == [RequestReceived, StreamEnded]
    assert conn.buffered_bytes == len(GET)


def test_pipelined_request_behind_a_body() -> None:
    conn = HTTP1Connection()
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + GET
    events = conn.receive_data(raw)
    assert [type(e) for e in events] == [RequestReceived, BodyReceived, StreamEnded]
    respond(conn, 1)
    events = conn.receive_data(b"")
    assert isinstance(events[0], RequestReceived) and events[0].stream_id == 3


# --------------------------------------------------------------------------- chunked body


def test_chunked_request_body() -> None:
    conn = HTTP1Connection()
    raw = (
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
        b"1;ext=1\r\n,\r\n"
        b"6\r\n world\r\n"
        b"0\r\nX-Trailer: t\r\n\r\n"
    )
    events = conn.receive_data(raw)
    request = events[0]
    assert isinstance(request, RequestReceived) and request.body_expected
    assert events[-1] == StreamEnded(1)
    body = b"".join(e.data for e in events if isinstance(e, BodyReceived))
    assert body == b"hello, world"


def test_chunked_request_body_in_pieces() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert [type(e) for e in events] == [RequestReceived]
    assert conn.receiving_body
    collected: list[Event] = []
    for piece in (b"3\r\nab", b"c\r\n", b"4\r\ndefg\r\n0\r", b"\n\r\n"):
        collected += conn.receive_data(piece)
    assert collected[-1] == StreamEnded(1)
    assert b"".join(e.data for e in collected if isinstance(e, BodyReceived)) == b"abcdefg"


# ----------------------------------------------------------------------- 100-continue


def test_expect_100_continue() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert isinstance(events[0], RequestReceived)
    assert events[0].expects_continue
    assert conn.data_to_send() == b""
    conn.send(SendInformational(1, 100))
    assert conn.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    # Only once: the client is no longer waiting.
    conn.send(SendInformational(1, 100))
    assert conn.data_to_send() == b""
    assert conn.receive_data(b"data") == [BodyReceived(1, b"data"), StreamEnded(1)]
    respond(conn, 1, b"ok")
    assert not conn.should_close


def test_no_100_continue_without_expect() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n")
    assert isinstance(events[0], RequestReceived) and not events[0].expects_continue
    conn.send(SendInformational(1, 100))
    assert conn.data_to_send() == b""


def test_no_100_continue_for_http10() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(
        b"POST / HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert isinstance(events[0], RequestReceived) and not events[0].expects_continue
    conn.send(SendInformational(1, 100))
    assert conn.data_to_send() == b""


# ------------------------------------------------------------------ bodiless responses


def test_head_response_keeps_content_length_without_body() -> None:
    conn = HTTP1Connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    respond(conn, 1, b"twelve bytes")
    out = conn.data_to_send()
    assert out.endswith(b"\r\n\r\n")
    assert b"twelve" not in out
    response, body = only_response(out, b"HEAD")
    assert header(response, b"content-length") == [b"12"]
    assert body == b""
    assert not conn.should_close
    # The connection stays in sync: the next request parses.
    assert isinstance(conn.receive_data(GET)[0], RequestReceived)


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body(status: int) -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    respond(conn, 1, b"ignored body", status=status)
    out = conn.data_to_send()
    assert out.startswith(f"HTTP/1.1 {status} ".encode())
    assert out.endswith(b"\r\n\r\n")
    assert b"ignored" not in out
    response, body = only_response(out)
    assert response.status_code == status
    assert header(response, b"content-length") == []
    assert header(response, b"transfer-encoding") == []
    assert body == b""
    assert not conn.should_close
    assert isinstance(conn.receive_data(GET)[0], RequestReceived)


# -------------------------------------------------------------------- connection close


def test_http10_without_keep_alive_closes_after_response() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(events[0], RequestReceived)
    assert events[0].http_version == "1.0"
    assert not conn.should_close
    respond(conn, 1, b"ok")
    response, body = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"close"]
    assert body == b"ok"
    assert conn.should_close


def test_http10_response_without_length_is_close_delimited() -> None:
    conn = HTTP1Connection()
    conn.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    conn.send(SendResponse(1, 200))
    conn.send(SendData(1, b"streamed"))
    conn.send(SendData(1, b"", end_stream=True))
    out = conn.data_to_send()
    assert b"chunked" not in out.lower()
    assert out.endswith(b"\r\n\r\nstreamed")
    assert conn.should_close


def test_http10_keep_alive_is_honoured() -> None:
    """HTTP/1.0 keep-alive (RFC 9112 appendix C.2.2): a client that asks for it, and a
    response with a Content-Length, keep the connection open for a next request."""
    conn = HTTP1Connection()
    events = conn.receive_data(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert isinstance(events[0], RequestReceived)
    respond(conn, 1, b"ok")
    response, body = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"keep-alive"]
    assert body == b"ok"
    assert not conn.should_close
    events = conn.receive_data(b"GET /again HTTP/1.0\r\n\r\n")
    assert isinstance(events[0], RequestReceived)
    assert events[0].target == b"/again"
    respond(conn, 3, b"bye")
    response, body = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"close"]
    assert conn.should_close


def test_http10_with_transfer_encoding_is_answered_then_closed() -> None:
    """RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request means faulty framing: the
    request is answered, then the connection closes, keep-alive or not, so a request
    behind it is never read."""
    conn = HTTP1Connection()
    events = conn.receive_data(
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n" + GET
    )
    assert isinstance(events[0], RequestReceived)
    assert not any(isinstance(e, RequestReceived) and e.stream_id != 1 for e in events)
    respond(conn, 1, b"ok")
    response, body = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"close"]
    assert body == b"ok"
    assert conn.should_close


def test_connection_close_request_closes_after_response() -> None:
    conn = HTTP1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + GET)
    assert not conn.should_close
    respond(conn, 1, b"ok")
    response, _ = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"close"]
    assert conn.should_close
    # The pipelined request behind it is never parsed.
    assert conn.receive_data(b"") == []


def test_close_connection_command_ends_after_current_exchange() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(CloseConnection())
    assert not conn.should_close
    respond(conn, 1, b"ok")
    response, _ = only_response(conn.data_to_send())
    assert header(response, b"connection") == [b"close"]
    assert conn.should_close


def test_close_connection_command_when_idle_closes_at_once() -> None:
    conn = HTTP1Connection()
    conn.send(CloseConnection())
    assert conn.should_close
    assert conn.data_to_send() == b""


def test_reset_stream_closes_the_connection() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(ResetStream(1))
    assert conn.should_close


def test_response_with_unread_body_closes_connection() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npart")
    assert events[-1] == BodyReceived(1, b"part")
    respond(conn, 1, b"too early", status=413)
    response, body = only_response(conn.data_to_send())
    assert response.status_code == 413
    assert header(response, b"connection") == [b"close"]
    assert body == b"too early"
    assert conn.should_close
    assert conn.receive_data(b"x" * 96) == []


# ------------------------------------------------------------------------ error paths


def _reject(raw: bytes, status: int, config: Config | None = None) -> list[Event]:
    conn = HTTP1Connection(config)
    events = conn.receive_data(raw)
    assert_rejected(conn, events, status)
    return events


def _with_body(headers: bytes, body: bytes = b"hello") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n" + body


BAD_REQUESTS = {
    "malformed request line": (b"NOT A REQUEST\r\nHost: a\r\n\r\n", 400),
    "request line without version": (b"GET /\r\n\r\n", 400),
    "space in target": (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "http/2.0": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    "http/0.9": (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
    "http/1.2": (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    "cl and te": (
        _with_body(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
    ),
    "te and cl": (
        _with_body(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"),
        400,
    ),
    "duplicate content-length, same value": (
        _with_body(b"Content-Length: 5\r\nContent-Length: 5\r\n"),
        400,
    ),
    "duplicate content-length, different values": (
        _with_body(b"Content-Length: 5\r\ncontent-length: 6\r\n"),
        400,
    ),
    "content-length list": (_with_body(b"Content-Length: 5, 5\r\n"), 400),
    "content-length list without spaces": (_with_body(b"Content-Length:5,5\r\n"), 400),
    "content-length abc": (_with_body(b"Content-Length: abc\r\n"), 400),
    "content-length -1": (_with_body(b"Content-Length: -1\r\n"), 400),
    "content-length +5": (_with_body(b"Content-Length: +5\r\n"), 400),
    "content-length empty": (_with_body(b"Content-Length: \r\n"), 400),
    "content-length huge": (_with_body(b"Content-Length: " + b"9" * 30 + b"\r\n"), 400),
    "bare lf everywhere": (b"GET / HTTP/1.1\nHost: a\n\n", 400),
    "bare lf after request line": (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    "bare lf ending the head": (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    "bare cr": (b"GET / HTTP/1.1\r\nHost: a\rX-Injected: 1\r\n\r\n", 400),
    "obs-fold with space": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    "obs-fold with tab": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400),
    "nul in header value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400),
    "nul in target": (b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "space before colon": (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
    "header without colon": (b"GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400),
    # chunked not final: the body length is unknown (RFC 9112 6.3) -> 400, not 501
    "transfer-encoding gzip": (_with_body(b"Transfer-Encoding: gzip\r\n"), 400),
    "transfer-encoding gzip, chunked": (_with_body(b"Transfer-Encoding: gzip, chunked\r\n"), 501),
    # chunked applied twice (RFC 9112 7: a sender MUST NOT): a desync shape -> 400
    "two transfer-encoding fields": (
        _with_body(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
        400,
    ),
    "bad chunk size": (_with_body(b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n"), 400),
    "chunk size with bare lf": (
        _with_body(b"Transfer-Encoding: chunked\r\n", b"5\nhello\r\n0\r\n\r\n"),
        400,
    ),
    "chunk data without crlf": (
        _with_body(b"Transfer-Encoding: chunked\r\n", b"5\r\nhelloX0\r\n\r\n"),
        400,
    ),
}


@pytest.mark.parametrize(("raw", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_is_rejected(raw: bytes, status: int) -> None:
    _reject(raw, status)


@pytest.mark.parametrize(("raw", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_is_rejected_byte_by_byte(raw: bytes, status: int) -> None:
    conn = HTTP1Connection()
    events: list[Event] = []
    for i in range(len(raw)):
        events += conn.receive_data(raw[i : i + 1])
    assert_rejected(conn, events, status)


@pytest.mark.parametrize(
    "raw",
    [
        BAD_REQUESTS["missing host"][0],
        BAD_REQUESTS["http/2.0"][0],
        BAD_REQUESTS["cl and te"][0],
        BAD_REQUESTS["bare cr"][0],
        BAD_REQUESTS["transfer-encoding gzip"][0],
    ],
)
def test_error_before_request_received_names_no_stream(raw: bytes) -> None:
    """A request the application never saw has no stream: ``stream_id`` is None."""
    conn = HTTP1Connection()
    conn.receive_data(GET)
    respond(conn, 1)
    [error] = conn.receive_data(raw)
    assert isinstance(error, ProtocolError) and error.stream_id is None


def test_request_line_too_long_414() -> None:
    config = Config(max_request_line_bytes=64)
    raw = b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    events = _reject(raw, 414, config)
    assert events == [ProtocolError(414, "request line too long", None)]


def test_request_line_too_long_414_before_line_ends() -> None:
    # No need to wait for the end of the line: 414 as soon as it is too long.
    conn = HTTP1Connection(Config(max_request_line_bytes=64))
    events = conn.receive_data(b"GET /" + b"a" * 100)
    assert_rejected(conn, events, 414)


def test_request_line_length_limit_is_inclusive() -> None:
    config = Config(max_request_line_bytes=64)
    line = b"GET /" + b"a" * (64 - len(b"GET / HTTP/1.1")) + b" HTTP/1.1"
    assert len(line) == 64
    ok = HTTP1Connection(config).receive_data(line + b"\r\nHost: a\r\n\r\n")
    assert isinstance(ok[0], RequestReceived)
    line = line.replace(b"/a", b"/aa")
    _reject(line + b"\r\nHost: a\r\n\r\n", 414, config)
    # Fed byte by byte, the same line is answered the same way.
    conn = HTTP1Connection(config)
    events: list[Event] = []
    for byte in line + b"\r\nHost: a\r\n\r\n":
        events += conn.receive_data(bytes([byte]))
    assert_rejected(conn, events, 414)


def test_head_too_large_431() -> None:
    config = Config(max_header_bytes=256)
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 300 + b"\r\n\r\n"
    _reject(raw, 431, config)


def test_head_too_large_431_before_head_ends() -> None:
    conn = HTTP1Connection(Config(max_header_bytes=256))
    events = conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 300)
    assert_rejected(conn, events, 431)


def test_head_at_the_size_limit_is_accepted() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 100 + b"\r\n\r\n"
    events = HTTP1Connection(Config(max_header_bytes=len(raw))).receive_data(raw)
    assert isinstance(events[0], RequestReceived)
    _reject(raw, 431, Config(max_header_bytes=len(raw) - 1))


def test_too_many_headers_431() -> None:
    config = Config(max_header_count=5)
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(5))
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    _reject(raw, 431, config)
    ok = HTTP1Connection(config).receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\n" + fields[: fields.index(b"X-4")] + b"\r\n"
    )
    assert isinstance(ok[0], RequestReceived) and len(ok[0].headers) == 5


def test_content_length_over_limit_413() -> None:
    config = Config(max_body_bytes=10)
    events = _reject(_with_body(b"Content-Length: 11\r\n", b""), 413, config)
    # No RequestReceived went out, so the error names no stream.
    assert events[0] == ProtocolError(413, "Content-Length 11 over the 10 limit", None)
    ok = HTTP1Connection(config).receive_data(_with_body(b"Content-Length: 10\r\n", b"x" * 10))
    assert ok[-1] == StreamEnded(1)


def test_chunked_body_over_limit_413() -> None:
    config = Config(max_body_bytes=10)
    conn = HTTP1Connection(config)
    events = conn.receive_data(_with_body(b"Transfer-Encoding: chunked\r\n", b"8\r\nabcdefgh\r\n"))
    assert events[-1] == BodyReceived(1, b"abcdefgh")
    events = conn.receive_data(b"8\r\nijklmnop\r\n0\r\n\r\n")
    assert_rejected(conn, events, 413)
    assert events[-1] == ProtocolError(413, "request body larger than 10 bytes", 1)


def test_chunked_body_at_limit_is_accepted() -> None:
    conn = HTTP1Connection(Config(max_body_bytes=10))
    events = conn.receive_data(
        _with_body(b"Transfer-Encoding: chunked\r\n", b"5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n")
    )
    assert events[-1] == StreamEnded(1)


def test_unlimited_body() -> None:
    conn = HTTP1Connection(Config(max_body_bytes=None))
    events = conn.receive_data(_with_body(b"Content-Length: 100000\r\n", b"x" * 100000))
    assert events[-1] == StreamEnded(1)


def test_error_mid_body_names_the_stream() -> None:
    conn = HTTP1Connection()
    events = conn.receive_data(
        _with_body(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\nnot-hex\r\n")
    )
    errors = [e for e in events if isinstance(e, ProtocolError)]
    assert errors and errors[0].stream_id == 1 and errors[0].status == 400
    assert conn.should_close


def test_error_after_response_started_sends_no_second_response() -> None:
    conn = HTTP1Connection()
    conn.receive_data(_with_body(b"Transfer-Encoding: chunked\r\n", b""))
    conn.send(SendResponse(1, 200, ((b"content-length", b"5"),)))
    head = conn.data_to_send()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    events = conn.receive_data(b"garbage\r\n")
    assert [type(e) for e in events] == [ProtocolError]
    assert conn.data_to_send() == b""  # a 400 now would corrupt the 200 in progress
    assert conn.should_close
    with pytest.raises(StreamClosedError):
        conn.send(SendData(1, b"hello", end_stream=True))


# -------------------------------------------------------------------------- EOF, timeouts


def test_eof_mid_body_resets_stream_and_terminates() -> None:
    conn = HTTP1Connection()
    conn.receive_data(_with_body(b"Content-Length: 10\r\n", b"abc"))
    events = conn.receive_eof()
    assert len(events) == 2
    assert events[0] == StreamReset(1)
    assert isinstance(events[1], ConnectionTerminated)
    assert conn.should_close
    assert conn.receive_eof() == []


def test_eof_between_requests_terminates() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    respond(conn, 1)
    conn.data_to_send()
    events = conn.receive_eof()
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert conn.should_close
    assert conn.data_to_send() == b""


def test_eof_on_fresh_connection_and_partial_head() -> None:
    assert [type(e) for e in HTTP1Connection().receive_eof()] == [ConnectionTerminated]
    conn = HTTP1Connection()
    assert conn.receive_data(b"GET / HT") == []
    assert [type(e) for e in conn.receive_eof()] == [ConnectionTerminated]
    assert conn.should_close and conn.data_to_send() == b""


def test_eof_while_response_pending_lets_the_response_finish() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    events = conn.receive_eof()
    assert [type(e) for e in events] == [ConnectionTerminated]
    assert not conn.should_close
    respond(conn, 1, b"late")
    assert only_response(conn.data_to_send())[1] == b"late"
    assert conn.should_close


def test_timeout_with_partial_head_408() -> None:
    conn = HTTP1Connection()
    assert conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n") == []
    assert conn.awaiting_head and not conn.idle
    events = conn.receive_timeout()
    assert events == [ProtocolError(408, "request not received in time", None)]
    assert_rejected(conn, events, 408)


def test_timeout_mid_body_408() -> None:
    conn = HTTP1Connection()
    conn.receive_data(_with_body(b"Content-Length: 10\r\n", b"abc"))
    assert conn.receiving_body
    events = conn.receive_timeout()
    assert events == [ProtocolError(408, "request not received in time", 1)]
    assert_rejected(conn, events, 408)


def test_timeout_when_idle_closes_quietly() -> None:
    conn = HTTP1Connection()
    events = conn.receive_timeout()
    assert len(events) == 1 and isinstance(events[0], ConnectionTerminated)
    assert conn.data_to_send() == b""
    assert conn.should_close
    assert conn.receive_timeout() == []


def test_timeout_after_keep_alive_response_closes_quietly() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    respond(conn, 1)
    conn.data_to_send()
    assert conn.idle
    assert [type(e) for e in conn.receive_timeout()] == [ConnectionTerminated]
    assert conn.data_to_send() == b""


def test_timeout_while_application_works_does_nothing() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    assert conn.receive_timeout() == []
    assert not conn.should_close


# ---------------------------------------------------------------------- command misuse


def test_send_to_wrong_stream_raises() -> None:
    conn = HTTP1Connection()
    with pytest.raises(StreamClosedError):
        conn.send(SendResponse(1, 200))  # nothing in flight yet
    conn.receive_data(GET)
    with pytest.raises(StreamClosedError):
        conn.send(SendResponse(3, 200))
    with pytest.raises(StreamClosedError):
        conn.send(SendData(3, b"x"))
    with pytest.raises(StreamClosedError):
        conn.send(SendInformational(3, 103))
    respond(conn, 1, b"ok")
    with pytest.raises(StreamClosedError):
        conn.send(SendData(1, b"late", end_stream=True))


def test_send_after_close_raises() -> None:
    conn = HTTP1Connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    respond(conn, 1)
    assert conn.should_close
    with pytest.raises(StreamClosedError):
        conn.send(SendResponse(1, 200))


def test_stream_closed_error_is_a_local_protocol_error() -> None:
    assert issubclass(StreamClosedError, LocalProtocolError)


@pytest.mark.parametrize(
    "headers",
    [
        ((b"x-a", b"a\r\nInjected: yes"),),
        ((b"x-a", b"a\nb"),),
        ((b"x-a", b"a\rb"),),
        ((b"x-a", b"a\x00b"),),
        ((b"bad name", b"v"),),
        ((b"", b"v"),),
    ],
)
def test_invalid_response_headers_raise_local_protocol_error(
    headers: tuple[tuple[bytes, bytes], ...],
) -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    with pytest.raises(LocalProtocolError):
        conn.send(SendResponse(1, 200, headers))
    assert conn.data_to_send() == b""
    # Nothing was sent: the application can still answer properly.
    respond(conn, 1, b"ok")
    assert only_response(conn.data_to_send())[1] == b"ok"


def test_invalid_informational_headers_raise_local_protocol_error() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    with pytest.raises(LocalProtocolError):
        conn.send(SendInformational(1, 103, ((b"link", b"a\r\nb"),)))


@pytest.mark.parametrize("status", [99, 1000])
def test_invalid_status_raises_local_protocol_error(status: int) -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    with pytest.raises(LocalProtocolError):
        conn.send(SendResponse(1, status))


def test_response_twice_raises() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(SendResponse(1, 200, ((b"content-length", b"0"),)))
    with pytest.raises(LocalProtocolError):
        conn.send(SendResponse(1, 200))


def test_body_before_head_raises() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    with pytest.raises(LocalProtocolError):
        conn.send(SendData(1, b"x"))


def test_body_longer_than_content_length_raises() -> None:
    conn = HTTP1Connection()
    conn.receive_data(GET)
    conn.send(SendResponse(1, 200, ((b"content-length", b"2"),)))
    with pytest.raises(LocalProtocolError):
        conn.send(SendData(1, b"three"))


# ----------------------------------------------------------------- split invariance


SPLIT_CASES = [
    GET,
    b"GET /a?b=c HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n",
    _with_body(b"Content-Length: 11\r\n", b"hello world"),
    _with_body(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    b"\r\n" + GET,
    _with_body(b"Content-Length: 4\r\nExpect: 100-continue\r\n", b"data"),
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n",
]


@pytest.mark.parametrize("raw", SPLIT_CASES)
def test_byte_by_byte_equals_whole(raw: bytes) -> None:
    whole = HTTP1Connection().receive_data(raw)
    conn = HTTP1Connection()
    pieces: list[Event] = []
    for i in range(len(raw)):
        pieces += conn.receive_data(raw[i : i + 1])
    assert merge_body(pieces) == merge_body(whole)
    assert whole[-1] == StreamEnded(1)


def test_upgrade_is_reported_only_with_connection_upgrade() -> None:
    events = HTTP1Connection().receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: WebSocket\r\n\r\n"
    )
    assert isinstance(events[0], RequestReceived) and events[0].upgrade == b"websocket"
    events = HTTP1Connection().receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"
    )
    assert isinstance(events[0], RequestReceived) and events[0].upgrade is None


def test_pipelined_byte_by_byte_equals_whole() -> None:
    raw = (
        GET
        + _with_body(b"Content-Length: 3\r\n", b"abc")
        + _with_body(b"Transfer-Encoding: chunked\r\n", b"2\r\nde\r\n0\r\n\r\n")
        + b"GET /last HTTP/1.1\r\nHost: a\r\n\r\n"
    )

    def drive(chunks: list[bytes]) -> list[Event]:
        conn = HTTP1Connection()
        log: list[Event] = []
        for chunk in chunks:
            events = conn.receive_data(chunk)
            while events:
                log += events
                if isinstance(events[-1], StreamEnded):
                    respond(conn, events[-1].stream_id)
                    events = conn.receive_data(b"")
                else:
                    events = []
        return merge_body(log)

    whole = drive([raw])
    assert [e.stream_id for e in whole if isinstance(e, StreamEnded)] == [1, 3, 5, 7]
    assert drive([raw[i : i + 1] for i in range(len(raw))]) == whole
