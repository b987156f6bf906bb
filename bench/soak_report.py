"""The soak test's output: the printed summary, ``bench/results/soak.md`` and the chart.

``soak.md`` holds one section per backend between ``<!-- soak:BACKEND -->`` markers; a
run replaces its own backend's section and keeps the others, so ``make soak`` and ``make
soak SOAK_BACKEND=trio`` add up to one file.  The chart (``soak.png``) draws every
backend's last reported run; it is drawn by this module run under the peers'
interpreter, which has matplotlib (the standard library only at import time)::

    bench/.venv-peers/bin/python bench/soak_report.py PLOT_JSON... OUTPUT_PNG
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import PEERS_PYTHON, ROOT
from bench.tools import cpu_model

if TYPE_CHECKING:
    from bench.soak import Sample, SoakResult

RESULTS_DIR = ROOT / "bench" / "results"
#: Plot data of each backend's last reported run (not committed).
PLOT_DIR = ROOT / "build" / "soak"
PROTOCOLS = ("h1", "h2", "ws")
PROTOCOL_LABELS = {"h1": "HTTP/1.1", "h2": "HTTP/2 (h2c)", "ws": "WebSocket"}
BACKENDS = ("asyncio", "trio")
_SECTION = re.compile(r"<!-- soak:(\w+) -->\n(.*?)<!-- /soak:\1 -->\n", re.DOTALL)


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def render_summary(result: SoakResult) -> str:
    """The plain-text summary printed at the end of a run."""
    s, c = result.summary, result.config
    lines = [
        f"HTTPy {c.backend} soak: {c.duration:.0f} s ({c.warmup:.0f} s warm-up), "
        f"{result.clients} concurrent clients, RSS sampled every {c.interval:g} s",
        f"  RSS at end of warm-up {s.warmup_rss_mib:.1f} MiB; after it min {s.min_mib:.1f}, "
        f"max {s.max_mib:.1f}, final {s.final_mib:.1f} MiB",
        f"  growth after warm-up {s.growth_mib:+.2f} MiB ({s.growth_percent:+.1f} %), "
        f"slope {s.slope_mib_per_min:+.3f} MiB/min over {s.window_min:.1f} min "
        f"(threshold {s.threshold_mib:.1f} MiB)",
        f"  RSS once the load stopped {_mib(result.idle_after_kib)} MiB",
    ]
    for name in PROTOCOLS:
        st = result.stats[name]
        lines.append(
            f"  {PROTOCOL_LABELS[name]:<13} {st.requests:>9,} ok  {st.connections:>7,} connections"
            f"  {st.aborted:>6,} left on purpose  {st.errors} errors"
        )
        lines.extend(f"  {n:>9,} x {message}" for message, n in st.error_messages.items())
    lines.append(f"  server log: {sum(result.server_problems.values()):,} error lines")
    lines.extend(f"  {n:>9,} x {line}" for line, n in result.server_problems.items())
    verdict = "flat" if s.flat else "GROWING"
    lines.append(f"  verdict: memory {verdict}, {result.errors:,} unexpected errors")
    return "\n".join(lines)


def _table_rows(result: SoakResult, every: float) -> list[Sample]:
    """The samples taken at each multiple of ``every`` seconds, and the last one."""
    interval = result.config.interval
    rows = []
    for sample in result.samples:
        nominal = round(sample.t / interval) * interval
        if nominal % every == 0 or sample is result.samples[-1]:
            rows.append(sample)
    return rows


def code_version() -> str:
    """The commit the server ran, and whether ``httpy/`` had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "httpy"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"commit {commit}" + (" + uncommitted changes in httpy/" if dirty else "")


