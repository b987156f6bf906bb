"""Soak test (``make soak``): mixed traffic for minutes, the server's memory over time.

Starts HTTPy as a subprocess (one worker, 127.0.0.1, :mod:`bench.apps.soak_app`, pinned
to CPU 0 like the benchmark's servers), drives it for ``--duration`` seconds with the
HTTP/1.1, HTTP/2 (h2c) and WebSocket clients of :mod:`bench.soak_clients` (a few dozen
at once, from CPU 1), and samples the server's resident memory (``VmRSS`` in
``/proc/PID/status``) every ``--interval`` seconds::

    .venv/bin/python bench/soak.py                          # asyncio, 600 s, warm-up 60 s
    .venv/bin/python bench/soak.py --backend trio --duration 60 --warmup 15 --no-report

Verdict: memory is *flat* when, after the warm-up, both the growth (last sample minus the
sample at the end of the warm-up) and the growth the regression slope projects over the
same window stay under ``max(5 % of the RSS at the end of the warm-up, 2 MiB)``.  Exit
status 0 only when memory is flat, no protocol saw an unexpected error and the server
logged no traceback; disconnects the clients make on purpose are counted, not errors.
Writes ``bench/results/soak.md`` (and ``soak.png`` when the peers' virtualenv has
matplotlib) unless ``--no-report``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import (
    LOAD_CPU,
    ROOT,
    RunningServer,
    ServerSpec,
    established_connections,
    free_port,
)
from bench.soak_clients import Mix, ProtocolStats, Traffic
from bench.soak_report import PROTOCOLS, code_version, render_summary, write_report

SOAK_APP = "bench.apps.soak_app:app"
#: Server logs of each run (not committed).
LOG_DIR = ROOT / "build" / "soak"
#: Flatness threshold: the larger of this share of the RSS at the end of the warm-up...
FLAT_PERCENT = 5.0
#: ... and this many MiB (a few MiB of allocator noise on a ~30-60 MiB process).
FLAT_MIB = 2.0


@dataclass(frozen=True)
class SoakConfig:
    """One soak run."""

    backend: str = "asyncio"
    #: asyncio event loop implementation (``--loop``; ignored on trio).
    loop: str = "asyncio"
    duration: float = 600.0
    warmup: float = 60.0
    interval: float = 5.0
    #: The client mix; None: :class:`bench.soak_clients.Mix` defaults.
    mix: Mix | None = None
    seed: int = 1


@dataclass(frozen=True)
class Sample:
    """The server's state ``t`` seconds after the load started."""

    t: float
    rss_kib: int
    connections: int
    #: Checked exchanges so far per protocol.
    requests: dict[str, int]


@dataclass(frozen=True)
class Summary:
    """Memory after the warm-up, and the verdict."""

    warmup_rss_mib: float
    min_mib: float
    max_mib: float
    final_mib: float
    growth_mib: float
    growth_percent: float
    slope_mib_per_min: float
    window_min: float
    threshold_mib: float
    flat: bool


@dataclass
class SoakResult:
    """Everything a run measured."""

    config: SoakConfig
    started_at: datetime
    clients: int
    samples: list[Sample]
    stats: dict[str, ProtocolStats]
    #: RSS once every client has finished (the load has stopped).
    idle_after_kib: int = 0
    #: The code the server ran (:func:`bench.soak_report.code_version`, at the start).
    code: str = ""
    #: Error lines in the server's output, counted by message (see :func:`_problems`).
    server_problems: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> Summary:
        return summarize(self.samples, self.config.warmup)

    @property
    def errors(self) -> int:
        """Unexpected errors: the clients' and the server's."""
        return sum(s.errors for s in self.stats.values()) + sum(self.server_problems.values())

    @property
    def ok(self) -> bool:
        return self.summary.flat and self.errors == 0


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def summarize(samples: list[Sample], warmup: float) -> Summary:
    """The figures after the warm-up: the last sample taken at or before ``warmup`` s on."""
    if not samples:
        raise ValueError("no RSS sample was taken")
    start = max((i for i, s in enumerate(samples) if s.t <= warmup + 0.5), default=0)
    post = samples[start:]
    mib = [s.rss_kib / 1024 for s in post]
    warm, final = mib[0], mib[-1]
    growth = final - warm
    slope = _slope([(s.t / 60, m) for s, m in zip(post, mib, strict=True)])
    window = (post[-1].t - post[0].t) / 60
    threshold = max(FLAT_PERCENT / 100 * warm, FLAT_MIB)
    return Summary(
        warmup_rss_mib=warm,
        min_mib=min(mib),
        max_mib=max(mib),
        final_mib=final,
        growth_mib=growth,
        growth_percent=100 * growth / warm if warm else 0.0,
        slope_mib_per_min=slope,
        window_min=window,
        threshold_mib=threshold,
        flat=growth < threshold and slope * window < threshold,
    )


