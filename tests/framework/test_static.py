"""StaticFiles and App.mount_static over real sockets, on asyncio and trio: files,
indexes, redirects, caching and ranges, and path traversal attempts sent as raw bytes."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from httpy import App, StaticFiles
from tests.support.raw import exchange, status_of
from tests.support.servers import running_server, server_thread

SECRET = b"TOP-SECRET-CONTENT"
DATA = os.urandom(100_000)
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """``tmp/root`` is served; ``tmp/secret.txt`` and ``tmp/root-evil`` must never be."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    evil = tmp_path / "root-evil"
    evil.mkdir()
    (evil / "file.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "noindex").mkdir()
    (root / ".git").mkdir()
    (root / "evil.com").mkdir()
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "hello.txt").write_text("hello static\n")
    (root / "data.bin").write_bytes(DATA)
    (root / "sub" / "index.html").write_text("<h1>sub</h1>\n")
    (root / "sub" / "page.txt").write_text("sub page\n")
    (root / "noindex" / "x.txt").write_text("x\n")
    (root / ".hidden").write_text("hidden\n")
    (root / ".git" / "config").write_text("[core]\n")
    (root / "evil.com" / "index.html").write_text("not a redirect target\n")
    (root / "space name.txt").write_text("spaced\n")
    (root / "inside_link").symlink_to("hello.txt")
    (root / "alias.css").symlink_to("hello.txt")
    (root / "link_out").symlink_to(tmp_path / "secret.txt")
    (root / "relative_out").symlink_to("../secret.txt")
    (root / "dir_out").symlink_to(tmp_path)
    (root / "sibling").symlink_to("../root-evil/file.txt")
    return root


def make_app(root: Path) -> App:
    app = App()
    app.mount_static("/static", root)
    app.mount_static("/followed", root, follow_symlinks=True)
    app.mount_static("/dotfiles/", root, allow_hidden=True)
    app.mount_static("/plain", root, index=None)
    return app


TRAVERSALS = [
    "/static/../secret.txt",
    "/static/..",
    "/static/%2e%2e",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/%2e./secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%2Fsecret.txt",
    "/static/%2e%2e%2fsecret.txt",
    "/static/%2e%2e%5csecret.txt",
    "/static/..%5csecret.txt",
    "/static/..%5C..%5Csecret.txt",
    "/static/..\\secret.txt",
    "/static/sub\\..\\..\\secret.txt",
    "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/sub/..%2f..%2fsecret.txt",
    "/static/./../secret.txt",
    "/static/%252e%252e/secret.txt",  # double encoding is decoded once: a literal name
    "/static/%c0%ae%c0%ae/secret.txt",  # overlong UTF-8 for "..": not valid UTF-8
    "/static/%u002e%u002e/secret.txt",
    "/static/secret.txt%00",
    "/static/hello.txt%00.html",
    "/static/%00../secret.txt",
    "/static/..%00/secret.txt",
    "/static/link_out",
    "/static/relative_out",
    "/static/dir_out/secret.txt",
    "/static/dir_out/root-evil/file.txt",
    "/static/sibling",
    "/static/../root-evil/file.txt",
    "/static/.hidden",
    "/static/.git/config",
    "/static/./hello.txt",
    "/static/hello.txt/",
    "/static/nonexistent",
    "/static/noindex/",
    "/plain/",
    "/followed/../secret.txt",
    "/followed/%2e%2e/secret.txt",
    "/followed/dir_out/../secret.txt",
    "/dotfiles/../secret.txt",
]


def absolute_traversals(root: Path) -> list[str]:
    secret = str(root.parent / "secret.txt")
    return [
        "/static/" + secret,  # //tmp/.../secret.txt
        "/static/" + secret.replace("/", "%2f"),
        "/static/" + secret.replace("/", "%5c"),
        "/static/" + secret.replace("/", "\\"),
    ]


# ------------------------------------------------------------------ traversal


