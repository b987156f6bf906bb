"""The sans-IO WebSocket core, driven by a wsproto client in memory."""

from __future__ import annotations

import base64
import struct
import zlib

import anyio
import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from httpy.core.application import RequestHead
from httpy.core.events import Headers
from httpy.core.websocket import (
    LARGE_READ,
    SMALL_READ,
    HandshakeRefused,
    HandshakeRequest,
    WebSocketClose,
    WebSocketData,
    WebSocketDisconnect,
    WebSocketOffer,
    WebSocketOptions,
    WebSocketPong,
    WebSocketProtocol,
    accept_response,
    check_subprotocol,
    parse_offer,
    send_plain,
)
from httpy.core.websocket_deflate import negotiate_deflate

KEY = base64.b64encode(b"0123456789abcdef")


def head(
    headers: list[tuple[bytes, bytes]], method: str = "GET", version: str = "1.1"
) -> RequestHead:
    return RequestHead(method, "/ws", b"", tuple(headers), version)


def upgrade_headers(**extra: bytes) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"host", b"example"),
        (b"upgrade", b"websocket"),
        (b"connection", b"keep-alive, Upgrade"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-version", b"13"),
    ]
    headers += [(name.replace("_", "-").encode(), value) for name, value in extra.items()]
    return headers


def pair(
    max_message_bytes: int = 1 << 20, deflate: bool = False
) -> tuple[WebSocketProtocol, Connection]:
    extensions = []
    client_ext = []
    if deflate:
        offer = parse_offer(head(upgrade_headers(sec_websocket_extensions=b"permessage-deflate")))
        assert isinstance(offer, WebSocketOffer)
        _headers, extensions = accept_response(
            offer, None, (), WebSocketOptions(max_message_bytes=max_message_bytes)
        )
        ext = PerMessageDeflate()
        ext.finalize("permessage-deflate; server_max_window_bits=12")
        client_ext = [ext]
    server = WebSocketProtocol(extensions, max_message_bytes=max_message_bytes)
    client = Connection(ConnectionType.CLIENT, client_ext)
    return server, client


def client_events(client: Connection, server: WebSocketProtocol) -> list[Event]:
    client.receive_data(server.data_to_send())
    return list(client.events())


# ------------------------------------------------------------------ handshake


def test_valid_offer_and_accept_token() -> None:
    offer = parse_offer(head(upgrade_headers(sec_websocket_protocol=b"chat, superchat")))
    assert isinstance(offer, WebSocketOffer)
    assert offer.subprotocols == ("chat", "superchat")
    headers, extensions = accept_response(offer, "chat", ((b"X-Extra", b"1"),), WebSocketOptions())
    fields = dict(headers)
    # RFC 6455 1.3's example key/accept pair, recomputed for our key.
    import hashlib

    expected = base64.b64encode(
        hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
    )
    assert fields[b"sec-websocket-accept"] == expected
    assert fields[b"sec-websocket-protocol"] == b"chat"
    assert fields[b"x-extra"] == b"1"
    assert extensions == []
    with pytest.raises(ValueError):
        accept_response(offer, "other", (), WebSocketOptions())


@pytest.mark.parametrize(
    ("headers", "method", "version", "status"),
    [
        ([h for h in upgrade_headers() if h[0] != b"sec-websocket-key"], "GET", "1.1", 400),
        (
            [
                *upgrade_headers()[:3],
                (b"sec-websocket-key", b"short"),
                (b"sec-websocket-version", b"13"),
            ],
            "GET",
            "1.1",
            400,
        ),
        ([*upgrade_headers()[:4], (b"sec-websocket-version", b"8")], "GET", "1.1", 426),
        (upgrade_headers(), "POST", "1.1", 400),
        (upgrade_headers(), "GET", "1.0", 400),
        ([h for h in upgrade_headers() if h[0] != b"connection"], "GET", "1.1", 400),
    ],
)
def test_invalid_offers_are_refused(
    headers: list[tuple[bytes, bytes]], method: str, version: str, status: int
) -> None:
    refused = parse_offer(head(headers, method, version))
    assert isinstance(refused, HandshakeRefused)
    assert refused.status == status
    if status == 426:
        assert (b"sec-websocket-version", b"13") in refused.headers


