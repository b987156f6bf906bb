"""Property tests for httpy.core.http1 (the server side of an HTTP/1.1 connection).

1. Robustness: arbitrary bytes (and mutated requests), split into arbitrary chunks, with or
   without a final EOF or timeout, never make ``receive_data`` / ``receive_eof`` /
   ``receive_timeout`` raise; only events come out, and the connection stays consistent
   (one ProtocolError at most, last; once closing, further input yields nothing).
2. Chunk-split invariance: for generated valid requests, possibly pipelined, the events
   (bodies joined per stream) are the same whether the bytes come whole or in pieces.
3. Differential against h11: for generated valid requests, the method, target, headers
   and body we report equal what a bare ``h11.Connection(h11.SERVER)`` parses, and equal
   what was generated.
4. Invalid framing (bare CR/LF inserted, conflicting Content-Length, CL+TE, CL lists):
   we either reject with a 4xx/5xx ProtocolError or report exactly the requests h11
   parses, never a different one.

Each request is answered (by a tiny application: 200 with a Content-Length body, 405 for
CONNECT) as soon as it has ended, then ``receive_data(b"")`` picks up pipelined requests,
which is how the backend drives the core.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass, field

import h11
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from httpy.core import http1, http1_head
from httpy.core.config import Config
from httpy.core.events import (
    BodyReceived,
    ConnectionTerminated,
    Event,
    ProtocolError,
    RequestReceived,
    SendData,
    SendResponse,
    StreamEnded,
    StreamReset,
    TrailersReceived,
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


# ------------------------------------------------------------------- driving the core


@dataclass
class Run:
    """Everything one connection reported, with the application's answers applied."""

    events: list[Event] = field(default_factory=list)
    out: bytes = b""
    conn: HTTP1Connection = field(default_factory=HTTP1Connection)
    requests: dict[int, RequestReceived] = field(default_factory=dict)
    waiting: RequestReceived | None = None  # ended, not answered yet


def _answer(conn: HTTP1Connection, request: RequestReceived) -> None:
    # A 2xx to CONNECT switches protocols in h11; a web application answers 405.
    status = 405 if request.method == "CONNECT" else 200
    body = b"response to " + request.target[:50]
    conn.send(SendResponse(request.stream_id, status, ((b"content-length", b"%d" % len(body)),)))
    conn.send(SendData(request.stream_id, body, end_stream=True))


def _record(run: Run, events: list[Event]) -> None:
    run.events += events
    for event in events:
        if isinstance(event, RequestReceived):
            run.requests[event.stream_id] = event
    if events and isinstance(events[-1], StreamEnded) and not run.conn.should_close:
        run.waiting = run.requests[events[-1].stream_id]


def _answer_all(run: Run) -> None:
    """Answer the request that ended, then parse what is pipelined, until none is left."""
    while run.waiting is not None and not run.conn.should_close:
        request, run.waiting = run.waiting, None
        _answer(run.conn, request)
        _record(run, run.conn.receive_data(b""))


def drive(
    chunks: list[bytes],
    *,
    eof: bool = False,
    timeout: bool = False,
    answer_after: list[bool] | None = None,
    conn: HTTP1Connection | None = None,
) -> Run:
    """Feed ``chunks``; after chunk ``i`` answer waiting requests if ``answer_after[i]``
    (default: always), so that bytes also arrive while a request waits for its answer."""
    run = Run(conn=conn) if conn is not None else Run()
    for i, chunk in enumerate(chunks):
        _record(run, run.conn.receive_data(chunk))
        if answer_after is None or (answer_after[i] if i < len(answer_after) else True):
            _answer_all(run)
    if timeout:
        _record(run, run.conn.receive_timeout())
    if eof:
        _record(run, run.conn.receive_eof())
    _answer_all(run)
    run.out = run.conn.data_to_send()
    return run


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def merge_body(events: list[Event]) -> list[Event]:
    """Join adjacent BodyReceived events of one stream: how a body is cut is not meaningful."""
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