@pytest.mark.anyio
async def test_traversal_attempts_are_404_and_never_leak(site: Path) -> None:
    async with running_server(make_app(site)) as address:
        for target in TRAVERSALS + absolute_traversals(site):
            request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            raw = await exchange(address, request.encode("latin-1"))
            assert status_of(raw) == 404, (target, raw[:200])
            assert SECRET not in raw, target
        # The same server does serve the files that are in the root.
        raw = await exchange(
            address, b"GET /static/hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status_of(raw) == 200
        assert raw.endswith(b"hello static\n")


@needs_curl
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_curl_path_as_is_traversal(site: Path, backend: str) -> None:
    with server_thread(make_app(site), backend) as (host, port):
        for target in ["/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/link_out"]:
            result = subprocess.run(
                ["curl", "-s", "--path-as-is", "-w", "\n%{http_code}", f"http://{host}:{port}{target}"],
                capture_output=True,
                check=True,
            )  # fmt: skip
            assert result.stdout.endswith(b"\n404"), target
            assert SECRET not in result.stdout
        result = subprocess.run(
            ["curl", "-s", "-r", "10-19", f"http://{host}:{port}/static/data.bin"],
            capture_output=True,
            check=True,
        )
        assert result.stdout == DATA[10:20]


@given(
    path=st.lists(
        st.sampled_from(
            ["..", ".", "", "%2e", "\\", "\x00", "sub", "dir_out", "link_out", "secret.txt",
             "hello.txt", "index.html", "root-evil", "file.txt", ".git", "noindex", "/"]
        )
        | st.text(max_size=6),
        max_size=6,
    ).map("/".join)
)  # fmt: skip
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_lookup_never_escapes_the_root(site: Path, path: str) -> None:
    for static in (StaticFiles(site), StaticFiles(site, allow_hidden=True)):
        found = static.lookup(path)
        if isinstance(found, tuple):
            real = Path(os.path.realpath(found[0]))
            assert real.is_relative_to(site.resolve()), path
            assert found[0].read_bytes() != SECRET


def test_static_files_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        StaticFiles(tmp_path / "missing")
    with pytest.raises(ValueError):
        StaticFiles(tmp_path, index="../index.html")
    StaticFiles(tmp_path / "missing", check_dir=False)  # created later: allowed


# ------------------------------------------------------------ serving files


@pytest.mark.anyio
async def test_files_indexes_and_redirects(site: Path) -> None:
    async with running_server(make_app(site)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get("/static/hello.txt?v=3")
            assert response.status_code == 200
            assert response.text == "hello static\n"
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert response.headers["accept-ranges"] == "bytes"
            assert response.headers["etag"].startswith('W/"')
            assert "last-modified" in response.headers
            assert (await client.get("/static/space%20name.txt")).text == "spaced\n"
            assert (await client.get("/static/data.bin")).content == DATA
            response = await client.get("/static/inside_link")
            assert response.text == "hello static\n"
            # The type comes from the requested name, not from the symlink's target.
            assert response.headers["content-type"] == "application/octet-stream"
            response = await client.get("/static/alias.css")
            assert response.headers["content-type"] == "text/css; charset=utf-8"

            response = await client.get("/static/")
            assert response.text == "<h1>home</h1>\n"
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert (await client.get("/static/sub/")).text == "<h1>sub</h1>\n"
            assert (await client.get("/static/sub/page.txt")).text == "sub page\n"
            assert (await client.get("/static/noindex/x.txt")).text == "x\n"

            for path, location in [
                ("/static", "/static/"),
                ("/static/sub", "/static/sub/"),
                ("/static/sub?a=1&b=%C3%A9", "/static/sub/?a=1&b=%C3%A9"),
            ]:
                response = await client.get(path)
                assert response.status_code == 301, path
                assert response.headers["location"] == location
            followed = await client.get("/static/sub", follow_redirects=True)
            assert followed.text == "<h1>sub</h1>\n"

            response = await client.head("/static/hello.txt")
            assert response.status_code == 200
            assert response.headers["content-length"] == "13"
            assert response.content == b""
            response = await client.post("/static/hello.txt")
            assert response.status_code == 405
            assert response.headers["allow"] == "GET, HEAD, OPTIONS"

            # Options
            assert (await client.get("/followed/link_out")).content == SECRET  # trusted tree
            assert (await client.get("/followed/dir_out/secret.txt")).content == SECRET
            assert (await client.get("/dotfiles/.hidden")).text == "hidden\n"
            assert (await client.get("/dotfiles/.git/config")).text == "[core]\n"
            assert (await client.get("/plain/hello.txt")).status_code == 200
            assert (await client.get("/plain/sub/")).status_code == 404


@pytest.mark.anyio
async def test_mount_at_root_never_redirects_off_site(site: Path) -> None:
    app = App()
    app.mount_static("/", site)
    async with running_server(app) as address:
        raw = await exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.endswith(b"<h1>home</h1>\n")
        # //evil.com is a directory of the root here: the redirect must stay on this site.
        raw = await exchange(
            address, b"GET //evil.com HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert status_of(raw) == 301
        assert b"\r\nlocation: /evil.com/\r\n" in raw


@pytest.mark.anyio
async def test_static_caching_and_ranges(site: Path) -> None:
    size = len(DATA)
    async with running_server(make_app(site)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            first = await client.get("/static/data.bin")
            etag, last_modified = first.headers["etag"], first.headers["last-modified"]
            response = await client.get("/static/data.bin", headers={"if-none-match": etag})
            assert (response.status_code, response.content) == (304, b"")
            response = await client.get(
                "/static/data.bin", headers={"if-modified-since": last_modified}
            )
            assert response.status_code == 304
            response = await client.get("/static/", headers={"if-none-match": "*"})
            assert response.status_code == 304

            response = await client.get("/static/data.bin", headers={"range": "bytes=-100"})
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
            assert response.content == DATA[-100:]
            response = await client.get(
                "/static/data.bin",
                headers={"range": "bytes=0-0,99990-", "if-range": last_modified},
            )
            assert response.status_code == 206
            assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
            assert DATA[:1] in response.content
            assert DATA[99990:] in response.content
            response = await client.get("/static/data.bin", headers={"range": f"bytes={size}-"})
            assert response.status_code == 416
            assert response.headers["content-range"] == f"bytes */{size}"


@pytest.fixture(params=["asyncio", "trio"])
def static_server(request: pytest.FixtureRequest, site: Path) -> Iterator[str]:
    with server_thread(make_app(site), str(request.param)) as (host, port):
        yield f"http://{host}:{port}"


def test_aiohttp_static(static_server: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession(static_server) as session:
            async with session.get("/static/data.bin") as response:
                assert response.status == 200
                assert await response.read() == DATA
                etag = response.headers["ETag"]
            async with session.get("/static/data.bin", headers={"If-None-Match": etag}) as response:
                assert response.status == 304
            async with session.get(
                "/static/data.bin", headers={"Range": "bytes=500-599"}
            ) as response:
                assert response.status == 206
                assert await response.read() == DATA[500:600]
            async with session.get("/static/sub") as response:  # follows the 301
                assert response.status == 200
                assert str(response.url).endswith("/static/sub/")
                assert await response.text() == "<h1>sub</h1>\n"
            async with session.get("/static/..%2fsecret.txt") as response:
                assert response.status == 404
                assert SECRET not in await response.read()

    asyncio.run(main())
