"""The scenarios: a registry of load tests run against each started server.

A scenario gets a :class:`Context` (the running server, the profile, the tools) and
returns a :class:`Measurement`.  Add a row (HTTP/2 over TLS, HTTP/3, WebSocket, ...) by
writing a :class:`Scenario` subclass and adding it to :data:`SCENARIOS`.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.servers import (
    BENCH_DIR,
    LOAD_CPU,
    MAIN_PYTHON,
    RunningServer,
    ServerError,
    established_connections,
)


class ScenarioError(Exception):
    """A scenario could not produce a number (the reason goes in the table)."""


class Skipped(Exception):
    """The scenario does not apply (unsupported protocol, missing tool, low limit)."""

    def __init__(self, reason: str, status: str = "skipped") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Profile:
    """How long and how often to measure."""

    name: str
    #: Seconds of each wrk run (h2load runs are sized to last about as long).
    duration: float
    #: Passes over all servers (A B C ... A B C ...).
    repeats: int
    #: Idle keep-alive connections held open in the memory scenario.
    idle_connections: int


PROFILES = {
    "quick": Profile("quick", duration=3, repeats=1, idle_connections=1_000),
    "full": Profile("full", duration=6, repeats=3, idle_connections=10_000),
}


@dataclass
class Tools:
    """Paths of the load generators (None: not available, with the reason)."""

    wrk: str | None = None
    h2load: str | None = None
    missing: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """What a scenario runs against."""

    server: RunningServer
    profile: Profile
    tools: Tools
    repeat: int
    #: Values shared between the scenarios of one server session (e.g. RSS under load).
    session: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measurement:
    """One scenario on one server in one repeat."""

    server: str
    scenario: str
    repeat: int
    #: "ok", "error", "n/a" (not supported) or "skipped".
    status: str = "ok"
    note: str = ""
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    raw: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dict(self.__dict__)


def load_command(*argv: str) -> list[str]:
    """A load-generator command line pinned to the load CPU."""
    return ["taskset", "-c", str(LOAD_CPU), *argv]


def run_tool(argv: list[str], timeout: float) -> str:
    """Run a load generator; return its output or raise :class:`ScenarioError`."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ScenarioError(f"{Path(argv[3]).name} timed out after {timeout:.0f}s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        last = output.strip().splitlines()[-1:] or ["no output"]
        raise ScenarioError(f"{Path(argv[3]).name} exited {done.returncode}: {last[0]}")
    return output


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_duration_ms(text: str) -> float:
    """``612.00us`` / ``1.23ms`` / ``2.00s`` -> milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ScenarioError(f"cannot parse duration {text!r}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles, request count and errors from ``wrk --latency``."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise ScenarioError("no Requests/sec in wrk output")
    result: dict[str, Any] = {"rps": float(rps.group(1))}
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE):
        result[f"p{pct}_ms"] = parse_duration_ms(value)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", output)
    result["requests"] = int(total.group(1)) if total else 0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True))
        if errors
        else {}
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    return result


def parse_h2load(output: str) -> dict[str, Any]:
    """Requests/s, counts and mean request time from h2load's summary."""
    finished = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", output)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        output,
    )
    if not finished or not counts:
        raise ScenarioError("cannot parse h2load output")
    total, _, done, ok, failed, errored, timed_out = map(int, counts.groups())
    result: dict[str, Any] = {
        "rps": float(finished.group(3)),
        "requests": total,
        "done": done,
        "succeeded": ok,
        "failed": failed,
        "errored": errored,
        "timeout": timed_out,
    }
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", output)
    if mean:
        result["mean_ms"] = parse_duration_ms(mean.group(1))
    return result


class RssSampler:
    """Samples the server's RSS in a thread while a load generator runs."""

    def __init__(self, server: RunningServer, interval: float = 0.25) -> None:
        self.server = server
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss, _ = self.server.memory()
            if rss:
                self.samples.append(rss)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


