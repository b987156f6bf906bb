"""The servers under test: a registry of command lines, and a process wrapper.

Each server runs as ONE worker process (plus whatever supervisor process the server
itself insists on), pinned to CPU 0, bound to 127.0.0.1 only, with its access log off,
in its own process group so that stopping it stops every process it started.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
PEERS_VENV = BENCH_DIR / ".venv-peers"
PEERS_PYTHON = PEERS_VENV / "bin" / "python"

#: The CPU the servers run on, and the one the load generators (and this harness) use.
SERVER_CPU = 0
LOAD_CPU = 1 if (os.cpu_count() or 1) > 1 else 0

HTTPY_APP = "bench.apps.httpy_app:app"
ASGI_APP = "bench.apps.asgi_app:app"
#: Idle keep-alive timeout given to every server that has one (seconds): long enough that
#: the idle-connection memory scenario measures connections that are really still open.
KEEPALIVE_SECONDS = 60
#: Granian's cap on concurrent connections per worker, raised above the largest N.
GRANIAN_BACKPRESSURE = 16384
#: ``BENCH_BASE=<a checkout of an older HTTPy>`` adds that code's HTTPy rows to the run
#: ("before" and "after" measured side by side, servers alternating, the same load).
BASE_TREE = os.environ.get("BENCH_BASE")


class ServerError(Exception):
    """A server did not start, did not answer correctly, or died."""


@dataclass(frozen=True)
class ServerSpec:
    """One row of the benchmark: how to start a server on a given port."""

    key: str
    label: str
    #: "main" (the project's .venv) or "peers" (bench/.venv-peers).
    venv: str
    #: Builds the argument list after the interpreter, given the port.
    args: Callable[[int], list[str]]
    #: Distributions whose versions the report lists for this server.
    packages: tuple[str, ...]
    #: Whether we expect h2c support.  Used ONLY to estimate the run time up front; the
    #: h2c scenario decides by probing the running server.
    h2c_hint: bool = False

    @property
    def python(self) -> Path:
        """The interpreter that runs this server."""
        return MAIN_PYTHON if self.venv == "main" else PEERS_PYTHON

    def command(self, port: int) -> list[str]:
        """The full command line, pinned to the server CPU."""
        return ["taskset", "-c", str(SERVER_CPU), str(self.python), *self.args(port)]


def _httpy(
    backend: str, loop: str = "asyncio", parser: str = "python", tree: str | None = None
) -> Callable[[int], list[str]]:
    # An older tree's httpy goes first on sys.path (the benchmark app is this tree's).
    start = ["-m", "httpy"] if tree is None else ["-c", _RUN_FROM.format(tree=tree)]

    def args(port: int) -> list[str]:
        return [
            *start, HTTPY_APP, "--backend", backend, "--loop", loop, "--no-access-log",
            "--http1-parser", parser,
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--keepalive-timeout", str(KEEPALIVE_SECONDS),
        ]  # fmt: skip

    return args


def _uvicorn(http: str, loop: str) -> Callable[[int], list[str]]:
    def args(port: int) -> list[str]:
        return [
            "-m", "uvicorn", ASGI_APP, "--host", "127.0.0.1", "--port", str(port),
            "--http", http, "--loop", loop, "--no-access-log", "--log-level", "warning",
            "--timeout-keep-alive", str(KEEPALIVE_SECONDS), "--lifespan", "on",
        ]  # fmt: skip

    return args


def _hypercorn(worker_class: str) -> Callable[[int], list[str]]:
    def args(port: int) -> list[str]:
        # No --access-logfile: Hypercorn writes no access log by default.
        return [
            "-m", "hypercorn", "-k", worker_class, "-w", "1", "-b", f"127.0.0.1:{port}",
            "--keep-alive", str(KEEPALIVE_SECONDS), "--log-level", "warning", ASGI_APP,
        ]  # fmt: skip

    return args


def _granian(port: int) -> list[str]:
    return [
        "-m", "granian", "--interface", "asgi", "--workers", "1",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--http1-header-read-timeout", str(KEEPALIVE_SECONDS * 1000),
        # Granian holds at most --backpressure connections per worker (default backlog/
        # workers = 1,024); the idle-connection scenario needs up to 10,000.
        "--backpressure", str(GRANIAN_BACKPRESSURE),
        "--log-level", "warning", ASGI_APP,
    ]  # fmt: skip


_RUN_FROM = (
    "import runpy, sys; sys.path.insert(0, {tree!r}); sys.argv[0] = 'httpy'; "
    "runpy.run_module('httpy', run_name='__main__', alter_sys=True)"
)
_HTTPY_PACKAGES = ("httpy", "h11", "h2", "anyio")
_UVICORN_PACKAGES = ("uvicorn", "h11")

#: Every server, in the order they run (and appear in tables).  HTTPy asyncio comes first:
#: it is the baseline of every ratio.
SERVERS: dict[str, ServerSpec] = {
    spec.key: spec
    for spec in (
        ServerSpec("httpy-asyncio", "HTTPy asyncio", "main", _httpy("asyncio"), _HTTPY_PACKAGES),
        ServerSpec(
            "httpy-uvloop",
            "HTTPy speed (uvloop+httptools)",
            "main",
            _httpy("asyncio", "uvloop", "httptools"),
            (*_HTTPY_PACKAGES, "uvloop", "httptools"),
        ),
        ServerSpec("httpy-trio", "HTTPy trio", "main", _httpy("trio"), (*_HTTPY_PACKAGES, "trio")),
        ServerSpec(
            "uvicorn-httptools",
            "Uvicorn httptools+uvloop",
            "peers",
            _uvicorn("httptools", "uvloop"),
            ("uvicorn", "httptools", "uvloop"),
        ),
        ServerSpec(
            "uvicorn-h11", "Uvicorn h11", "peers", _uvicorn("h11", "asyncio"), _UVICORN_PACKAGES
        ),
        ServerSpec(
            "hypercorn-asyncio",
            "Hypercorn asyncio",
            "peers",
            _hypercorn("asyncio"),
            ("hypercorn", "h11", "h2"),
            h2c_hint=True,
        ),
        ServerSpec(
            "hypercorn-trio",
            "Hypercorn trio",
            "peers",
            _hypercorn("trio"),
            ("hypercorn", "h11", "h2", "trio"),
            h2c_hint=True,
        ),
        ServerSpec("granian", "Granian", "peers", _granian, ("granian", "uvloop"), h2c_hint=True),
    )
}
if BASE_TREE:
    SERVERS.update(
        (spec.key, spec)
        for spec in (
            ServerSpec(
                "httpy-asyncio-base",
                "HTTPy asyncio (base)",
                "main",
                _httpy("asyncio", tree=BASE_TREE),
                _HTTPY_PACKAGES,
            ),
            ServerSpec(
                "httpy-uvloop-base",
                "HTTPy speed (base)",
                "main",
                _httpy("asyncio", "uvloop", "httptools", tree=BASE_TREE),
                (*_HTTPY_PACKAGES, "uvloop", "httptools"),
            ),
            ServerSpec(
                "httpy-trio-base",
                "HTTPy trio (base)",
                "main",
                _httpy("trio", tree=BASE_TREE),
                (*_HTTPY_PACKAGES, "trio"),
            ),
        )
    )
BASELINE = "httpy-asyncio"


def free_port(start: int = 18100, end: int = 18999) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range."""
    for port in range(start, end):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServerError(f"no free port in {start}-{end}")


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may itself contain spaces.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are still alive."""
    children = _children_map()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def _status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _nofile_soft(pid: int) -> int | None:
    """The soft 'Max open files' limit of a process (None if unknown or unlimited)."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as f:
            for line in f:
                if line.startswith("Max open files"):
                    value = line.split()[3]
                    return None if value == "unlimited" else int(value)
    except OSError:
        pass
    return None