def check_consistent(run: Run) -> None:
    """Invariants of the event stream and of the connection after it."""
    conn = run.conn
    in_flight: int | None = None
    ended: set[int] = set()
    last_id = -1
    errors = [e for e in run.events if isinstance(e, ProtocolError)]
    assert len(errors) <= 1, run.events
    for event in run.events:
        if isinstance(event, RequestReceived):
            assert in_flight is None or in_flight in ended
            assert event.stream_id == last_id + 2
            last_id = in_flight = event.stream_id
        elif isinstance(event, BodyReceived):
            assert event.stream_id == in_flight and in_flight not in ended
            assert event.data
        elif isinstance(event, StreamEnded):
            assert event.stream_id == in_flight and in_flight not in ended
            ended.add(event.stream_id)
        elif isinstance(event, StreamReset):
            assert event.stream_id == in_flight and in_flight not in ended
        elif isinstance(event, TrailersReceived):
            assert event.stream_id == in_flight and in_flight not in ended
            assert event.headers
        elif isinstance(event, ProtocolError):
            assert 400 <= event.status <= 599
            assert event.reason
            assert event.stream_id in (None, in_flight)
        else:
            assert isinstance(event, ConnectionTerminated), event
    if errors:
        assert conn.should_close
        assert run.events[-1] is errors[0]  # nothing after a protocol error
    check_output(run)
    if conn.should_close:
        assert not conn.idle and not conn.awaiting_head and not conn.receiving_body
        assert conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []
        assert conn.receive_data(b"") == []
        assert conn.receive_eof() == []
        assert conn.receive_timeout() == []
        assert conn.data_to_send() == b""
    else:
        assert not (conn.idle and conn.receiving_body)
        assert conn.buffered_bytes >= 0


def check_output(run: Run) -> None:
    """What the server wrote parses, for a client, as one response per answered request
    (200, or 405 for CONNECT), then the error response if a ProtocolError was reported."""
    answered = [
        e
        for e in run.events
        if isinstance(e, RequestReceived) and StreamEnded(e.stream_id) in run.events
    ]
    statuses = [405 if e.method == "CONNECT" else 200 for e in answered]
    methods = [e.method.encode("ascii") for e in answered]
    errors = [e for e in run.events if isinstance(e, ProtocolError)]
    if errors:
        statuses.append(errors[0].status)
        methods.append(b"GET")  # the error answer always carries its short text body
    if b"HEAD" in methods:
        return
    client = h11.Connection(h11.CLIENT)
    client.receive_data(run.out)
    seen: list[int] = []
    for verb in methods:
        if seen:
            assert client.our_state is h11.DONE and client.their_state is h11.DONE
            client.start_next_cycle()
        client.send(h11.Request(method=verb, target="/", headers=[("Host", "t")]))
        client.send(h11.EndOfMessage())
        while True:
            event = client.next_event()
            assert event is not h11.NEED_DATA, (run.out, run.events)
            if isinstance(event, h11.Response):
                seen.append(event.status_code)
            elif isinstance(event, h11.EndOfMessage):
                break
    assert seen == statuses
    assert bytes(client.trailing_data[0]) == b""


# ------------------------------------------------------------- generating valid requests

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VCHAR = bytes(range(0x21, 0x7F))
OBS_TEXT = bytes(range(0x80, 0x100))
RESERVED = {
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"upgrade",
    b"expect",
    b"te",
    b"keep-alive",
}

token = st.text(alphabet=TCHAR, min_size=1, max_size=12).map(lambda s: s.encode("ascii"))
method = st.one_of(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"OPTIONS"]), token)
field_name = token.filter(lambda n: n.lower() not in RESERVED)
field_char = st.sampled_from(list(VCHAR + OBS_TEXT))


