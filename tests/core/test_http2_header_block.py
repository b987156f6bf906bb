"""Unit tests for ``HTTP2Connection.receiving_header_block`` and the header-block branch of
``receive_timeout``: the sans-IO core, raw frames in, no sockets.

h2 buffers a header block until its END_HEADERS frame is whole and reports nothing
before; the core follows frame boundaries itself, so the backend can bound a dripped
block by ``header_timeout``.  The state must not depend on how the bytes are split.
"""

from __future__ import annotations

import hpack
import hyperframe.frame as hf
import pytest

from httpy.core.config import Config
from httpy.core.events import ConnectionTerminated, ProtocolError, RequestReceived
from httpy.core.http2 import HTTP2Connection
from tests.support.h2peer import (
    ENHANCE_YOUR_CALM,
    NO_ERROR,
    PROTOCOL_ERROR,
    client_preface,
    goaway_codes,
    raw_continuation,
    raw_data,
    raw_headers,
    raw_ping,
    request_headers,
)


def connected() -> HTTP2Connection:
    conn = HTTP2Connection()
    assert conn.receive_data(client_preface()) == []
    conn.data_to_send()
    return conn


def split_request(stream_id: int = 1) -> list[bytes]:
    """One request header block as HEADERS + two CONTINUATION frames (the last ends it)."""
    block = hpack.Encoder().encode(request_headers("GET", "/", scheme="http"))
    third = len(block) // 3
    headers = hf.HeadersFrame(stream_id, data=block[:third])
    headers.flags.add("END_STREAM")
    return [
        bytes(headers.serialize()),
        raw_continuation(stream_id, block[third : 2 * third]),
        raw_continuation(stream_id, block[2 * third :], end_headers=True),
    ]


def test_block_is_open_from_headers_until_its_end_headers_frame_is_whole() -> None:
    conn = connected()
    headers, middle, last = split_request()
    assert not conn.receiving_header_block
    assert conn.receive_data(headers[:5]) == []  # a frame header split: type not known yet
    assert not conn.receiving_header_block
    assert conn.receive_data(headers[5:]) == []
    assert conn.receiving_header_block
    assert conn.receive_data(middle) == []
    assert conn.receiving_header_block
    assert conn.receive_data(last[:-1]) == []  # END_HEADERS seen, its payload not whole
    assert conn.receiving_header_block
    events = conn.receive_data(last[-1:])
    assert not conn.receiving_header_block
    assert [type(e) for e in events][:1] == [RequestReceived]


def test_single_headers_frame_and_other_frames() -> None:
    conn = connected()
    whole = raw_headers(1, request_headers("POST", "/", scheme="http"), end_stream=False)
    conn.receive_data(whole[:-1])
    assert conn.receiving_header_block  # one HEADERS frame, dripped
    conn.receive_data(whole[-1:])
    assert not conn.receiving_header_block
    conn.receive_data(raw_ping() + raw_data(1, b"body"))
    assert not conn.receiving_header_block  # PING and DATA are not header blocks


@pytest.mark.parametrize("step", [1, 2, 7, 9, 10, 64])
def test_state_does_not_depend_on_how_bytes_are_split(step: int) -> None:
    """After every byte, the block is open exactly when a HEADERS frame's header has
    been received and the END_HEADERS frame has not been received whole."""
    frames = split_request()
    data = b"".join(frames)
    start = 9  # the first frame header's end
    end = len(data)
    conn = connected()
    for pos in range(0, end, step):
        conn.receive_data(data[pos : pos + step])
        received = min(pos + step, end)
        assert conn.receiving_header_block == (start <= received < end), received
    assert not conn.should_close


def test_timeout_with_a_block_open_is_a_connection_error() -> None:
    conn = connected()
    headers, middle, _ = split_request()
    conn.receive_data(headers + middle)
    events = conn.receive_timeout()
    assert len(events) == 1 and isinstance(events[0], ProtocolError)
    assert "header_timeout" in events[0].reason
    assert goaway_codes(conn.data_to_send()) == [PROTOCOL_ERROR]
    assert conn.should_close and conn.receive_timeout() == []


def test_timeout_without_a_block_is_the_idle_goodbye() -> None:
    conn = connected()
    conn.receive_data(b"".join(split_request()))
    events = conn.receive_timeout()
    # The request is open, so this is not the idle case the backend uses it for, but
    # with no header block pending it is the plain GOAWAY NO_ERROR.
    assert events == [ConnectionTerminated(reason="idle timeout")]
    assert goaway_codes(conn.data_to_send()) == [NO_ERROR]


def _block_frames(block: bytes, pieces: int) -> list[bytes]:
    """``block`` as one HEADERS frame (END_STREAM, no END_HEADERS) and CONTINUATION
    frames, the last one ending it."""
    size = -(-len(block) // pieces)
    parts = [block[i : i + size] for i in range(0, len(block), size)]
    first = hf.HeadersFrame(1)
    first.data = parts[0]
    first.flags.add("END_STREAM")
    frames = [bytes(first.serialize())]
    for index, part in enumerate(parts[1:], start=2):
        frames.append(raw_continuation(1, part, end_headers=index == len(parts)))
    return frames


def test_a_header_block_past_max_header_bytes_is_cut_at_the_frame_header() -> None:
    """HEADERS and CONTINUATION frames announcing more than twice ``max_header_bytes``
    (where h2's decoding stops too: below, 431 on the stream) end the connection with
    ENHANCE_YOUR_CALM as soon as the frame header that passes it arrives: h2 would
    buffer up to 64 CONTINUATION frames (~1 MiB) first."""
    conn = HTTP2Connection(Config(max_header_bytes=32 * 1024))
    conn.receive_data(client_preface())
    conn.data_to_send()
    value = b"~" * 52_000  # ~84 KB once Huffman-coded ("~" takes 13 bits)
    block = hpack.Encoder().encode([*request_headers(), (b"x-big", value)])
    frames = _block_frames(block, 6)  # ~14 KB each
    assert conn.receive_data(b"".join(frames[:4])) == []  # ~56 KB so far: waiting
    events = conn.receive_data(frames[4][:9])  # only the header of the one that passes
    assert isinstance(events[-1], ProtocolError)
    assert goaway_codes(conn.data_to_send()) == [ENHANCE_YOUR_CALM]
    assert conn.should_close


def test_a_header_block_under_max_header_bytes_in_continuations_is_a_request() -> None:
    conn = connected()
    value = bytes(range(97, 123)) * 600  # 15,600 bytes, in three frames
    block = hpack.Encoder().encode([*request_headers(), (b"x-big", value)])
    events = conn.receive_data(b"".join(_block_frames(block, 3)))
    assert [type(event) for event in events][:1] == [RequestReceived]
    assert dict(events[0].headers)[b"x-big"] == value
