"""Side-by-side benchmark: HTTPy against Uvicorn, Hypercorn and Granian (``make bench``).

Installs what it needs (wrk and h2load from Debian, the peer servers into
``bench/.venv-peers``), prints the planned duration, then runs every selected server
through every selected scenario, servers alternating (A B C ... A B C ...) for R repeats.
Writes ``bench/results/latest.md``, ``bench/results/latest.png`` and raw JSON under
``bench/results/raw/<run id>/``.

    .venv/bin/python bench/run.py                       # full profile (D=6 s, R=3)
    BENCH_PROFILE=quick .venv/bin/python bench/run.py   # smoke run (D=3 s, R=1)
    .venv/bin/python bench/run.py --profile quick --servers httpy-asyncio,granian \\
        --scenarios h1-plaintext,h2c --duration 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, tools
from bench.scenarios import (
    PROFILES,
    SCENARIOS,
    Context,
    Measurement,
    Profile,
    ScenarioError,
    Skipped,
    Tools,
)
from bench.servers import (
    BENCH_DIR,
    LOAD_CPU,
    PEERS_PYTHON,
    SERVERS,
    RunningServer,
    ServerError,
    ServerSpec,
    free_port,
)

#: Estimated seconds per server session beyond its scenarios (start, checks, stop).
SESSION_OVERHEAD = 1.2
#: Estimated seconds for installs when something is missing.
APT_SECONDS = 40.0
PIP_SECONDS = 45.0
#: The full profile's promise.
BUDGET_SECONDS = 15 * 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="Benchmark HTTPy side by side with other Python servers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="servers: " + ", ".join(SERVERS) + "\nscenarios: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=os.environ.get("BENCH_PROFILE") or "full",
        help="quick: D=3s R=1 (smoke); full: D=6s R=3 (default; env BENCH_PROFILE)",
    )
    parser.add_argument("--servers", help="comma-separated subset of servers (default: all)")
    parser.add_argument("--scenarios", help="comma-separated subset of scenarios (default: all)")
    parser.add_argument("--duration", type=float, help="override the profile's D (seconds)")
    parser.add_argument("--repeats", type=int, help="override the profile's R")
    parser.add_argument("--idle-connections", type=int, help="override the profile's N")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "results", help="where results go"
    )
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r} (BENCH_PROFILE?)")
    args.server_keys = _select(parser, "server", args.servers, list(SERVERS))
    args.scenario_keys = _select(parser, "scenario", args.scenarios, list(SCENARIOS))
    return args


def _select(
    parser: argparse.ArgumentParser, what: str, text: str | None, known: list[str]
) -> list[str]:
    if not text:
        return known
    wanted = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        parser.error(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [name for name in known if name in wanted]  # registry order


def plan_seconds(
    profile: Profile, servers: list[str], scenarios: list[str], install: float
) -> float:
    """Expected wall-clock seconds of the whole run."""
    total = install + 10.0  # + report and chart
    for repeat in range(profile.repeats):
        for server in servers:
            total += SESSION_OVERHEAD
            for key in scenarios:
                scenario = SCENARIOS[key]
                if scenario.first_repeat_only and repeat > 0:
                    continue
                total += scenario.estimate(profile, SERVERS[server].h2c_hint)
    return total


def raise_nofile() -> None:
    """Raise our soft RLIMIT_NOFILE to the hard limit; the servers inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pin_to_load_cpu() -> None:
    """Keep this harness (and its samplers) off the servers' CPU."""
    if LOAD_CPU in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {LOAD_CPU})


def describe(m: Measurement) -> str:
    """One progress line for a measurement."""
    if m.status != "ok":
        return m.note if m.note.startswith(m.status) else f"{m.status}: {m.note}"
    if m.rps is not None:
        text = f"{m.rps:>10,.0f} req/s"
        if m.p50_ms is not None and m.p99_ms is not None:
            text += f"  p50 {m.p50_ms:.2f} ms  p99 {m.p99_ms:.2f} ms"
    else:
        e = m.extra
        text = "RSS idle {} / load {} / {} conns {} MiB".format(
            *(
                f"{v / 1024:.1f}" if isinstance(v, int) else "—"
                for v in (e.get("idle_kib"), e.get("load_kib"))
            ),
            e.get("connections"),
            f"{e['conns_kib'] / 1024:.1f}" if e.get("conns_kib") else "—",
        )
    return text + (f"  ({m.note})" if m.note else "")


def run_session(
    spec: ServerSpec,
    repeat: int,
    profile: Profile,
    scenario_keys: list[str],
    available: Tools,
    raw_dir: Path,
) -> list[Measurement]:
    """Start one server, run the scenarios against it, stop it."""
    keys = [k for k in scenario_keys if repeat == 0 or not SCENARIOS[k].first_repeat_only]
    results: list[Measurement] = []

    def record(m: Measurement) -> None:
        results.append(m)
        path = raw_dir / f"r{repeat + 1}-{spec.key}-{m.scenario}.json"
        path.write_text(json.dumps(m.to_json(), indent=1))
        tools.log(f"  {spec.label:<26} {m.scenario:<13} {describe(m)}")

    server: RunningServer | None = None
    try:
        server = RunningServer(
            spec, free_port(), raw_dir / "logs" / f"r{repeat + 1}-{spec.key}.log"
        )
        startup = server.start()
        time.sleep(0.2)
        idle_kib, processes = server.memory()
        ctx = Context(server, profile, available, repeat)
        ctx.session.update(idle_rss_kib=idle_kib, processes=processes, startup_s=startup)
        for key in keys:
            started = time.monotonic()
            try:
                server.check_alive()
                m = SCENARIOS[key].run(ctx)
            except Skipped as exc:
                m = Measurement(spec.key, key, repeat, status=exc.status, note=exc.reason)
            except (ScenarioError, ServerError) as exc:
                m = Measurement(spec.key, key, repeat, status="error", note=str(exc))
            except Exception as exc:  # a harness bug: report it, keep the other rows
                traceback.print_exc()
                m = Measurement(
                    spec.key, key, repeat, status="error", note=f"{type(exc).__name__}: {exc}"
                )
            m.seconds = round(time.monotonic() - started, 2)
            m.extra.setdefault("startup_s", round(startup, 2))
            record(m)
    except ServerError as exc:
        done = {m.scenario for m in results}
        for key in keys:
            if key not in done:
                record(Measurement(spec.key, key, repeat, status="error", note=str(exc)))
    finally:
        if server is not None:
            server.stop()
    return results