@st.composite
def field_value(draw: st.DrawFn) -> bytes:
    """field-content: visible characters (or obs-text) with single SP/HTAB runs inside."""
    words = draw(st.lists(st.lists(field_char, min_size=1, max_size=8), max_size=4))
    seps = draw(st.lists(st.sampled_from([b" ", b"\t", b"  "]), min_size=len(words)))
    out = b""
    for i, word in enumerate(words):
        out += (seps[i] if i else b"") + bytes(word)
    return out


target = st.one_of(
    st.just(b"/"),
    st.lists(st.sampled_from(list(VCHAR)), min_size=1, max_size=40).map(
        lambda cs: b"/" + bytes(cs)
    ),
)


@dataclass
class GenRequest:
    method: bytes
    target: bytes
    version: bytes
    headers: list[tuple[bytes, bytes]]  # as the server should report them
    body: bytes
    raw: bytes


@st.composite
def valid_request(draw: st.DrawFn) -> GenRequest:
    m = draw(method)
    # "*" is the asterisk-form, for OPTIONS only (RFC 9112 3.2.4); others get 400.
    t = draw(st.one_of(target, st.just(b"*"))) if m == b"OPTIONS" else draw(target)
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.1", b"1.0"]))
    lines: list[tuple[bytes, bytes, bytes]] = []  # name as sent, value as sent, value seen
    if version == b"1.1" or draw(st.booleans()):
        lines.append((draw(st.sampled_from([b"Host", b"host", b"HOST"])), b"example.com", b""))
    for _ in range(draw(st.integers(0, 6))):
        name = draw(field_name)
        value = draw(field_value())
        ows_left = draw(st.sampled_from([b"", b" ", b"\t", b" \t "]))
        ows_right = draw(st.sampled_from([b"", b"", b" ", b"\t"]))
        lines.append((name, ows_left + value + ows_right, value))
    framing = draw(st.sampled_from(["none", "length", "chunked"]))
    body = draw(st.binary(max_size=200)) if framing != "none" else b""
    if framing == "chunked" and version == b"1.0":
        framing = "length"  # chunked is HTTP/1.1 only (RFC 9112 6.1)
    payload = body
    if framing == "length":
        cl_name = draw(st.sampled_from([b"Content-Length", b"content-length"]))
        lines.insert(draw(st.integers(0, len(lines))), (cl_name, b"%d" % len(body), b""))
    elif framing == "chunked":
        te_name = draw(st.sampled_from([b"Transfer-Encoding", b"transfer-encoding"]))
        te_value = draw(st.sampled_from([b"chunked", b"Chunked", b"CHUNKED"]))
        lines.insert(draw(st.integers(0, len(lines))), (te_name, te_value, b""))
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        payload = b""
        start = 0
        for cut in [*cuts, len(body)]:
            piece = body[start:cut]
            start = cut
            if not piece:
                continue
            size = draw(st.sampled_from(["%x", "%X", "%04x"])) % len(piece)
            ext = draw(st.sampled_from([b"", b";a", b";name=value", b';q="x y"']))
            payload += size.encode() + ext + b"\r\n" + piece + b"\r\n"
        payload += b"0\r\n"
        if draw(st.booleans()):
            payload += draw(field_name) + b": " + draw(field_value()) + b"\r\n"
        payload += b"\r\n"
    head = b"%s %s HTTP/%s\r\n" % (m, t, version)
    head += b"".join(name + b":" + sent + b"\r\n" for name, sent, _seen in lines)
    seen = [(name.lower(), value_seen or sent.strip(b" \t")) for name, sent, value_seen in lines]
    for i, (name, _sent, _value) in enumerate(lines):
        if name.lower() == b"transfer-encoding":
            seen[i] = (b"transfer-encoding", b"chunked")
    return GenRequest(m, t, version, seen, body, head + b"\r\n" + payload)


# A pipeline of requests; an HTTP/1.0 request (or the end of the list) ends it.
pipeline = st.lists(valid_request(), min_size=1, max_size=4)


def expected_requests(requests: list[GenRequest]) -> list[GenRequest]:
    """The requests a server answers: up to and including the first HTTP/1.0 one."""
    out: list[GenRequest] = []
    for request in requests:
        out.append(request)
        if request.version == b"1.0":
            break
    return out