class Scenario:
    """Base class: one kind of load test.  Subclasses set the class attributes."""

    key: str = ""
    title: str = ""
    #: "throughput" scenarios report requests/s; "memory" ones report RSS.
    kind: str = "throughput"
    #: One line for the report's methodology section.
    description: str = ""
    #: Run only in the first repeat (slow and not noisy enough to need repeating).
    first_repeat_only: bool = False

    def estimate(self, profile: Profile, h2c_hint: bool) -> float:
        """Expected seconds for one run (to print the planned duration)."""
        return profile.duration + 0.2

    def run(self, ctx: Context) -> Measurement:
        """Measure; raise :class:`ScenarioError` / :class:`Skipped` when no number."""
        raise NotImplementedError


class WrkScenario(Scenario):
    """An HTTP/1.1 load test with wrk: one thread, 64 connections, latency percentiles."""

    def __init__(
        self, key: str, title: str, path: str, description: str, extra: tuple[str, ...] = ()
    ) -> None:
        self.key = key
        self.title = title
        self.path = path
        self.description = description
        self.extra = extra

    def run(self, ctx: Context) -> Measurement:
        """Run wrk, sampling the server's memory meanwhile."""
        if ctx.tools.wrk is None:
            raise Skipped(ctx.tools.missing.get("wrk", "wrk is not installed"))
        duration = max(1, round(ctx.profile.duration))
        argv = load_command(
            ctx.tools.wrk, "-t1", "-c64", f"-d{duration}s", "--latency", *self.extra,
            f"http://127.0.0.1:{ctx.server.port}{self.path}",
        )  # fmt: skip
        with RssSampler(ctx.server) as sampler:
            output = run_tool(argv, timeout=duration + 30)
        parsed = parse_wrk(output)
        ctx.server.check_alive()
        m = Measurement(ctx.server.spec.key, self.key, ctx.repeat, raw=output)
        m.rps, m.p50_ms, m.p99_ms = parsed["rps"], parsed.get("p50_ms"), parsed.get("p99_ms")
        m.extra = {k: v for k, v in parsed.items() if k not in ("rps", "p50_ms", "p99_ms")}
        if sampler.samples:
            m.extra["rss_end_kib"] = sampler.samples[-1]
            m.extra["rss_peak_kib"] = max(sampler.samples)
            ctx.session.setdefault("load_rss_kib", sampler.samples[-1])
        problems = []
        if parsed["requests"] == 0 or parsed["rps"] == 0:
            m.status = "error"
            problems.append("no request completed")
        if parsed["non_2xx"]:
            problems.append(f"{parsed['non_2xx']} non-2xx")
        errors = sum(parsed["socket_errors"].values())
        if errors:
            detail = ", ".join(f"{k} {v}" for k, v in parsed["socket_errors"].items() if v)
            problems.append(f"socket errors: {detail}")
        m.note = "; ".join(problems)
        return m


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: An empty SETTINGS frame: length 0, type 0x4, flags 0, stream 0.
H2_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def probe_h2c(port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """Does the server speak HTTP/2 over cleartext with prior knowledge (RFC 9113 3.3)?

    Sends the client preface and an empty SETTINGS frame; a server that speaks h2c
    answers with a SETTINGS frame on stream 0.  Returns (supported, what we saw).
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(H2_PREFACE + H2_SETTINGS)
            data = b""
            while len(data) < 9:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        return False, "no answer to the HTTP/2 preface"
    except OSError as exc:
        return False, f"connection error after the HTTP/2 preface ({exc.__class__.__name__})"
    if len(data) >= 9 and data[3] == 0x04 and data[5:9] == b"\x00\x00\x00\x00":
        return True, "SETTINGS frame"
    if data.startswith(b"HTTP/"):
        return False, "answered " + data.split(b"\r\n", 1)[0].decode("latin-1")
    return False, "closed the connection" if not data else f"answered {data[:16]!r}"


class H2cScenario(Scenario):
    """HTTP/2 cleartext with prior knowledge, h2load -c16 -m16 -n N, where supported.

    N is sized from a short calibration run so each measurement lasts about half the
    profile's duration D whatever the server's speed (h2load's ``-n`` mode has no time cap;
    half of D keeps ``make bench`` inside its 15-minute budget).
    """

    key = "h2c"
    title = "HTTP/2 cleartext (h2c prior knowledge) GET /"
    description = (
        "`h2load -c16 -m16 -n N` (16 connections x 16 concurrent streams); N is sized from "
        "a 1,000-request calibration run (which also warms up) so the measurement lasts about "
        "D/2 seconds. Run only where a probe (client preface + empty SETTINGS frame) gets a "
        "SETTINGS frame back; elsewhere the row says why not."
    )
    calibration_requests = 1000
    #: The measurement lasts about this fraction of the profile's duration.
    duration_fraction = 0.5

    def estimate(self, profile: Profile, h2c_hint: bool) -> float:
        """Probe only, or probe + calibration + measurement."""
        return profile.duration * self.duration_fraction + 1.5 if h2c_hint else 0.2

    def _h2load(self, ctx: Context, requests: int, timeout: float) -> tuple[dict[str, Any], str]:
        assert ctx.tools.h2load is not None
        argv = load_command(
            ctx.tools.h2load, "-c16", "-m16", "-n", str(requests),
            f"http://127.0.0.1:{ctx.server.port}/",
        )  # fmt: skip
        output = run_tool(argv, timeout)
        return parse_h2load(output), output

    def run(self, ctx: Context) -> Measurement:
        """Probe, calibrate, measure."""
        supported, seen = probe_h2c(ctx.server.port)
        ctx.server.check_alive()
        if not supported:
            raise Skipped(f"n/a (not supported: {seen})", status="n/a")
        if ctx.tools.h2load is None:
            raise Skipped(ctx.tools.missing.get("h2load", "h2load is not installed"))
        calibration, _ = self._h2load(ctx, self.calibration_requests, timeout=60)
        if calibration["succeeded"] == 0:
            raise ScenarioError("no request succeeded in the calibration run")
        seconds = ctx.profile.duration * self.duration_fraction
        requests = int(min(max(calibration["rps"] * seconds, 2000), 5_000_000))
        requests -= requests % 16
        parsed, output = self._h2load(ctx, requests, timeout=ctx.profile.duration * 4 + 30)
        ctx.server.check_alive()
        m = Measurement(ctx.server.spec.key, self.key, ctx.repeat, raw=output)
        m.rps = parsed["rps"]
        m.extra = {k: v for k, v in parsed.items() if k != "rps"}
        m.extra["calibration_rps"] = calibration["rps"]
        bad = parsed["failed"] + parsed["errored"] + parsed["timeout"]
        if parsed["succeeded"] == 0:
            m.status, m.note = "error", "no request succeeded"
        elif bad:
            m.note = f"{bad} of {parsed['requests']} requests failed"
        return m


#: Seconds the idle-connection client may spend opening its connections.
IDLE_DEADLINE = 30.0


class MemoryScenario(Scenario):
    """Resident memory: idle, at the end of a load run, and with N idle connections."""

    key = "memory"
    title = "Resident memory (RSS)"
    kind = "memory"
    first_repeat_only = True
    description = (
        "VmRSS from /proc/PID/status summed over the server process and its children: "
        "idle right after start-up, at the end of the keep-alive `GET /` wrk run (last "
        "sample, taken every 0.25 s), and with N idle keep-alive connections open (each "
        "made one `GET /` first), opened by `bench/idle_conns.py` on the load CPU. "
        "Measured in the first repeat only."
    )

    def estimate(self, profile: Profile, h2c_hint: bool) -> float:
        """1,000-5,000 connections a second depending on the server, plus settling."""
        return profile.idle_connections / 1500 + 2.0

    def _load_rss(self, ctx: Context) -> int | None:
        """RSS at the end of a load run: from this session's wrk run, or a short own one."""
        if "load_rss_kib" in ctx.session:
            return int(ctx.session["load_rss_kib"])
        if ctx.tools.wrk is None:
            return None
        argv = load_command(
            ctx.tools.wrk, "-t1", "-c64", "-d2s", f"http://127.0.0.1:{ctx.server.port}/"
        )
        with RssSampler(ctx.server) as sampler:
            run_tool(argv, timeout=40)
        return sampler.samples[-1] if sampler.samples else None

    def run(self, ctx: Context) -> Measurement:
        """Take the three readings."""
        server = ctx.server
        count = ctx.profile.idle_connections
        m = Measurement(server.spec.key, self.key, ctx.repeat)
        m.extra["idle_kib"] = ctx.session.get("idle_rss_kib")
        m.extra["processes"] = ctx.session.get("processes")
        m.extra["load_kib"] = self._load_rss(ctx)
        m.extra["connections"] = count
        limit = server.nofile_limit()
        if limit is not None and limit < count + 100:
            m.status = "skipped"
            m.note = f"server's RLIMIT_NOFILE is {limit}, too low for {count} connections"
            return m
        script = BENCH_DIR / "idle_conns.py"
        argv = load_command(
            str(MAIN_PYTHON), str(script), "--port", str(server.port), "--count", str(count),
            "--deadline", str(IDLE_DEADLINE),
        )  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            opened = self._read_json_line(proc, timeout=IDLE_DEADLINE + 30)
            if "error" in opened:
                m.status, m.note = "skipped", str(opened["error"])
                return m
            time.sleep(0.5)  # let the server finish accepting and settle
            server.check_alive()
            m.extra["conns_kib"], _ = server.memory()
            m.extra["server_established"] = established_connections(server.port)
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            still = self._read_json_line(proc, timeout=30)
            proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, OSError, ValueError) as exc:
            raise ScenarioError(f"idle-connection client failed: {exc!r}") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        m.extra.update(
            opened=opened["opened"],
            failed=opened["failed"],
            open_seconds=opened["seconds"],
            still_open=still.get("still_open"),
        )
        m.extra["open_errors"] = opened.get("errors", {})
        if opened["opened"] < count:
            why = ", ".join(f"{n} {e}" for e, n in sorted(opened.get("errors", {}).items()))
            m.note = f"only {opened['opened']:,} of {count:,} connections opened ({why})"
        elif still.get("still_open", count) < count:
            m.note = f"server closed {count - still['still_open']} idle connections"
        return m

    @staticmethod
    def _read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        """The next JSON line the client prints, within ``timeout`` seconds."""
        result: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive():
            raise ScenarioError(f"idle-connection client silent for {timeout:.0f}s")
        if not result or not result[0].strip():
            stderr = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
            raise ScenarioError(f"idle-connection client ended: {stderr.strip()[-200:]}")
        value = json.loads(result[0])
        if not isinstance(value, dict):
            raise ScenarioError(f"unexpected client output {result[0]!r}")
        return value


