"""RFC 9113 conformance, frame by frame, against a live server (asyncio and trio, h2c and TLS).

Organised like h2spec's ``http2`` and ``hpack`` groups (section numbers are RFC 7540's,
as h2spec names them; the rules are the same in RFC 9113), plus cases h2spec lacks.  Each
case opens a connection, completes the SETTINGS handshake as h2spec does, sends raw frames
(hyperframe, hpack) and checks what comes back:

* ``connection_error(codes)``: a GOAWAY carrying one of ``codes``, then the connection
  closes (stricter than h2spec, which also accepts a bare close);
* ``stream_error(codes)``: RST_STREAM with one of ``codes`` (or a GOAWAY with one: RFC 9113
  5.4 lets a stream error be escalated);
* ``frame(predicate)``: a frame the server must send (a PING ACK, a response);
* ``closed()``: the connection ends.

The client is a plain blocking socket: every byte is under the test's control.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hpack
import hyperframe.frame as hf
import pytest

from httpy import App, Request, Response
from httpy.backends.tls import generate_dev_certificate
from tests.support.servers import server_thread

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: What h2spec 3.5/2 sends.
INVALID_PREFACE = b"INVALID CONNECTION PREFACE\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x5, 0x6, 0x7, 0x8
COMPRESSION_ERROR = 0x9
MAX_CONCURRENT_STREAMS = 100
TIMEOUT = 5.0


def make_app() -> App:
    app = App()

    @app.route("/", methods=["GET", "POST"])
    async def index(request: Request) -> Response:
        await request.body()
        return Response.text("conformance body\n")  # more than 5 bytes (flow-control cases)

    return app


# ----------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return generate_dev_certificate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def servers(
    request: pytest.FixtureRequest, certs: tuple[Path, Path, Path]
) -> Iterator[dict[str, tuple[str, int]]]:
    """One h2c and one TLS server on the backend, shared by the module's cases."""
    backend = str(request.param)
    cert, key, _ = certs
    options = {"h2_max_concurrent_streams": MAX_CONCURRENT_STREAMS}
    with (
        server_thread(make_app(), backend, **options) as h2c,
        server_thread(
            make_app(),
            backend,
            binds=(),
            tls_binds=("127.0.0.1:0",),
            certfile=str(cert),
            keyfile=str(key),
            **options,
        ) as tls,
    ):
        yield {"h2c": h2c, "tls": tls}


