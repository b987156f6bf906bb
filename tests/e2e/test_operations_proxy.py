"""Behind proxies, end to end: X-Forwarded-* / Forwarded from trusted peers, and the
PROXY protocol (v1, v2, with TLS after it) on asyncio and trio."""

from __future__ import annotations

import ipaddress
import json
import ssl
import struct
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.streams.tls import TLSStream

from httpy.core.proxy_protocol import V2_SIGNATURE
from tests.e2e.operations_app import app
from tests.support.servers import running_server

FORWARDED = {
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "shop.example.com",
}


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_trusted_proxy_sets_client_scheme_and_host(http2: bool) -> None:
    async with running_server(app) as (host, port):  # default: trust 127.0.0.1
        async with httpx.AsyncClient(http1=not http2, http2=http2) as client:
            response = await client.get(f"http://{host}:{port}/request", headers=FORWARDED)
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    body = response.json()
    assert body["client"] == ["203.0.113.7", 0]
    assert body["scheme"] == "https"
    assert body["host"] == "shop.example.com"


@pytest.mark.anyio
async def test_forwarded_header_and_untrusted_peers() -> None:
    async with running_server(app) as (host, port):
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"http://{host}:{port}/request",
                headers={"forwarded": 'for="[2001:db8::7]:4711";proto=https'},
            )
    assert response.json()["client"] == ["2001:db8::7", 4711]
    # Not a trusted peer: the headers are ignored.
    async with running_server(app, forwarded_allow_ips=("10.0.0.0/8",)) as (host, port):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/request", headers=FORWARDED)
    body = response.json()
    assert body["client"][0] == "127.0.0.1"
    assert body["scheme"] == "http"
    assert body["host"] == f"{host}:{port}"


async def exchange(port: int, preamble: bytes, *, tls: ssl.SSLContext | None = None) -> bytes:
    """Send ``preamble`` then a GET /request; everything the server answered."""
    request = b"GET /request HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    async with await anyio.connect_tcp("127.0.0.1", port) as tcp:
        stream: anyio.abc.ByteStream = tcp
        await stream.send(preamble)
        if tls is not None:
            stream = await TLSStream.wrap(
                tcp, hostname="localhost", ssl_context=tls, standard_compatible=False
            )
        await stream.send(request)
        received = b""
        with anyio.fail_after(10):
            while True:
                try:
                    received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
                    return received


def body_of(response: bytes) -> dict[str, object]:
    assert response.startswith(b"HTTP/1.1 200"), response
    return json.loads(response.partition(b"\r\n\r\n")[2])  # type: ignore[no-any-return]


def v2_header(src: str, dst: str, sport: int, dport: int) -> bytes:
    body = (
        ipaddress.ip_address(src).packed
        + ipaddress.ip_address(dst).packed
        + struct.pack("!HH", sport, dport)
    )
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


@pytest.mark.anyio
async def test_proxy_protocol_v1_and_v2() -> None:
    async with running_server(app, proxy_protocol=True) as (_, port):
        v1 = await exchange(port, b"PROXY TCP4 198.51.100.22 10.0.0.1 35000 80\r\n")
        v2 = await exchange(port, v2_header("192.0.2.99", "10.0.0.1", 41000, 80))
        local = await exchange(port, V2_SIGNATURE + b"\x20\x00\x00\x00")  # health check
        missing = await exchange(port, b"")
    assert body_of(v1)["client"] == ["198.51.100.22", 35000]
    assert body_of(v2)["client"] == ["192.0.2.99", 41000]
    assert body_of(local)["client"][0] == "127.0.0.1"  # LOCAL: the real peer
    assert missing == b""  # no PROXY header: closed without an answer


@pytest.mark.anyio
async def test_proxy_protocol_before_tls(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    cert = authority.issue_cert("localhost")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    context.set_alpn_protocols(["http/1.1"])
    options = {
        "binds": (),
        "tls_binds": ("127.0.0.1:0",),
        "proxy_protocol": True,
        "certfile": str(tmp_path / "cert.pem"),
        "keyfile": str(tmp_path / "key.pem"),
    }
    async with running_server(app, **options) as (_, port):
        response = await exchange(port, v2_header("192.0.2.5", "10.0.0.1", 5555, 443), tls=context)
    body = body_of(response)
    assert body["client"] == ["192.0.2.5", 5555]
    assert body["scheme"] == "https"


@pytest.mark.anyio
async def test_trusted_proxy_headers_apply_to_a_websocket_handshake() -> None:
    """A WebSocket behind a proxy sees the forwarded client, scheme and host, as a plain
    request does (an HTTP/1.1 upgrade used to skip the proxy-header rewrite)."""
    from websockets.sync.client import connect

    def handshake(url: str) -> dict[str, object]:
        with connect(url, additional_headers=FORWARDED) as ws:
            return dict(json.loads(ws.recv()))

    async with running_server(app) as (host, port):
        body = await anyio.to_thread.run_sync(handshake, f"ws://{host}:{port}/ws/request")
    assert body["client"] == ["203.0.113.7", 0]
    assert body["scheme"] == "https"
    assert body["host"] == "shop.example.com"
