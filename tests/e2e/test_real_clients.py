"""Real clients (httpx, aiohttp, curl) against the real server on asyncio and trio."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import aiohttp
import httpx
import pytest


def test_httpx_get_post_keepalive(hello_server: str) -> None:
    with httpx.Client(base_url=hello_server) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert response.text == "Hello, world!\n"
        assert response.http_version == "HTTP/1.1"
        assert client.get("/users/41").json() == {"id": 41}
        payload = bytes(range(256)) * 4000
        echoed = client.post("/echo", content=payload)
        assert echoed.content == payload
        assert client.get("/missing").status_code == 404
        assert client.delete("/").headers["allow"] == "GET, HEAD, OPTIONS"


def test_httpx_chunked_upload(hello_server: str) -> None:
    def body():  # type: ignore[no-untyped-def]
        for i in range(100):
            yield b"%03d" % i

    with httpx.Client(base_url=hello_server) as client:
        response = client.post("/echo", content=body())
    assert response.content == b"".join(b"%03d" % i for i in range(100))


def test_aiohttp_client(hello_server: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession(hello_server) as session:
            async with session.get("/json") as response:
                assert response.status == 200
                assert await response.json() == {"message": "Hello, world!"}
            async with session.head("/json") as response:
                assert response.status == 200
                assert response.headers["content-length"] == "27"
                assert await response.read() == b""
            # 50 concurrent requests over the session's pool
            async def one(i: int) -> int:
                async with session.get(f"/users/{i}") as r:
                    return int((await r.json())["id"])

            assert sorted(await asyncio.gather(*(one(i) for i in range(50)))) == list(range(50))

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(hello_server: str) -> None:
    result = subprocess.run(
        ["curl", "-si", "--max-time", "10", f"{hello_server}/"],
        capture_output=True,
        check=True,
    )
    assert result.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert result.stdout.endswith(b"\r\n\r\nHello, world!\n")
    result = subprocess.run(
        ["curl", "-s", "--max-time", "10", "-d", "posted", f"{hello_server}/echo"],
        capture_output=True,
        check=True,
    )
    assert result.stdout == b"posted"
