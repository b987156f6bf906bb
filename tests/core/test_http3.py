"""HTTP3Connection driven directly, against an aioquic client connection in memory."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aioquic")

from aioquic.h3.events import DataReceived, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated as QuicTerminated
from aioquic.quic.events import StreamDataReceived
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


def test_goaway_is_acknowledged_before_connection_close() -> None:
    """CONNECTION_CLOSE discards unacknowledged stream data, so the server closes only
    once the client has acknowledged the GOAWAY: here its first packets are lost, and
    the retransmission must get through before the close (RFC 9114 5.2)."""
    pair = link()
    pair.take_server_events()
    pair.server.send(CloseConnection())  # idle: nothing left to finish but the GOAWAY
    lost = pair.server.datagrams_to_send(pair.now)
    assert lost  # the GOAWAY's packet, dropped on the way
    pair.pump()
    assert not pair.server.terminated
    assert not [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    pair.run_timers(5.0)  # the loss is detected, the GOAWAY resent, acknowledged
    control = b"".join(
        e.data
        for e in pair.client_quic_events
        if isinstance(e, StreamDataReceived) and e.stream_id % 4 == 3
    )
    assert b"\x07" in control  # a GOAWAY frame (type 0x07) on a server control stream
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


def test_oversized_headers_frame_is_refused_from_its_frame_header() -> None:
    """A HEADERS frame longer than ``max_header_bytes`` (plus QPACK slack) gets 431 as
    soon as its frame header arrives: none of it is buffered, no credit is added, and
    the connection serves on.  Trailers that large end the handler's body."""
    from aioquic.buffer import encode_uint_var

    window = 64 * 1024
    pair = link(Config(max_header_bytes=1024), max_stream_data=window, max_data=4 * window)
    pair.take_server_events()
    sid = pair.client.get_next_available_stream_id()
    frame_head = encode_uint_var(0x01) + encode_uint_var(64 * 1024 * 1024)
    pair.client.send_stream_data(sid, frame_head + b"\0" * (window - len(frame_head)))
    pair.pump()
    events = pair.take_server_events()
    assert not [e for e in events if isinstance(e, RequestReceived)]
    (logged,) = [e for e in events if isinstance(e, ProtocolError)]
    assert (logged.status, logged.stream_id) == (431, sid)
    (head,) = [e for e in pair.take_client_events() if isinstance(e, HeadersReceived)]
    assert (head.stream_id, (b":status", b"431")) == (sid, head.headers[0])
    server = pair.server._quic
    assert sid not in pair.server._h3._stream  # nothing of the frame is kept
    assert sid not in server._streams or server._streams[sid].max_stream_data_local == window
    assert server.held_bytes() == 0
    # Within the limit (a few header fields): served.
    ok = request(pair, headers=[(b"x-a", b"a" * 700)])
    assert [e.stream_id for e in pair.take_server_events() if isinstance(e, RequestReceived)] == [
        ok
    ]
    # Trailers over the limit: the handler's body ends in a reset, 431 on the stream.
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    pair.client_h3.send_data(sid, b"body", end_stream=False)
    pair.pump()
    assert isinstance(pair.take_server_events()[0], RequestReceived)
    pair.client.send_stream_data(sid, frame_head)
    pair.pump()
    assert StreamReset(sid, 0x10C) in pair.take_server_events()
    statuses = [e.headers[0] for e in pair.take_client_events() if isinstance(e, HeadersReceived)]
    assert statuses == [(b":status", b"431")]
    assert not pair.server.terminated


def test_max_field_section_size_is_announced() -> None:
    pair = link(Config(max_header_bytes=4096))
    assert pair.client_h3.received_settings is not None
    assert pair.client_h3.received_settings[0x6] == 4096  # SETTINGS_MAX_FIELD_SECTION_SIZE


def test_connection_window_follows_what_is_consumed() -> None:
    """MAX_DATA is what was consumed plus ``max_data`` (aioquic alone doubles it as data
    arrives): unread bodies hold it shut, reading them opens it again."""
    window = 64 * 1024
    pair = link(Config(max_body_bytes=None), max_stream_data=window, max_data=2 * window)
    pair.take_server_events()
    sids = []
    for _ in range(6):
        sid = pair.client.get_next_available_stream_id()
        pair.client_h3.send_headers(
            sid,
            [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"),
             (b":path", b"/")],
        )  # fmt: skip
        pair.client_h3.send_data(sid, b"d" * (window - 1024), end_stream=True)
        sids.append(sid)
    pair.pump()
    pair.run_timers(1.0)
    quic = pair.server._quic
    assert quic._local_max_data.value <= 3 * window  # at most 1.5 windows held
    assert quic._local_max_data.used < 6 * (window - 1024)
    received = 0
    for _ in range(50):
        events = pair.take_server_events()
        for event in events:
            if isinstance(event, BodyReceived):
                received += len(event.data)
                pair.server.acknowledge(event.stream_id, len(event.data))
        pair.pump()
        pair.run_timers(0.05)
        if received == 6 * (window - 1024):
            break
    assert received == 6 * (window - 1024)  # three windows' worth went through


