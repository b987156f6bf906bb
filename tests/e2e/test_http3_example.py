"""examples/http3_app.py and the command line serving HTTP/3, checked with the aioquic
client (on asyncio and trio) and httpx over TCP."""

from __future__ import annotations

import hashlib
import os
import ssl
import sys

import httpx
import pytest

pytest.importorskip("aioquic")

from tests.support.h3client import certificate_files, example_server, h3_connect

pytestmark = pytest.mark.anyio


def trust() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate_files()[2]))


async def check_http3(port: int) -> None:
    payload = os.urandom(2_000_000)
    async with h3_connect("127.0.0.1", port) as client:
        hello = await client.get("/hello")
        assert hello.body == b"Hello over HTTP/3!\n"
        page = await client.get("/")
        assert b"nextHopProtocol" in page.body
        upload = await client.request("POST", "/sha256", body=payload)
        assert upload.body == (
            b'{"sha256":"%s","size":%d}' % (hashlib.sha256(payload).hexdigest().encode(), 2_000_000)
        )
        countdown = await client.get("/countdown")
        assert countdown.body == b"5\n4\n3\n2\n1\nliftoff\n"


async def test_example_app_serves_three_versions() -> None:
    with example_server() as port:
        async with httpx.AsyncClient(verify=trust(), http2=True) as http:
            reply = await http.get(f"https://127.0.0.1:{port}/hello")
            assert reply.text == "Hello over HTTP/2!\n"
            assert reply.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
        async with httpx.AsyncClient(verify=trust()) as http:
            assert (await http.get(f"https://127.0.0.1:{port}/hello")).http_version == "HTTP/1.1"
        await check_http3(port)


async def test_command_line_http3_port(anyio_backend: str) -> None:
    cert, key, _ = certificate_files()
    command = (
        sys.executable, "-m", "httpy", "examples.http3_app:app",
        "--bind", "127.0.0.1:0", "--tls-bind", "127.0.0.1:{port}",
        "--certfile", str(cert), "--keyfile", str(key),
        "--http3-bind", "127.0.0.1:{port}", "--backend", anyio_backend,
    )  # fmt: skip
    with example_server(*command) as port:
        await check_http3(port)
        async with httpx.AsyncClient(verify=trust(), http2=True) as http:
            reply = await http.get(f"https://127.0.0.1:{port}/hello")
            assert reply.headers["alt-svc"] == f'h3=":{port}"; ma=86400'


async def test_workers_share_the_udp_port_with_reuse_port() -> None:
    cert, key, _ = certificate_files()
    command = (
        sys.executable, "-m", "httpy", "examples.http3_app:app", "--host", "127.0.0.1",
        "--bind", "127.0.0.1:0", "--tls-bind", "127.0.0.1:{port}",
        "--certfile", str(cert), "--keyfile", str(key), "--http3-port", "{port}",
        "--workers", "2", "--reuse-port",
    )  # fmt: skip
    with example_server(*command) as port:
        for _ in range(4):  # new connections: the kernel may pick either worker
            async with h3_connect("127.0.0.1", port) as client:
                assert (await client.get("/hello")).body == b"Hello over HTTP/3!\n"