# ------------------------------------------------------------------ the h11 reference

Parsed = tuple[bytes, bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes]


def h11_reference(data: bytes) -> tuple[list[Parsed], list[Parsed], bool]:
    """What a bare ``h11.Connection(h11.SERVER)`` parses from ``data``, requests answered
    in turn: (request heads, complete requests with bodies, whether h11 rejected input).

    The one allowance: empty lines before a request line are skipped, as RFC 9112 2.2
    recommends and as the server does (h11 rejects them).
    """
    heads: list[Parsed] = []
    done: list[Parsed] = []
    conn = h11.Connection(h11.SERVER)
    data = _skip_empty_lines(data)
    if not data:  # h11 reads b"" as EOF
        return heads, done, False
    conn.receive_data(data)
    current: Parsed | None = None
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return heads, done, True
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return heads, done, False
        assert not isinstance(event, h11.ConnectionClosed)  # we never send EOF
        if isinstance(event, h11.Request):
            current = (
                bytes(event.method),
                bytes(event.target),
                bytes(event.http_version),
                tuple((bytes(n), bytes(v)) for n, v in event.headers),
                b"",
            )
            heads.append(current)
            body = b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            done.append((*current[:4], body))
            status = 405 if current[0] == b"CONNECT" else 200
            conn.send(h11.Response(status_code=status, headers=[("content-length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return heads, done, False  # h11 closes here (HTTP/1.0, Connection: close)
            rest, _closed = conn.trailing_data
            if rest.startswith(b"\r\n"):
                rest = _skip_empty_lines(rest)
                if not rest:
                    return heads, done, False
                conn = h11.Connection(h11.SERVER)
                conn.receive_data(rest)
            else:
                conn.start_next_cycle()


def _skip_empty_lines(data: bytes) -> bytes:
    while data.startswith(b"\r\n"):
        data = data[2:]
    return data


def reported(run: Run) -> tuple[list[Parsed], list[Parsed]]:
    """(request heads, complete requests with bodies) as the server reported them."""
    heads: list[Parsed] = []
    done: list[Parsed] = []
    bodies: dict[int, bytes] = {}
    by_id: dict[int, Parsed] = {}
    for event in run.events:
        if isinstance(event, RequestReceived):
            head = (
                event.method.encode("ascii"),
                event.target,
                event.http_version.encode("ascii"),
                event.headers,
                b"",
            )
            heads.append(head)
            by_id[event.stream_id] = head
            bodies[event.stream_id] = b""
        elif isinstance(event, BodyReceived):
            bodies[event.stream_id] += event.data
        elif isinstance(event, StreamEnded):
            done.append((*by_id[event.stream_id][:4], bodies[event.stream_id]))
    return heads, done


def generated(requests: list[GenRequest]) -> list[Parsed]:
    return [
        (r.method, r.target, r.version, tuple(r.headers), r.body)
        for r in expected_requests(requests)
    ]


# ---------------------------------------------------------------------- 1. robustness


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid pipeline with a few random byte insertions, deletions and replacements."""
    data = bytearray(b"".join(r.raw for r in draw(pipeline)))
    interesting = [b"\r", b"\n", b"\r\n", b"\x00", b" ", b"\t", b":", b",", b"0", b"\xff"]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(interesting), st.binary(min_size=1, max_size=3)))
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + len(piece)]
        else:
            data[at : at + len(piece)] = piece
    return bytes(data)


any_input = st.one_of(
    st.binary(max_size=300),
    mutated(),
    st.lists(st.sampled_from([b"GET / HTTP/1.1", b"\r\n", b"\n", b"\r", b"Host: a", b"0"])).map(
        b"".join
    ),
)


answers = st.lists(st.booleans(), max_size=12)
cut_points = st.lists(st.integers(min_value=0), max_size=10)


@given(data=any_input, cuts=cut_points, eof=st.booleans(), timeout=st.booleans(), answer=answers)
def test_arbitrary_bytes_never_raise(
    data: bytes, cuts: list[int], eof: bool, timeout: bool, answer: list[bool]
) -> None:
    run = drive(split(data, cuts), eof=eof, timeout=timeout, answer_after=answer)
    check_consistent(run)
    if eof:
        assert run.conn.should_close or any(isinstance(e, ConnectionTerminated) for e in run.events)


TINY = Config(max_request_line_bytes=20, max_header_bytes=60, max_header_count=2, max_body_bytes=5)


@given(data=any_input, cuts=cut_points, eof=st.booleans(), answer=answers)
def test_arbitrary_bytes_with_tiny_limits_never_raise(
    data: bytes, cuts: list[int], eof: bool, answer: list[bool]
) -> None:
    run = drive(split(data, cuts), eof=eof, answer_after=answer, conn=HTTP1Connection(TINY))
    check_consistent(run)


# ------------------------------------------------------------------ 2. split invariance


@given(requests=pipeline, cuts=cut_points, answer=answers)
def test_chunk_split_invariance(
    requests: list[GenRequest], cuts: list[int], answer: list[bool]
) -> None:
    raw = b"".join(r.raw for r in requests)
    whole = drive([raw])
    pieces = drive(split(raw, cuts), answer_after=answer)
    assert not any(isinstance(e, ProtocolError) for e in whole.events), whole.events
    assert merge_body(pieces.events) == merge_body(whole.events)
    assert pieces.out == whole.out
    check_consistent(whole)
    check_consistent(pieces)


@given(requests=pipeline)
def test_byte_at_a_time_invariance(requests: list[GenRequest]) -> None:
    raw = b"".join(r.raw for r in requests)
    whole = drive([raw])
    bytewise = drive([raw[i : i + 1] for i in range(len(raw))])
    assert merge_body(bytewise.events) == merge_body(whole.events)
    assert bytewise.out == whole.out


# --------------------------------------------------------------- 3. differential vs h11


@given(requests=pipeline, cuts=cut_points, answer=answers)
def test_same_requests_as_h11(
    requests: list[GenRequest], cuts: list[int], answer: list[bool]
) -> None:
    raw = b"".join(r.raw for r in requests)
    run = drive(split(raw, cuts), answer_after=answer)
    heads, done = reported(run)
    ref_heads, ref_done, ref_rejected = h11_reference(raw)
    assert not ref_rejected
    assert not any(isinstance(e, ProtocolError) for e in run.events), run.events
    assert heads == ref_heads
    assert done == ref_done
    assert done == generated(requests)
    announced = [e for e in run.events if isinstance(e, RequestReceived)]
    for event, request in zip(announced, expected_requests(requests), strict=True):
        fields = dict(request.headers)
        chunked = b"transfer-encoding" in fields
        assert event.body_expected == (chunked or int(fields.get(b"content-length", b"0")) > 0)
        assert not event.expects_continue and event.upgrade is None
    # Everything answered, in order, on a connection that is open unless HTTP/1.0 ended it.
    assert run.conn.should_close == any(r.version == b"1.0" for r in requests)


# ------------------------------------------------------------------ 4. invalid framing


@st.composite
def invalid_framing(draw: st.DrawFn) -> bytes:
    requests = draw(pipeline)
    victim = draw(st.integers(0, len(requests) - 1))
    raw = requests[victim].raw
    head_end = raw.index(b"\r\n\r\n") + 2  # after the last header line's CRLF
    kind = draw(
        st.sampled_from(
            ["bare-cr", "bare-lf", "cl-conflict", "cl-list", "cl-te", "te-cl", "anywhere"]
        )
    )
    if kind in ("bare-cr", "bare-lf"):
        at = draw(st.integers(0, head_end + 2))
        raw = raw[:at] + (b"\r" if kind == "bare-cr" else b"\n") + raw[at:]
    elif kind == "anywhere":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\r", b"\n", b"\r\n", b"\n\r"])) + raw[at:]
    else:
        a = draw(st.integers(0, 300))
        b = draw(st.integers(0, 300).filter(lambda v: v != a))
        extra = {
            "cl-conflict": b"Content-Length: %d\r\nContent-Length: %d\r\n" % (a, b),
            "cl-list": b"Content-Length: %d, %d\r\n" % (a, draw(st.sampled_from([a, b]))),
            "cl-te": b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % a,
            "te-cl": b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % a,
        }[kind]
        line_starts = [i + 2 for i in range(head_end - 1) if raw[i : i + 2] == b"\r\n"]
        at = draw(st.sampled_from(line_starts))
        raw = raw[:at] + extra + raw[at:]
    requests_raw = [r.raw for r in requests]
    requests_raw[victim] = raw
    return b"".join(requests_raw)


@given(data=invalid_framing(), cuts=cut_points, answer=answers)
def test_invalid_framing_rejected_or_parsed_like_h11(
    data: bytes, cuts: list[int], answer: list[bool]
) -> None:
    run = drive(split(data, cuts), answer_after=answer)
    check_consistent(run)
    heads, done = reported(run)
    ref_heads, ref_done, ref_rejected = h11_reference(data)
    # Every request head and every complete request we reported is the one h11 parsed
    # at that position: stricter than h11 is fine, different from h11 never.
    assert len(heads) <= len(ref_heads)
    assert heads == ref_heads[: len(heads)]
    assert len(done) <= len(ref_done)
    assert done == ref_done[: len(done)]
    errors = [e for e in run.events if isinstance(e, ProtocolError)]
    if errors:
        assert 400 <= errors[0].status <= 599
        assert run.conn.should_close
    else:
        assert (heads, done) == (ref_heads, ref_done)
        if ref_rejected:
            # h11 rejects an obviously bad first byte early (a lone CR, say); we wait for
            # the line, which may yet be an empty line (RFC 9112 2.2) or a bad one.
            assert run.conn.buffered_bytes > 0 and not run.conn.should_close


@given(requests=pipeline, data=st.data())
def test_conflicting_framing_is_always_rejected(
    requests: list[GenRequest], data: st.DataObject
) -> None:
    """Requests whose body length two parsers could disagree on never get through."""
    victim = data.draw(st.integers(0, len(requests) - 1))
    assume(all(r.version == b"1.1" for r in requests[:victim]))
    raw = requests[victim].raw
    at = raw.index(b"\r\n") + 2
    extra = data.draw(
        st.sampled_from(
            [
                b"Content-Length: 1\r\nContent-Length: 2\r\n",
                b"Content-Length: 3\r\nContent-Length: 3\r\n",
                b"Content-Length: 4, 4\r\n",
                b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
                b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
                b"Transfer-Encoding: chunked, identity\r\n",
                b"Transfer-Encoding: gzip\r\n",
            ]
        )
    )
    # The added fields replace the request's own framing, except that a Content-Length
    # joins a chunked request's Transfer-Encoding (CL + TE).
    raw = _drop_framing(raw, keep_te=b"Transfer-Encoding" not in extra)
    requests_raw = [r.raw for r in requests]
    requests_raw[victim] = raw[:at] + extra + raw[at:]
    run = drive([b"".join(requests_raw)])
    errors = [e for e in run.events if isinstance(e, ProtocolError)]
    assert len(errors) == 1, run.events
    assert errors[0].status in (400, 501)
    assert run.out.endswith(errors[0].reason.encode("ascii", "replace") + b"\n")
    assert len([e for e in run.events if isinstance(e, RequestReceived)]) == victim
    assert run.conn.should_close


def _drop_framing(raw: bytes, *, keep_te: bool = False) -> bytes:
    """``raw`` without its Content-Length (and, unless ``keep_te``, Transfer-Encoding)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    dropped = (b"content-length:",) if keep_te else (b"content-length:", b"transfer-encoding:")
    kept = [line for line in lines if not line.lower().startswith(dropped)]
    return b"\r\n".join(kept) + sep + rest
