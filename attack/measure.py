"""What ``make attack`` measures beside each attack: a normal client and the server's memory.

The normal client runs in its own process (``python -m attack.measure HOST PORT SECONDS``)
so that the attacker's work in the runner's process cannot delay it: it sends ``GET /``
every 20 ms on one keep-alive connection (a new one after an error), each request with a
5 s deadline, and prints its latencies as JSON (``null`` for a failed request).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import dataclass

GET = b"GET / HTTP/1.1\r\nHost: normal\r\n\r\n"
INTERVAL = 0.02
DEADLINE = 5.0


@dataclass
class NormalClient:
    """What the normal client saw: one latency per request, None for a failure."""

    latencies: list[float | None]

    @property
    def success(self) -> float:
        """Share of requests answered 200 within the deadline (0..1)."""
        if not self.latencies:
            return 0.0
        return sum(x is not None for x in self.latencies) / len(self.latencies)

    @property
    def p99(self) -> float:
        """99th percentile latency of the answered requests, in seconds (inf if none)."""
        ok = sorted(x for x in self.latencies if x is not None)
        if not ok:
            return float("inf")
        return ok[max(0, int(len(ok) * 0.99) - 1)]


def _one_request(sock: socket.socket) -> None:
    sock.sendall(GET)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) >= length:
                return


def run_normal_client(host: str, port: int, seconds: float) -> list[float | None]:
    latencies: list[float | None] = []
    stop = time.monotonic() + seconds
    sock: socket.socket | None = None
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            if sock is None:
                sock = socket.create_connection((host, port), timeout=DEADLINE)
            sock.settimeout(DEADLINE)
            _one_request(sock)
            latencies.append(time.monotonic() - started)
        except OSError:
            latencies.append(None)
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))
    if sock is not None:
        sock.close()
    return latencies


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * 4096
    except (OSError, IndexError):
        return 0


if __name__ == "__main__":
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run_normal_client(host, port, seconds)))
