"""The ways users start a server: ``asyncio.run(run(...))``, ``trio.run``, the CLI."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