def server_spec(config: SoakConfig) -> ServerSpec:
    """The soak app on HTTPy, one worker, no access log (the benchmark's conventions)."""

    def args(port: int) -> list[str]:
        return [
            "-m", "httpy", SOAK_APP, "--backend", config.backend, "--loop", config.loop,
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip

    return ServerSpec(f"soak-{config.backend}", f"HTTPy {config.backend}", "main", args, ())


#: asyncio's warning when something keeps writing to a connection that is gone (logged
#: from the fifth write on): the server did not stop a response whose client left.
WRITE_AFTER_CLOSE = "socket.send() raised exception."


def _problems(log_path: Path) -> dict[str, int]:
    """The server's error lines (ERROR/CRITICAL, and :data:`WRITE_AFTER_CLOSE`), counted
    by message: timestamps and client addresses differ, the messages repeat."""
    counts: dict[str, int] = {}
    try:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            for line in log:
                if WRITE_AFTER_CLOSE in line:
                    key = f"asyncio: {WRITE_AFTER_CLOSE}"
                elif " ERROR " in line or " CRITICAL " in line:
                    key = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", line.split(" ", 2)[-1])
                else:
                    continue
                key = key.strip()[:200]
                counts[key] = counts.get(key, 0) + 1
    except OSError:
        pass
    return counts


def _take_sample(server: RunningServer, result: SoakResult, started: float) -> None:
    server.check_alive()
    rss, _ = server.memory()
    requests = {name: result.stats[name].requests for name in PROTOCOLS}
    connections = established_connections(server.port)
    result.samples.append(Sample(time.monotonic() - started, rss, connections, requests))


async def _sample_until(
    server: RunningServer, result: SoakResult, started: float, config: SoakConfig
) -> None:
    """A sample every ``interval`` s up to and including ``duration`` (tick 0 is taken
    before the load starts)."""
    for tick in range(1, int(config.duration // config.interval) + 1):
        await asyncio.sleep(max(0.0, started + tick * config.interval - time.monotonic()))
        _take_sample(server, result, started)


async def _load(
    server: RunningServer, result: SoakResult, config: SoakConfig, progress: bool
) -> None:
    traffic = Traffic(server.port, config.mix or Mix(), config.seed)
    result.stats = traffic.stats
    result.clients = traffic.mix.clients
    started = time.monotonic()
    _take_sample(server, result, started)  # the idle server, before the first client
    load = asyncio.ensure_future(traffic.run(started + config.duration))
    sampler = asyncio.ensure_future(_sample_until(server, result, started, config))
    try:
        while not sampler.done():
            await asyncio.wait({sampler}, timeout=30.0)
            if progress and result.samples:
                print(_progress_line(result.samples[-1], result.stats), flush=True)
        sampler.result()  # raises if the server died
        await load
    finally:
        for task in (load, sampler):
            task.cancel()


def _progress_line(sample: Sample, stats: dict[str, ProtocolStats]) -> str:
    counts = "  ".join(
        f"{name} {stats[name].requests:,} ok/{stats[name].aborted:,} left/{stats[name].errors} err"
        for name in PROTOCOLS
    )
    return f"  t={sample.t:5.0f}s  RSS {sample.rss_kib / 1024:6.1f} MiB  {counts}"


def run_soak(config: SoakConfig, *, progress: bool = False) -> SoakResult:
    """Start the server, run the load while sampling RSS, stop the server."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    spec = server_spec(config)
    server = RunningServer(spec, free_port(), LOG_DIR / f"server-{config.backend}.log")
    result = SoakResult(config, datetime.now(UTC), 0, [], {}, code=code_version())
    server.start()
    try:
        asyncio.run(_load(server, result, config, progress))
        server.check_alive()
        result.idle_after_kib = server.memory()[0]
    finally:
        server.stop()
    result.server_problems = _problems(server.log_path)
    return result


# -- command line ---------------------------------------------------------------------------


def main() -> int:
    """Command-line entry point; the exit status is the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds not judged")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-report", action="store_true", help="don't write bench/results")
    args = parser.parse_args()
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    if LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CPU})  # off the server's CPU
    config = SoakConfig(
        args.backend, args.loop, args.duration, args.warmup, args.interval, seed=args.seed
    )
    print(
        f"soak: HTTPy {config.backend}, {config.duration:.0f} s of load "
        f"({config.warmup:.0f} s warm-up), RSS every {config.interval:g} s",
        flush=True,
    )
    result = run_soak(config, progress=True)
    print(render_summary(result))
    if not args.no_report:
        for path in write_report(result, FLAT_PERCENT, FLAT_MIB):
            print(f"wrote {path.relative_to(ROOT)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
