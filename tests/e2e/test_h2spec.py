"""h2spec, the HTTP/2 conformance tester, against HTTPy started as users start it:
``python -m httpy tests.e2e.h2spec_app:app`` with the default configuration, on asyncio
and on trio, over h2c (prior knowledge) and over TLS (ALPN h2).  Every run must report
all 146 cases passed.

The binary is a static build provided next to the repository
(``../shared/tools/h2spec/h2spec``, see its README); without it the tests are skipped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
H2SPEC = ROOT.parent / "shared" / "tools" / "h2spec" / "h2spec"
#: h2spec 2.6.0 (summerwind/h2spec af83a65): the generic, http2 and hpack groups.
CASES = 146
#: Seconds h2spec waits for an expected frame or close: its default, -o 2 (passing cases
#: take milliseconds).  Not raised: the server's lingering close after a GOAWAY reads for
#: 2 s, and a TLS connection that ended only then failed 5.4.1/1 at this timeout.
CASE_TIMEOUT = 2

SUMMARY = re.compile(r"^(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed$", re.MULTILINE)
SECTION = re.compile(r"^\s*(\d+(?:\.\d+)*)\. ")
FAILED_CASE = re.compile(r"^\s*\u00d7 (\d+): (.*)$")  # a multiplication sign marks failures
GROUPS = {
    "Generic tests for HTTP/2 server": "generic",
    "Hypertext Transfer Protocol Version 2 (HTTP/2)": "http2",
    "HPACK: Header Compression for HTTP/2": "hpack",
}

pytestmark = pytest.mark.skipif(
    not os.access(H2SPEC, os.X_OK), reason=f"h2spec is not available at {H2SPEC}"
)


def wait_for_ports(process: subprocess.Popen[bytes], log: Path, *ports: int) -> None:
    deadline = time.monotonic() + 30
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    """``python -m httpy`` on the backend: h2c on one port, TLS on another."""
    backend = str(request.param)
    workdir = tmp_path_factory.mktemp(f"h2spec-{backend}")
    ports = {"h2c": free_port(), "tls": free_port()}
    log = workdir / "server.log"
    command = [
        sys.executable, "-m", "httpy", "tests.e2e.h2spec_app:app",
        "--port", str(ports["h2c"]),
        "--tls-bind", f"127.0.0.1:{ports['tls']}",
        "--dev-cert", str(workdir / "certs"),
        "--backend", backend,
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        wait_for_ports(process, log, *ports.values())
        yield ports
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def failed_cases(output: str) -> list[str]:
    """The failing cases of h2spec's report, as ``http2/3.5/2: <description>``."""
    failures = output.partition("\nFailures:")[2]
    names: list[str] = []
    group, section = "", ""
    for line in failures.splitlines():
        if line.strip() in GROUPS:
            group = GROUPS[line.strip()]
        elif match := FAILED_CASE.match(line):
            names.append(f"{group}/{section}/{match[1]}: {match[2]}")
        elif match := SECTION.match(line):
            section = match[1]
    return names


@pytest.mark.parametrize("transport", ["h2c", "tls"])
def test_h2spec_passes_every_case(server: dict[str, int], transport: str) -> None:
    command = [str(H2SPEC), "-h", "127.0.0.1", "-p", str(server[transport])]
    command += ["-o", str(CASE_TIMEOUT)]
    if transport == "tls":
        command += ["-t", "-k"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    summary = SUMMARY.search(output)
    assert summary, f"no h2spec summary line:\n{output[-3000:]}"
    total, passed, skipped, failed = map(int, summary.groups())
    failures = failed_cases(output)
    assert (total, passed, skipped, failed) == (CASES, CASES, 0, 0), (
        f"h2spec: {summary[0]}; failing cases:\n  " + "\n  ".join(failures)
        + "\n\n" + output.partition("\nFailures:")[2].strip()
    )  # fmt: skip
