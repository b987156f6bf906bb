"""The UDP listener's answers to packets for no known connection (RFC 9000): version
negotiation, stateless reset, Retry; and junk that must get no answer."""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import pytest

pytest.importorskip("aioquic")

from httpy import App, Request, Response
from httpy.backends.server import Server
from tests.support.h3client import certificate_files, h3_connect
from tests.support.servers import make_config

pytestmark = pytest.mark.anyio


def make_app() -> App:
    app = App()

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("hello")

    return app


@asynccontextmanager
async def udp_server(**options: Any) -> AsyncIterator[tuple[Server, tuple[str, int]]]:
    cert, key, _ = certificate_files()
    config = make_config(
        certfile=str(cert), keyfile=str(key), http3_binds=("127.0.0.1:0",), **options
    )
    server = Server(make_app(), config)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(server.serve, shutdown_trigger=stop.wait))
        try:
            yield server, server.http3_addresses[0]
        finally:
            stop.set()


async def exchange(address: tuple[str, int], packet: bytes, wait: float = 1.0) -> bytes | None:
    """Send one raw datagram; the answer, or None if none came within ``wait``."""
    async with await anyio.create_connected_udp_socket(*address) as sock:
        await sock.send(packet)
        with anyio.move_on_after(wait):
            return await sock.receive()
    return None


def long_header(version: int, dcid: bytes, scid: bytes, size: int) -> bytes:
    head = bytes([0xC0]) + struct.pack("!I", version)
    head += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    return head + os.urandom(size - len(head))


async def test_unknown_version_gets_version_negotiation() -> None:
    async with udp_server() as (_server, address):
        dcid, scid = os.urandom(8), os.urandom(8)
        answer = await exchange(address, long_header(0x1A2A3A4A, dcid, scid, 1200))
        assert answer is not None
        assert answer[0] & 0x80 and answer[1:5] == b"\0\0\0\0"  # Version Negotiation
        # Connection IDs are echoed swapped (RFC 9000 17.2.1).
        assert answer[5] == 8 and answer[6:14] == scid
        assert answer[14] == 8 and answer[15:23] == dcid
        versions = [int.from_bytes(answer[i : i + 4], "big") for i in range(23, len(answer), 4)]
        assert 0x00000001 in versions
        # Too small to answer without amplification: silence.
        assert await exchange(address, long_header(0x1A2A3A4A, dcid, scid, 300), 0.3) is None


async def test_junk_and_short_packets_get_no_answer() -> None:
    async with udp_server() as (server, address):
        assert await exchange(address, b"\x00" * 40, 0.3) is None  # fixed bit clear
        assert await exchange(address, bytes([0x40]) + os.urandom(10), 0.3) is None  # tiny
        # An Initial smaller than 1200 bytes opens nothing.
        initial = long_header(0x00000001, os.urandom(8), os.urandom(8), 600)
        assert await exchange(address, initial, 0.3) is None
        assert server._quic_listeners[0].connection_count == 0


async def test_forgotten_connection_gets_stateless_reset_with_its_token() -> None:
    async with udp_server() as (server, address):
        async with h3_connect(*address) as client:
            assert (await client.get("/")).status == 200
            cid = client.quic._peer_cid.cid
            token = client.quic._peer_cid.stateless_reset_token
        listener = server._quic_listeners[0]
        with anyio.fail_after(10):
            while listener.connection_count:  # the server's closing period
                await anyio.sleep(0.05)
        packet = bytes([0x40 | 0x01]) + cid + os.urandom(40)
        answer = await exchange(address, packet)
        assert answer is not None
        assert 21 <= len(answer) < len(packet)  # smaller than the trigger: no loops
        assert answer[0] & 0xC0 == 0x40  # looks like a short-header packet
        assert answer[-16:] == token  # the token announced for this connection ID


async def test_retry_validates_the_address_first() -> None:
    async with udp_server(quic_retry=True) as (server, address):
        async with h3_connect(*address) as client:
            assert (await client.get("/")).body == b"hello"
            assert client.quic._retry_count == 1
        # A forged token opens nothing and gets no answer.
        dcid, scid = os.urandom(8), os.urandom(8)
        head = bytes([0xC0]) + struct.pack("!I", 1) + bytes([8]) + dcid + bytes([8]) + scid
        head += bytes([16]) + os.urandom(16)  # token length, token
        answer = await exchange(address, head + os.urandom(1200 - len(head)), 0.3)
        assert answer is None
        assert server._quic_listeners[0].connection_count == 0


async def _first_initial(address: tuple[str, int]) -> bytes:
    """The first Initial datagram of a new aioquic client for ``address``."""
    import time

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    quic = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"]))
    quic.connect(address, now=time.monotonic())
    return quic.datagrams_to_send(now=time.monotonic())[0][0]


async def test_retry_turns_on_while_too_many_connections_are_half_open() -> None:
    """quic_retry off: once quic_retry_threshold connections are in their handshake, a
    new client must pass a Retry first, so a flood of Initials (from spoofed addresses,
    which never complete) creates no more state; a real client still connects."""
    # (A short idle timeout: the half-open connections end soon after the test.)
    async with udp_server(quic_retry_threshold=2, quic_idle_timeout=1.0) as (server, address):
        listener = server._quic_listeners[0]
        silent = []
        for _ in range(2):  # Initials whose senders never answer: half-open connections
            sock = await anyio.create_connected_udp_socket(*address)
            await sock.send(await _first_initial(address))
            silent.append(sock)
        with anyio.fail_after(5):
            while listener.connection_count < 2:
                await anyio.sleep(0.01)
        answer = await exchange(address, await _first_initial(address))
        assert answer is not None and answer[0] & 0xF0 == 0xF0  # a Retry (QUIC v1)
        assert listener.connection_count == 2  # no state for it
        assert listener.retries_for_load == 1
        async with h3_connect(*address) as client:
            assert (await client.get("/")).body == b"hello"
            assert client.quic._retry_count == 1
        for sock in silent:
            await sock.aclose()


async def test_an_initial_flood_does_not_spend_the_retry_a_real_client_needs() -> None:
    """300 Initials (more than the 100 stateless answers a second allowed for Version
    Negotiation and Stateless Reset) while Retry is on: each is answered with a Retry,
    and a real client right after gets its own at once (sharing that budget, the flood
    spent it: the client's Initial went unanswered and it got in only after backing off,
    6-16 s in ``make attack``)."""
    async with udp_server(quic_retry_threshold=0, quic_idle_timeout=1.0) as (_server, address):
        initials = [await _first_initial(address) for _ in range(300)]
        retries = 0
        async with await anyio.create_connected_udp_socket(*address) as sock:
            for initial in initials:
                await sock.send(initial)
                with anyio.move_on_after(0.5):
                    answer = await sock.receive()
                    retries += answer[0] & 0xF0 == 0xF0
        assert retries == 300
        with anyio.fail_after(2):  # no retransmission needed (aioquic waits ~1 s for one)
            async with h3_connect(*address) as client:
                assert (await client.get("/")).body == b"hello"
                assert client.quic._retry_count == 1


async def test_no_retry_below_the_half_open_threshold() -> None:
    async with udp_server() as (server, address):
        async with h3_connect(*address) as client:
            assert (await client.get("/")).body == b"hello"
            assert client.quic._retry_count == 0
        assert server._quic_listeners[0].retries_for_load == 0
