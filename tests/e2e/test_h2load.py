"""h2load (nghttp2's load generator) against h2c with prior knowledge: a smoke test that
many multiplexed streams on several connections all succeed, on asyncio and on trio.

A smoke test, not a benchmark: it asserts correctness only.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from examples.hello.app import app as hello_app
from tests.support.servers import server_thread


@pytest.mark.skipif(
    shutil.which("h2load") is None,
    reason="h2load is not installed (Debian package nghttp2-client; "
    "scripts/install-system-deps.sh installs it)",
)
def test_h2load_all_requests_succeed(server_backend: str) -> None:
    with server_thread(hello_app, server_backend) as (host, port):
        done = subprocess.run(
            ["h2load", "-n", "2000", "-c", "4", "-m", "16", f"http://{host}:{port}/"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
        done.stdout,
    )
    assert match, done.stdout
    total, finished, succeeded, failed = map(int, match.groups())
    assert (total, finished, succeeded, failed) == (2000, 2000, 2000, 0), done.stdout
    assert "Application protocol: h2c" in done.stdout
    assert re.search(r"status codes: 2000 2xx", done.stdout), done.stdout