# The HTTP/3 and WebSocket scenarios live in their own modules and subclass Scenario
# (defined above).
from bench.h3_scenario import H3Scenario  # noqa: E402
from bench.ws_scenario import WebSocketEchoScenario  # noqa: E402

#: Every scenario, in run order within a server session.  Memory comes last: it reuses the
#: RSS sampled during the keep-alive GET / run, and leaves thousands of sockets behind.
SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        WrkScenario(
            "h1-plaintext",
            "HTTP/1.1 keep-alive GET / (text)",
            "/",
            "`wrk -t1 -c64 -dDs --latency` on `GET /` over 64 keep-alive connections.",
        ),
        WrkScenario(
            "h1-json",
            "HTTP/1.1 keep-alive GET /json",
            "/json",
            "`wrk -t1 -c64 -dDs --latency` on `GET /json` over 64 keep-alive connections.",
        ),
        WrkScenario(
            "h1-close",
            "HTTP/1.1 new connection per request GET /",
            "/",
            "`wrk -t1 -c64 -dDs --latency -H 'Connection: close'`: the server closes after "
            "each response and wrk reconnects, so every request pays a TCP handshake.",
            extra=("-H", "Connection: close"),
        ),
        H2cScenario(),
        WebSocketEchoScenario(),
        H3Scenario(),
        MemoryScenario(),
    )
}

__all__ = [
    "PROFILES",
    "SCENARIOS",
    "Context",
    "Measurement",
    "Profile",
    "Scenario",
    "ScenarioError",
    "ServerError",
    "Skipped",
    "Tools",
]
