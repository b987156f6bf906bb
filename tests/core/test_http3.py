"""HTTP3Connection driven directly, against an aioquic client connection in memory."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aioquic")

from aioquic.h3.events import DataReceived, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated as QuicTerminated
from aioquic.quic.events import StreamReset as QuicStreamReset

from httpy.core.config import Config
from httpy.core.errors import StreamClosedError
from httpy.core.events import (
    BodyReceived,
    CloseConnection,
    ConnectionTerminated,
    ProtocolError,
    RequestReceived,
    ResetStream,
    SendData,
    SendInformational,
    SendResponse,
    SendTrailers,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from httpy.core.http3 import (
    H3_MESSAGE_ERROR,
    H3_REQUEST_REJECTED,
    ConnectionIdIssued,
    HTTP3Connection,
)
from tests.support.h3client import MemoryLink, certificate_files


def server_configuration(**options: Any) -> QuicConfiguration:
    cert, key, _ = certificate_files()
    configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"], **options)
    configuration.load_cert_chain(str(cert), str(key))
    return configuration


def link(config: Config | None = None, **quic: Any) -> MemoryLink:
    def make(dcid: bytes) -> HTTP3Connection:
        return HTTP3Connection(
            config or Config(),
            server_configuration(**quic),
            original_destination_connection_id=dcid,
            reset_token=lambda cid: cid.ljust(16, b"\0")[:16],
        )

    return MemoryLink(make)


def request(
    pair: MemoryLink,
    method: str = "GET",
    path: str = "/",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes | None = None,
) -> int:
    sid = pair.client.get_next_available_stream_id()
    block = [
        (b":method", method.encode()),
        (b":scheme", b"https"),
        (b":authority", b"example.com"),
        (b":path", path.encode()),
        *(headers or []),
    ]
    pair.client_h3.send_headers(sid, block, end_stream=body is None)
    if body is not None:
        pair.client_h3.send_data(sid, body, end_stream=True)
    pair.pump()
    return sid


def respond(pair: MemoryLink, sid: int, status: int, body: bytes) -> None:
    server = pair.server
    server.send(SendResponse(sid, status, ((b"content-length", b"%d" % len(body)),)))
    server.send(SendData(sid, body, end_stream=True))
    pair.pump()


def client_body(events: list[Any], sid: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, DataReceived) and e.stream_id == sid)


def test_handshake_issues_connection_ids() -> None:
    pair = link()
    issued = [e for e in pair.take_server_events() if isinstance(e, ConnectionIdIssued)]
    assert len(issued) >= 2  # the initial one, then more for migration
    assert {e.connection_id for e in issued} <= set(pair.server.host_cids) | {
        e.connection_id for e in issued
    }
    # Stateless reset tokens come from the function given (derived from the CID).
    for cid in pair.server._quic._host_cids:
        assert cid.stateless_reset_token == cid.cid.ljust(16, b"\0")[:16]


def test_get_round_trip() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair, path="/hello?x=1", headers=[(b"user-agent", b"test")])
    events = pair.take_server_events()
    assert events == [
        RequestReceived(
            stream_id=sid,
            method="GET",
            target=b"/hello?x=1",
            headers=((b"host", b"example.com"), (b"user-agent", b"test")),
            http_version="3",
            body_expected=False,
        )
    ]
    respond(pair, sid, 200, b"hi")
    client = pair.take_client_events()
    (head,) = [e for e in client if isinstance(e, HeadersReceived)]
    assert (b":status", b"200") in head.headers
    assert client_body(client, sid) == b"hi"
    assert pair.server.idle


def test_post_body_and_end() -> None:
    pair = link()
    pair.take_server_events()
    body = bytes(range(256)) * 1000
    sid = request(pair, "POST", "/upload", body=body)
    events = pair.take_server_events()
    assert isinstance(events[0], RequestReceived) and events[0].body_expected
    received = b"".join(e.data for e in events if isinstance(e, BodyReceived))
    assert received == body
    assert events[-1] == StreamEnded(sid)


def test_trailers_both_ways() -> None:
    pair = link()
    pair.take_server_events()
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    pair.client_h3.send_data(sid, b"data", end_stream=False)
    pair.client_h3.send_headers(sid, [(b"x-sum", b"1")], end_stream=True)
    pair.pump()
    events = pair.take_server_events()
    assert events[1:] == [
        BodyReceived(sid, b"data"),
        TrailersReceived(sid, ((b"x-sum", b"1"),)),
        StreamEnded(sid),
    ]
    pair.server.send(SendResponse(sid, 200, ()))
    pair.server.send(SendData(sid, b"ok"))
    pair.server.send(SendTrailers(sid, ((b"X-Digest", b"abc"),)))
    pair.pump()
    client = pair.take_client_events()
    heads = [e for e in client if isinstance(e, HeadersReceived)]
    assert heads[-1].headers == [(b"x-digest", b"abc")] and heads[-1].stream_ended
    assert pair.server.idle


def test_extended_connect_is_a_tunnel() -> None:
    pair = link(Config(max_body_bytes=10))
    pair.take_server_events()
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":authority", b"a"),
            (b":path", b"/ws"),
            (b"sec-websocket-version", b"13"),
        ],
    )
    pair.client_h3.send_data(sid, b"w" * 100, end_stream=False)  # over max_body_bytes
    pair.pump()
    events = pair.take_server_events()
    assert isinstance(events[0], RequestReceived)
    assert (events[0].method, events[0].upgrade, events[0].target) == (
        "CONNECT",
        b"websocket",
        b"/ws",
    )
    assert events[1:] == [BodyReceived(sid, b"w" * 100)]
    # :protocol on anything but CONNECT is malformed: a stream error.
    bad = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        bad,
        [(b":method", b"GET"), (b":protocol", b"websocket"), (b":scheme", b"https"),
         (b":authority", b"a"), (b":path", b"/")],
        end_stream=True,
    )  # fmt: skip
    pair.pump()
    assert not [e for e in pair.take_server_events() if isinstance(e, RequestReceived)]
    resets = [e for e in pair.client_quic_events if isinstance(e, QuicStreamReset)]
    assert (bad, H3_MESSAGE_ERROR) in [(e.stream_id, e.error_code) for e in resets]


def test_request_body_credit_follows_what_the_application_reads() -> None:
    window = 64 * 1024
    pair = link(Config(max_body_bytes=None), max_stream_data=window)
    pair.take_server_events()
    body = bytes(range(256)) * 4096  # 1 MiB: sixteen windows
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    pair.client_h3.send_data(sid, body, end_stream=True)
    pair.pump()
    pair.run_timers(1.0)
    received = b"".join(e.data for e in pair.take_server_events() if isinstance(e, BodyReceived))
    # Nothing was consumed: the client is held to one window (aioquic alone would have
    # doubled the limit as data arrived).
    assert 0 < len(received) <= window
    consumed = 0
    for _ in range(200):
        # The application reads everything delivered so far.
        pair.server.acknowledge(sid, len(received) - consumed)
        consumed = len(received)
        pair.pump()
        pair.run_timers(0.05)
        events = pair.take_server_events()
        received += b"".join(e.data for e in events if isinstance(e, BodyReceived))
        assert len(received) - consumed <= window  # never more than a window ahead
        if StreamEnded(sid) in events:
            break
    assert received == body


def test_late_trailers_after_the_response_are_ignored() -> None:
    # A budget of one reset: were late trailers taken for malformed requests, the
    # second would close the connection (rapid-reset defence).
    pair = link(Config(h2_max_reset_streams=1, h2_reset_rate=0.001))
    pair.take_server_events()
    for _ in range(2):
        sid = pair.client.get_next_available_stream_id()
        pair.client_h3.send_headers(
            sid,
            [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"),
             (b":path", b"/")],
        )  # fmt: skip
        pair.pump()
        assert isinstance(pair.take_server_events()[0], RequestReceived)
        # The rest of the body and trailers are on their way when the server answers.
        pair.client_h3.send_data(sid, b"late body", end_stream=False)
        pair.client_h3.send_headers(sid, [(b"x-late", b"1")], end_stream=True)
        pair.server.send(SendResponse(sid, 200, ((b"content-length", b"5"),)))
        pair.server.send(SendData(sid, b"early", end_stream=True))
        pair.pump()
        assert pair.take_server_events() == []  # not a new request
        assert client_body(pair.take_client_events(), sid) == b"early"
    assert not pair.server.terminated


def test_requests_may_arrive_out_of_order() -> None:
    pair = link()
    pair.take_server_events()
    block = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]
    flights = []
    for _ in range(2):
        pair.now += 0.01  # past the client's pacer
        sid = pair.client.get_next_available_stream_id()
        pair.client_h3.send_headers(sid, block, end_stream=True)
        flights.append((sid, pair.client.datagrams_to_send(pair.now)))
    (first, first_datagrams), (second, second_datagrams) = flights
    for data, _ in second_datagrams + first_datagrams:  # the network reorders them
        pair.server_events += pair.server.receive_datagram(data, MemoryLink.CLIENT, pair.now)
    opened = [e.stream_id for e in pair.take_server_events() if isinstance(e, RequestReceived)]
    assert opened == [second, first]


def test_large_response_flows_under_flow_control() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair)
    body = b"x" * (3 * 1024 * 1024)  # three times the client's stream window
    pair.server.send(SendResponse(sid, 200, ()))
    pair.server.send(SendData(sid, body, end_stream=True))
    assert pair.server.pending_bytes(sid) > 0
    received = b""
    for _ in range(200):
        pair.pump()
        received += client_body(pair.take_client_events(), sid)
        if len(received) == len(body):
            break
    assert received == body
    assert pair.server.pending_bytes(sid) == 0


def test_malformed_request_is_a_stream_error() -> None:
    pair = link()
    pair.take_server_events()
    bad = request(pair, headers=[(b"connection", b"keep-alive")])
    assert not [e for e in pair.take_server_events() if isinstance(e, RequestReceived)]
    resets = [e for e in pair.client_quic_events if isinstance(e, QuicStreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(bad, H3_MESSAGE_ERROR)]
    # The connection survives: the next request is served.
    good = request(pair)
    assert [e.stream_id for e in pair.take_server_events() if isinstance(e, RequestReceived)] == [
        good
    ]


def test_limits_answer_on_the_stream() -> None:
    pair = link(Config(max_body_bytes=10, max_header_count=3))
    pair.take_server_events()
    sid = request(pair, "POST", "/", headers=[(b"content-length", b"100")], body=b"y" * 100)
    assert not [e for e in pair.take_server_events() if isinstance(e, RequestReceived)]
    client = pair.take_client_events()
    (head,) = [e for e in client if isinstance(e, HeadersReceived) and e.stream_id == sid]
    assert (b":status", b"413") in head.headers
    many = [(b"x-%d" % i, b"v") for i in range(5)]
    sid = request(pair, headers=many)
    client = pair.take_client_events()
    (head,) = [e for e in client if isinstance(e, HeadersReceived) and e.stream_id == sid]
    assert (b":status", b"431") in head.headers
    # A body over the limit without Content-Length: the handler is cancelled, 413 sent.
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    pair.client_h3.send_data(sid, b"z" * 50, end_stream=False)
    pair.pump()
    events = pair.take_server_events()
    assert isinstance(events[0], RequestReceived)
    assert any(isinstance(e, StreamReset) and e.stream_id == sid for e in events)
    client = pair.take_client_events()
    (head,) = [e for e in client if isinstance(e, HeadersReceived) and e.stream_id == sid]
    assert (b":status", b"413") in head.headers


def test_client_reset_becomes_stream_reset() -> None:
    pair = link()
    pair.take_server_events()
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    pair.pump()
    assert isinstance(pair.take_server_events()[0], RequestReceived)
    pair.client.reset_stream(sid, 0x10C)
    pair.pump()
    assert StreamReset(sid, 0x10C) in pair.take_server_events()
    with pytest.raises(StreamClosedError):
        pair.server.send(SendResponse(sid, 200, ()))


def test_rapid_reset_closes_the_connection() -> None:
    pair = link(Config(h2_max_reset_streams=5, h2_reset_rate=1.0))
    pair.take_server_events()
    for _ in range(10):
        sid = pair.client.get_next_available_stream_id()
        pair.client_h3.send_headers(
            sid,
            [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"),
             (b":path", b"/")],
        )  # fmt: skip
        pair.pump()
        pair.client.reset_stream(sid, 0x10C)
        pair.pump()
    events = pair.take_server_events()
    assert isinstance(events[-1], ConnectionTerminated)
    assert events[-1].error_code == 0x107  # H3_EXCESSIVE_LOAD
    assert any(isinstance(e, ProtocolError) and "rapid reset" in e.reason for e in events)
    assert pair.server.terminated
    pair.run_timers(2.0)
    closes = [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    assert closes and closes[0].error_code == 0x107


def test_server_reset_reaches_client() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair)
    pair.server.send(SendResponse(sid, 200, ()))
    pair.server.send(SendData(sid, b"partial"))
    pair.server.send(ResetStream(sid))
    pair.pump()
    assert any(
        isinstance(e, QuicStreamReset) and e.stream_id == sid for e in pair.client_quic_events
    )


def test_informational_then_final_and_head_is_bodiless() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair, "HEAD", "/")
    pair.server.send(SendInformational(sid, 103, ((b"link", b"</a.css>; rel=preload"),)))
    # (No content-length: aioquic's client checks it against the body, HEAD or not.)
    pair.server.send(SendResponse(sid, 200, ((b"content-type", b"text/plain"),)))
    pair.server.send(SendData(sid, b"hello", end_stream=True))
    pair.pump()
    client = pair.take_client_events()
    heads = [e for e in client if isinstance(e, HeadersReceived)]
    assert [dict(h.headers)[b":status"] for h in heads] == [b"103", b"200"]
    assert client_body(client, sid) == b""


def test_push_promise_when_client_allows_it() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair)
    assert pair.server.push_enabled  # aioquic clients send MAX_PUSH_ID
    pushed = pair.server.push(sid, "GET", "/style.css", b"example.com", "https")
    assert pushed is not None
    respond(pair, pushed, 200, b"body{}")
    respond(pair, sid, 200, b"page")
    client = pair.take_client_events()
    (promise,) = [e for e in client if isinstance(e, PushPromiseReceived)]
    assert dict(promise.headers)[b":path"] == b"/style.css"
    pushed_data = b"".join(
        e.data for e in client if isinstance(e, DataReceived) and e.push_id == promise.push_id
    )
    assert pushed_data == b"body{}"


def test_goaway_refuses_new_requests_then_closes() -> None:
    pair = link()
    pair.take_server_events()
    sid = request(pair, "POST", "/", body=None)
    pair.take_server_events()
    pair.server.send(CloseConnection())
    pair.pump()
    late = request(pair)
    resets = [e for e in pair.client_quic_events if isinstance(e, QuicStreamReset)]
    assert (late, H3_REQUEST_REJECTED) in [(e.stream_id, e.error_code) for e in resets]
    assert not [e for e in pair.take_server_events() if isinstance(e, RequestReceived)]
    respond(pair, sid, 200, b"done")  # the open request still completes
    assert client_body(pair.take_client_events(), sid) == b"done"
    pair.run_timers(5.0)  # acknowledgements, then the closing period
    assert pair.server.terminated
    closes = [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    assert closes and closes[0].error_code == 0x100  # H3_NO_ERROR


def test_idle_timeout_terminates() -> None:
    pair = link(idle_timeout=5.0)
    pair.take_server_events()
    sid = request(pair, "POST", "/", body=None)
    pair.take_server_events()
    timer = pair.server.get_timer()
    assert timer is not None
    events: list[Any] = []
    for _ in range(20):
        at = pair.server.get_timer()
        if at is None:
            break
        pair.now = max(pair.now, at)
        events += pair.server.handle_timer(pair.now)
    assert StreamReset(sid, events[-1].error_code) in events
    assert isinstance(events[-1], ConnectionTerminated)
    assert pair.server.terminated


def test_garbage_datagrams_never_raise() -> None:
    pair = link()
    for junk in (b"", b"\x00", b"\xff" * 1500, b"\x40" + b"\x01" * 40, bytes(range(256)) * 5):
        assert isinstance(pair.server.receive_datagram(junk, MemoryLink.CLIENT, pair.now), list)
    sid = request(pair)
    assert any(isinstance(e, RequestReceived) for e in pair.take_server_events())
    respond(pair, sid, 204, b"")