def render_section(result: SoakResult, table_every: float = 30.0) -> str:
    """One backend's section of ``soak.md``."""
    s, c = result.summary, result.config
    loop = f" (`--loop {c.loop}`)" if c.backend == "asyncio" else ""
    out = [
        f"## HTTPy {c.backend}",
        "",
        f"- date: {result.started_at:%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}, `nproc` = {os.cpu_count()}, Linux {platform.release()}",
        f"- Python {platform.python_version()}, backend {c.backend}{loop}, {result.code}",
        f"- duration {c.duration:.0f} s, warm-up {c.warmup:.0f} s, RSS every {c.interval:g} s, "
        f"{result.clients} concurrent clients",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| RSS at end of warm-up | {s.warmup_rss_mib:.1f} MiB |",
        f"| after warm-up: min / max / final | {s.min_mib:.1f} / {s.max_mib:.1f} / "
        f"{s.final_mib:.1f} MiB |",
        f"| growth after warm-up | {s.growth_mib:+.2f} MiB ({s.growth_percent:+.1f} %) |",
        f"| regression slope after warm-up | {s.slope_mib_per_min:+.3f} MiB/min over "
        f"{s.window_min:.1f} min |",
        f"| flatness threshold | {s.threshold_mib:.1f} MiB |",
        f"| RSS once the load stopped | {_mib(result.idle_after_kib)} MiB |",
        f"| server log error lines | {sum(result.server_problems.values()):,} |",
        f"| verdict | memory **{'flat' if s.flat else 'growing'}**, "
        f"{result.errors:,} unexpected errors |",
        "",
        "| protocol | checked exchanges | connections | left on purpose | errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in PROTOCOLS:
        st = result.stats[name]
        out.append(
            f"| {PROTOCOL_LABELS[name]} | {st.requests:,} | {st.connections:,} | "
            f"{st.aborted:,} | {st.errors:,} |"
        )
    out.append("")
    problems = [
        f"- {PROTOCOL_LABELS[name]} client, {n:,} x: `{message}`"
        for name in PROTOCOLS
        for message, n in result.stats[name].error_messages.items()
    ] + [f"- server log, {n:,} x: `{line}`" for line, n in result.server_problems.items()]
    if problems:
        out += ["Unexpected errors, by message:", "", *problems, ""]
    out += [
        f"RSS every {table_every:g} s:",
        "",
        "| t (s) | RSS (MiB) | vs end of warm-up (MiB) | open connections | "
        "HTTP/1.1 | HTTP/2 | WebSocket |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    warm_kib = s.warmup_rss_mib * 1024
    for sample in _table_rows(result, table_every):
        counts = " | ".join(f"{sample.requests[name]:,}" for name in PROTOCOLS)
        out.append(
            f"| {sample.t:.0f} | {_mib(sample.rss_kib)} | "
            f"{(sample.rss_kib - warm_kib) / 1024:+.1f} | {sample.connections} | {counts} |"
        )
    return "\n".join(out) + "\n"


def render_markdown(sections: dict[str, str], flat_percent: float, flat_mib: float) -> str:
    """The whole ``soak.md`` from each backend's section."""
    out = [
        "# Soak: HTTPy's memory under mixed traffic",
        "",
        "Generated by `make soak` (`bench/soak.py`; `make soak SOAK_BACKEND=trio` for trio). "
        "One server process (one worker, `bench/apps/soak_app.py`, pinned to CPU 0) under "
        "HTTP/1.1, HTTP/2 (h2c) and WebSocket traffic from one load process on CPU 1 "
        "(`bench/soak_clients.py`: keep-alive and new-connection requests, POST bodies, "
        "chunked uploads, streamed responses, 404s, concurrent HTTP/2 streams, WebSocket "
        "sessions with and without compression, and clients that leave mid-response, "
        "mid-body, mid-head, reset HTTP/2 streams or drop WebSockets without a close). "
        "The server's `VmRSS` comes from `/proc/PID/status`.",
        "",
        f"Memory is *flat* when, after the warm-up, the growth (last sample minus the one "
        f"at the end of the warm-up) and the growth the regression slope projects over the "
        f"same window both stay under max({flat_percent:g} % of the RSS at the end of the "
        f"warm-up, {flat_mib:g} MiB). Checked exchanges are HTTP requests whose status and "
        "body were verified and WebSocket messages echoed; disconnects the clients make on "
        "purpose are counted apart, not as errors.",
        "",
    ]
    if (RESULTS_DIR / "soak.png").exists():
        out += ["![server RSS over time](soak.png)", ""]
    for backend in sorted(sections, key=lambda b: (b not in BACKENDS, b)):
        out += [
            f"<!-- soak:{backend} -->",
            sections[backend].rstrip("\n"),
            f"<!-- /soak:{backend} -->",
        ]
        out.append("")
    return "\n".join(out)


def plot(runs: list[dict[str, Any]], output: Path) -> None:
    """RSS over time per run, warm-ups shaded.  Needs matplotlib (the peers' venv)."""
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    # After matplotlib.use(): the backend comes first.
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for run in runs:
        ax.plot(run["t"], run["rss_mib"], marker=".", markersize=3,
                label=f"HTTPy {run['backend']} ({run['date']})")  # fmt: skip
    ax.axvspan(0, max(run["warmup"] for run in runs), color="0.92", label="warm-up")
    ax.set_xlabel("seconds of load")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)
    ax.set_title("HTTPy soak: server resident memory under mixed HTTP/1.1, h2c, WebSocket")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def write_report(result: SoakResult, flat_percent: float, flat_mib: float) -> list[Path]:
    """Replace this backend's section of soak.md, redraw the chart; return the paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    PLOT_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    backend = result.config.backend
    data = {
        "backend": backend,
        "date": f"{result.started_at:%Y-%m-%d %H:%M} UTC",
        "warmup": result.config.warmup,
        "t": [s.t for s in result.samples],
        "rss_mib": [s.rss_kib / 1024 for s in result.samples],
    }
    (PLOT_DIR / f"plot-{backend}.json").write_text(json.dumps(data))
    chart = RESULTS_DIR / "soak.png"
    if PEERS_PYTHON.exists():
        command = [str(PEERS_PYTHON), __file__, *sorted(map(str, PLOT_DIR.glob("plot-*.json")))]
        if subprocess.run([*command, str(chart)], check=False, cwd=ROOT).returncode == 0:
            written.append(chart)
    markdown = RESULTS_DIR / "soak.md"
    existing = markdown.read_text() if markdown.exists() else ""
    sections = {m.group(1): m.group(2) for m in _SECTION.finditer(existing)}
    sections[backend] = render_section(result)
    markdown.write_text(render_markdown(sections, flat_percent, flat_mib))
    return [markdown, *written]


def main() -> int:
    """Draw the chart: ``soak_report.py PLOT_JSON... OUTPUT_PNG``."""
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    runs = [json.loads(Path(path).read_text()) for path in sys.argv[1:-1]]
    plot(runs, Path(sys.argv[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
