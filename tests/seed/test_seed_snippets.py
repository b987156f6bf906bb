"""The seed's HTTP snippets (../shared/seed/ADVANCED_USAGE.md), run unchanged.

Each snippet registers on HTTPy's *default* app, so each runs in its own server process:
isolation without touching the snippet.  The integration-testing snippet is a pytest test
written for pytest-asyncio's auto mode: it runs in a child pytest with that mode, from
``examples/project`` where its ``python app.py`` starts the example app on port 8080.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h2.events
import httpx
import pytest

from tests.support.h2peer import client_connection, request_headers
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = Path(__file__).resolve().parent / "snippets"
SEED = ROOT.parent / "shared" / "seed" / "ADVANCED_USAGE.md"
PROJECT = ROOT / "examples" / "project"

SERVE = """
import sys
from functools import partial
import anyio
sys.path.insert(0, {snippets!r})
import {module}
from httpy import run
anyio.run(partial(run, host="127.0.0.1", port={port}), backend={backend!r})
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    # The seed runs `python app.py`: make `python` this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _wait_until_up(process: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                out = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"server did not start:\n{out}") from None
            time.sleep(0.1)


@contextmanager
def snippet_server(
    module: str, cwd: Path, backend: str, directory: Path = SNIPPETS, **env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    code = SERVE.format(snippets=str(directory), module=module, port=port, backend=backend)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base + "/")
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0, out
    return out


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_snippets_are_verbatim() -> None:
    if not SEED.exists():
        pytest.skip(f"seed not found at {SEED}")
    blocks = re.findall(r"```python\n(.*?)```", SEED.read_text(), re.S)
    checked = 0
    for path in sorted(SNIPPETS.glob("seed_*.py")):
        text = path.read_text()
        for index, body in re.findall(
            r"# --- BEGIN SEED SNIPPET (\d+) ---\n(.*?)# --- END SEED SNIPPET \1 ---", text, re.S
        ):
            assert body == blocks[int(index)], f"{path.name}: snippet {index} differs from the seed"
            checked += 1
    assert checked >= 6


def test_middleware_snippets(tmp_path: Path, backend: str) -> None:
    with snippet_server("seed_middleware", tmp_path, backend) as (base, process):
        with httpx.Client(base_url=base) as client:
            assert client.get("/public/info").json() == {"public": True}
            assert client.post("/login").json() == {"token": "good-token"}
            response = client.get("/private")
            assert response.status_code == 401
            assert response.json() == {"error": "Unauthorized"}
            response = client.get("/private", headers={"Authorization": "Bearer bad"})
            assert (response.status_code, response.json()) == (401, {"error": "Invalid token"})
            response = client.get("/private", headers={"Authorization": "Bearer good-token"})
            assert (response.status_code, response.json()) == (200, {"private": True})
            # middleware sees 404s too
            assert client.get("/public/missing").status_code == 404
        output = _stop(process)
    assert "Request: GET /private" in output
    assert re.search(r"Response: 200 - \d+\.\d{4}s", output)
    assert "Response: 404" in output


def test_jwt_snippet(tmp_path: Path, backend: str) -> None:
    with snippet_server("seed_jwt", tmp_path, backend) as (base, _process):
        with httpx.Client(base_url=base) as client:
            assert client.post("/login", json={"username": "user1"}).status_code == 400
            bad = client.post("/login", json={"username": "user1", "password": "nope"})
            assert bad.status_code == 401
            user = client.post("/login", json={"username": "user1", "password": "password1"})
            assert user.status_code == 200
            user_auth = {"Authorization": f"Bearer {user.json()['token']}"}
            protected = client.get("/api/protected", headers=user_auth)
            assert protected.json() == {
                "message": "Protected data",
                "user": "user1",
                "role": "user",
            }
            assert client.get("/api/admin", headers=user_auth).status_code == 403
            admin = client.post("/login", json={"username": "admin", "password": "admin123"})
            admin_auth = {"Authorization": f"Bearer {admin.json()['token']}"}
            assert client.get("/api/admin", headers=admin_auth).json() == {
                "message": "Admin data",
                "user": "admin",
            }
            assert client.get("/api/protected").status_code == 401
            assert (
                client.get("/api/protected", headers={"Authorization": "Bearer x"}).status_code
                == 401
            )