def test_http2_extended_connect_offer() -> None:
    request = head(
        [(b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"a")], "CONNECT", "2"
    )
    offer = parse_offer(request, connect_protocol=b"websocket")
    assert isinstance(offer, WebSocketOffer)
    assert offer.key is None
    headers, _ = accept_response(offer, "a", (), WebSocketOptions())
    assert b"sec-websocket-accept" not in dict(headers)
    assert isinstance(parse_offer(request, connect_protocol=b"other"), HandshakeRefused)


@pytest.mark.parametrize(
    ("offers", "response"),
    [
        (["permessage-deflate"], "permessage-deflate; server_max_window_bits=12"),
        (
            ["permessage-deflate; client_max_window_bits"],
            "permessage-deflate; server_max_window_bits=12",
        ),
        (
            ["permessage-deflate; server_max_window_bits=10; server_no_context_takeover"],
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        ),
        # invalid first offer declined, second accepted
        (
            ["permessage-deflate; server_max_window_bits=99", "permessage-deflate"],
            "permessage-deflate; server_max_window_bits=12",
        ),
        (["permessage-deflate; server_max_window_bits=8"], None),
        (["permessage-deflate; unknown"], None),
        (["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], None),
        (["x-webkit-deflate-frame"], None),
    ],
)
def test_deflate_negotiation(offers: list[str], response: str | None) -> None:
    agreed = negotiate_deflate(offers, 12)
    assert (agreed.response() if agreed else None) == response


# ------------------------------------------------------------------ messages


def test_text_binary_and_fragmented_messages() -> None:
    server, client = pair()
    data = client.send(TextMessage("hé"))
    data += client.send(BytesMessage(b"\x00\x01"))
    data += client.send(TextMessage("frag", message_finished=False))
    data += client.send(Ping(b"p"))  # a control frame between fragments
    data += client.send(TextMessage("ment"))
    # fed one byte at a time: the same events
    events = [e for i in range(len(data)) for e in server.receive_data(data[i : i + 1])]
    assert events == [WebSocketData("hé"), WebSocketData(b"\x00\x01"), WebSocketData("fragment")]
    assert client_events(client, server) == [Pong(b"p")]


def test_server_messages_reach_the_client() -> None:
    server, client = pair()
    server.send_message("hello")
    server.send_message(b"bin")
    server.send_ping(b"x")
    received = client_events(client, server)
    assert [type(e) for e in received] == [TextMessage, BytesMessage, Ping]
    client.receive_data(b"")
    server.receive_data(client.send(Pong(b"x")))


def test_pong_is_reported() -> None:
    server, client = pair()
    assert server.receive_data(client.send(Pong(b"k"))) == [WebSocketPong(b"k")]


def test_oversized_message_closes_1009() -> None:
    server, client = pair(max_message_bytes=10)
    assert server.receive_data(client.send(BytesMessage(b"x" * 10))) == [WebSocketData(b"x" * 10)]
    events = server.receive_data(client.send(BytesMessage(b"x" * 11)))
    assert events == [WebSocketClose(1009, "error in extension")]
    assert server.finished and server.close_code == 1009
    assert [e.code for e in client_events(client, server)] == [1009]  # type: ignore[attr-defined]


def test_oversized_fragmented_message_closes_1009() -> None:
    server, client = pair(max_message_bytes=10)
    data = b"".join(client.send(TextMessage("abcd", message_finished=False)) for _ in range(3))
    events = server.receive_data(data)
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1009]


def _fragments(client: Connection, first: bytes, count: int, size: int, end: bool) -> bytes:
    """A binary message: ``first``, then ``count`` continuation frames of ``size`` bytes."""
    frames = [client.send(BytesMessage(first, message_finished=False))]
    frames += [
        client.send(BytesMessage(b"y" * size, message_finished=False)) for _ in range(count)
    ]
    if end:
        frames.append(client.send(BytesMessage(b"", message_finished=True)))
    return b"".join(frames)


def test_a_run_of_empty_fragments_reaches_the_message_limit() -> None:
    """Empty continuation frames carry nothing, but each counts 64 bytes toward the
    message limit: an endless run of them ends with 1009 instead of keeping a core
    busy forever (1 MiB limit: at most 16,384 of them)."""
    server, client = pair(max_message_bytes=1 << 20)
    events = server.receive_data(_fragments(client, b"x", 20_000, 0, end=False))
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1009]
    assert server.finished and server.close_code == 1009


