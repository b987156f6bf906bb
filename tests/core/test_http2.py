"""Unit tests for httpy.core.http2: the sans-IO HTTP/2 server connection.

Two peers in memory, no sockets: our ``HTTP2Connection`` and an h2 *client* connection,
so the assertions are about what a real client sees.  Attacks the h2 client refuses to
produce are hand-built frames (tests/support/h2peer.py).  ``Pair.to_server`` checks on
every call that nothing raises out of ``receive_data``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack
import hyperframe.frame as hf
import pytest

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
    SendTrailers,
    StreamEnded,
    StreamReset,
    StreamWritable,
    TrailersReceived,
)
from httpy.core.http2 import HTTP2Connection
from httpy.core.http2_checks import FloodBudgets, valid_upgrade_settings
from tests.support.h2peer import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    client_connection,
    feed_client,
    goaway_codes,
    parse_frames,
    raw_continuation,
    raw_data,
    raw_headers,
    raw_ping,
    raw_rst,
    raw_settings,
    raw_window_update,
    request_headers,
    rst_codes,
)

# ----------------------------------------------------------------------------- helpers


class Pair:
    """Our server connection and an h2 client, connected in memory."""

    def __init__(
        self,
        config: Config | None = None,
        flood_budgets: FloodBudgets | None = None,
        **client_options: object,
    ) -> None:
        self.server = HTTP2Connection(config or Config(), flood_budgets=flood_budgets)
        self.client = client_connection(**client_options)  # type: ignore[arg-type]
        self.client_events: list[h2.events.Event] = []
        #: The clock given to the server (flood budgets refill with it).
        self.now = 0.0
        assert self.exchange() == []  # preface and SETTINGS both ways: no events

    def to_server(self, data: bytes | None = None) -> list[Event]:
        """Client bytes (or ``data``) into the server; return its events."""
        if data is None:
            data = self.client.data_to_send()
        return self.server.receive_data(data, self.now)

    def to_client(self) -> list[h2.events.Event]:
        events = feed_client(self.client, self.server.data_to_send())
        self.client_events.extend(events)
        return events

    def exchange(self) -> list[Event]:
        """Move bytes both ways until both sides are quiet; return the server's events."""
        events: list[Event] = []
        pending = self.client.data_to_send()
        for _ in range(20):
            if not pending:
                break
            events += self.server.receive_data(pending, self.now)
            self.to_client()
            pending = self.client.data_to_send()
        return events

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        body: bytes | None = None,
        extra: Sequence[tuple[str, str]] = (),
        end: bool = True,
    ) -> tuple[int, list[Event]]:
        sid = self.client.get_next_available_stream_id()
        headers = request_headers(method, path, extra=extra)
        self.client.send_headers(sid, headers, end_stream=end and body is None)
        if body is not None:
            self.client.send_data(sid, body, end_stream=end)
        return sid, self.to_server()

    def respond(self, sid: int, body: bytes = b"ok", status: int = 200) -> None:
        self.server.send(SendResponse(sid, status, ((b"content-length", b"%d" % len(body)),)))
        self.server.send(SendData(sid, body, end_stream=True))

    def client_body(self, sid: int) -> bytes:
        return b"".join(
            bytes(e.data)
            for e in self.client_events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )

    def response_headers(self, sid: int) -> list[tuple[bytes, bytes]]:
        for e in self.client_events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                return [(bytes(n), bytes(v)) for n, v in e.headers]
        raise AssertionError(f"no response on stream {sid}")

    def client_ended(self, sid: int) -> bool:
        return any(
            isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in self.client_events
        )