@pytest.fixture(params=["h2c", "tls"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------------------- the client


class Peer:
    """A raw HTTP/2 client: frames out as given, frames in as parsed."""

    def __init__(self, sock: socket.socket, *, tls: bool = False) -> None:
        self.sock = sock
        self.tls = tls
        self.buffer = b""
        self.encoder = hpack.Encoder()
        self.server_settings: dict[int, int] = {}
        self.closed = False
        self.seen: list[hf.Frame] = []

    def send(self, *chunks: bytes) -> None:
        try:
            self.sock.sendall(b"".join(chunks))
        except OSError:
            self.closed = True  # the server may already have closed: reading tells

    def next_frame(self, deadline: float) -> hf.Frame | None:
        """The next frame from the server; None once the connection is closed."""
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    frame, _ = hf.Frame.parse_frame_header(memoryview(self.buffer[:9]))
                    frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                    self.buffer = self.buffer[9 + length :]
                    self.seen.append(frame)
                    return frame
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; frames so far: {self.seen}")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"timed out; frames so far: {self.seen}") from None
            except (ConnectionError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
            self.buffer += data

    def frames(self, timeout: float = TIMEOUT) -> Iterator[hf.Frame]:
        deadline = time.monotonic() + timeout
        while (frame := self.next_frame(deadline)) is not None:
            yield frame

    def handshake(self, settings: dict[int, int] | None = None) -> None:
        """Preface and SETTINGS both ways, acknowledged both ways (h2spec's handshake)."""
        self.send(PREFACE, settings_frame(settings or {}))
        got_settings = got_ack = False
        for frame in self.frames():
            if isinstance(frame, hf.SettingsFrame):
                if "ACK" in frame.flags:
                    got_ack = True
                else:
                    self.server_settings.update(frame.settings)
                    got_settings = True
                    self.send(settings_frame({}, ack=True))
            if got_settings and got_ack:
                return
        raise AssertionError("connection closed during the handshake")

    # -- frame builders that need the connection's HPACK state ------------------------

    def block(self, headers: list[tuple[str, str]]) -> bytes:
        return bytes(self.encoder.encode([(n.encode(), v.encode()) for n, v in headers]))

    def headers(
        self,
        stream_id: int,
        headers: list[tuple[str, str]] | None = None,
        *,
        end_stream: bool = True,
        end_headers: bool = True,
        raw_block: bytes | None = None,
        priority: tuple[int, int] | None = None,
    ) -> bytes:
        frame = hf.HeadersFrame(stream_id)
        frame.data = raw_block if raw_block is not None else self.block(headers or common())
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers:
            frame.flags.add("END_HEADERS")
        if priority is not None:
            frame.flags.add("PRIORITY")
            frame.depends_on, frame.stream_weight = priority
        return bytes(frame.serialize())

    def continuation(
        self, stream_id: int, headers: list[tuple[str, str]], *, end_headers: bool = True
    ) -> bytes:
        frame = hf.ContinuationFrame(stream_id)
        frame.data = self.block(headers)
        if end_headers:
            frame.flags.add("END_HEADERS")
        return bytes(frame.serialize())


def common(method: str = "GET", path: str = "/") -> list[tuple[str, str]]:
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost")]


def dummy(count: int, size: int = 100) -> list[tuple[str, str]]:
    return [(f"x-dummy{i}", "x" * size) for i in range(count)]


def settings_frame(settings: dict[int, int], *, ack: bool = False) -> bytes:
    frame = hf.SettingsFrame(0, settings=settings)
    if ack:
        frame.flags.add("ACK")
    return bytes(frame.serialize())


def data(stream_id: int, payload: bytes = b"test", *, end_stream: bool = True) -> bytes:
    frame = hf.DataFrame(stream_id, data=payload)
    if end_stream:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def raw(length: int, kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """A frame built byte by byte (for frames hyperframe refuses to build)."""
    header = length.to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big")
    return header + payload


def ping(payload: bytes = b"\0" * 8, *, ack: bool = False) -> bytes:
    return raw(8, 0x6, 0x1 if ack else 0x0, 0, payload)


def rst(stream_id: int, code: int = CANCEL) -> bytes:
    return bytes(hf.RstStreamFrame(stream_id, error_code=code).serialize())


def window_update(stream_id: int, increment: int) -> bytes:
    return raw(4, 0x8, 0, stream_id, increment.to_bytes(4, "big"))


def priority(stream_id: int, depends_on: int = 0, weight: int = 255) -> bytes:
    return raw(5, 0x2, 0, stream_id, depends_on.to_bytes(4, "big") + bytes([weight - 1]))


def goaway(code: int, last_stream_id: int = 0) -> bytes:
    return raw(8, 0x7, 0, 0, last_stream_id.to_bytes(4, "big") + code.to_bytes(4, "big"))


UNKNOWN_FRAME = raw(8, 0x16, 0, 0, b"\0" * 8)


# ----------------------------------------------------------------------------- outcomes


Check = Callable[[Peer], None]


#: After its GOAWAY the server must end the connection at once (h2spec gives it 2 s,
#: its default timeout; the server's lingering close reads on for LINGER_SECONDS, 2 s).
CLOSE_AFTER_GOAWAY = 1.5


def connection_error(*codes: int) -> Check:
    def check(peer: Peer) -> None:
        for got in peer.frames():
            if isinstance(got, hf.GoAwayFrame):
                assert got.error_code in codes, f"GOAWAY {got.error_code}, want {codes}"
                break
        else:
            raise AssertionError(f"no GOAWAY before the close; frames: {peer.seen}")
        # Then the server ends the connection: its lingering close half-closes TCP (a
        # FIN) or, over TLS, sends a close_notify, then reads until the client closes.
        for _ in peer.frames(CLOSE_AFTER_GOAWAY):
            pass

    return check


def stream_error(*codes: int, stream_id: int = 1) -> Check:
    def check(peer: Peer) -> None:
        for frame in peer.frames():
            if isinstance(frame, hf.RstStreamFrame) and frame.stream_id == stream_id:
                assert frame.error_code in codes, f"RST_STREAM {frame.error_code}, want {codes}"
                return
            if isinstance(frame, hf.GoAwayFrame):
                assert frame.error_code in codes, f"GOAWAY {frame.error_code}, want {codes}"
                return
        raise AssertionError(f"closed without RST_STREAM or GOAWAY; frames: {peer.seen}")

    return check


def frame(predicate: Callable[[hf.Frame], bool], what: str) -> Check:
    def check(peer: Peer) -> None:
        for got in peer.frames():
            if predicate(got):
                return
            assert not isinstance(got, hf.GoAwayFrame), f"GOAWAY while waiting for {what}"
        raise AssertionError(f"closed while waiting for {what}; frames: {peer.seen}")

    return check


def closed() -> Check:
    def check(peer: Peer) -> None:
        for _ in peer.frames():
            pass

    return check


def is_ping_ack(payload: bytes = b"\0" * 8) -> Callable[[hf.Frame], bool]:
    return lambda f: isinstance(f, hf.PingFrame) and "ACK" in f.flags and f.opaque_data == payload


def is_response(stream_id: int = 1) -> Callable[[hf.Frame], bool]:
    return lambda f: isinstance(f, hf.HeadersFrame) and f.stream_id == stream_id


def is_data(length: int, stream_id: int = 1) -> Callable[[hf.Frame], bool]:
    return lambda f: (
        isinstance(f, hf.DataFrame) and f.stream_id == stream_id and len(f.data) == length
    )


PING_ACK = frame(is_ping_ack(), "a PING ACK")
RESPONSE = frame(is_response(), "the response HEADERS")


def wait_for(peer: Peer, predicate: Callable[[hf.Frame], bool]) -> None:
    for got in peer.frames():
        if predicate(got):
            return
    raise AssertionError(f"closed early; frames: {peer.seen}")


def response_complete(peer: Peer, stream_id: int = 1) -> None:
    """h2spec's VerifyStreamClose: wait for the frame ending the response."""
    wait_for(
        peer,
        lambda f: (
            isinstance(f, hf.DataFrame | hf.HeadersFrame)
            and f.stream_id == stream_id
            and "END_STREAM" in f.flags
        ),
    )


def settings_ack(peer: Peer) -> None:
    wait_for(peer, lambda f: isinstance(f, hf.SettingsFrame) and "ACK" in f.flags)


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    section: str
    name: str
    act: Callable[[Peer], None]
    expect: Check
    #: Before ``act``: "full" (preface and SETTINGS both ways, acknowledged), "preface"
    #: (the client's preface and SETTINGS only) or "none".
    handshake: str = "full"
    transports: tuple[str, ...] = ("h2c", "tls")

    @property
    def id(self) -> str:
        return f"{self.section} {self.name}"


def huffman_literal(encoded_value: bytes) -> bytes:
    """A literal field without indexing, new name ``x-test`` (Huffman), value as given."""
    return b"\x00\x85\xf2\xb2\x4a\x84\xff" + encoded_value


def first_frame_settings(peer: Peer) -> None:
    first = next(peer.frames(), None)
    assert isinstance(first, hf.SettingsFrame) and "ACK" not in first.flags, peer.seen


def h2c_upgrade(peer: Peer) -> None:
    """RFC 7540 3.2: the HTTP/1.1 request, 101, then HTTP/2 (the server's SETTINGS first);
    the request is answered as stream 1."""
    peer.send(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    )
    deadline = time.monotonic() + TIMEOUT
    while b"\r\n\r\n" not in peer.buffer:
        peer.sock.settimeout(max(0.01, deadline - time.monotonic()))
        peer.buffer += peer.sock.recv(65536)
    head, _, peer.buffer = peer.buffer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    peer.send(PREFACE, settings_frame({}))
    first_frame_settings(peer)


#: ``user-agent: h2spec``, indexed name, Huffman value (with its representation byte).
HUFFMAN_UA = b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4"
#: ``x-test: h2spec``, new name, both Huffman (without the representation byte).
HUFFMAN_X_TEST = b"\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4"


def request_with_field(representation: bytes) -> Callable[[Peer], None]:
    """A GET whose header block ends with ``representation`` (an HPACK field, raw)."""

    def act(peer: Peer) -> None:
        peer.send(peer.headers(1, raw_block=peer.block(common()) + representation))

    return act


def concurrency_overflow(peer: Peer) -> None:
    # Zero window: the server cannot finish its responses, so all streams stay open.
    peer.send(settings_frame({0x4: 0}))
    streams = [peer.headers(2 * i + 1) for i in range(MAX_CONCURRENT_STREAMS + 1)]
    peer.send(*streams)


def window_negative(peer: Peer) -> None:
    peer.send(settings_frame({0x4: 3}))
    settings_ack(peer)
    peer.send(peer.headers(1))
    wait_for(peer, is_data(3))
    peer.send(settings_frame({0x4: 2}))  # the stream window becomes -1
    settings_ack(peer)
    peer.send(window_update(1, 2))  # back to 1: one byte may go


CASES = [
    # 3.5 HTTP/2 Connection Preface
    Case(
        "3.5",
        "the server's first frame is SETTINGS",
        lambda p: None,
        first_frame_settings,
        handshake="preface",
    ),
    Case(
        "3.5",
        "invalid connection preface: GOAWAY PROTOCOL_ERROR, then close",
        lambda p: p.send(INVALID_PREFACE),
        connection_error(PROTOCOL_ERROR),
        handshake="none",
    ),
    Case(
        "3.5",
        "preface broken after its first line: GOAWAY PROTOCOL_ERROR, then close",
        lambda p: p.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
        connection_error(PROTOCOL_ERROR),
        handshake="none",
    ),
    Case(
        "3.2",
        "Upgrade: h2c: 101, SETTINGS first, the response on stream 1",
        h2c_upgrade,
        frame(is_response(1), "the response HEADERS on stream 1"),
        handshake="none",
        transports=("h2c",),
    ),
    # 4.1 Frame Format
    Case("4.1", "unknown frame type is ignored", lambda p: p.send(UNKNOWN_FRAME, ping()), PING_ACK),
    Case(
        "4.1",
        "undefined flags are ignored",
        lambda p: p.send(raw(8, 0x6, 0x16, 0, b"\0" * 8)),
        PING_ACK,
    ),
    Case(
        "4.1",
        "reserved bit is ignored",
        lambda p: p.send(raw(8, 0x6, 0x16, 0x80000000, b"\0" * 8)),
        PING_ACK,
    ),
    # 4.2 Frame Size
    Case(
        "4.2",
        "DATA of 2^14 octets is accepted",
        lambda p: p.send(p.headers(1, common("POST"), end_stream=False), data(1, b"x" * 16384)),
        RESPONSE,
    ),
    Case(
        "4.2",
        "DATA over SETTINGS_MAX_FRAME_SIZE",
        lambda p: p.send(p.headers(1, common("POST"), end_stream=False), data(1, b"x" * 16385)),
        stream_error(FRAME_SIZE_ERROR),
    ),
    Case(
        "4.2",
        "HEADERS over SETTINGS_MAX_FRAME_SIZE",
        lambda p: p.send(p.headers(1, common() + dummy(5, 4000))),
        connection_error(FRAME_SIZE_ERROR),
    ),
    # 4.3 Header Compression and Decompression
    Case(
        "4.3",
        "invalid header block fragment",
        lambda p: p.send(raw(1, 0x1, 0x5, 1, b"\x40")),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "4.3",
        "PRIORITY in the middle of a header block",
        lambda p: p.send(
            p.headers(1, end_stream=False, end_headers=False),
            priority(1),
            p.continuation(1, dummy(1)),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "4.3",
        "HEADERS of another stream in the middle of a header block",
        lambda p: p.send(
            p.headers(1, end_stream=False, end_headers=False),
            p.headers(3),
            p.continuation(1, dummy(1)),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    # 5.1 Stream States
    Case("5.1", "idle: DATA", lambda p: p.send(data(1)), connection_error(PROTOCOL_ERROR)),
    Case("5.1", "idle: RST_STREAM", lambda p: p.send(rst(1)), connection_error(PROTOCOL_ERROR)),
    Case(
        "5.1",
        "idle: WINDOW_UPDATE",
        lambda p: p.send(window_update(1, 100)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "5.1",
        "idle: CONTINUATION",
        lambda p: p.send(p.continuation(1, common())),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "5.1",
        "half closed (remote): DATA",
        lambda p: p.send(p.headers(1), data(1)),
        stream_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "half closed (remote): HEADERS",
        lambda p: p.send(p.headers(1), p.headers(1)),
        stream_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "half closed (remote): CONTINUATION",
        lambda p: p.send(p.headers(1), p.continuation(1, dummy(1))),
        stream_error(STREAM_CLOSED, PROTOCOL_ERROR),
    ),
    Case(
        "5.1",
        "closed: DATA after RST_STREAM",
        lambda p: p.send(p.headers(1, end_stream=False), rst(1), data(1)),
        stream_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "closed: HEADERS after RST_STREAM",
        lambda p: p.send(p.headers(1, end_stream=False), rst(1), p.headers(1)),
        stream_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "closed: CONTINUATION after RST_STREAM",
        lambda p: p.send(p.headers(1, end_stream=False), rst(1), p.continuation(1, dummy(1))),
        stream_error(STREAM_CLOSED, PROTOCOL_ERROR),
    ),
    Case(
        "5.1",
        "closed: DATA after END_STREAM both ways",
        lambda p: (p.send(p.headers(1)), response_complete(p), p.send(data(1))),
        connection_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "closed: HEADERS after END_STREAM both ways",
        lambda p: (p.send(p.headers(1)), response_complete(p), p.send(p.headers(1))),
        connection_error(STREAM_CLOSED),
    ),
    Case(
        "5.1",
        "closed: CONTINUATION after END_STREAM both ways",
        lambda p: (p.send(p.headers(1)), response_complete(p), p.send(p.continuation(1, dummy(1)))),
        connection_error(STREAM_CLOSED, PROTOCOL_ERROR),
    ),
    # 5.1.1 Stream Identifiers
    Case(
        "5.1.1",
        "even-numbered stream identifier",
        lambda p: p.send(p.headers(2)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "5.1.1",
        "stream identifier smaller than a previous one",
        lambda p: p.send(p.headers(5), p.headers(3)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "5.1.1",
        "HEADERS on a half-closed (remote) stream",
        lambda p: p.send(p.headers(5), p.headers(5)),
        stream_error(STREAM_CLOSED, stream_id=5),
    ),
    # 5.1.2 Stream Concurrency
    Case(
        "5.1.2",
        "more streams than SETTINGS_MAX_CONCURRENT_STREAMS",
        concurrency_overflow,
        stream_error(REFUSED_STREAM, stream_id=2 * MAX_CONCURRENT_STREAMS + 1),
    ),
    # 5.3.1 Stream Dependencies
    Case(
        "5.3.1",
        "HEADERS depending on itself",
        lambda p: p.send(p.headers(1, priority=(1, 255))),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "5.3.1",
        "PRIORITY depending on itself",
        lambda p: p.send(priority(1, depends_on=1)),
        stream_error(PROTOCOL_ERROR),
    ),
    # 5.4.1 Connection Error Handling
    Case(
        "5.4.1",
        "invalid PING: GOAWAY, then close",
        lambda p: p.send(raw(8, 0x6, 0, 3, b"\0" * 8)),
        connection_error(PROTOCOL_ERROR),
    ),
    # 5.5 Extending HTTP/2
    Case(
        "5.5",
        "unknown extension frame is ignored",
        lambda p: p.send(UNKNOWN_FRAME, ping()),
        PING_ACK,
    ),
    Case(
        "5.5",
        "unknown extension frame in the middle of a header block",
        lambda p: p.send(p.headers(1, end_headers=False), UNKNOWN_FRAME),
        connection_error(PROTOCOL_ERROR),
    ),
    # 6.1 DATA
    Case(
        "6.1",
        "DATA with stream identifier 0",
        lambda p: p.send(raw(4, 0x0, 0x1, 0, b"test")),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.1",
        "DATA on a stream not open or half-closed (local)",
        lambda p: p.send(p.headers(1, common("POST")), data(1)),
        stream_error(STREAM_CLOSED),
    ),
    Case(
        "6.1",
        "DATA with invalid pad length",
        lambda p: p.send(
            p.headers(1, [*common("POST"), ("content-length", "4")], end_stream=False),
            raw(5, 0x0, 0x9, 1, b"\x06Test"),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.1",
        "padded DATA is accepted",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False), raw(8, 0x0, 0x9, 1, b"\x03test\0\0\0")
        ),
        RESPONSE,
    ),
    # 6.2 HEADERS
    Case(
        "6.2",
        "HEADERS without END_HEADERS, then PRIORITY",
        lambda p: p.send(
            p.headers(1, end_stream=False, end_headers=False),
            priority(1),
            p.continuation(1, dummy(1)),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.2",
        "HEADERS to another stream while sending a HEADERS",
        lambda p: p.send(
            p.headers(1, end_stream=False, end_headers=False),
            p.headers(3),
            p.continuation(1, dummy(1)),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.2",
        "HEADERS with stream identifier 0",
        lambda p: (lambda block: p.send(raw(len(block), 0x1, 0x5, 0, block)))(p.block(common())),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.2",
        "HEADERS with invalid pad length",
        lambda p: (
            lambda block: p.send(raw(len(block) + 1, 0x1, 0x0D, 1, bytes([len(block) + 2]) + block))
        )(p.block(common())),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.2",
        "HEADERS with priority and padding are accepted",
        lambda p: (
            lambda block: p.send(
                raw(
                    len(block) + 9,
                    0x1,
                    0x2D,
                    1,
                    b"\x03" + (0).to_bytes(4, "big") + b"\x10" + block + b"\0\0\0",
                )
            )
        )(p.block(common())),
        RESPONSE,
    ),
    # 6.3 PRIORITY
    Case(
        "6.3",
        "PRIORITY with stream identifier 0",
        lambda p: p.send(priority(0)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.3",
        "PRIORITY with a length other than 5",
        lambda p: p.send(p.headers(1), raw(4, 0x2, 0, 1, b"\x80\0\0\x01")),
        stream_error(FRAME_SIZE_ERROR),
    ),
    Case(
        "6.3",
        "PRIORITY for an idle stream, then HEADERS for a lower one",
        lambda p: p.send(priority(3), p.headers(1)),
        RESPONSE,
    ),
    # 6.4 RST_STREAM
    Case(
        "6.4",
        "RST_STREAM with stream identifier 0",
        lambda p: p.send(raw(4, 0x3, 0, 0, CANCEL.to_bytes(4, "big"))),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.4",
        "RST_STREAM on an idle stream",
        lambda p: p.send(rst(1)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.4",
        "RST_STREAM with a length other than 4",
        lambda p: p.send(p.headers(1), raw(3, 0x3, 0, 1, b"\0\0\0")),
        connection_error(FRAME_SIZE_ERROR),
    ),
    # 6.5 SETTINGS
    Case(
        "6.5",
        "SETTINGS ACK with a payload",
        lambda p: p.send(raw(1, 0x4, 0x1, 0, b"\0")),
        connection_error(FRAME_SIZE_ERROR),
    ),
    Case(
        "6.5",
        "SETTINGS with stream identifier 1",
        lambda p: p.send(raw(6, 0x4, 0, 1, b"\x00\x03\x00\x00\x00\x64")),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.5",
        "SETTINGS with a length not a multiple of 6",
        lambda p: p.send(raw(9, 0x4, 0, 0, b"\x00\x03\x00\x00\x00\x64\x00\x02\x00")),
        connection_error(FRAME_SIZE_ERROR, PROTOCOL_ERROR),
    ),
    # 6.5.2 Defined SETTINGS Parameters
    Case(
        "6.5.2",
        "SETTINGS_ENABLE_PUSH other than 0 or 1",
        lambda p: p.send(settings_frame({0x2: 2})),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.5.2",
        "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
        lambda p: p.send(settings_frame({0x4: 2**31})),
        connection_error(FLOW_CONTROL_ERROR),
    ),
    Case(
        "6.5.2",
        "SETTINGS_MAX_FRAME_SIZE below 2^14",
        lambda p: p.send(settings_frame({0x5: 16383})),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.5.2",
        "SETTINGS_MAX_FRAME_SIZE above 2^24-1",
        lambda p: p.send(settings_frame({0x5: 2**24})),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.5.2",
        "unknown SETTINGS identifier is ignored",
        lambda p: p.send(settings_frame({0xFF: 1}), ping()),
        PING_ACK,
    ),
    # 6.5.3 Settings Synchronization
    Case(
        "6.5.3",
        "several SETTINGS_INITIAL_WINDOW_SIZE values, applied in order",
        lambda p: (
            p.send(raw(12, 0x4, 0, 0, b"\0\x04\0\0\0\x64\0\x04\0\0\0\x01")),
            settings_ack(p),
            p.send(p.headers(1)),
        ),
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "6.5.3",
        "SETTINGS is acknowledged",
        lambda p: p.send(settings_frame({0x2: 0})),
        frame(lambda f: isinstance(f, hf.SettingsFrame) and "ACK" in f.flags, "SETTINGS ACK"),
    ),
    # 6.7 PING
    Case(
        "6.7",
        "PING is answered with the same payload",
        lambda p: p.send(ping(b"h2spec\0\0")),
        frame(is_ping_ack(b"h2spec\0\0"), "a PING ACK"),
    ),
    Case(
        "6.7",
        "PING ACK is not answered",
        lambda p: p.send(ping(b"invalid\0", ack=True), ping(b"h2spec\0\0")),
        frame(is_ping_ack(b"h2spec\0\0"), "a PING ACK"),
    ),
    Case(
        "6.7",
        "PING with a stream identifier",
        lambda p: p.send(raw(8, 0x6, 0, 1, b"\0" * 8)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.7",
        "PING with a length other than 8",
        lambda p: p.send(raw(6, 0x6, 0, 0, b"\0" * 6)),
        connection_error(FRAME_SIZE_ERROR),
    ),
    # 6.8 GOAWAY
    Case(
        "6.8",
        "GOAWAY with a stream identifier",
        lambda p: p.send(raw(8, 0x7, 0, 1, b"\0" * 8)),
        connection_error(PROTOCOL_ERROR),
    ),
    # 6.9 WINDOW_UPDATE
    Case(
        "6.9",
        "WINDOW_UPDATE of 0 on the connection",
        lambda p: p.send(window_update(0, 0)),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.9",
        "WINDOW_UPDATE of 0 on a stream",
        lambda p: p.send(p.headers(1, end_stream=False), window_update(1, 0)),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.9",
        "WINDOW_UPDATE with a length other than 4",
        lambda p: p.send(raw(3, 0x8, 0, 0, b"\0\0\x01")),
        connection_error(FRAME_SIZE_ERROR),
    ),
    # 6.9.1 The Flow-Control Window
    Case(
        "6.9.1",
        "initial window of 1: DATA of 1 octet",
        lambda p: (p.send(settings_frame({0x4: 1})), settings_ack(p), p.send(p.headers(1))),
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "6.9.1",
        "connection window above 2^31-1",
        lambda p: p.send(window_update(0, 2**31 - 1), window_update(0, 2**31 - 1)),
        connection_error(FLOW_CONTROL_ERROR),
    ),
    Case(
        "6.9.1",
        "stream window above 2^31-1",
        lambda p: p.send(
            p.headers(1, end_stream=False), window_update(1, 2**31 - 1), window_update(1, 2**31 - 1)
        ),
        stream_error(FLOW_CONTROL_ERROR),
    ),
    # 6.9.2 Initial Flow-Control Window Size
    Case(
        "6.9.2",
        "SETTINGS_INITIAL_WINDOW_SIZE changed after HEADERS",
        lambda p: (
            p.send(settings_frame({0x4: 0})),
            settings_ack(p),
            p.send(p.headers(1)),
            p.send(settings_frame({0x4: 1})),
        ),
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "6.9.2",
        "negative window is tracked",
        window_negative,
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "6.9.2",
        "SETTINGS_INITIAL_WINDOW_SIZE over the maximum",
        lambda p: p.send(raw(6, 0x4, 0, 0, b"\x00\x04\x80\x00\x00\x00")),
        connection_error(FLOW_CONTROL_ERROR),
    ),
    # 6.10 CONTINUATION
    Case(
        "6.10",
        "several CONTINUATION frames after HEADERS",
        lambda p: p.send(
            p.headers(1, end_headers=False),
            p.continuation(1, dummy(1), end_headers=False),
            p.continuation(1, dummy(1)),
        ),
        RESPONSE,
    ),
    Case(
        "6.10",
        "CONTINUATION followed by another frame type",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False, end_headers=False),
            p.continuation(1, dummy(1), end_headers=False),
            data(1),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.10",
        "CONTINUATION with stream identifier 0",
        lambda p: (
            lambda block: p.send(
                p.headers(1, end_headers=False), raw(len(block), 0x9, 0x4, 0, block)
            )
        )(p.block(dummy(1))),
        connection_error(PROTOCOL_ERROR),
    ),
    Case(
        "6.10",
        "CONTINUATION after HEADERS with END_HEADERS",
        lambda p: p.send(p.headers(1), p.continuation(1, dummy(1))),
        connection_error(PROTOCOL_ERROR, STREAM_CLOSED),
    ),
    Case(
        "6.10",
        "CONTINUATION after CONTINUATION with END_HEADERS",
        lambda p: p.send(
            p.headers(1, end_headers=False),
            p.continuation(1, dummy(1)),
            p.continuation(1, dummy(1)),
        ),
        connection_error(PROTOCOL_ERROR, STREAM_CLOSED),
    ),
    Case(
        "6.10",
        "CONTINUATION after DATA",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False), data(1), p.continuation(1, dummy(1))
        ),
        connection_error(PROTOCOL_ERROR, STREAM_CLOSED),
    ),
    # 7 Error Codes
    Case("7", "GOAWAY with an unknown error code", lambda p: p.send(goaway(0xFF)), closed()),
    Case(
        "7",
        "RST_STREAM with an unknown error code",
        lambda p: p.send(p.headers(1, common("POST"), end_stream=False), rst(1, 0xFF), ping()),
        PING_ACK,
    ),
    # 8.1 HTTP Request/Response Exchange
    Case(
        "8.1",
        "second HEADERS without END_STREAM",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False),
            data(1, end_stream=False),
            p.headers(1, [("x-test", "ok")], end_stream=False),
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1",
        "trailers are accepted",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False),
            data(1, end_stream=False),
            p.headers(1, [("x-test", "ok")]),
        ),
        RESPONSE,
    ),
    # 8.1.2 HTTP Header Fields
    Case(
        "8.1.2",
        "uppercase header field name",
        lambda p: p.send(p.headers(1, [*common(), ("X-TEST", "ok")])),
        stream_error(PROTOCOL_ERROR),
    ),
    # 8.1.2.1 Pseudo-Header Fields
    Case(
        "8.1.2.1",
        "unknown pseudo-header field",
        lambda p: p.send(p.headers(1, [*common(), (":test", "ok")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.1",
        "response pseudo-header field in a request",
        lambda p: p.send(p.headers(1, [*common(), (":status", "200")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.1",
        "pseudo-header field in trailers",
        lambda p: p.send(
            p.headers(1, common("POST"), end_stream=False),
            data(1, end_stream=False),
            p.headers(1, [(":method", "POST")]),
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.1",
        "pseudo-header field after a regular one",
        lambda p: p.send(p.headers(1, [("x-test", "ok"), *common()])),
        stream_error(PROTOCOL_ERROR),
    ),
    # 8.1.2.2 Connection-Specific Header Fields
    Case(
        "8.1.2.2",
        "connection-specific header field",
        lambda p: p.send(p.headers(1, [*common(), ("connection", "keep-alive")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.2",
        "TE other than trailers",
        lambda p: p.send(
            p.headers(1, [*common(), ("trailers", "test"), ("te", "trailers, deflate")])
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.2",
        "TE: trailers is accepted",
        lambda p: p.send(p.headers(1, [*common(), ("te", "trailers")])),
        RESPONSE,
    ),
    # 8.1.2.3 Request Pseudo-Header Fields
    Case(
        "8.1.2.3",
        "empty :path",
        lambda p: p.send(
            p.headers(
                1,
                [
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", ""),
                    (":authority", "localhost"),
                ],
            )
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "no :method",
        lambda p: p.send(p.headers(1, common()[1:])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "no :scheme",
        lambda p: p.send(p.headers(1, [h for h in common() if h[0] != ":scheme"])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "no :path",
        lambda p: p.send(p.headers(1, [h for h in common() if h[0] != ":path"])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "duplicated :method",
        lambda p: p.send(p.headers(1, [*common(), (":method", "GET")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "duplicated :scheme",
        lambda p: p.send(p.headers(1, [*common(), (":scheme", "http")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "duplicated :path",
        lambda p: p.send(p.headers(1, [*common(), (":path", "/")])),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.3",
        "CONNECT without :authority (RFC 9113 8.5)",
        lambda p: p.send(p.headers(1, [(":method", "CONNECT")])),
        stream_error(PROTOCOL_ERROR),
    ),
    # 8.1.2.6 Malformed Requests and Responses
    Case(
        "8.1.2.6",
        "content-length not equal to the DATA length",
        lambda p: p.send(
            p.headers(1, [*common("POST"), ("content-length", "1")], end_stream=False), data(1)
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.6",
        "content-length not equal to the sum of several DATA",
        lambda p: p.send(
            p.headers(1, [*common("POST"), ("content-length", "1")], end_stream=False),
            data(1, end_stream=False),
            data(1),
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    Case(
        "8.1.2.6",
        "content-length larger than the DATA sent",
        lambda p: p.send(
            p.headers(1, [*common("POST"), ("content-length", "10")], end_stream=False), data(1)
        ),
        stream_error(PROTOCOL_ERROR),
    ),
    # 8.2 Server Push
    Case(
        "8.2",
        "PUSH_PROMISE from a client",
        lambda p: p.send(
            p.headers(1, end_stream=False),
            raw(
                4 + len(p.block(common())), 0x5, 0x4, 1, (2).to_bytes(4, "big") + p.block(common())
            ),
        ),
        connection_error(PROTOCOL_ERROR),
    ),
    # HPACK (RFC 7541), h2spec's hpack group
    Case(
        "hpack 2.3.3",
        "index beyond both tables",
        lambda p: p.send(p.headers(1, raw_block=p.block(common()) + b"\xfe")),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 4.2",
        "dynamic table size update at the end of a header block",
        lambda p: p.send(p.headers(1, raw_block=p.block(common()) + b"\x21")),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 5.2",
        "Huffman padding longer than 7 bits",
        lambda p: p.send(
            p.headers(1, raw_block=p.block(common()) + huffman_literal(b"\x84\x49\x50\x9f\xff"))
        ),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 5.2",
        "Huffman padding with zeros",
        lambda p: p.send(
            p.headers(1, raw_block=p.block(common()) + huffman_literal(b"\x83\x49\x50\x90"))
        ),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 5.2",
        "Huffman string containing EOS",
        lambda p: p.send(
            p.headers(
                1,
                raw_block=p.block(common()) + huffman_literal(b"\x87\xff\xff\xff\xfd\x25\x42\x7f"),
            )
        ),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 6.1",
        "indexed field with index 0",
        lambda p: p.send(p.headers(1, raw_block=p.block(common()) + b"\x80")),
        connection_error(COMPRESSION_ERROR),
    ),
    Case(
        "hpack 6.3",
        "table size update above SETTINGS_HEADER_TABLE_SIZE",
        lambda p: p.send(p.headers(1, raw_block=b"\x3f\xe2\x1f" + p.block(common()))),
        connection_error(COMPRESSION_ERROR),
    ),
    # h2spec's generic group: what a server must accept
    Case(
        "generic 2", "PRIORITY on an idle stream", lambda p: p.send(priority(1), ping()), PING_ACK
    ),
    Case(
        "generic 2",
        "WINDOW_UPDATE on a half-closed (remote) stream",
        lambda p: p.send(settings_frame({0x4: 0}), p.headers(1), window_update(1, 1)),
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "generic 2",
        "PRIORITY on a half-closed (remote) stream",
        lambda p: p.send(settings_frame({0x4: 0}), p.headers(1), priority(1), window_update(1, 1)),
        frame(is_data(1), "a DATA frame of 1 octet"),
    ),
    Case(
        "generic 2",
        "RST_STREAM on a half-closed (remote) stream",
        lambda p: p.send(p.headers(1), rst(1), ping()),
        PING_ACK,
    ),
    Case(
        "generic 2",
        "PRIORITY on a closed stream",
        lambda p: (p.send(p.headers(1)), response_complete(p), p.send(priority(1), ping())),
        PING_ACK,
    ),
    Case("generic 4", "GET request", lambda p: p.send(p.headers(1)), RESPONSE),
    Case("generic 4", "HEAD request", lambda p: p.send(p.headers(1, common("HEAD"))), RESPONSE),
    Case(
        "generic 4",
        "POST request",
        lambda p: p.send(p.headers(1, common("POST"), end_stream=False), data(1)),
        RESPONSE,
    ),
    Case(
        "generic 4",
        "POST request with trailers",
        lambda p: p.send(
            p.headers(1, [*common("POST"), ("trailer", "x-test")], end_stream=False),
            data(1, end_stream=False),
            p.headers(1, [("x-test", "ok")]),
        ),
        RESPONSE,
    ),
    *[
        Case(
            "generic 5",
            f"HPACK {kind}",
            request_with_field(rep),
            RESPONSE,
        )
        for kind, rep in [
            ("indexed field", b"\xba"),
            ("incremental indexing, indexed name", b"\x40\x0auser-agent\x06h2spec"),
            ("incremental indexing, indexed name, Huffman", HUFFMAN_UA),
            ("incremental indexing, new name", b"\x40\x06x-test\x06h2spec"),
            ("incremental indexing, new name, Huffman", b"\x40" + HUFFMAN_X_TEST),
            ("without indexing, indexed name", b"\x00\x0auser-agent\x06h2spec"),
            ("without indexing, indexed name, Huffman", b"\x00" + HUFFMAN_UA[1:]),
            ("without indexing, new name", b"\x00\x06x-test\x06h2spec"),
            ("without indexing, new name, Huffman", b"\x00" + HUFFMAN_X_TEST),
            ("never indexed, indexed name", b"\x10\x0auser-agent\x06h2spec"),
            ("never indexed, indexed name, Huffman", b"\x10" + HUFFMAN_UA[1:]),
            ("never indexed, new name", b"\x10\x06x-test\x06h2spec"),
            ("never indexed, new name, Huffman", b"\x10" + HUFFMAN_X_TEST),
        ]
    ],
    Case(
        "generic 5",
        "HPACK dynamic table size update to 0 first",
        lambda p: p.send(p.headers(1, raw_block=b"\x20" + p.block(common()))),
        RESPONSE,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_conformance(case: Case, servers: dict[str, tuple[str, int]], transport: str) -> None:
    if transport not in case.transports:
        pytest.skip(f"{case.section} applies to {', '.join(case.transports)} only")
    with connect(servers[transport], tls=transport == "tls") as sock:
        peer = Peer(sock, tls=transport == "tls")
        if case.handshake == "full":
            peer.handshake()
        elif case.handshake == "preface":
            peer.send(PREFACE, settings_frame({}))
        case.act(peer)
        case.expect(peer)


def test_invalid_preface_gets_goaway_protocol_error_then_close(
    servers: dict[str, tuple[str, int]], transport: str
) -> None:
    """h2spec 3.5/2, byte for byte: an invalid preface (with prior knowledge on h2c, after
    ALPN h2 over TLS) is answered with the server's SETTINGS and GOAWAY(last stream 0,
    PROTOCOL_ERROR) as the last frame, then the connection ends well within h2spec's 2 s
    (cleartext once answered it as an HTTP/1.1 request, 400; TLS closed only after the
    2 s lingering read)."""
    goaway_frame = (
        b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"  # length 8, GOAWAY, no flags, stream 0
        + (0).to_bytes(4, "big")  # last stream id
        + PROTOCOL_ERROR.to_bytes(4, "big")
    )
    with connect(servers[transport], tls=transport == "tls") as sock:
        sock.sendall(INVALID_PREFACE)
        received = b""
        deadline = time.monotonic() + CLOSE_AFTER_GOAWAY
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise AssertionError(
                    f"not closed within {CLOSE_AFTER_GOAWAY} s; received {received!r}"
                ) from None
            except (ConnectionError, ssl.SSLError):
                chunk = b""
            if not chunk:
                break
            received += chunk
    assert received[3:4] == b"\x04", f"the first frame is not SETTINGS: {received!r}"
    assert received.endswith(goaway_frame), f"no GOAWAY(PROTOCOL_ERROR) at the end: {received!r}"


class connect:
    """A TCP (or TLS with ALPN h2) connection to ``address``."""

    def __init__(self, address: tuple[str, int], *, tls: bool) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
            assert self.sock.selected_alpn_protocol() == "h2"

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()