def test_a_message_in_64_byte_fragments_still_counts_only_its_bytes() -> None:
    """Fragments of 64 bytes or more count what they carry (Autobahn 9.3.1 sends 4 MiB
    in 64-byte fragments to a 16 MiB limit): a 1 MiB limit takes 1 MiB of them."""
    server, client = pair(max_message_bytes=1 << 20)
    data = _fragments(client, b"", 16_383, 64, end=True)
    events = server.receive_data(data)
    assert events == [WebSocketData(b"y" * (16_383 * 64))]


def test_a_message_not_whole_within_the_message_timeout_closes_1008() -> None:
    """The fragmented-message time budget, decided from ``now``: the deadline runs from
    the read that began the message, later fragments do not move it, and at the
    deadline the connection fails with 1008 (a close frame goes out)."""
    server = WebSocketProtocol([], max_message_bytes=1 << 20, message_timeout=10.0)
    client = Connection(ConnectionType.CLIENT)
    assert server.next_deadline() is None
    assert server.receive_data(client.send(BytesMessage(b"a", message_finished=False)), 100.0) == []
    assert server.next_deadline() == 110.0
    server.receive_data(client.send(BytesMessage(b"b", message_finished=False)), 105.0)
    assert server.next_deadline() == 110.0  # fragments do not restart it
    assert server.handle_timer(109.9) == []
    events = server.handle_timer(110.0)
    assert events == [WebSocketClose(1008, "message not complete within 10 s")]
    assert server.finished and server.close_code == 1008
    client.receive_data(server.data_to_send())
    assert [e.code for e in client.events() if isinstance(e, CloseConnection)] == [1008]


def test_a_whole_message_clears_the_deadline_and_a_partial_frame_starts_it() -> None:
    server = WebSocketProtocol([], max_message_bytes=1 << 20, message_timeout=10.0)
    client = Connection(ConnectionType.CLIENT)
    server.receive_data(client.send(BytesMessage(b"a", message_finished=False)), 0.0)
    events = server.receive_data(client.send(BytesMessage(b"z", message_finished=True)), 9.0)
    assert events == [WebSocketData(b"az")] and server.next_deadline() is None
    frame = client.send(BytesMessage(b"x" * 1000))
    assert server.receive_data(frame[:500], 20.0) == []  # one frame, cut by the read
    assert server.next_deadline() == 30.0
    server.pause_timer(4.0)  # the backend stopped reading (the app's queue was full)
    assert server.next_deadline() == 34.0
    assert server.receive_data(frame[500:], 33.0) == [WebSocketData(b"x" * 1000)]
    assert server.next_deadline() is None


def test_a_message_in_many_fragments_asks_for_small_reads_until_it_ends() -> None:
    """Parsing costs per frame: past 64 fragments of one message the backend is asked to
    read 4 KiB at a time (and to yield between reads), so one connection sending tiny
    fragments cannot hold the loop for a 64 KiB read of ~10,000 frames."""
    server, client = pair()
    assert server.read_size == LARGE_READ
    server.receive_data(_fragments(client, b"x", 64, 1, end=False))
    assert server.read_size == SMALL_READ
    events = server.receive_data(client.send(BytesMessage(b"", message_finished=True)))
    assert events == [WebSocketData(b"x" + b"y" * 64)]
    assert server.read_size == LARGE_READ


def test_no_message_timeout_means_no_deadline() -> None:
    server, client = pair()
    server.receive_data(client.send(BytesMessage(b"a", message_finished=False)), 0.0)
    assert server.next_deadline() is None
    assert server.handle_timer(10**9) == []


def test_invalid_utf8_closes_1007() -> None:
    server, _client = pair()
    # hand-made masked text frame with an invalid UTF-8 byte
    payload = b"\xff\xfe"
    mask = b"\x00\x00\x00\x00"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + payload
    events = server.receive_data(frame)
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1007]
    assert server.finished
    out = server.data_to_send()
    assert out[0] == 0x88 and struct.unpack("!H", out[2:4])[0] == 1007


def test_protocol_error_closes_1002() -> None:
    server, _client = pair()
    # unmasked frame from a client: protocol error
    events = server.receive_data(b"\x81\x02hi")
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1002]
    assert struct.unpack("!H", server.data_to_send()[2:4])[0] == 1002


def test_peer_close_is_answered_with_its_code() -> None:
    server, client = pair()
    events = server.receive_data(client.send(CloseConnection(4001, "bye")))
    assert events == [WebSocketClose(4001, "bye")]
    assert server.finished and server.close_code == 4001
    assert client_events(client, server) == [CloseConnection(4001, "bye")]
    with pytest.raises(WebSocketDisconnect) as info:
        server.send_message("late")
    assert info.value.code == 4001


