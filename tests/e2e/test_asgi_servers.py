"""ASGI both ways over real sockets, with real clients (httpx, aiohttp).

* uvicorn (asyncio only, run in a thread) serving an HTTPy ``App``;
* HTTPy's server, on asyncio and trio, serving the Starlette app in
  ``tests/e2e/starlette_app.py``: in a thread, in the test's own loop, and from the
  command line (``python -m httpy tests.e2e.starlette_app:app``);
* lifespan from the command line: a failing startup hook exits non-zero with its cause
  printed once; SIGTERM runs the shutdown hooks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import uvicorn

from httpy import App, Request, Response, StreamingResponse
from tests.e2e import starlette_app
from tests.support.servers import free_port, running_server, server_thread

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------- uvicorn -> HTTPy


def httpy_app(events: list[str], closed: threading.Event) -> App:
    app = App()

    @app.on_startup
    async def connect() -> None:
        events.append("startup")
        app.state.greeting = "hi"

    @app.on_shutdown
    def disconnect() -> None:
        events.append("shutdown")

    @app.get("/")
    async def home(request: Request) -> Response:
        return Response.text(f"{app.state.greeting} from httpy\n")

    @app.get("/users/{user_id:int}")
    async def user(request: Request) -> Response:
        return Response.json(
            {"id": request.path_params["user_id"], "verbose": request.query.get("verbose")}
        )

    @app.post("/items")
    async def create(request: Request) -> Response:
        return Response.json({"created": request.json()}, status=201)

    @app.post("/count", stream=True)
    async def count(request: Request) -> Response:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return Response.json({"bytes": total})

    @app.get("/numbers")
    async def numbers(request: Request) -> Response:
        async def generate() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"{i}\n".encode()
                await anyio.sleep(0.01)

        return StreamingResponse(generate(), media_type="text/plain")

    @app.get("/forever")
    async def forever(request: Request) -> Response:
        async def generate() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n" * 100
                    await anyio.sleep(0.01)
            finally:
                closed.set()

        return StreamingResponse(generate())

    async def stamp(request: Request, handler: Callable[[Request], Any]) -> Response:
        response: Response = await handler(request)
        response.headers["x-served-by"] = "httpy-middleware"
        return response

    app.add_middleware(stamp)
    return app


@contextmanager
def uvicorn_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on an ephemeral port, from a thread."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        http="h11",
        ws="none",
        log_level="warning",
        access_log=False,
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)
        assert not thread.is_alive()


def test_uvicorn_serves_an_httpy_app() -> None:
    events: list[str] = []
    app = httpy_app(events, threading.Event())
    with uvicorn_thread(app) as base:
        assert events == ["startup"]
        with httpx.Client(base_url=base) as client:
            response = client.get("/")
            assert response.text == "hi from httpy\n"
            assert response.headers["x-served-by"] == "httpy-middleware"
            assert client.get("/users/5?verbose=1").json() == {"id": 5, "verbose": "1"}
            created = client.post("/items", json={"name": "x"})
            assert (created.status_code, created.json()) == (201, {"created": {"name": "x"}})
            assert client.post("/items", content=b"{bad").status_code == 400
            missing = client.get("/missing")
            assert missing.status_code == 404
            assert missing.headers["x-served-by"] == "httpy-middleware"
            assert client.delete("/").status_code == 405
            upload = client.post("/count", content=(b"x" * 1000 for _ in range(100)))
            assert upload.json() == {"bytes": 100_000}
            with client.stream("GET", "/numbers") as streamed:
                assert streamed.headers["transfer-encoding"] == "chunked"
                assert streamed.headers["content-type"] == "text/plain; charset=utf-8"
                assert "".join(streamed.iter_text()) == "0\n1\n2\n3\n4\n"
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_uvicorn_client_disconnect_cancels_an_httpy_streaming_handler() -> None:
    closed = threading.Event()
    with uvicorn_thread(httpy_app([], closed)) as base:
        with httpx.Client(base_url=base) as client:
            with client.stream("GET", "/forever") as response:
                for _ in response.iter_bytes():
                    break
        assert closed.wait(10), "the streaming generator was not closed"


def test_aiohttp_against_uvicorn_serving_httpy() -> None:
    async def main(base: str) -> None:
        async with aiohttp.ClientSession(base) as session:
            async with session.post("/items", json=[1, 2, 3]) as response:
                assert response.status == 201
                assert await response.json() == {"created": [1, 2, 3]}
            async with session.get("/numbers") as response:
                assert await response.text() == "0\n1\n2\n3\n4\n"

    with uvicorn_thread(httpy_app([], threading.Event())) as base:
        asyncio.run(main(base))


# --------------------------------------------------------------------- HTTPy -> Starlette


@pytest.fixture
def starlette_server(server_backend: str) -> Iterator[str]:
    with server_thread(starlette_app.app, server_backend) as (host, port):
        yield f"http://{host}:{port}"


def test_httpy_serves_starlette(starlette_server: str) -> None:
    assert starlette_app.LIFESPAN_EVENTS[-1] == "startup"
    with httpx.Client(base_url=starlette_server) as client:
        assert client.get("/").text == "hello from starlette\n"
        response = client.get("/items/9", params={"q": "é"})
        assert response.json() == {"id": 9, "q": "é", "path": "/items/9"}
        assert client.get("/items/nine").status_code == 404
        echoed = client.post("/echo", json={"list": [1, 2]})
        assert echoed.status_code == 201
        assert echoed.json() == {"received": {"list": [1, 2]}, "content_type": "application/json"}
        upload = client.post("/upload", content=(b"y" * 4096 for _ in range(64)))
        assert upload.json() == {"size": 64 * 4096}
        assert client.get("/state").json() == {"started": True}
        chunks = []
        with client.stream("GET", "/numbers", params={"n": 20}) as streamed:
            assert streamed.headers["transfer-encoding"] == "chunked"
            for chunk in streamed.iter_text():
                chunks.append(chunk)
        assert "".join(chunks) == "".join(f"line {i}\n" for i in range(20))
        assert len(chunks) > 1  # it arrived as it was produced
        info = client.get("/scope/a%20b/c", params={"x": "1"}).json()
    assert info["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert info["http_version"] == "1.1"
    assert info["scheme"] == "http"
    assert info["path"] == "/scope/a b/c"
    assert info["raw_path"] == "/scope/a%20b/c"
    assert info["query_string"] == "x=1"
    assert info["root_path"] == ""
    assert info["client"][0] == "127.0.0.1"
    assert info["server"][1] == int(starlette_server.rsplit(":", 1)[1])


def test_starlette_lifespan_shutdown_runs_when_httpy_stops(server_backend: str) -> None:
    before = len(starlette_app.LIFESPAN_EVENTS)
    with server_thread(starlette_app.app, server_backend) as (host, port):
        assert httpx.get(f"http://{host}:{port}/state").json() == {"started": True}
        assert starlette_app.LIFESPAN_EVENTS[before:] == ["startup"]
    assert starlette_app.LIFESPAN_EVENTS[before:] == ["startup", "shutdown"]


def test_aiohttp_against_httpy_serving_starlette(starlette_server: str) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession(starlette_server) as session:
            for i in range(3):  # keep-alive
                async with session.post("/echo", json={"i": i}) as response:
                    assert response.status == 201
                    assert (await response.json())["received"] == {"i": i}
            async with session.get("/numbers?n=4") as response:
                assert await response.text() == "line 0\nline 1\nline 2\nline 3\n"

    asyncio.run(main())


def test_client_disconnect_reaches_starlette_as_http_disconnect(starlette_server: str) -> None:
    host, port = starlette_server.removeprefix("http://").rsplit(":", 1)
    before = starlette_app.DISCONNECTS.count("/wait-for-disconnect")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /wait-for-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)  # the handler is now waiting in receive()
    deadline = time.monotonic() + 10
    while starlette_app.DISCONNECTS.count("/wait-for-disconnect") == before:
        assert time.monotonic() < deadline, "the app never saw http.disconnect"
        time.sleep(0.02)


async def failing_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # no lifespan support: HTTPy carries on without it
    if scope["path"] == "/before":
        raise RuntimeError("failed before the response started")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("failed after the response started")


def test_asgi_app_errors_become_500_or_an_aborted_response(server_backend: str) -> None:
    with server_thread(failing_asgi_app, server_backend) as (host, port):
        with httpx.Client(base_url=f"http://{host}:{port}") as client:
            response = client.get("/before")
            assert response.status_code == 500
            with pytest.raises(httpx.RemoteProtocolError):
                client.get("/after")
            assert client.get("/before").status_code == 500  # still serving


@pytest.mark.anyio
async def test_starlette_in_the_tests_own_loop() -> None:
    async with running_server(starlette_app.app) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/items/3")).json()["id"] == 3
            assert (await client.get("/numbers?n=2")).text == "line 0\nline 1\n"
            assert (await client.get("/state")).json() == {"started": True}


# --------------------------------------------------------------------- command line


@contextmanager
def command(args: list[str], port: int, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read() if process.stdout else b""
                    raise AssertionError(f"server did not start: {out.decode()}") from None
                time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def terminate(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_serves_a_starlette_app(backend: str) -> None:
    port = free_port()
    args = ["-m", "httpy", "tests.e2e.starlette_app:app", "--port", str(port), "--backend", backend]
    with command(args, port) as process:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/items/4").json()["id"] == 4
            assert client.post("/echo", json=[1]).json()["received"] == [1]
            assert client.get("/numbers?n=3").text == "line 0\nline 1\nline 2\n"
            assert client.get("/state").json() == {"started": True}
        output = terminate(process)
    lines = output.splitlines()
    assert "starlette lifespan: startup" in lines
    assert "starlette lifespan: shutdown" in lines
    serving = next(i for i, line in enumerate(lines) if "httpy serving" in line)
    stopped = next(i for i, line in enumerate(lines) if "httpy stopped" in line)
    assert lines.index("starlette lifespan: startup") < serving
    assert lines.index("starlette lifespan: shutdown") < stopped
    assert '"GET /items/4 HTTP/1.1" 200' in output


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_runs_shutdown_hooks_on_sigterm(backend: str) -> None:
    port = free_port()
    args = ["-m", "httpy", "tests.e2e.lifespan_app:app", "--port", str(port), "--backend", backend]
    with command(args, port) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "hello from a started app\n"
        output = terminate(process)
    hooks = [line for line in output.splitlines() if line.startswith("hook: ")]
    assert hooks == [
        "hook: startup open_pool",
        "hook: startup check_database",
        "hook: shutdown flush_metrics",
        "hook: shutdown close_pool",
    ]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_command_line_exits_non_zero_when_a_startup_hook_fails(backend: str) -> None:
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "httpy",
            "tests.e2e.lifespan_app:app",
            "--port",
            str(port),
            "--backend",
            backend,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HTTPY_TEST_FAIL_STARTUP": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.count("database unreachable at db.internal:5432") == 1, output
    assert (
        "application startup failed: RuntimeError: database unreachable at db.internal:5432"
        in result.stderr
    )
    assert "Traceback" not in output
    assert "httpy serving" not in output
    assert "hook: startup open_pool" in result.stdout
    assert "hook: shutdown" not in result.stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # no listener was left behind


RUN_MAIN = {
    "asyncio.run": """
import asyncio
from httpy import run
from tests.e2e.starlette_app import app
asyncio.run(run(host="127.0.0.1", port={port}, app=app))
""",
    "trio.run": """
from functools import partial
import trio
from httpy import run
from tests.e2e.starlette_app import app
trio.run(partial(run, host="127.0.0.1", port={port}, app=app))
""",
}


@pytest.mark.parametrize("main", list(RUN_MAIN), ids=list(RUN_MAIN))
def test_run_accepts_an_asgi_app(main: str) -> None:
    port = free_port()
    with command(["-c", RUN_MAIN[main].format(port=port)], port) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/items/1").json()["id"] == 1
        output = terminate(process)
    assert "starlette lifespan: shutdown" in output
