"""The ways users start a server: ``asyncio.run(run(...))``, ``trio.run``, the CLI."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]

ASYNCIO_MAIN = """
import asyncio
from examples.hello.app import app
from httpy import run
asyncio.run(run(host="127.0.0.1", port={port}, app=app))
"""

TRIO_MAIN = """
from functools import partial
import trio
from examples.hello.app import app
from httpy import run
trio.run(partial(run, host="127.0.0.1", port={port}, app=app))
"""


@contextmanager
def started(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
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


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> str:
    process.send_signal(sig)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.mark.parametrize("main", [ASYNCIO_MAIN, TRIO_MAIN], ids=["asyncio.run", "trio.run"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_same_app_runs_under_asyncio_and_trio(main: str, sig: int) -> None:
    port = free_port()
    with started([sys.executable, "-c", main.format(port=port)], port) as process:
        response = httpx.get(f"http://127.0.0.1:{port}/users/5")
        assert response.json() == {"id": 5}
        output = stop(process, sig)
    assert "httpy serving HTTP/1.1 and h2c on http://127.0.0.1:" in output
    assert '"GET /users/5 HTTP/1.1" 200' in output  # the access log
    assert "httpy stopped" in output


@pytest.mark.parametrize(
    ("backend", "loop"), [("asyncio", "asyncio"), ("asyncio", "uvloop"), ("trio", "auto")]
)
def test_command_line(backend: str, loop: str) -> None:
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (pip install 'httpy[speed]')")
    port = free_port()
    args = [sys.executable, "-m", "httpy", "examples.hello.app:app", "--port", str(port),
            "--backend", backend, "--loop", loop, "--no-access-log"]
    with started(args, port) as process:
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello, world!\n"
        output = stop(process)
    assert "GET /" not in output


def test_command_line_help_documents_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "httpy", "--help"], capture_output=True, text=True, check=True
    )
    for option in ("--host", "--port", "--bind", "--backend", "--keepalive-timeout",
                   "--header-timeout", "--max-body-bytes", "--drain-timeout", "--no-access-log"):
        assert option in result.stdout


def test_command_line_errors_exit_non_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "httpy", "no_such_module:app"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "cannot import 'no_such_module'" in result.stderr

    port = free_port()
    with started([sys.executable, "-c", ASYNCIO_MAIN.format(port=port)], port) as first:
        busy = subprocess.run(
            [sys.executable, "-m", "httpy", "examples.hello.app:app", "--port", str(port)],
            capture_output=True, text=True, cwd=ROOT, timeout=20,
        )
        assert busy.returncode == 1
        assert "could not start" in busy.stderr
        stop(first)


# -- every entry point serves HTTP/1.1, h2c and WebSockets ------------------------------

APP = "tests.e2e.entrypoint_app:app"

RUN_MAIN = """
import asyncio
from functools import partial
import trio
from httpy import run
from tests.e2e.entrypoint_app import app
{runner}
"""

ANYIO_MAIN = """
from functools import partial
import anyio
from httpy import Config, serve
from tests.e2e.entrypoint_app import app
config = Config(binds=("127.0.0.1:{port}",))
anyio.run(partial(serve, app, config, install_signal_handlers=True), backend="{backend}")
"""


def _main(runner: str) -> str:
    return RUN_MAIN.format(runner=runner)


#: How users start a server, by name: each gives the command line for a port.
ENTRY_POINTS: dict[str, Callable[[int], list[str]]] = {
    "asyncio.run(run)": lambda port: [sys.executable, "-c", _main(
        f'asyncio.run(run(host="127.0.0.1", port={port}, app=app))')],
    "trio.run(run)": lambda port: [sys.executable, "-c", _main(
        f'trio.run(partial(run, host="127.0.0.1", port={port}, app=app))')],
    "anyio.run(serve)-asyncio": lambda port: [
        sys.executable, "-c", ANYIO_MAIN.format(port=port, backend="asyncio")],
    "anyio.run(serve)-trio": lambda port: [
        sys.executable, "-c", ANYIO_MAIN.format(port=port, backend="trio")],
    # --loop auto: uvloop when the speed extra is installed
    "cli-asyncio": lambda port: [
        sys.executable, "-m", "httpy", APP, "--port", str(port), "--backend", "asyncio"],
    "cli-asyncio-loop-asyncio": lambda port: [
        sys.executable, "-m", "httpy", APP, "--port", str(port), "--backend", "asyncio",
        "--loop", "asyncio"],
    "cli-trio": lambda port: [
        sys.executable, "-m", "httpy", APP, "--port", str(port), "--backend", "trio"],
}


class ServerProcess:
    """A server started in a subprocess; its output goes to a file (a pipe nobody reads
    during a long test would fill up and block the server)."""

    def __init__(self, name: str, output_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = output_dir / (re.sub(r"[^\w.-]+", "_", name) + ".log")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            ENTRY_POINTS[name](self.port), cwd=ROOT, stdout=self._log,
            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(
                        f"{self.name}: server did not start:\n{self.output}") from None
                time.sleep(0.1)

    def wait_output(self, text: str, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.output.count(text) < count:
            assert time.monotonic() < deadline, (
                f"{self.name}: {text!r} not seen {count} time(s):\n{self.output}")
            time.sleep(0.05)

    def stop(self) -> str:
        """SIGTERM; the server must exit 0 without a traceback or a loop error."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        finally:
            self.kill()
        output = self.output
        code = self.process.returncode
        assert code == 0, f"{self.name}: exit {code}:\n{output}"
        # The loop errors an asyncio transport callback logs (the old WebSocket bug).
        assert "Fatal error" not in output, f"{self.name}:\n{output}"
        assert "Traceback" not in output, f"{self.name}:\n{output}"
        return output

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="module", params=sorted(ENTRY_POINTS))
def entry_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The entry-point app served through one entry point (a subprocess per module)."""
    server = ServerProcess(str(request.param), tmp_path_factory.mktemp("entry"))
    try:
        server.wait_ready()
        yield server
        server.stop()
    finally:
        server.kill()


def test_entry_point_get(entry_server: ServerProcess) -> None:
    response = httpx.get(f"http://127.0.0.1:{entry_server.port}/", timeout=10)
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"
    assert response.text == "Hello, world!\n"


def test_entry_point_post_with_a_body(entry_server: ServerProcess) -> None:
    body = os.urandom(100_000)
    response = httpx.post(f"http://127.0.0.1:{entry_server.port}/echo", content=body, timeout=10)
    assert response.status_code == 200
    assert response.content == body


def test_entry_point_h2c_prior_knowledge(entry_server: ServerProcess) -> None:
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        base = f"http://127.0.0.1:{entry_server.port}"
        first = client.get(f"{base}/")
        second = client.post(f"{base}/echo", content=b"over h2c")
    assert (first.http_version, first.status_code, first.text) == (
        "HTTP/2", 200, "Hello, world!\n")
    assert (second.http_version, second.content) == ("HTTP/2", b"over h2c")


def test_entry_point_websocket_echo_ping_and_close(entry_server: ServerProcess) -> None:
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{entry_server.port}/ws"
    with connect(url, open_timeout=10, close_timeout=10, ping_interval=None) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=5) == b"\x00\x01binary"
        assert ws.ping(b"are you there").wait(5), "no pong within 5 s"
        ws.send("after the ping")
        assert ws.recv(timeout=5) == "after the ping"
        ws.close(1000, "done")
    # A clean closing handshake: the server answered our close frame with the same code,
    # and its handler saw 1000.
    assert ws.protocol.close_sent is not None and ws.protocol.close_sent.code == 1000
    assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
    entry_server.wait_output("ws-closed 1000")
    assert "ws-closed 1006" not in entry_server.output


# -- a WebSocket that pings every second keeps its connection for a minute --------------

KEEPALIVE_SECONDS = 60


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_pinging_websocket_keeps_its_connection_for_a_minute_on_every_entry_point(
    tmp_path: Path,
) -> None:
    """Every entry point at once (the minute is spent once): a ``websockets`` client
    pinging every second (5 s to answer) sends a message every few seconds and checks the
    echo; after a minute every connection is still open and closes cleanly (1000 on both
    sides)."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.protocol import State

    servers = [ServerProcess(name, tmp_path) for name in sorted(ENTRY_POINTS)]
    try:
        for server in servers:
            server.wait_ready()

        async def keep(server: ServerProcess) -> dict[str, object]:
            # websockets logs each answered keep-alive ping at debug level: count them.
            logger = logging.getLogger(f"tests.keepalive.{server.name}")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            pongs = _Count("received keepalive pong")
            logger.addHandler(pongs)
            url = f"ws://127.0.0.1:{server.port}/ws"
            async with connect(
                url, ping_interval=1, ping_timeout=5, open_timeout=10, close_timeout=10,
                logger=logger,
            ) as ws:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + KEEPALIVE_SECONDS
                sent = 0
                while (left := deadline - loop.time()) > 0:
                    message = f"{server.name} #{sent}"
                    await ws.send(message)
                    assert await asyncio.wait_for(ws.recv(), 5) == message
                    sent += 1
                    await asyncio.sleep(min(3.0, left))
                state = ws.state
                await ws.close(1000, "done")
            logger.removeHandler(pongs)
            return {
                "state after a minute": state,
                "messages": sent,
                "pongs": pongs.count,
                "close sent": ws.protocol.close_sent and ws.protocol.close_sent.code,
                "close received": ws.protocol.close_rcvd and ws.protocol.close_rcvd.code,
            }

        async def all_clients() -> list[dict[str, object] | BaseException]:
            return await asyncio.gather(*map(keep, servers), return_exceptions=True)

        results = dict(zip([s.name for s in servers], asyncio.run(all_clients()), strict=True))
        problems = {}
        for server in servers:
            result = results[server.name]
            if isinstance(result, BaseException):
                problems[server.name] = repr(result)
                continue
            if not (
                result["state after a minute"] is State.OPEN
                and result["close sent"] == 1000
                and result["close received"] == 1000
                and int(str(result["messages"])) >= KEEPALIVE_SECONDS // 3
                and int(str(result["pongs"])) >= KEEPALIVE_SECONDS // 2
            ):
                problems[server.name] = str(result)
        for server in servers:
            if server.name not in problems:
                try:
                    server.wait_output("ws-closed 1000")
                except AssertionError as exc:
                    problems[server.name] = str(exc)
        assert not problems, problems
        for server in servers:
            server.stop()
    finally:
        for server in servers:
            server.kill()


class _Count(logging.Handler):
    """Counts the log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1
