"""``make attack``: each attack of :mod:`attack.attacks` against a fresh server process.

For each attack and event loop: ``python -m httpy attack.app:app`` starts with the default
configuration (access log to a file under ``attack/results/``), the normal client of
:mod:`attack.measure` starts in its own process, the attack runs (time-bounded), the
server's RSS is sampled every 100 ms, and one line is printed::

    h2-rapid-reset  asyncio  ok   normal 100.0 % p99 6.1 ms  RSS +12 MiB (budget 64)  ...

``ok`` needs: the normal client answered every time with p99 under 100 ms, a new client
served after the attack, and RSS growth within the attack's budget.  The exit status is
1 if any line is not ``ok``.  Loopback only.

    python -m attack.run [--backends asyncio,trio] [--attacks a,b] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio

from attack.attacks import ATTACKS, Attack
from attack.measure import NormalClient, rss_bytes

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``python -m httpy attack.app:app`` on a free port, default configuration; with
    ``http3``, TLS and HTTP/3 too (a development certificate under ``certs``)."""

    def __init__(self, backend: str, log: Path, http3: bool = False, certs: Path = ROOT) -> None:
        self.port = free_port()
        self.udp_port = free_udp_port() if http3 else 0
        self._log = log.open("wb")
        extra = []
        if http3:
            extra = ["--tls-bind", f"{HOST}:{free_port()}", "--dev-cert", str(certs),
                     "--http3-bind", f"{HOST}:{self.udp_port}"]  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "httpy", "attack.app:app", "--host", HOST,
             "--port", str(self.port), "--backend", backend, *extra],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited; see {log}") from None
                time.sleep(0.1)
        raise RuntimeError(f"the server did not start; see {log}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def served(port: int) -> bool:
    """A new client gets ``GET /`` answered within 5 s."""
    try:
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: after\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


async def run_one(attack: Attack, backend: str, seconds: float, results: Path) -> bool:
    seconds = max(seconds, attack.min_seconds)
    server = ServerProcess(
        backend, results / f"{attack.key}-{backend}.log", attack.http3, results / "certs"
    )
    target = (HOST, server.udp_port) if attack.http3 else (HOST, server.port)
    try:
        base = rss_bytes(server.process.pid)
        peak = base
        normal = await anyio.open_process(
            [sys.executable, "-m", "attack.measure", HOST, str(server.port), str(seconds + 1)],
            cwd=ROOT,
        )
        done = anyio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_bytes(server.process.pid))
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sample)
            await anyio.sleep(0.5)  # the normal client is under way
            started = time.monotonic()
            try:
                with anyio.fail_after(seconds + 30):
                    got = await attack.run(target, seconds)
            except Exception as exc:  # what the attacker saw is the result
                got = f"attacker error: {exc!r}"
            took = time.monotonic() - started
            assert normal.stdout is not None
            output = b""
            async for chunk in normal.stdout:
                output += chunk
            await normal.wait()
            done.set()
        client = NormalClient(json.loads(output or b"[]"))
        after = served(server.port)
    finally:
        server.stop()
    growth = (peak - base) / MiB
    ok = client.success == 1.0 and client.p99 < 0.1 and after and growth <= attack.rss_budget_mib
    print(
        f"{attack.key:<20} {backend:<8} {'ok ' if ok else 'BAD'}  "
        f"normal {client.success * 100:5.1f} % p99 {client.p99 * 1000:7.1f} ms  "
        f"RSS +{growth:4.0f} MiB (budget {attack.rss_budget_mib})  "
        f"after: {'served' if after else 'NOT SERVED'}  {took:4.1f} s  attacker: {got}",
        flush=True,
    )
    return ok


async def main(backends: list[str], keys: list[str] | None, seconds: float) -> int:
    results = ROOT / "attack" / "results"
    results.mkdir(exist_ok=True)
    chosen = [a for a in ATTACKS if keys is None or a.key in keys]
    failed = 0
    for attack in chosen:
        for backend in backends:
            if not await run_one(attack, backend, seconds, results):
                failed += 1
    print(f"{len(chosen) * len(backends) - failed} ok, {failed} not ok; logs in {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--attacks", default=None, help="comma-separated keys (default: all)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each attack")
    args = parser.parse_args()
    keys = args.attacks.split(",") if args.attacks else None
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(anyio.run(main, args.backends.split(","), keys, args.seconds))
