"""Turning measurements into the summary JSON and the Markdown report."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from bench.scenarios import PROFILES, SCENARIOS, Measurement
from bench.servers import BASELINE, SERVERS


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(
    measurements: Iterable[Measurement], servers: list[str], scenarios: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """scenario -> server -> {status, notes, rps {min, median, max}, p50/p99 medians, ...}."""
    by_cell: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        by_cell.setdefault((m.scenario, m.server), []).append(m)
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for scenario in scenarios:
        rows: dict[str, dict[str, Any]] = {}
        for server in servers:
            runs = by_cell.get((scenario, server), [])
            good = [m for m in runs if m.status == "ok"]
            notes = sorted({m.note for m in runs if m.note})
            row: dict[str, Any] = {"runs": len(runs), "ok_runs": len(good), "notes": notes}
            if not runs:
                row["status"] = "not run"
            elif good:
                row["status"] = "ok"
            else:  # every run failed the same way or was skipped/n-a: show the first reason
                row["status"] = runs[0].status
            rps = [m.rps for m in good if m.rps is not None]
            if rps:
                row["rps"] = _stats(rps)
            for key in ("p50_ms", "p99_ms"):
                values = [getattr(m, key) for m in good if getattr(m, key) is not None]
                if values:
                    row[key] = statistics.median(values)
            mean = [m.extra["mean_ms"] for m in good if "mean_ms" in m.extra]
            if mean:
                row["mean_ms"] = statistics.median(mean)
            if SCENARIOS[scenario].kind == "memory" and good:
                row["memory"] = good[0].extra
            rows[server] = row
        baseline = rows.get(BASELINE, {}).get("rps")
        for row in rows.values():
            if baseline and "rps" in row:
                row["ratio"] = row["rps"]["median"] / baseline["median"]
        summary[scenario] = rows
    return summary


def _md(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _fmt_rps(value: float) -> str:
    return f"{value:,.0f}"


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} µs" if value < 1 else f"{value:.2f} ms"


def _fmt_mib(kib: Any) -> str:
    return f"{kib / 1024:.1f}" if isinstance(kib, int | float) and kib else "—"


def _cell_problem(row: dict[str, Any]) -> str:
    """What to print instead of numbers for a row that has none."""
    status = row["status"]
    reason = _md("; ".join(row["notes"])) or status
    if status == "n/a":
        return reason if reason.startswith("n/a") else f"n/a ({reason})"
    if status == "error":
        return f"**error**: {reason}"
    return f"{status}: {reason}" if status not in reason else reason


def _throughput_table(scenario: str, rows: dict[str, dict[str, Any]], repeats: int) -> list[str]:
    latency = scenario != "h2c"
    head = "| Server | req/s min | req/s median | req/s max | median vs HTTPy asyncio |"
    head += " p50 | p99 | notes |" if latency else " mean latency | notes |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for server, row in rows.items():
        label = SERVERS[server].label
        if "rps" not in row:
            blanks = " — | — | — | — | — | — |" if latency else " — | — | — | — | — |"
            lines.append(f"| {label} |{blanks} {_cell_problem(row)} |")
            continue
        rps = row["rps"]
        ratio = f"{row['ratio']:.2f}× of HTTPy" if "ratio" in row else "—"  # noqa: RUF001
        notes = _md("; ".join(row["notes"]))
        if row["ok_runs"] < row["runs"]:
            notes = f"{row['runs'] - row['ok_runs']} of {row['runs']} runs failed; " + notes
        cells = [label, _fmt_rps(rps["min"]), _fmt_rps(rps["median"]), _fmt_rps(rps["max"]), ratio]
        if latency:
            cells += [_fmt_ms(row.get("p50_ms")), _fmt_ms(row.get("p99_ms"))]
        else:
            cells.append(_fmt_ms(row.get("mean_ms")))
        cells.append(notes.strip("; ") or "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _memory_table(rows: dict[str, dict[str, Any]], connections: int) -> list[str]:
    lines = [
        "| Server | processes | idle RSS (MiB) | end of load RSS (MiB) | "
        f"RSS with {connections:,} idle conns (MiB) | KiB per idle conn | "
        "conns still open (client / server side) | notes |",
        "|" + " --- |" * 8,
    ]
    for server, row in rows.items():
        label = SERVERS[server].label
        mem = row.get("memory")
        if mem is None:
            lines.append(f"| {label} | — | — | — | — | — | — | {_cell_problem(row)} |")
            continue
        per_conn = "—"
        # Over the RSS after the load run (what the heap had grown to), else over idle.
        base = mem.get("load_kib") or mem.get("idle_kib")
        if mem.get("conns_kib") and base and mem.get("opened"):
            per_conn = f"{max(mem['conns_kib'] - base, 0) / mem['opened']:.1f}"
        held = (
            f"{mem['still_open']:,} / {mem.get('server_established', 0):,}"
            if mem.get("still_open") is not None
            else "—"
        )
        cells = [
            label,
            str(mem.get("processes") or "—"),
            _fmt_mib(mem.get("idle_kib")),
            _fmt_mib(mem.get("load_kib")),
            _fmt_mib(mem.get("conns_kib")),
            per_conn,
            held,
            _md("; ".join(row["notes"])),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(meta: dict[str, Any], summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The whole latest.md."""
    machine = meta["machine"]
    profile = PROFILES[meta["profile"]]
    out = [
        "# HTTPy side-by-side benchmark",
        "",
        f"- **Date:** {meta['date']} (run took {meta['elapsed_seconds'] / 60:.1f} min, "
        f"planned {meta['planned_seconds'] / 60:.1f} min)",
        f"- **Profile:** `{profile.name}` — D = {meta['duration']:g} s per run, "
        f"R = {meta['repeats']} repeat(s), {meta['idle_connections']:,} idle connections",
        f"- **Machine:** {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB RAM, Linux {machine['kernel']}",
        f"- **Python:** HTTPy on {machine['python_main']}; peers on {machine['python_peers']}",
        "- **HTTPy side:** " + ", ".join(f"{k} {v}" for k, v in machine["versions_main"].items()),
        "- **Peers:** " + ", ".join(f"{k} {v}" for k, v in machine["versions_peers"].items()),
        f"- **Load generators:** {machine['wrk']}; {machine['h2load']}",
        f"- **Raw data:** `bench/results/raw/{meta['run_id']}/`",
        "",
        "![median requests/s per scenario](latest.png)",
        "",
    ]
    if meta.get("shared_machine_note"):
        out += [f"> {meta['shared_machine_note']}", ""]
    for scenario, rows in summary.items():
        spec = SCENARIOS[scenario]
        out += [f"## {spec.title}", ""]
        if spec.kind == "memory":
            out += _memory_table(rows, meta["idle_connections"])
        else:
            out += _throughput_table(scenario, rows, meta["repeats"])
        out += ["", spec.description.replace("-dDs", f"-d{meta['duration']:g}s"), ""]
    out += [
        "## Methodology",
        "",
        "- Every server runs as **one worker** serving the same tiny app (`GET /` → "
        "`Hello, world!` text/plain, `GET /json` → a 3-key JSON object): HTTPy serves "
        "`bench/apps/httpy_app.py` (its framework: routing, `Response` objects); the peers "
        "serve the bare ASGI callable `bench/apps/asgi_app.py` (no framework). So HTTPy "
        "rows include framework overhead that the peer rows do not.",
        "- Server pinned to CPU 0 (`taskset -c 0`), load generator (wrk, h2load, the "
        "idle-connection client, and this harness) to CPU 1. Servers bind 127.0.0.1 only.",
        "- Access logs are off everywhere; log level warning. Idle keep-alive timeouts are "
        "raised to 60 s where configurable so the memory scenario's connections stay open. "
        "Hypercorn runs a supervisor and a multiprocessing resource tracker next to its one "
        "worker, Granian a supervisor; RSS is summed over all of a server's processes (the "
        "*processes* column), so their fixed overhead is counted. *KiB per idle conn* "
        "(growth over the end-of-load RSS, divided by the connections opened) is free of it.",
        "- Granian's `--backpressure` (concurrent connections per worker, default 1,024) is "
        "raised to 16,384 so it can hold the idle connections; no other server caps them "
        "below 10,000 (HTTPy's `max_connections` default is 10,000).",
        "- Servers run alternately (A B C … A B C …) for R repeats, so slow drift of the "
        "machine hits all of them; each repeat starts every server afresh and checks that "
        "both routes answer correctly before measuring. min/median/max are over the "
        "repeats; the ratio is this server's median over HTTPy asyncio's median.",
        "- Latency percentiles are wrk's (`--latency`), median over the repeats. wrk's "
        "latencies come from a closed loop of 64 connections, so they mostly mirror "
        "throughput, not tail behaviour under a fixed offered load.",
        "- This is a loopback micro-benchmark of per-request overhead on one core. It says "
        "little about applications that do real work per request.",
        "",
    ]
    return "\n".join(out)


def console_table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A compact plain-text table of median requests/s for the terminal."""
    scenarios = [s for s in summary if SCENARIOS[s].kind == "throughput"]
    if not scenarios:
        return ""
    servers = list(next(iter(summary.values())))
    width = max(len(SERVERS[s].label) for s in servers) + 2
    lines = [" " * width + "".join(f"{s:>22}" for s in scenarios)]
    for server in servers:
        cells = []
        for scenario in scenarios:
            row = summary[scenario][server]
            if "rps" in row:
                ratio = f" ({row['ratio']:.2f}×)" if "ratio" in row else ""  # noqa: RUF001
                cells.append(f"{_fmt_rps(row['rps']['median'])}{ratio}")
            else:
                cells.append(row["status"])
        lines.append(SERVERS[server].label.ljust(width) + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)
