"""The same requests through HTTP/1.1, HTTP/2 (TLS) and HTTP/3 on asyncio and trio, with
the same expected behaviour: what HTTPy promises does not depend on the protocol.

The server is started as users start it (``python -m httpy`` in a subprocess, once per
loop) with small limits, and every case runs on every protocol.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.support.h2peer import SocketPeer, request_headers
from tests.support.h3client import certificate_files, h3_connect
from tests.support.raw import read_until_closed, status_of
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ["http/1.1", "h2", "h3"]

pytestmark = pytest.mark.anyio


@dataclass
class Served:
    tcp_port: int
    tls_port: int
    udp_port: int
    output: Path


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    cert, key, _ = certificate_files()
    tcp, tls = free_port(), free_port()
    log = tmp_path_factory.mktemp("every-protocol") / f"{request.param}.log"
    args = [
        sys.executable, "-m", "httpy", "tests.e2e.every_protocol_app:app",
        "--backend", request.param, "--port", str(tcp),
        "--tls-bind", f"127.0.0.1:{tls}", "--certfile", str(cert), "--keyfile", str(key),
        "--http3-bind", f"127.0.0.1:{tls}",
        "--max-body-bytes", "1000", "--max-header-bytes", "4096", "--body-timeout", "0.5",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            for port in (tcp, tls):
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    except OSError:
                        if process.poll() is not None or time.monotonic() > deadline:
                            pytest.fail(f"server did not start:\n{log.read_text()}")
                        time.sleep(0.05)
            yield Served(tcp, tls, tls, log)
        finally:
            process.terminate()
            assert process.wait(timeout=20) == 0, log.read_text()
    text = log.read_text()
    # Tracebacks come only with "application error" lines (/boom, the bad headers):
    # logged, never sent.  Each bad-header request was logged, on every protocol.
    assert text.count("Traceback") == text.count("ERROR httpy.error: application error on"), text
    assert text.count("application error on GET /bad-header/") == 4 * len(PROTOCOLS) * 2, text


async def request(
    served: Served, protocol: str, method: str, path: str,
    headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"",
) -> Reply:  # fmt: skip
    """One request on a new connection of ``protocol``."""
    headers = headers or []
    if protocol == "h3":
        async with h3_connect("127.0.0.1", served.udp_port) as client:
            with anyio.fail_after(10):
                response = await client.request(method, path, headers=headers, body=body)
        fields = {k.decode(): v.decode() for k, v in response.headers}
        return Reply(response.status, fields, response.body)
    ca = ssl.create_default_context(cafile=str(certificate_files()[2]))
    http2 = protocol == "h2"
    base = (
        f"https://localhost:{served.tls_port}" if http2 else f"http://127.0.0.1:{served.tcp_port}"
    )
    async with httpx.AsyncClient(verify=ca, http2=http2, http1=not http2, timeout=10) as client:
        reply = await client.request(
            method, base + path, headers=[(k, v) for k, v in headers], content=body
        )
    assert reply.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    return Reply(reply.status_code, dict(reply.headers), reply.content)


@pytest.fixture(params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_ok(served: Served, protocol: str, anyio_backend: str) -> None:
    reply = await request(served, protocol, "POST", "/echo", body=b"x" * 10)
    assert reply.status == 200
    assert reply.body.endswith(b" 10")


@pytest.mark.parametrize("kind", ["crlf", "lf", "nul", "name"])
async def test_invalid_response_field_is_refused(
    served: Served, protocol: str, kind: str, anyio_backend: str
) -> None:
    """A handler's header with CR, LF, NUL or a non-token name never reaches the wire:
    500, and the reason is logged."""
    reply = await request(served, protocol, "GET", f"/bad-header/{kind}")
    assert reply.status == 500
    assert "x-bad" not in reply.headers and "x-injected" not in reply.headers
    assert b"injected" not in reply.body


async def test_body_over_limit_is_413(served: Served, protocol: str, anyio_backend: str) -> None:
    reply = await request(served, protocol, "POST", "/echo", body=b"x" * 5000)
    assert reply.status == 413


async def test_head_over_limit_is_431(served: Served, protocol: str, anyio_backend: str) -> None:
    reply = await request(served, protocol, "GET", "/", headers=[(b"x-big", b"v" * 6000)])
    assert reply.status == 431


async def test_handler_error_is_500_without_traceback(
    served: Served, protocol: str, anyio_backend: str
) -> None:
    reply = await request(served, protocol, "GET", "/boom")
    assert reply.status == 500
    assert b"Traceback" not in reply.body and b"on purpose" not in reply.body


async def test_tcp_probe_on_the_tls_port_is_not_an_error(
    served: Served, anyio_backend: str
) -> None:
    """A load balancer's TCP health check connects and closes without a TLS hello: a
    bad-peer line at most, never "connection task failed" with a traceback."""
    socket.create_connection(("127.0.0.1", served.tls_port), timeout=2).close()
    assert (await request(served, "h2", "GET", "/")).status == 200
    await anyio.sleep(0.2)
    assert "connection task failed" not in served.output.read_text()


async def test_stalled_body_gets_408(served: Served, protocol: str, anyio_backend: str) -> None:
    """A client that stops sending a body it announced: 408 after ``body_timeout``."""
    with anyio.fail_after(10):
        if protocol == "http/1.1":
            async with await anyio.connect_tcp("127.0.0.1", served.tcp_port) as stream:
                await stream.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
                await stream.send(b"x" * 10)
                status = status_of(await read_until_closed(stream))
        elif protocol == "h2":  # the same HTTP/2 engine as over TLS, as h2c
            async with SocketPeer.connect(("127.0.0.1", served.tcp_port)) as peer:
                sid = peer.conn.get_next_available_stream_id()
                peer.conn.send_headers(sid, request_headers("POST", "/echo"))
                peer.conn.send_data(sid, b"x" * 10)
                await peer.flush()
                await peer.until(lambda _: peer.stream_ended(sid))
                status = peer.response(sid).status
        else:
            async with h3_connect("127.0.0.1", served.udp_port) as client:
                sid = await client.start("POST", "/echo", body=b"x" * 10, end=False)
                status = (await client.wait(sid)).status
    assert status == 408


async def cancelled_count(served: Served) -> int:
    return int((await request(served, "http/1.1", "GET", "/stats")).body)


async def test_reset_or_disconnect_cancels_the_handler(
    served: Served, protocol: str, anyio_backend: str
) -> None:
    """The client gives up on a request (closes the connection on HTTP/1.1, resets the
    stream on HTTP/2 and HTTP/3): the handler is cancelled."""
    before = await cancelled_count(served)
    if protocol == "http/1.1":
        async with await anyio.connect_tcp("127.0.0.1", served.tcp_port) as stream:
            await stream.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            await anyio.sleep(0.3)
    elif protocol == "h2":
        async with SocketPeer.connect(("127.0.0.1", served.tcp_port)) as peer:
            sid = peer.conn.get_next_available_stream_id()
            peer.conn.send_headers(sid, request_headers("GET", "/slow"), end_stream=True)
            await peer.flush()
            await anyio.sleep(0.3)
            peer.conn.reset_stream(sid)
            await peer.flush()
            await anyio.sleep(0.3)
    else:
        async with h3_connect("127.0.0.1", served.udp_port) as client:
            sid = await client.start("GET", "/slow")
            await anyio.sleep(0.3)
            await client.reset(sid)
            await anyio.sleep(0.3)
    with anyio.fail_after(5):
        while await cancelled_count(served) == before:
            await anyio.sleep(0.05)