def established_connections(port: int) -> int:
    """How many ESTABLISHED TCP sockets have ``port`` as their local port (server side)."""
    count = 0
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)
                for line in f:
                    fields = line.split(None, 4)
                    if fields[3] == "01" and fields[1].endswith(wanted):
                        count += 1
        except OSError:
            continue
    return count


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One HTTP/1.1 GET; returns status and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class RunningServer:
    """A started server process group: readiness, memory, limits, and stopping."""

    def __init__(self, spec: ServerSpec, port: int, log_path: Path) -> None:
        self.spec = spec
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The pid of the server's main process."""
        if self.process is None:
            raise ServerError("server not started")
        return self.process.pid

    def start(self, timeout: float = 30.0) -> float:
        """Start the server, wait until it answers both routes correctly; return seconds."""
        if not self.spec.python.exists():
            raise ServerError(f"interpreter {self.spec.python} is missing")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.spec.command(self.port),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while True:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"not listening after {timeout:.0f}s{self.log_tail()}")
            time.sleep(0.05)
        self._check_routes(max(1.0, deadline - time.monotonic()))
        return time.monotonic() - started

    def _check_routes(self, timeout: float) -> None:
        """Both routes answer 200 with the expected bodies (the app really is served)."""
        try:
            status, body = http_get(self.port, "/", timeout)
            if status != 200 or body != b"Hello, world!":
                raise ServerError(f"GET / answered {status} {body[:60]!r}")
            status, body = http_get(self.port, "/json", timeout)
            if status != 200 or not body.startswith(b"{"):
                raise ServerError(f"GET /json answered {status} {body[:60]!r}")
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(f"sanity request failed: {exc!r}{self.log_tail()}") from exc

    def check_alive(self) -> None:
        """Raise :class:`ServerError` if the main process has exited."""
        if self.process is None:
            raise ServerError("server not started")
        code = self.process.poll()
        if code is not None:
            raise ServerError(f"server exited with status {code}{self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the server's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        tail = " / ".join(line.strip() for line in text[-lines:] if line.strip())
        return f": {tail}" if tail else ""

    def memory(self) -> tuple[int, int]:
        """(VmRSS in KiB summed over the process and its children, number of processes)."""
        pids = process_tree(self.pid)
        return sum(_status_kib(pid, "VmRSS") for pid in pids), len(pids)

    def nofile_limit(self) -> int | None:
        """The smallest soft RLIMIT_NOFILE among the server's processes (None: unlimited)."""
        limits = [n for n in (_nofile_soft(pid) for pid in process_tree(self.pid)) if n]
        return min(limits) if limits else None

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM the whole process group, then SIGKILL it after ``grace`` seconds."""
        if self.process is None:
            return
        pgid = self.process.pid  # start_new_session: the group id is the leader's pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure no child of the group lingers either.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            return