def only(events: Sequence[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


# ----------------------------------------------------------------------------- requests


def test_get_request_events() -> None:
    pair = Pair()
    sid, events = pair.request("GET", "/items?q=1&r=%20", extra=[("user-agent", "t/1")])
    assert sid == 1
    assert events == [
        RequestReceived(
            stream_id=1,
            method="GET",
            target=b"/items?q=1&r=%20",
            headers=((b"host", b"example.com"), (b"user-agent", b"t/1")),
            http_version="2",
            body_expected=False,
        ),
        StreamEnded(1),
    ]
    assert not pair.server.idle and pair.server.open_stream_count == 1
    pair.respond(sid, b"hello")
    pair.to_client()
    assert pair.client_body(sid) == b"hello" and pair.client_ended(sid)
    assert pair.server.idle


def test_host_header_is_not_duplicated() -> None:
    pair = Pair()
    _, events = pair.request(extra=[("host", "example.com")])
    (request,) = only(events, RequestReceived)
    assert isinstance(request, RequestReceived)
    assert [v for n, v in request.headers if n == b"host"] == [b"example.com"]


def test_post_body_events() -> None:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/upload"))
    events = pair.to_server()
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].body_expected and events[0].method == "POST"
    pair.client.send_data(sid, b"abc")
    pair.client.send_data(sid, b"def", end_stream=True)
    assert pair.to_server() == [
        BodyReceived(sid, b"abc"),
        BodyReceived(sid, b"def"),
        StreamEnded(sid),
    ]


def test_request_trailers_end_the_stream() -> None:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/", extra=[("te", "trailers")]))
    pair.client.send_data(sid, b"x")
    pair.client.send_headers(sid, [(b"x-checksum", b"1")], end_stream=True)
    events = pair.to_server()
    assert events[1:] == [
        BodyReceived(sid, b"x"),
        TrailersReceived(sid, ((b"x-checksum", b"1"),)),
        StreamEnded(sid),
    ]


def test_request_trailers_without_body() -> None:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/"))
    pair.client.send_headers(sid, [(b"grpc-status", b"0")], end_stream=True)
    events = pair.to_server()
    assert isinstance(events[0], RequestReceived) and events[0].body_expected
    assert events[1:] == [TrailersReceived(sid, ((b"grpc-status", b"0"),)), StreamEnded(sid)]


def test_response_trailers_are_a_final_headers_frame() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.server.send(SendResponse(sid, 200, ((b"trailer", b"x-checksum"),)))
    pair.server.send(SendData(sid, b"body"))
    pair.server.send(
        SendTrailers(
            sid, ((b"X-Checksum", b"abc"), (b":status", b"200"), (b"connection", b"close"))
        )
    )
    events = pair.to_client()
    trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert [list(t.headers) for t in trailers] == [[(b"x-checksum", b"abc")]]
    assert pair.client_body(sid) == b"body" and pair.client_ended(sid)
    assert pair.server.open_stream_count == 0


def test_response_trailers_wait_for_the_flow_control_window() -> None:
    pair = Pair(initial_window=10)
    sid, _ = pair.request()
    pair.server.send(SendResponse(sid, 200))
    pair.server.send(SendData(sid, b"x" * 25))
    pair.server.send(SendTrailers(sid, ((b"x-done", b"1"),)))
    events = pair.to_client()
    assert not [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert pair.server.pending_bytes(sid) == 15
    for _ in range(2):
        pair.client.increment_flow_control_window(10, sid)
        pair.to_server()
        pair.to_client()
    assert pair.client_body(sid) == b"x" * 25
    trailers = [e for e in pair.client_events if isinstance(e, h2.events.TrailersReceived)]
    assert len(trailers) == 1 and pair.client_ended(sid)
    # Trailers after the end of the response are refused.
    with pytest.raises(StreamClosedError):
        pair.server.send(SendTrailers(sid, ((b"x-late", b"1"),)))


def test_trailers_of_a_head_response_are_dropped() -> None:
    pair = Pair()
    sid, _ = pair.request("HEAD")
    pair.server.send(SendResponse(sid, 200, ((b"content-length", b"4"),)))
    pair.server.send(SendTrailers(sid, ((b"x-done", b"1"),)))
    pair.to_client()
    assert pair.client_ended(sid)
    assert not [e for e in pair.client_events if isinstance(e, h2.events.TrailersReceived)]


# ----------------------------------------------------------------------------- responses


def test_response_headers_status_and_connection_specific_headers_stripped() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.server.send(
        SendResponse(
            sid,
            201,
            (
                (b"Content-Type", b"text/plain"),
                (b"Connection", b"close"),
                (b"keep-alive", b"timeout=5"),
                (b"proxy-connection", b"x"),
                (b"transfer-encoding", b"chunked"),
                (b"upgrade", b"h2c"),
                (b"x-custom", b"1"),
            ),
        )
    )
    pair.server.send(SendData(sid, b"created", end_stream=True))
    pair.to_client()
    assert pair.response_headers(sid) == [
        (b":status", b"201"),
        (b"content-type", b"text/plain"),
        (b"x-custom", b"1"),
    ]
    assert pair.client_body(sid) == b"created"


@pytest.mark.parametrize(
    "field",
    [
        (b"x-a", b"a\r\nx-injected: 1"),
        (b"x-a", b"a\x00b"),
        (b"x-a", b" padded"),
        (b"bad name", b"v"),
        (b"x:a", b"v"),
    ],
)
def test_invalid_response_fields_are_refused(field: tuple[bytes, bytes]) -> None:
    """Our checks replace h2's outbound validation (off for speed): a field that would
    be malformed on the wire raises, nothing is sent."""
    pair = Pair()
    sid, _ = pair.request()
    with pytest.raises(LocalProtocolError):
        pair.server.send(SendResponse(sid, 200, (field,)))
    pair.to_client()
    assert not any(isinstance(e, h2.events.ResponseReceived) for e in pair.client_events)


def test_headers_only_response_and_informational() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.server.send(SendInformational(sid, 103, ((b"link", b"</a.css>; rel=preload"),)))
    pair.server.send(SendInformational(sid, 101))  # never valid in HTTP/2: ignored
    pair.server.send(SendResponse(sid, 204))
    pair.server.send(SendData(sid, b"", end_stream=True))
    events = pair.to_client()
    interim = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
    assert len(interim) == 1
    assert (b":status", b"103") in interim[0].headers
    assert pair.response_headers(sid)[0] == (b":status", b"204")
    assert pair.client_ended(sid) and pair.server.idle


def test_send_on_unknown_or_finished_stream_raises() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.respond(sid)
    with pytest.raises(StreamClosedError):
        pair.server.send(SendData(sid, b"late"))


def test_one_large_chunk_goes_out_frame_by_frame() -> None:
    pair = Pair(initial_window=2**31 - 1)
    pair.client.increment_flow_control_window(2**30)
    pair.exchange()
    sid, _ = pair.request()
    body = bytes(range(256)) * 4096  # 1 MiB, one SendData
    pair.respond(sid, body)
    frames = parse_frames(pair.server.data_to_send())
    data_frames = [f for f in frames if isinstance(f, hf.DataFrame)]
    assert len(data_frames) == 64  # 16 KiB frames (the client's MAX_FRAME_SIZE)
    assert b"".join(f.data for f in data_frames) == body


# ----------------------------------------------------------------------------- flow control


def test_large_response_is_held_until_window_update() -> None:
    pair = Pair()  # the client's windows: 65,535 bytes (stream and connection)
    sid, _ = pair.request()
    body = b"x" * 200_000
    pair.respond(sid, body)
    assert pair.server.pending_bytes(sid) == 200_000 - 65_535
    pair.to_client()
    assert len(pair.client_body(sid)) == 65_535 and not pair.client_ended(sid)
    writable = False
    acked = 0
    for _ in range(20):
        received = len(pair.client_body(sid))
        pair.client.acknowledge_received_data(received - acked, sid)
        acked = received
        events = pair.to_server()
        writable = writable or StreamWritable(sid) in events
        pair.to_client()
        if pair.client_ended(sid):
            break
    assert pair.client_body(sid) == body
    assert writable and pair.server.pending_bytes(sid) == 0 and pair.server.idle


def test_stream_writable_only_once_queue_is_empty() -> None:
    pair = Pair(initial_window=10)
    sid, _ = pair.request()
    pair.server.send(SendResponse(sid, 200))
    pair.server.send(SendData(sid, b"0123456789abcdef"))
    assert pair.server.pending_bytes(sid) == 6
    pair.to_client()
    pair.client.increment_flow_control_window(6, stream_id=sid)
    assert StreamWritable(sid) in pair.to_server()
    assert pair.server.pending_bytes(sid) == 0


def test_zero_initial_window_holds_everything() -> None:
    pair = Pair(initial_window=0)
    sid, _ = pair.request()
    pair.respond(sid, b"abc")
    assert pair.server.pending_bytes(sid) == 3
    pair.to_client()
    assert pair.client_body(sid) == b"" and not pair.server.idle


def test_request_body_window_opens_only_on_acknowledge() -> None:
    pair = Pair(Config(h2_stream_window=16_384))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/"))
    pair.client.send_data(sid, b"a" * 16_384)
    events = pair.to_server()
    assert BodyReceived(sid, b"a" * 16_384) in events
    pair.to_client()
    assert pair.client.local_flow_control_window(sid) == 0  # no WINDOW_UPDATE yet
    pair.server.acknowledge(sid, 10_000)
    pair.to_client()
    assert pair.client.local_flow_control_window(sid) == 10_000


def test_padding_is_credited_without_acknowledge() -> None:
    pair = Pair(Config(h2_stream_window=16_384))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/"))
    # 100 frames of 3 data bytes + 200 padding: 20,400 flow-controlled bytes through a
    # 16 KiB window, though the application acknowledges nothing.
    for _ in range(100):
        pair.client.send_data(sid, b"abc", pad_length=200)
        assert BodyReceived(sid, b"abc") in pair.to_server()
        pair.to_client()
    assert pair.client.local_flow_control_window(sid) > 16_384 - 300 - 8_192


def test_body_after_complete_response_is_refused_without_error() -> None:
    pair = Pair(Config(h2_stream_window=16_384))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", "/"))
    pair.client.send_data(sid, b"a" * 1000)
    pair.to_server()
    pair.respond(sid, b"early answer", status=413)
    out = pair.server.data_to_send()
    assert rst_codes(out) == {sid: NO_ERROR}  # stop sending, your response is complete
    feed_client(pair.client, out)
    # Body bytes already in flight are dropped but their connection window comes back.
    pair.to_server(raw_data(sid, b"b" * 5000))
    assert pair.server.idle and not pair.server.should_close


# ----------------------------------------------------------------------------- resets


def test_client_reset_becomes_stream_reset() -> None:
    pair = Pair(initial_window=0)
    sid, _ = pair.request()
    pair.respond(sid, b"held back")
    assert pair.server.pending_bytes(sid) > 0
    pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    assert pair.to_server() == [StreamReset(sid, CANCEL)]
    assert pair.server.pending_bytes(sid) == 0 and pair.server.idle
    with pytest.raises(StreamClosedError):
        pair.server.send(SendData(sid, b"more"))


def test_window_update_reset_and_new_request_in_one_read() -> None:
    """A client that opens a held stream's window and resets it in the same read (then
    opens another stream) ends that stream only; h2 has processed the reset before it
    reports the window update, so nothing may be sent on the stream for it.  Found by the
    soak test (httpx cancelling a streamed download)."""
    pair = Pair(initial_window=0)
    sid, _ = pair.request()
    pair.respond(sid, b"held back")
    assert pair.server.pending_bytes(sid) > 0
    pair.client.increment_flow_control_window(100, sid)
    pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    nxt = pair.client.get_next_available_stream_id()
    pair.client.send_headers(nxt, request_headers(), end_stream=True)
    events = pair.to_server()
    assert StreamReset(sid, CANCEL) in events
    assert [e.stream_id for e in only(events, RequestReceived)] == [nxt]
    assert not only(events, ProtocolError)
    pair.respond(nxt, b"fine")  # held by the zero window, but its head goes out
    pair.to_client()
    assert (b":status", b"200") in pair.response_headers(nxt)
    assert pair.client_body(sid) == b"" and pair.server.pending_bytes(sid) == 0


def test_reset_stream_command() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.server.send(ResetStream(sid))
    events = pair.to_client()
    resets = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert len(resets) == 1 and resets[0].error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
    assert pair.server.idle


def test_peer_goaway_lets_open_streams_finish() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.client.close_connection()  # a graceful GOAWAY (NO_ERROR)
    assert pair.to_server() == []
    assert not pair.server.should_close and not pair.server.push_enabled
    pair.respond(sid, b"still answered")
    out = pair.server.data_to_send()
    frames = parse_frames(out)
    assert [f.data for f in frames if isinstance(f, hf.DataFrame)] == [b"still answered"]
    # Then our own GOAWAY, and the connection is done.
    assert isinstance(frames[-1], hf.GoAwayFrame) and frames[-1].error_code == NO_ERROR
    assert pair.server.should_close and pair.server.said_goodbye


@pytest.mark.parametrize("split", [False, True], ids=["one-read", "two-reads"])
def test_frames_behind_a_graceful_goaway_in_the_same_read(split: bool) -> None:
    """Regression: a client's GOAWAY followed, in the same read, by its SETTINGS ACK
    made h2 (which closes its state machine on any GOAWAY) fail the connection with
    PROTOCOL_ERROR, so the request in flight was never answered."""
    server = HTTP2Connection(Config())
    client = client_connection()
    client.send_headers(1, request_headers(), end_stream=True)
    assert only(server.receive_data(client.data_to_send()), RequestReceived)
    feed_client(client, server.data_to_send())  # the client now owes a SETTINGS ACK
    data = bytes(hf.GoAwayFrame(0, last_stream_id=0).serialize()) + client.data_to_send()
    reads = [data[:20], data[20:]] if split else [data]
    for read in reads:
        assert server.receive_data(read) == []
    assert not server.should_close
    server.send(SendResponse(1, 200, ((b"content-length", b"2"),)))
    server.send(SendData(1, b"ok", end_stream=True))
    frames = parse_frames(server.data_to_send())
    assert [f.data for f in frames if isinstance(f, hf.DataFrame)] == [b"ok"]
    assert isinstance(frames[-1], hf.GoAwayFrame) and frames[-1].error_code == NO_ERROR


def test_peer_goaway_with_error_or_eof_end_open_streams() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.client.close_connection(error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
    events = pair.to_server()
    assert events[0] == StreamReset(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
    assert isinstance(events[1], ConnectionTerminated) and pair.server.should_close
    assert not pair.server.said_goodbye  # the client left: no lingering close

    pair = Pair()
    pair.client.close_connection()  # idle: the connection just ends
    assert isinstance(pair.to_server()[-1], ConnectionTerminated) and pair.server.should_close

    pair = Pair()
    sid, _ = pair.request()
    events = pair.server.receive_eof()
    assert events[0] == StreamReset(sid, 0) and isinstance(events[1], ConnectionTerminated)
    assert pair.server.receive_data(b"more") == [] and pair.server.receive_eof() == []


# ----------------------------------------------------------------------------- GOAWAY


def test_graceful_goaway_refuses_new_streams_and_finishes_open_ones() -> None:
    pair = Pair()
    first, _ = pair.request()
    second, _ = pair.request()
    pair.server.send(CloseConnection())
    assert not pair.server.should_close and not pair.server.push_enabled
    out = pair.server.data_to_send()
    goaways = [f for f in parse_frames(out) if isinstance(f, hf.GoAwayFrame)]
    assert [(g.error_code, g.last_stream_id) for g in goaways] == [(NO_ERROR, second)]
    feed_client(pair.client, out)
    # A stream the client opened before seeing the GOAWAY is refused (retry elsewhere).
    assert pair.to_server(raw_headers(5, request_headers())) == []
    assert rst_codes(pair.server.data_to_send()) == {5: REFUSED_STREAM}
    # The streams in flight are answered in full.
    pair.respond(first, b"one")
    assert not pair.server.should_close
    pair.respond(second, b"two")
    pair.to_client()
    assert pair.client_body(first) == b"one" and pair.client_body(second) == b"two"
    assert pair.client_ended(second) and pair.server.should_close
    pair.server.send(CloseConnection())  # idempotent


def test_goaway_when_idle_closes_at_once() -> None:
    pair = Pair()
    sid, _ = pair.request()
    pair.respond(sid)
    pair.to_client()
    pair.server.send(CloseConnection())
    assert pair.server.should_close
    assert goaway_codes(pair.server.data_to_send()) == [NO_ERROR]
    with pytest.raises(StreamClosedError):
        pair.server.send(SendData(sid, b""))


def test_idle_timeout_sends_goaway() -> None:
    pair = Pair()
    assert pair.server.idle
    events = pair.server.receive_timeout()
    assert events == [ConnectionTerminated(reason="idle timeout")]
    assert goaway_codes(pair.server.data_to_send()) == [NO_ERROR]
    assert pair.server.should_close and pair.server.receive_timeout() == []


# ----------------------------------------------------------------------------- push


def test_push_promises_even_streams() -> None:
    pair = Pair()
    assert pair.server.push_enabled
    sid, _ = pair.request(path="/")
    promised = [
        pair.server.push(sid, "GET", "/static/style.css", b"example.com", "https"),
        pair.server.push(sid, "GET", "/static/app.js", b"example.com", "https"),
    ]
    assert promised == [2, 4]
    for p in promised:
        assert p is not None
        pair.respond(p, b"pushed %d" % p)
    pair.respond(sid, b"page")
    events = pair.to_client()
    pushes = [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
    assert [(e.parent_stream_id, e.pushed_stream_id) for e in pushes] == [(1, 2), (1, 4)]
    assert (b":path", b"/static/style.css") in pushes[0].headers
    assert (b":authority", b"example.com") in pushes[0].headers
    assert pair.client_body(2) == b"pushed 2" and pair.client_body(4) == b"pushed 4"
    assert pair.client_body(sid) == b"page" and pair.server.idle


def test_push_refused_where_not_allowed() -> None:
    pair = Pair()
    sid, _ = pair.request()
    assert pair.server.push(2, "GET", "/x", b"e", "https") is None  # even parent
    assert pair.server.push(99, "GET", "/x", b"e", "https") is None  # unknown parent
    pair.respond(sid)
    assert pair.server.push(sid, "GET", "/x", b"e", "https") is None  # finished parent


def test_push_disabled_by_client_settings() -> None:
    pair = Pair(enable_push=False)
    assert not pair.server.push_enabled
    sid, _ = pair.request()
    assert pair.server.push(sid, "GET", "/static/style.css", b"example.com", "https") is None


# ----------------------------------------------------------------------------- h2c upgrade


def test_h2c_upgrade_answers_the_request_as_stream_1() -> None:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = client.initiate_upgrade_connection()  # queues the preface too
    request = RequestReceived(
        stream_id=1,
        method="GET",
        target=b"/up?x=1",
        headers=(
            (b"host", b"example.com"),
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", settings),
            (b"accept", b"*/*"),
        ),
        http_version="1.1",
        body_expected=False,
        upgrade=b"h2c",
    )
    assert valid_upgrade_settings(settings)
    server = HTTP2Connection(Config(), upgrade=(settings, request))
    assert server.initial_events() == [
        RequestReceived(
            stream_id=1,
            method="GET",
            target=b"/up?x=1",
            headers=((b"host", b"example.com"), (b"accept", b"*/*")),
            http_version="2",
            body_expected=False,
        ),
        StreamEnded(1),
    ]
    assert server.initial_events() == []
    assert server.receive_data(client.data_to_send()) == []  # preface + SETTINGS
    server.send(SendResponse(1, 200, ((b"content-length", b"2"),)))
    server.send(SendData(1, b"up", end_stream=True))
    events = feed_client(client, server.data_to_send())
    assert any(isinstance(e, h2.events.ResponseReceived) and e.stream_id == 1 for e in events)
    data = [e for e in events if isinstance(e, h2.events.DataReceived)]
    assert data[0].data == b"up" and server.idle
    # Stream 1 is taken: the client's next request is stream 3.
    client.send_headers(3, request_headers(), end_stream=True)
    assert isinstance(server.receive_data(client.data_to_send())[0], RequestReceived)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (b"", True),  # no settings at all: allowed
        (base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00\x64"), True),
        (b"AAM", False),  # not base64
        (base64.urlsafe_b64encode(b"\x00\x02\x00\x00\x00\x02"), False),  # ENABLE_PUSH=2
        (base64.urlsafe_b64encode(b"\x00\x05\x00\x00\x00\x00"), False),  # MAX_FRAME_SIZE=0
    ],
)
def test_upgrade_settings_are_checked(value: bytes, valid: bool) -> None:
    assert valid_upgrade_settings(value) is valid


# ----------------------------------------------------------------------------- defences


def flood_result(pair: Pair, data: bytes) -> tuple[list[Event], bytes]:
    events = pair.to_server(data)
    return events, pair.server.data_to_send()


def assert_calm_goaway(events: list[Event], out: bytes, pair: Pair) -> None:
    assert ENHANCE_YOUR_CALM in goaway_codes(out)
    assert isinstance(events[-1], ProtocolError) and pair.server.should_close


def test_rapid_reset_ends_connection() -> None:
    pair = Pair()
    for _ in range(300):
        sid = pair.client.get_next_available_stream_id()
        pair.client.send_headers(sid, request_headers(), end_stream=True)
        pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    events, out = flood_result(pair, pair.client.data_to_send())
    assert_calm_goaway(events, out, pair)
    assert "rapid reset" in events[-1].reason  # type: ignore[attr-defined]
    # More resets in one read than the budget holds: refused before h2 parses the
    # streams (none reaches the application).
    assert only(events, RequestReceived) == []
    assert pair.server.receive_data(raw_ping()) == []  # closed: further input ignored


def test_rapid_reset_over_several_reads_stops_at_the_limit() -> None:
    pair = Pair()
    events: list[Event] = []
    for _ in range(30):  # reads of 10 resets: the 21st read passes the 200 of the budget
        for _ in range(10):
            sid = pair.client.get_next_available_stream_id()
            pair.client.send_headers(sid, request_headers(), end_stream=True)
            pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        events += pair.to_server()
        if pair.server.should_close:
            break
    assert_calm_goaway(events, pair.server.data_to_send(), pair)
    assert len(only(events, RequestReceived)) == 200  # the budget's worth, then refused


def test_reset_budget_refills_over_time() -> None:
    pair = Pair(Config(h2_max_reset_streams=10, h2_reset_rate=5))
    for _ in range(60):  # 60 resets over 12 s: 5 per second, the refill rate
        pair.now += 0.2
        sid, _ = pair.request()
        pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        pair.to_server()
    assert not pair.server.should_close
    events: list[Event] = []
    for _ in range(11):  # a burst over the budget, at one instant
        sid, _ = pair.request()
        pair.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        events += pair.to_server()
    assert pair.server.should_close and "rapid reset" in events[-1].reason  # type: ignore[attr-defined]


def test_a_shared_reset_budget_is_not_refilled_by_reconnecting() -> None:
    """Connections of one client share its budgets (the backend's client table): the
    second connection starts where the first left off, not with a full budget."""
    config = Config(h2_max_reset_streams=10, h2_reset_rate=1)
    shared = FloodBudgets(config)
    first = Pair(config, flood_budgets=shared)
    events: list[Event] = []
    for _ in range(11):
        sid, _ = first.request()
        first.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        events += first.to_server()
    assert first.server.should_close
    second = Pair(config, flood_budgets=shared)
    sid, _ = second.request()
    second.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    events = second.to_server()
    assert second.server.should_close and "rapid reset" in events[-1].reason  # type: ignore[attr-defined]
    # Its own budget (the default: one per connection) would have let it reset 10 more.
    alone = Pair(config)
    sid, _ = alone.request()
    alone.client.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    alone.to_server()
    assert not alone.server.should_close


def test_resets_provoked_by_the_client_count_too() -> None:
    # "MadeYouReset": malformed requests and refused streams are resets the server sends.
    pair = Pair(Config(h2_max_reset_streams=5, h2_max_concurrent_streams=1))
    encoder = hpack.Encoder()
    events: list[Event] = []
    pair.to_server(raw_headers(1, request_headers(), encoder=encoder, end_stream=False))
    for sid in range(3, 3 + 2 * 6, 2):
        bad = [*request_headers(), (b"connection", b"close")] if sid % 4 == 1 else request_headers()
        events += pair.to_server(raw_headers(sid, bad, encoder=encoder))
    assert goaway_codes(pair.server.data_to_send()) == [ENHANCE_YOUR_CALM]
    assert "rapid reset" in events[-1].reason  # type: ignore[attr-defined]


def test_window_update_flood_and_data_dribble() -> None:
    pair = Pair(Config(h2_max_control_frames=50))
    sid, _ = pair.request("POST", body=b"", end=False)
    # WINDOW_UPDATEs that pay for DATA we sent are fine ...
    pair.server.send(SendResponse(sid, 200))
    for _ in range(200):
        pair.server.send(SendData(sid, b"x" * 100))
        pair.to_client()
        pair.to_server(raw_window_update(sid, 100) + raw_window_update(0, 100))
    assert not pair.server.should_close
    # ... a flood of them is not.
    events, out = flood_result(pair, raw_window_update(0, 1) * 200)
    assert_calm_goaway(events, out, pair)

    pair = Pair(Config(h2_max_control_frames=50))
    sid, _ = pair.request("POST", body=b"", end=False)
    events, out = flood_result(pair, raw_data(sid, b"x") * 100)  # one byte per frame
    assert_calm_goaway(events, out, pair)


def test_ping_flood() -> None:
    pair = Pair(Config(h2_max_control_frames=100))
    events, out = flood_result(pair, raw_ping() * 150)
    assert_calm_goaway(events, out, pair)
    # The flood's own answers are dropped: it gets a GOAWAY back, not 150 PING ACKs.
    assert not [f for f in parse_frames(out) if isinstance(f, hf.PingFrame)]


def test_some_pings_are_answered() -> None:
    pair = Pair()
    pair.client.ping(b"12345678")
    pair.to_server()
    events = pair.to_client()
    assert any(isinstance(e, h2.events.PingAckReceived) for e in events)


def test_settings_flood() -> None:
    pair = Pair(Config(h2_max_control_frames=100))
    events, out = flood_result(pair, raw_settings({4: 65535}) * 150)
    assert_calm_goaway(events, out, pair)


def test_settings_ack_and_unknown_frame_floods() -> None:
    pair = Pair(Config(h2_max_control_frames=100))
    events, out = flood_result(pair, raw_settings(ack=True) * 150)
    assert_calm_goaway(events, out, pair)
    pair = Pair(Config(h2_max_control_frames=100))
    unknown = b"\x00\x00\x01\xfa\x00\x00\x00\x00\x00x"  # type 0xfa, 1 byte payload
    events, out = flood_result(pair, unknown * 150)
    assert_calm_goaway(events, out, pair)


def test_empty_data_frame_flood() -> None:
    pair = Pair(Config(h2_max_control_frames=100))
    pair.to_server(raw_headers(1, request_headers("POST"), end_stream=False))
    events, out = flood_result(pair, raw_data(1) * 200)
    assert_calm_goaway(events, out, pair)
    assert StreamReset(1, ENHANCE_YOUR_CALM) in events


def test_continuation_flood() -> None:
    pair = Pair()
    block = hpack.Encoder().encode(request_headers())
    headers = hf.HeadersFrame(1)  # no END_HEADERS: CONTINUATION frames must follow
    headers.data = block[:2]
    headers.flags.add("END_STREAM")
    data = bytes(headers.serialize()) + raw_continuation(1, b"") * 1000
    events = pair.to_server(data)
    assert isinstance(events[-1], ProtocolError) and pair.server.should_close
    assert goaway_codes(pair.server.data_to_send()) == [PROTOCOL_ERROR]  # exactly one


def test_continuation_on_another_stream_is_a_connection_error() -> None:
    pair = Pair()
    headers = hf.HeadersFrame(1)
    headers.data = hpack.Encoder().encode(request_headers())
    data = bytes(headers.serialize()) + raw_continuation(3, b"", end_headers=True)
    events = pair.to_server(data)
    assert isinstance(events[-1], ProtocolError)
    assert goaway_codes(pair.server.data_to_send()) == [PROTOCOL_ERROR]


def test_hpack_bomb() -> None:
    pair = Pair()
    encoder = hpack.Encoder()
    big = (b"x-bomb", b"a" * 4000)
    assert only(
        pair.to_server(raw_headers(1, [*request_headers(), big], encoder=encoder)), RequestReceived
    )
    # Each further reference to the table entry is one byte on the wire, 4 KB decoded.
    frame = raw_headers(3, [*request_headers(), *[big] * 1000], encoder=encoder)
    assert len(frame) < 2000
    events = pair.to_server(frame)
    assert isinstance(events[-1], ProtocolError)
    assert goaway_codes(pair.server.data_to_send()) == [ENHANCE_YOUR_CALM]


def test_header_list_limit_follows_max_header_bytes() -> None:
    pair = Pair(Config(max_header_bytes=4096))
    sid, events = pair.request(extra=[("x-a", "a" * 3000)])
    assert only(events, RequestReceived)
    # Over the limit: 431 on the stream, as on HTTP/1.1 and HTTP/3 (RFC 9113 10.5.1);
    # the block was decoded, so the connection goes on.
    sid, events = pair.request(extra=[("x-a", "a" * 5000)])
    assert events == []
    pair.to_client()
    assert pair.response_headers(sid)[0] == (b":status", b"431")
    assert not pair.server.should_close
    assert only(pair.request(extra=[("x-a", "a" * 3000)])[1], RequestReceived)
    # Past twice the limit the decoder stops: the connection ends (ENHANCE_YOUR_CALM).
    events = pair.request(extra=[("x-a", "a" * 9000)])[1]
    assert isinstance(events[-1], ProtocolError) and pair.server.should_close
    # The default (32 KiB) is enforced too, not h2's own 64 KiB.
    pair = Pair()
    sid, events = pair.request(extra=[("x-a", "a" * 40_000)])
    assert events == []
    pair.to_client()
    assert pair.response_headers(sid)[0] == (b":status", b"431")


@pytest.mark.parametrize(
    "extra",
    [
        (b"connection", b"keep-alive"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"te", b"gzip"),
    ],
)
def test_connection_specific_request_headers_are_a_stream_error(
    extra: tuple[bytes, bytes],
) -> None:
    # RFC 9113 8.2.2: malformed (8.1.1): a stream error of type PROTOCOL_ERROR.
    pair = Pair()
    assert pair.to_server(raw_headers(1, [*request_headers(), extra])) == []
    assert rst_codes(pair.server.data_to_send()) == {1: PROTOCOL_ERROR}
    assert not pair.server.should_close
    events = pair.to_server(raw_headers(3, request_headers()))
    assert isinstance(events[0], RequestReceived) and events[0].stream_id == 3


def test_te_trailers_is_allowed() -> None:
    pair = Pair()
    events = pair.to_server(raw_headers(1, [*request_headers(), (b"te", b"trailers")]))
    assert isinstance(events[0], RequestReceived)


MALFORMED = {
    "missing :path": [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"e")],
    "missing :method": [(b":path", b"/"), (b":scheme", b"https"), (b":authority", b"e")],
    "missing :scheme": [(b":method", b"GET"), (b":path", b"/"), (b":authority", b"e")],
    "empty :path": [(b":method", b"GET"), (b":path", b""), (b":scheme", b"https")],
    "uppercase name": [*request_headers(), (b"X-Upper", b"1")],
    "uppercase pseudo": [(b":METHOD", b"GET"), *request_headers()[1:]],
    "duplicate :path": [*request_headers(), (b":path", b"/again")],
    "pseudo after regular": [(b":method", b"GET"), (b"x-a", b"1"), *request_headers()[1:]],
    "unknown pseudo": [*request_headers(), (b":foo", b"bar")],
    ":status in request": [*request_headers(), (b":status", b"200")],
    "CR in value": [*request_headers(), (b"x-a", b"a\rb")],
    "space in name": [*request_headers(), (b"x a", b"1")],
    "value with surrounding space": [*request_headers(), (b"x-a", b" 1")],
    "host differs from :authority": [*request_headers(), (b"host", b"other.example")],
    "neither :authority nor host": [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"h")],
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_is_reset(name: str) -> None:
    pair = Pair()
    assert pair.to_server(raw_headers(1, MALFORMED[name])) == []
    assert rst_codes(pair.server.data_to_send()) == {1: PROTOCOL_ERROR}
    assert not pair.server.should_close and pair.server.idle
    events = pair.to_server(raw_headers(3, request_headers()))
    assert isinstance(events[0], RequestReceived)


def test_malformed_requests_count_towards_the_reset_limit() -> None:
    pair = Pair(Config(h2_max_reset_streams=5))
    data = b"".join(raw_headers(sid, MALFORMED["uppercase name"]) for sid in range(1, 20, 2))
    events = pair.to_server(data)
    assert isinstance(events[-1], ProtocolError) and pair.server.should_close
    assert ENHANCE_YOUR_CALM in goaway_codes(pair.server.data_to_send())


def test_malformed_trailers_reset_the_stream() -> None:
    pair = Pair()
    pair.to_server(raw_headers(1, request_headers("POST"), end_stream=False))
    events = pair.to_server(raw_headers(1, [(b":path", b"/x")], end_stream=True))
    assert events == [StreamReset(1, PROTOCOL_ERROR)]
    assert rst_codes(pair.server.data_to_send()) == {1: PROTOCOL_ERROR}
    assert not pair.server.should_close


def test_too_many_concurrent_streams_are_refused_one_by_one() -> None:
    pair = Pair(Config(h2_max_concurrent_streams=2))
    encoder = hpack.Encoder()  # one HPACK context for the connection
    for sid in (1, 3):
        block = raw_headers(sid, request_headers(), encoder=encoder)
        assert only(pair.to_server(block), RequestReceived)
    # The third is a stream error (RFC 9113 5.1.2): REFUSED_STREAM, the others go on.
    assert pair.to_server(raw_headers(5, request_headers(), encoder=encoder)) == []
    assert rst_codes(pair.server.data_to_send()) == {5: REFUSED_STREAM}
    assert pair.server.open_stream_count == 2 and not pair.server.should_close
    # Once one finishes, a new stream is served (and HPACK state stayed in sync).
    pair.respond(1)
    assert only(pair.to_server(raw_headers(7, request_headers(), encoder=encoder)), RequestReceived)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # not the preface
        PREFACE + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # window 0 increment
        PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x01",  # SETTINGS on a stream
        PREFACE + raw_settings() + raw_data(1, b"x"),  # DATA on an idle stream
        PREFACE + raw_settings() + raw_rst(1),  # RST on an idle stream
        PREFACE + raw_settings() + b"\x00\x40\x01\x00\x00\x00\x00\x00\x00" + b"x" * 16385,
    ],
    ids=["http1", "zero-window-update", "settings-on-stream", "data-idle", "rst-idle", "big"],
)
def test_protocol_violations_become_events(data: bytes) -> None:
    server = HTTP2Connection(Config())
    server.data_to_send()
    events = server.receive_data(data)
    assert isinstance(events[-1], ProtocolError) and server.should_close
    assert len(goaway_codes(server.data_to_send())) == 1
    assert server.receive_data(data) == []


def test_oversized_frame_header_is_refused_before_its_payload() -> None:
    server = HTTP2Connection(Config())
    # A DATA frame header announcing 16 MiB - 1: refused at once, not buffered.
    events = server.receive_data(PREFACE + raw_settings() + b"\xff\xff\xff\x00\x00\x00\x00\x00\x01")
    assert isinstance(events[-1], ProtocolError) and server.should_close
    assert goaway_codes(server.data_to_send()) == [0x6]  # FRAME_SIZE_ERROR


def test_frame_length_check_follows_frames_split_anywhere() -> None:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST"))
    pair.client.send_data(sid, b"z" * 16_384, end_stream=True)
    data = pair.client.data_to_send()
    events: list[Event] = []
    for i in range(0, len(data), 7):
        events += pair.to_server(data[i : i + 7])
    assert b"".join(e.data for e in events if isinstance(e, BodyReceived)) == b"z" * 16_384
    assert events[-1] == StreamEnded(sid)


# ----------------------------------------------------------------------------- limits


def test_declared_body_over_limit_is_answered_413_without_the_application() -> None:
    pair = Pair(Config(max_body_bytes=1000))
    sid, events = pair.request("POST", extra=[("content-length", "5000")], end=False)
    assert events == []  # no handler runs
    pair.to_client()
    assert pair.response_headers(sid)[0] == (b":status", b"413")
    assert pair.client_body(sid).startswith(b"413 ")
    resets = [e for e in pair.client_events if isinstance(e, h2.events.StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(sid, NO_ERROR)]
    assert pair.server.idle and not pair.server.should_close


def test_streamed_body_over_limit_is_answered_413() -> None:
    pair = Pair(Config(max_body_bytes=1000))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST"))
    pair.client.send_data(sid, b"a" * 800)
    assert pair.to_server()[1:] == [BodyReceived(sid, b"a" * 800)]
    pair.client.send_data(sid, b"b" * 800)
    assert pair.to_server() == [StreamReset(sid, CANCEL)]  # the handler is cancelled
    pair.to_client()
    assert pair.response_headers(sid)[0] == (b":status", b"413")
    assert pair.server.idle
    # More body bytes in flight are dropped.
    assert pair.to_server(raw_data(sid, b"c" * 500)) == []


def test_body_over_limit_after_response_started_resets() -> None:
    pair = Pair(Config(max_body_bytes=10))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST"))
    pair.to_server()
    pair.server.send(SendResponse(sid, 200))
    pair.client.send_data(sid, b"x" * 20)
    assert pair.to_server() == [StreamReset(sid, CANCEL)]
    assert rst_codes(pair.server.data_to_send()) == {sid: CANCEL}


def test_no_body_limit() -> None:
    pair = Pair(Config(max_body_bytes=None, h2_stream_window=1 << 20))
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, request_headers("POST", extra=[("content-length", "100000")]))
    events = pair.to_server()
    for size in [16_384] * 6 + [1_696]:  # 100,000 bytes in frames of at most 16 KiB
        pair.client.send_data(sid, b"x" * size)
        events += pair.to_server()
    assert sum(len(e.data) for e in events if isinstance(e, BodyReceived)) == 100_000


def test_too_many_header_fields_is_answered_431() -> None:
    pair = Pair(Config(max_header_count=5))
    extra = [(f"x-{i}", "v") for i in range(6)]
    sid, events = pair.request(extra=extra)
    assert events == []
    pair.to_client()
    assert pair.response_headers(sid)[0] == (b":status", b"431")
    assert pair.client_ended(sid) and pair.server.idle


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_responses_without_content_drop_the_body(method: str, status: int) -> None:
    pair = Pair()
    sid, _ = pair.request(method)
    # HEAD: the Content-Length of the GET; 204/304 carry none (the framework omits it).
    headers = ((b"content-length", b"5"),) if method == "HEAD" else ()
    pair.server.send(SendResponse(sid, status, headers))
    pair.server.send(SendData(sid, b"hello", end_stream=True))
    pair.to_client()  # h2 raises on content after HEAD, 204 or 304
    assert pair.client_body(sid) == b"" and pair.client_ended(sid)
    assert pair.server.idle


def test_window_update_of_zero_on_a_stream_is_a_stream_error() -> None:
    """RFC 9113 6.9: an increment of 0 on a stream resets that stream (PROTOCOL_ERROR);
    the connection and its other streams go on.  (hyperframe refuses the frame, which h2
    made a connection error.)  The same wherever the reads split the other frames; a
    zero WINDOW_UPDATE frame itself split across reads is left to h2 (connection error)."""
    first = raw_headers(1, request_headers("POST"), end_stream=False)
    for split in (None, 3, len(first), len(first) + 13):
        pair = Pair()
        frames = first + raw_window_update(1, 0) + raw_headers(3, request_headers("GET"))
        pieces = [frames] if split is None else [frames[:split], frames[split:]]
        events: list[Event] = []
        for piece in pieces:
            events += pair.to_server(piece)
        out = pair.server.data_to_send()
        assert StreamReset(1, PROTOCOL_ERROR) in events, (split, events)
        assert rst_codes(out) == {1: PROTOCOL_ERROR}
        assert goaway_codes(out) == []
        assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [1, 3]
        assert not pair.server.should_close


def test_window_update_of_zero_on_the_connection_or_an_idle_stream_ends_it() -> None:
    for frame in (raw_window_update(0, 0), raw_window_update(5, 0)):
        pair = Pair()
        events = pair.to_server(frame)
        assert isinstance(events[-1], ProtocolError)
        assert goaway_codes(pair.server.data_to_send()) == [PROTOCOL_ERROR]
