"""The HTTP/3 scenario: hello requests/s over QUIC, many streams over a few connections.

HTTP/3 needs TLS and a UDP listener, which the harness's servers are not started with, so
this scenario starts a second instance of the server under test on the server CPU with
its HTTP/3 options (HTTPy: ``--tls-bind/--http3-bind`` with the certificate; Hypercorn:
``--quic-bind`` with the certificate), loads it with ``bench/h3_load.py`` on the load
CPU, and stops it.  Servers without HTTP/3 are reported ``n/a``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from bench.scenarios import (
    BENCH_DIR,
    MAIN_PYTHON,
    Context,
    Measurement,
    Profile,
    Scenario,
    ScenarioError,
    Skipped,
    load_command,
    run_tool,
)
from bench.servers import ROOT, SERVER_CPU, ServerSpec

CONNECTIONS = 4
STREAMS = 32


def _certificate() -> tuple[Path, Path]:
    from httpy.backends.tls import generate_dev_certificate

    cert, key, _ca = generate_dev_certificate(ROOT / "certs")
    return cert, key


def h3_command(spec: ServerSpec, tcp_port: int, port: int) -> list[str] | None:
    """The server's command line with HTTP/3 on UDP ``port`` (TLS on TCP ``port``)."""
    cert, key = _certificate()
    args = spec.args(tcp_port)
    if spec.key.startswith("httpy"):
        args += [
            "--tls-bind", f"127.0.0.1:{port}", "--certfile", str(cert), "--keyfile", str(key),
            "--http3-bind", f"127.0.0.1:{port}",
        ]  # fmt: skip
    elif spec.key.startswith("hypercorn"):
        # -b becomes TLS with a certificate; the application stays the last argument.
        args = [a if a != f"127.0.0.1:{tcp_port}" else f"127.0.0.1:{port}" for a in args]
        args[-1:-1] = ["--quic-bind", f"127.0.0.1:{port}", "--certfile", str(cert)]
        args[-1:-1] = ["--keyfile", str(key)]
    else:
        return None
    return ["taskset", "-c", str(SERVER_CPU), str(spec.python), *args]


def _ensure_aioquic(python: Path) -> None:
    """Hypercorn serves HTTP/3 only with aioquic installed next to it."""
    probe = subprocess.run([str(python), "-c", "import aioquic"], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "aioquic"], check=True, timeout=300
        )


def _free_port() -> int:
    for port in range(18443, 18999):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ScenarioError("no port free on TCP and UDP")


def _wait_tls(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScenarioError(f"HTTP/3 server exited {process.returncode}")
        try:
            with (
                socket.create_connection(("127.0.0.1", port), 1) as raw,
                context.wrap_socket(raw),
            ):
                return
        except OSError:
            time.sleep(0.2)
    raise ScenarioError("HTTP/3 server did not start")


class H3Scenario(Scenario):
    """``bench/h3_load.py``: 4 QUIC connections x 32 streams, GET /."""

    key = "h3"
    title = "HTTP/3 GET /, 4 connections x 32 streams"
    description = (
        "A second instance of the server with HTTP/3 on (TLS certificate, UDP listener) "
        "is loaded by `bench/h3_load.py` (aioquic client, 4 connections x 32 requests in "
        "flight, after 20 warm-up requests per connection) for D seconds.  The load "
        "generator is pure Python too and shares the machine: treat the number as a "
        "lower bound of the server's capacity, comparable between servers."
    )
    first_repeat_only = True

    def estimate(self, profile: Profile, h2c_hint: bool) -> float:
        return profile.duration + 6.0

    def run(self, ctx: Context) -> Measurement:
        spec = ctx.server.spec
        port = _free_port()
        command = h3_command(spec, _free_port_tcp(port), port)
        if command is None:
            raise Skipped(f"{spec.label} has no HTTP/3", status="n/a")
        if spec.venv == "peers":
            _ensure_aioquic(spec.python)
        logs = BENCH_DIR / "results" / "raw"
        logs.mkdir(parents=True, exist_ok=True)
        log = open(logs / f"h3-{spec.key}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_tls(port, process)
            duration = max(1.0, ctx.profile.duration)
            argv = load_command(
                str(MAIN_PYTHON), str(BENCH_DIR / "h3_load.py"), "--port", str(port),
                "--connections", str(CONNECTIONS), "--streams", str(STREAMS),
                "--duration", str(duration),
            )  # fmt: skip
            output = run_tool(argv, timeout=duration + 60)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()
        lines = [line for line in output.splitlines() if line.startswith("{")]
        if not lines:
            raise ScenarioError(f"no result from h3_load.py: {output.strip()[-200:]}")
        result = json.loads(lines[-1])
        if "error" in result:
            raise Skipped(str(result["error"]), status="n/a")
        m = Measurement(spec.key, self.key, ctx.repeat, raw=output)
        m.rps, m.p50_ms, m.p99_ms = result["rps"], result["p50_ms"], result["p99_ms"]
        m.extra["errors"] = result["errors"]
        return m


def _free_port_tcp(avoid: int) -> int:
    """A plain TCP port for the server's own (cleartext) bind, not ``avoid``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return port if port != avoid else _free_port_tcp(avoid)