def build_plot_data(meta: dict[str, Any], summary: dict[str, Any], servers: list[str]) -> Any:
    """What plot.py reads."""
    return {
        "date": meta["date"],
        "profile": meta["profile"],
        "duration": meta["duration"],
        "repeats": meta["repeats"],
        "servers": [{"key": k, "label": SERVERS[k].label} for k in servers],
        "scenarios": [
            {"key": k, "title": SCENARIOS[k].title, "kind": SCENARIOS[k].kind, "rows": rows}
            for k, rows in summary.items()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Install, plan, measure, report."""
    args = parse_args(argv)
    wall_start = time.monotonic()
    profile = PROFILES[args.profile]
    profile = dataclasses.replace(
        profile,
        duration=args.duration if args.duration is not None else profile.duration,
        repeats=args.repeats if args.repeats is not None else profile.repeats,
        idle_connections=(
            args.idle_connections if args.idle_connections is not None else profile.idle_connections
        ),
    )
    servers, scenarios = args.server_keys, args.scenario_keys

    # 1. The plan, before anything slow happens.
    need_apt = any(shutil.which(name) is None for name in tools.SYSTEM_TOOLS)
    need_pip = not tools.peers_ready()
    install = (APT_SECONDS if need_apt else 0.0) + (PIP_SECONDS if need_pip else 0.0)
    planned = plan_seconds(profile, servers, scenarios, install)
    tools.log(
        f"bench: profile {profile.name} (D={profile.duration:g}s, R={profile.repeats}, "
        f"N={profile.idle_connections:,}), {len(servers)} servers x {len(scenarios)} scenarios"
    )
    tools.log(
        f"bench: planned duration ~{planned / 60:.1f} min"
        + (f" (incl. ~{install / 60:.1f} min of installs)" if install else "")
    )
    if planned > BUDGET_SECONDS:
        tools.log(f"bench: warning: the plan exceeds the {BUDGET_SECONDS // 60}-minute budget")

    # 2. Installs.
    available = tools.ensure_system_tools()
    peers_problem = tools.ensure_peers_venv() if need_pip else None
    if peers_problem:
        tools.log(f"bench: {peers_problem}; peer servers will be reported as errors")

    # 3. Measurements.
    raise_nofile()
    pin_to_load_cpu()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw_dir = args.output / "raw" / run_id
    raw_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    measurements: list[Measurement] = []
    for repeat in range(profile.repeats):
        tools.log(f"bench: repeat {repeat + 1}/{profile.repeats}")
        for key in servers:
            spec = SERVERS[key]
            if spec.venv == "peers" and peers_problem:
                for scenario in scenarios:
                    measurements.append(
                        Measurement(key, scenario, repeat, status="error", note=peers_problem)
                    )
                continue
            measurements += run_session(spec, repeat, profile, scenarios, available, raw_dir)

    # 4. Report and chart.
    elapsed = time.monotonic() - wall_start
    summary = report.summarize(measurements, servers, scenarios)
    load_after = os.getloadavg()
    meta: dict[str, Any] = {
        "run_id": run_id,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": profile.name,
        "duration": profile.duration,
        "repeats": profile.repeats,
        "idle_connections": profile.idle_connections,
        "servers": servers,
        "scenarios": scenarios,
        "planned_seconds": planned,
        "elapsed_seconds": elapsed,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "machine": tools.describe_machine(available),
        "shared_machine_note": (
            f"1-minute load average {load_before[0]:.2f} before and {load_after[0]:.2f} "
            f"after the run on {os.cpu_count()} cores: anything well above the ~1 the "
            "benchmark itself adds means other work shared the machine and numbers are rough."
        ),
    }
    summary_path = raw_dir / "summary.json"
    plot_data = build_plot_data(meta, summary, servers)
    summary_path.write_text(
        json.dumps({"meta": meta, "summary": summary, "plot": plot_data}, indent=1)
    )
    (raw_dir / "plot.json").write_text(json.dumps(plot_data, indent=1))
    args.output.mkdir(parents=True, exist_ok=True)
    markdown = report.render_markdown(meta, summary)
    chart = args.output / "latest.png"
    try:
        subprocess.run(
            [str(PEERS_PYTHON), str(BENCH_DIR / "plot.py"), str(raw_dir / "plot.json"), str(chart)],
            check=True,
            timeout=120,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        tools.log(f"bench: chart failed: {exc}")
        markdown = markdown.replace(
            "![median requests/s per scenario](latest.png)", f"(chart failed: {exc})"
        )
    (args.output / "latest.md").write_text(markdown)
    tools.log("")
    tools.log(report.console_table(summary))
    tools.log("")
    tools.log(
        f"bench: done in {(time.monotonic() - wall_start) / 60:.1f} min "
        f"(planned {planned / 60:.1f}); wrote {args.output / 'latest.md'} and {chart}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
