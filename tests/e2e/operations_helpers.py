"""Start ``python -m httpy`` in a subprocess and wait for it (operations tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def httpy_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "httpy", *args]


def spawn(
    args: list[str], *, pass_fds: tuple[int, ...] = (), env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def wait_until(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 30
) -> None:
    """Poll ``ready()`` until it is true; fail with the server's output if it exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except (httpx.TransportError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            out = process.stdout.read() if process.stdout else b""
            raise AssertionError(f"server did not become ready: {out.decode()}")
        time.sleep(0.1)


def http_ready(url: str, **kwargs: object) -> Callable[[], bool]:
    def check() -> bool:
        return httpx.get(url, timeout=2, **kwargs).status_code < 500  # type: ignore[arg-type]

    return check


@contextmanager
def running(
    args: list[str],
    ready: Callable[[], bool],
    *,
    pass_fds: tuple[int, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn(args, pass_fds=pass_fds, env=env)
    try:
        wait_until(process, ready)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def stop(process: subprocess.Popen[bytes], sig: int, timeout: float = 30) -> str:
    """Send ``sig``; return the output once the process exited with status 0."""
    process.send_signal(sig)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode()
    return output.decode()