@pytest.mark.parametrize("env", ["production", "development"])
def test_exception_handling_snippet(tmp_path: Path, backend: str, env: str) -> None:
    with snippet_server("seed_errors", tmp_path, backend, ENV=env) as (base, _process):
        with httpx.Client(base_url=base) as client:
            response = client.get("/api/users")  # route-specific handler
            assert response.status_code == 503
            assert response.json() == {
                "error": "Database error occurred",
                "details": "connection refused",
            }
            response = client.get("/api/boom")  # global handler
            assert response.status_code == 500
            if env == "development":
                assert response.json()["type"] == "ValueError"
                assert "Traceback" in response.json()["traceback"]
            else:
                assert response.json() == {"error": "Internal Server Error"}
    log = (tmp_path / "app.log").read_text()
    assert "Unhandled exception: boom" in log
    assert "Database error: connection refused" in log


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def test_integration_testing_snippet() -> None:
    if not _port_free(8080):
        pytest.skip("port 8080 is in use; the seed's integration test needs it")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            str(SNIPPETS / "seed_integration_snippet.py"),
        ],
        cwd=PROJECT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_load_testing_snippet() -> None:
    if not _port_free(8080):
        pytest.skip("port 8080 is in use; the seed's load test targets it")
    app = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=PROJECT,
        env=_env(HOST="127.0.0.1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_until_up(app, "http://127.0.0.1:8080/api/users")
        result = subprocess.run(
            [sys.executable, str(SNIPPETS / "seed_load_test.py")],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        app.send_signal(signal.SIGINT)
        app.wait(20)
    assert result.returncode == 0, result.stderr
    rps = float(re.search(r"Requests per second: ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert rps > 0
    assert "95th percentile response time" in result.stdout
    print(result.stdout)  # the figures, for the README (pytest -s shows them)


def _h2_get_with_pushes(base: str, path: str, *, enable_push: bool) -> list[h2.events.Event]:
    """GET ``path`` over h2c (prior knowledge); read until it and every push have ended."""
    host, port = base.removeprefix("http://").split(":")
    conn = client_connection(enable_push=enable_push)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        headers = request_headers("GET", path, authority=f"{host}:{port}", scheme="http")
        conn.send_headers(1, headers, end_stream=True)
        sock.sendall(conn.data_to_send())
        events: list[h2.events.Event] = []
        open_streams = {1}
        while open_streams:
            data = sock.recv(65536)
            assert data, "server closed the connection early"
            for event in conn.receive_data(data):
                events.append(event)
                if isinstance(event, h2.events.PushedStreamReceived):
                    open_streams.add(event.pushed_stream_id)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    open_streams.discard(event.stream_id)
            sock.sendall(conn.data_to_send())
    return events


def test_server_push_snippet(tmp_path: Path, backend: str) -> None:
    links = [
        (b"link", b"</static/style.css>; rel=preload; as=style"),
        (b"link", b"</static/app.js>; rel=preload; as=script"),
    ]
    with snippet_server("seed_push", tmp_path, backend) as (base, _process):
        # HTTP/2 with push enabled: PUSH_PROMISEs for both resources, then their responses.
        events = _h2_get_with_pushes(base, "/", enable_push=True)
        promises = {
            dict(e.headers)[b":path"]: e.pushed_stream_id
            for e in events
            if isinstance(e, h2.events.PushedStreamReceived)
        }
        assert set(promises) == {b"/static/style.css", b"/static/app.js"}
        bodies: dict[int, bytes] = {}
        for e in events:
            if isinstance(e, h2.events.DataReceived):
                bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
        assert b"color: green" in bodies[promises[b"/static/style.css"]]
        assert b"Loaded" in bodies[promises[b"/static/app.js"]]
        assert b"HTTP/2 Server Push Example" in bodies[1]
        assert not [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
        (page,) = [
            e for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == 1
        ]
        assert [h for h in page.headers if h[0] == b"link"] == links

        # HTTP/2 with push disabled: 103 Early Hints with the Link headers instead.
        events = _h2_get_with_pushes(base, "/", enable_push=False)
        assert not [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        (hints,) = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
        assert (b":status", b"103") in hints.headers
        assert [h for h in hints.headers if h[0] == b"link"] == links
        (page,) = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
        assert (b":status", b"200") in page.headers
        assert [h for h in page.headers if h[0] == b"link"] == links

        # HTTP/1.1: 103 Early Hints, then the page, both with the Link headers.
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        hints_head, _, rest = raw.partition(b"\r\n\r\n")
        assert hints_head.startswith(b"HTTP/1.1 103 Early Hints\r\n")
        assert hints_head.lower().count(b"\r\nlink: </static/") == 2
        assert rest.startswith(b"HTTP/1.1 200 ")
        page_head = rest.partition(b"\r\n\r\n")[0].lower()
        assert b"link: </static/style.css>; rel=preload; as=style" in page_head
        assert b"link: </static/app.js>; rel=preload; as=script" in page_head
        with httpx.Client() as client:  # and a plain HTTP/1.1 client just sees the page
            assert "Server Push Example" in client.get(base + "/").text


def test_upload_download_snippet(tmp_path: Path, backend: str) -> None:
    # The snippet stores uploads next to its own file: run a copy from tmp_path.
    shutil.copy(SNIPPETS / "seed_upload.py", tmp_path / "seed_upload.py")
    payload = os.urandom(300_000)
    with snippet_server("seed_upload", tmp_path, backend, directory=tmp_path) as (base, _p):
        with httpx.Client(base_url=base) as client:
            response = client.post("/upload", files={"file": ("report.txt", payload, "text/plain")})
            assert response.status_code == 200, response.text
            assert response.json() == {
                "success": True,
                "filename": "report.txt",
                "size": len(payload),
                "download_url": "/download/report.txt",
            }
            assert (tmp_path / "uploads" / "report.txt").read_bytes() == payload
            download = client.get("/download/report.txt")
            assert download.content == payload
            assert download.headers["content-type"] == "text/plain"
            assert download.headers["content-disposition"] == 'attachment; filename="report.txt"'
            assert client.get("/download/missing.txt").status_code == 404
            not_multipart = client.post("/upload", content=b"x")
            assert not_multipart.status_code == 400
            no_file = client.post("/upload", files={"other": ("a.txt", b"a")})
            assert no_file.json() == {"error": "No file uploaded"}