def test_close_without_code_is_1005() -> None:
    server, _client = pair()
    frame = bytes([0x88, 0x80]) + b"\x00\x00\x00\x00"
    assert server.receive_data(frame) == [WebSocketClose(1005, "")]
    assert server.data_to_send() == b"\x88\x00"  # answered without a code


def test_eof_without_close_is_1006() -> None:
    server, _client = pair()
    assert server.receive_eof() == [WebSocketClose(1006, "connection lost")]
    assert server.close_code == 1006


def test_server_initiated_close_handshake() -> None:
    server, client = pair()
    server.close(1012, "restart")
    assert server.closing and not server.finished
    with pytest.raises(WebSocketDisconnect):
        server.send_message("no")
    [event] = client_events(client, server)
    assert isinstance(event, CloseConnection)
    assert server.receive_data(client.send(event.response())) == [WebSocketClose(1012, "restart")]
    assert server.finished


# ------------------------------------------------------------------ compression


def test_compressed_round_trip() -> None:
    server, client = pair(deflate=True)
    text = "compress me " * 100
    data = client.send(TextMessage(text))
    assert len(data) < len(text) // 4
    assert server.receive_data(data) == [WebSocketData(text)]
    server.send_message(text)
    out = server.data_to_send()
    assert out[0] & 0x40  # RSV1: compressed
    client.receive_data(out)
    assert [e.data for e in client.events()] == [text]  # type: ignore[attr-defined]


def test_decompression_bomb_is_capped() -> None:
    limit = 64 * 1024
    server, client = pair(max_message_bytes=limit, deflate=True)
    bomb = b"\x00" * (64 * 1024 * 1024)  # 64 MiB of zeros: ~64 KiB compressed
    data = client.send(BytesMessage(bomb))
    assert len(data) < 200 * 1024
    events = server.receive_data(data)
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1009]


def test_corrupt_deflate_stream_closes_1007() -> None:
    server, _client = pair(deflate=True)
    payload = b"\xff\xff\xff\xff"  # not a deflate stream
    frame = bytes([0xC2, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload
    events = server.receive_data(frame)
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1007]


def test_rsv1_without_deflate_is_a_protocol_error() -> None:
    server, _client = pair()
    payload = zlib.compress(b"x")
    frame = bytes([0xC2, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload
    events = server.receive_data(frame)
    assert [e.code for e in events if isinstance(e, WebSocketClose)] == [1002]


class RecordingHandshake(HandshakeRequest):
    """A handshake stream that records what it sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []

    @property
    def head(self) -> RequestHead:
        return head(upgrade_headers())

    async def send_response(self, status: int, headers: Headers) -> None:
        self.sent.append(("response", (status, headers)))

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        self.sent.append(("body", (data, end)))


def test_handshake_request_has_no_body_trailers_push_or_interim_answers() -> None:
    stream = RecordingHandshake()

    async def main() -> None:
        assert await stream.receive() == b""
        assert stream.trailers == ()
        assert not stream.disconnected
        assert await stream.push("/style.css") is False
        await stream.send_informational(103, ((b"link", b"</a>"),))
        await stream.send_response(403, ())
        await stream.send_trailers(((b"x", b"1"),))

    anyio.run(main)
    assert stream.sent == [("response", (403, ())), ("body", (b"", True))]


def test_send_plain_refusal_puts_its_fields_first() -> None:
    stream = RecordingHandshake()
    refused = HandshakeRefused(426, "unsupported", ((b"sec-websocket-version", b"13"),))
    anyio.run(send_plain, stream, refused.status, b"426 unsupported\n", refused.headers)
    assert stream.sent == [
        (
            "response",
            (
                426,
                (
                    (b"sec-websocket-version", b"13"),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"16"),
                ),
            ),
        ),
        ("body", (b"426 unsupported\n", True)),
    ]


def test_check_subprotocol_refuses_one_not_offered() -> None:
    offer = parse_offer(head(upgrade_headers(sec_websocket_protocol=b"chat")))
    assert isinstance(offer, WebSocketOffer)
    check_subprotocol(offer, "chat")
    check_subprotocol(offer, None)
    with pytest.raises(ValueError, match="was not offered"):
        check_subprotocol(offer, "other")
