"""The request the HTTP/2 and HTTP/3 test clients share, as header blocks."""

from __future__ import annotations

import pytest

from httpy.framework.testing_common import SERVER_NAME, OutgoingRequest


@pytest.mark.parametrize("scheme", [b"http", b"https"])
def test_header_block_turns_host_into_authority_and_drops_hop_fields(scheme: bytes) -> None:
    request = OutgoingRequest(
        "POST",
        "/a%20b?x=1",
        (
            ("host", "example.org"),
            ("connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("x-one", "1"),
        ),
        b"body",
    )
    assert request.header_block(scheme) == [
        (b":method", b"POST"),
        (b":scheme", scheme),
        (b":authority", b"example.org"),
        (b":path", b"/a%20b?x=1"),
        (b"x-one", b"1"),
    ]
    assert request.trailer_block() == []


def test_header_block_keeps_te_trailers_and_defaults_the_authority() -> None:
    request = OutgoingRequest(
        "GET", "/", (("te", "trailers"),), b"", trailers=(("x-checksum", "abc"),)
    )
    block = request.header_block(b"http")
    assert (b":authority", SERVER_NAME.encode()) in block
    assert (b"te", b"trailers") in block
    assert request.trailer_block() == [(b"x-checksum", b"abc")]