def test_unidirectional_stream_credit_follows_what_was_parsed() -> None:
    """The client's control and QPACK streams get credit as they are parsed: a long
    connection never runs them dry, and they never get more than a window ahead."""
    window = 4096
    pair = link(Config(h2_max_control_frames=100_000), max_stream_data=window)
    pair.take_server_events()
    control = pair.client_h3._local_control_stream_id
    for _ in range(6000):  # unknown frame types on the control stream, 2 bytes each
        pair.client.send_stream_data(control, b"\x21\x00")
    pair.pump()
    assert not pair.server.terminated
    stream = pair.server._quic._streams[control]
    assert stream.receiver.starting_offset() > 2 * window  # more than the first window
    assert stream.max_stream_data_local <= stream.receiver.starting_offset() + window


def test_control_frame_flood_closes_the_connection() -> None:
    """Tiny DATA frames spend the control-frame budget: over it, H3_EXCESSIVE_LOAD."""
    pair = link(Config(h2_max_control_frames=50, h2_control_frame_rate=1.0))
    pair.take_server_events()
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid,
        [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")],
    )
    for _ in range(30):  # within the budget (50, and 10 earned by the request)
        pair.client_h3.send_data(sid, b"x", end_stream=False)
    pair.pump()
    assert not pair.server.terminated
    bodies = [e.data for e in pair.take_server_events() if isinstance(e, BodyReceived)]
    assert b"".join(bodies) == b"x" * 30
    assert len(bodies) < 30  # the frames of one datagram reach the handler together
    for _ in range(100):
        pair.client_h3.send_data(sid, b"x", end_stream=False)
    pair.pump()
    events = pair.take_server_events()
    assert isinstance(events[-1], ConnectionTerminated)
    assert events[-1].error_code == 0x107  # H3_EXCESSIVE_LOAD
    assert any(isinstance(e, ProtocolError) and "control-frame budget" in e.reason for e in events)


def test_quic_ping_flood_spends_the_control_budget() -> None:
    pair = link(Config(h2_max_control_frames=20, h2_control_frame_rate=1.0))
    pair.take_server_events()
    for uid in range(40):
        pair.client.send_ping(uid)
        pair.pump()  # one PING per flight
    assert pair.server.terminated
    pair.run_timers(2.0)
    closes = [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    assert closes and closes[0].error_code == 0x107


def test_client_over_the_stream_limit_is_a_connection_error() -> None:
    """A client that opens more streams than MAX_STREAMS allows breaks RFC 9000 4.6:
    aioquic closes the connection with STREAM_LIMIT_ERROR."""
    pair = link(Config(quic_max_streams_bidi=2))
    pair.take_server_events()
    pair.client._remote_max_streams_bidi = 10  # pretend the server allowed more
    for _ in range(3):
        request(pair)
    pair.run_timers(2.0)
    closes = [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    assert closes and closes[0].error_code == 0x4  # STREAM_LIMIT_ERROR


def test_oversized_control_frame_is_refused_from_its_frame_header() -> None:
    """aioquic buffers SETTINGS and MAX_PUSH_ID frames whole: one announcing a MiB
    closes the connection (H3_EXCESSIVE_LOAD) before it is buffered."""
    from aioquic.buffer import encode_uint_var

    pair = link()
    pair.take_server_events()
    control = pair.client_h3._local_control_stream_id
    # MAX_PUSH_ID (0x0d) announcing 1 MiB
    pair.client.send_stream_data(control, encode_uint_var(0x0D) + encode_uint_var(1 << 20))
    pair.pump()
    pair.run_timers(2.0)
    closes = [e for e in pair.client_quic_events if isinstance(e, QuicTerminated)]
    assert closes and closes[0].error_code == 0x107  # H3_EXCESSIVE_LOAD


def test_a_request_head_not_complete_within_header_timeout_gets_408() -> None:
    """An unfinished HEADERS frame is answered 408 once ``header_timeout`` has passed
    since its first bytes (the QUIC connection may stay alive with PINGs: the head does
    not); what aioquic buffered of it is dropped, and the connection serves on."""
    from aioquic.buffer import encode_uint_var

    pair = link(Config(header_timeout=2.0))
    pair.take_server_events()
    done = request(pair)  # a complete request: never timed out, whatever its handler does
    held = pair.server._quic.held_bytes()
    sid = pair.client.get_next_available_stream_id()
    frame_head = encode_uint_var(0x01) + encode_uint_var(1000)  # HEADERS, 1000 bytes
    pair.client.send_stream_data(sid, frame_head + b"\0" * 100)  # and only 100 of them
    pair.pump()
    assert not [e for e in pair.take_server_events() if isinstance(e, ProtocolError)]
    pair.run_timers(1.0)
    assert not [e for e in pair.take_server_events() if isinstance(e, ProtocolError)]
    pair.run_timers(1.5)
    (logged,) = [e for e in pair.take_server_events() if isinstance(e, ProtocolError)]
    assert (logged.status, logged.stream_id) == (408, sid)
    statuses = {
        e.stream_id: e.headers[0]
        for e in pair.take_client_events()
        if isinstance(e, HeadersReceived)
    }
    assert statuses.get(sid) == (b":status", b"408")
    assert done not in statuses  # its handler has not answered; no 408 for it
    assert sid not in pair.server._h3._stream  # nothing of the head is kept
    assert pair.server._quic.held_bytes() == held
    ok = request(pair)
    assert [e.stream_id for e in pair.take_server_events() if isinstance(e, RequestReceived)] == [
        ok
    ]
