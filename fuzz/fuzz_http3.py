"""Property tests for httpy.core.http3 (the server side of an HTTP/3 connection).

1. Datagrams: arbitrary bytes, and real client datagrams with bytes flipped, fed to a new
   connection and to an established one never make ``receive_datagram`` or
   ``handle_timer`` raise; an established connection still serves a request afterwards
   (unless the junk made it close, which must then be a ConnectionTerminated event).
2. HTTP/3 frame sequences: after a real handshake, an aioquic client sends arbitrary
   bytes on new request streams and on unidirectional streams of any type (control,
   QPACK, push, unknown), valid requests with random headers and bodies, resets and
   STOP_SENDING, interleaved with the application's answers.  QUIC carries them intact, so
   this reaches the H3 frame parser, QPACK and our request handling.  Nothing raises, and
   the event stream is consistent: requests arrive once each on client-initiated
   bidirectional streams; body, end and reset events name announced streams; nothing
   follows a reset or the end of the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("aioquic")

from aioquic.buffer import encode_uint_var
from aioquic.quic.configuration import QuicConfiguration
from hypothesis import given, settings
from hypothesis import strategies as st

from httpy.core.config import Config
from httpy.core.errors import LocalProtocolError, StreamClosedError
from httpy.core.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    RequestReceived,
    ResetStream,
    SendData,
    SendResponse,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from httpy.core.http3 import ConnectionIdIssued, ConnectionIdRetired, HTTP3Connection
from tests.support.h3client import MemoryLink, certificate_files

CONFIG = Config(max_body_bytes=50_000, max_header_count=20)
_SERVER_CONF: QuicConfiguration | None = None


def server_configuration() -> QuicConfiguration:
    global _SERVER_CONF
    if _SERVER_CONF is None:
        cert, key, _ = certificate_files()
        _SERVER_CONF = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
        _SERVER_CONF.load_cert_chain(str(cert), str(key))
    return _SERVER_CONF


def link() -> MemoryLink:
    return MemoryLink(
        lambda dcid: HTTP3Connection(
            CONFIG, server_configuration(), original_destination_connection_id=dcid
        )
    )


@dataclass
class Model:
    """What the events said so far, to check each new event against."""

    announced: set[int] = field(default_factory=set)
    ended: set[int] = field(default_factory=set)
    reset: set[int] = field(default_factory=set)
    terminated: bool = False

    def check(self, events: list[Any]) -> None:
        for event in events:
            assert isinstance(event, Event)
            if isinstance(event, ConnectionIdIssued | ConnectionIdRetired):
                continue
            assert not self.terminated, f"{event!r} after ConnectionTerminated"
            if isinstance(event, RequestReceived):
                sid = event.stream_id
                assert sid % 4 == 0, "requests come on client-initiated bidirectional streams"
                assert sid not in self.announced
                self.announced.add(sid)
                if not event.body_expected:
                    self.ended.add(sid)
            elif isinstance(event, BodyReceived | StreamEnded | TrailersReceived):
                sid = event.stream_id
                assert sid in self.announced and sid not in self.reset
                assert sid not in self.ended, f"{event!r} after the end of the request"
                if isinstance(event, StreamEnded):
                    self.ended.add(sid)
            elif isinstance(event, StreamReset):
                assert event.stream_id in self.announced
                self.reset.add(event.stream_id)
            elif isinstance(event, ConnectionTerminated):
                self.terminated = True


def answer(pair: MemoryLink, model: Model, size: int, reset: bool) -> None:
    """The application answers every announced, open request."""
    for sid in sorted(model.announced - model.reset):
        try:
            if reset:
                pair.server.send(ResetStream(sid))
            else:
                pair.server.send(SendResponse(sid, 200, ((b"x-size", b"%d" % size),)))
                pair.server.send(SendData(sid, b"r" * size, end_stream=True))
        except (StreamClosedError, LocalProtocolError):
            pass  # already answered, or reset by the peer meanwhile
        model.reset.add(sid)  # answered: not again


# ----------------------------------------------------------------------------- datagrams


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=1400), max_size=6))
def test_arbitrary_datagrams_to_a_new_connection_never_raise(datagrams: list[bytes]) -> None:
    conn = HTTP3Connection(
        CONFIG, server_configuration(), original_destination_connection_id=b"\x01" * 8
    )
    model = Model()
    now = 1000.0
    for data in datagrams:
        model.check(conn.receive_datagram(data, ("10.0.0.2", 4433), now))
        conn.datagrams_to_send(now)
        now += 0.01
    timer = conn.get_timer()
    if timer is not None:
        model.check(conn.handle_timer(timer))


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=1399), st.integers(1, 255)), max_size=8),
    st.binary(max_size=200),
)
def test_corrupted_datagrams_to_an_established_connection(
    flips: list[tuple[int, int]], junk: bytes
) -> None:
    pair = link()
    model = Model()
    model.check(pair.take_server_events())
    sid = pair.client.get_next_available_stream_id()
    pair.client_h3.send_headers(
        sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"), (b":path", b"/")]
    )
    for data, _ in pair.client.datagrams_to_send(pair.now):
        corrupted = bytearray(data)
        for index, xor in flips:
            if index < len(corrupted):
                corrupted[index] ^= xor
        model.check(pair.server.receive_datagram(bytes(corrupted), MemoryLink.CLIENT, pair.now))
    model.check(pair.server.receive_datagram(junk, MemoryLink.CLIENT, pair.now))
    pair.pump()
    pair.run_timers(1.0)  # retransmissions repair what the flips broke
    model.check(pair.take_server_events())


# ------------------------------------------------------------------------ frame sequences

FRAME_TYPES = st.sampled_from([0x0, 0x1, 0x3, 0x4, 0x5, 0x7, 0xD, 0x21, 0x41])
RAW_FRAME = st.builds(
    lambda kind, payload: encode_uint_var(kind) + encode_uint_var(len(payload)) + payload,
    FRAME_TYPES,
    st.binary(max_size=40),
)
HEADER_NAME = st.sampled_from(
    [b"accept", b"content-length", b"te", b"connection", b"x-a", b"Upper", b":status", b""]
)
# Mostly valid requests (so that bodies, resets and answers get exercised), some not.
HEADERS = st.one_of(
    st.just([]),
    st.just([(b"x-a", b"1")]),
    st.lists(st.tuples(HEADER_NAME, st.binary(max_size=12)), max_size=5),
)

OPERATIONS = st.one_of(
    st.tuples(st.just("request"), HEADERS, st.binary(max_size=3000), st.booleans()),
    st.tuples(st.just("request"), st.just([]), st.binary(max_size=100), st.just(True)),
    st.tuples(st.just("raw_bidi"), st.lists(RAW_FRAME, max_size=4), st.binary(max_size=20)),
    st.tuples(
        st.just("raw_uni"),
        st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x21, 0x54]),
        st.lists(RAW_FRAME, max_size=3),
    ),
    st.tuples(st.just("reset"), st.integers(min_value=0, max_value=10)),
    st.tuples(st.just("answer"), st.integers(min_value=0, max_value=5000), st.booleans()),
    st.tuples(st.just("wait"), st.floats(min_value=0.0, max_value=2.0)),
)


def apply(pair: MemoryLink, model: Model, op: tuple[Any, ...]) -> None:
    client = pair.client
    kind = op[0]
    if kind == "request":
        _, extra, body, end = op
        sid = client.get_next_available_stream_id()
        block = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a")]
        block += [(b":path", b"/"), *extra]
        try:
            pair.client_h3.send_headers(sid, block, end_stream=not body and end)
            if body:
                pair.client_h3.send_data(sid, body, end_stream=end)
        except Exception:  # the client refusing its own bad input is fine
            return
    elif kind == "raw_bidi":
        _, frames, tail = op
        sid = client.get_next_available_stream_id()
        client.send_stream_data(sid, b"".join(frames) + tail, end_stream=True)
    elif kind == "raw_uni":
        _, stream_type, frames = op
        sid = client.get_next_available_stream_id(is_unidirectional=True)
        client.send_stream_data(sid, encode_uint_var(stream_type) + b"".join(frames))
    elif kind == "reset":
        sid = op[1] * 4
        if sid < client._local_next_stream_id_bidi:
            try:
                client.reset_stream(sid, 0x10C)
                client.stop_stream(sid, 0x10C)
            except ValueError:
                pass
    elif kind == "answer":
        answer(pair, model, op[1], op[2])
    elif kind == "wait":
        pair.run_timers(op[1])


@settings(max_examples=150)
@given(st.lists(OPERATIONS, min_size=1, max_size=12))
def test_frame_sequences_never_raise_and_stay_consistent(ops: list[tuple[Any, ...]]) -> None:
    pair = link()
    model = Model()
    model.check(pair.take_server_events())
    for op in ops:
        if pair.server.terminated:
            break
        apply(pair, model, op)
        pair.pump()
        model.check(pair.take_server_events())
    if not pair.server.terminated:
        answer(pair, model, 10, False)
        pair.pump()
        model.check(pair.take_server_events())
    assert pair.server.open_stream_count <= len(model.announced)
