"""The seed's "HTTP/3 Configuration" snippet, run unchanged with a generated certificate.

The snippet serves on port 443; tests/seed/snippets/run_seed_http3.py moves it to free
ports at run time (see there).  The server runs on asyncio (the snippet's
``asyncio.run``); the HTTP/3 client runs on asyncio and trio.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

pytest.importorskip("aioquic")

from tests.support.h3client import certificate_files, h3_connect
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "snippets" / "run_seed_http3.py"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def seed_server(tmp_path: Path, *flags: str) -> Iterator[tuple[int, int, ssl.SSLContext]]:
    cert, key, ca = certificate_files()
    shutil.copy(cert, tmp_path / "cert.pem")
    shutil.copy(key, tmp_path / "key.pem")
    tcp, udp = free_port(), free_udp_port()
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), str(tcp), str(udp), *flags],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    trust = ssl.create_default_context(cafile=str(ca))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"https://localhost:{tcp}/", verify=trust, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read() if process.stdout else ""
                    raise AssertionError(f"seed server did not start:\n{out}") from None
                time.sleep(0.1)
        yield tcp, udp, trust
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0, out
        assert "httpy stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _h3_get(port: int) -> tuple[int, bytes]:
    async with h3_connect("127.0.0.1", port) as client:
        response = await client.get("/")
        return response.status, response.body


@pytest.mark.parametrize("client_backend", ["asyncio", "trio"])
def test_http3_snippet_serves_three_versions(tmp_path: Path, client_backend: str) -> None:
    with seed_server(tmp_path) as (tcp, udp, trust):
        with httpx.Client(verify=trust, http2=True) as http:
            reply = http.get(f"https://localhost:{tcp}/")
            assert reply.http_version == "HTTP/2"
            assert reply.text == "hello over HTTP/2"
            assert reply.headers["alt-svc"] == f'h3=":{udp}"; ma=86400'
        with httpx.Client(verify=trust, http2=False) as http:
            assert http.get(f"https://localhost:{tcp}/").text == "hello over HTTP/1.1"
        status, body = anyio.run(_h3_get, udp, backend=client_backend)
        assert (status, body) == (200, b"hello over HTTP/3")


def test_http3_snippet_fallback_without_aioquic(tmp_path: Path) -> None:
    with seed_server(tmp_path, "--without-aioquic") as (tcp, _udp, trust):
        with httpx.Client(verify=trust, http2=True) as http:
            reply = http.get(f"https://localhost:{tcp}/")
            assert reply.text == "hello over HTTP/2"
            assert "alt-svc" not in reply.headers
