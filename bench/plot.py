"""Grouped bar chart of median requests/s per scenario per server.

Runs with the peers' interpreter (``bench/.venv-peers/bin/python``, which has matplotlib)
and the standard library only, so it imports nothing from the harness::

    bench/.venv-peers/bin/python bench/plot.py SUMMARY_JSON OUTPUT_PNG
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after matplotlib.use(): the backend comes first


def plot(data: dict[str, Any], output: Path) -> None:
    """Draw the chart described by the summary JSON ``data`` into ``output``."""
    scenarios = [s for s in data["scenarios"] if s["kind"] == "throughput"]
    servers = data["servers"]
    if not scenarios:
        raise SystemExit("no throughput scenario to plot")
    fig, ax = plt.subplots(figsize=(13, 6.5), dpi=110)
    group_width = 0.84
    bar = group_width / len(servers)
    colors = plt.get_cmap("tab10").colors
    for i, server in enumerate(servers):
        xs, medians, lows, highs = [], [], [], []
        for j, scenario in enumerate(scenarios):
            x = j - group_width / 2 + bar * (i + 0.5)
            row = scenario["rows"][server["key"]]
            if "rps" not in row:
                label = "n/a" if row["status"] == "n/a" else row["status"]
                ax.text(x, 0, label, rotation=90, ha="center", va="bottom", fontsize=7,
                        color="0.45")  # fmt: skip
                continue
            rps = row["rps"]
            xs.append(x)
            medians.append(rps["median"])
            lows.append(rps["median"] - rps["min"])
            highs.append(rps["max"] - rps["median"])
        color = colors[i % len(colors)]
        bars = ax.bar(xs, medians, bar * 0.92, label=server["label"], color=color,
                      yerr=[lows, highs] if data["repeats"] > 1 else None, capsize=2)  # fmt: skip
        for rect, value in zip(bars, medians, strict=True):
            ax.text(rect.get_x() + rect.get_width() / 2, rect.get_height(),
                    f"{value / 1000:.1f}k", ha="center", va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(range(len(scenarios)))
    ax.set_xticklabels([textwrap.fill(s["title"], 24) for s in scenarios], fontsize=9)
    ax.set_ylabel("median requests/s (higher is better)")
    ax.set_title(
        f"HTTPy vs peers — one worker on one core, {data['profile']} profile "
        f"(D={data['duration']:g}s, R={data['repeats']}) — {data['date']}"
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, ncols=4, loc="upper right")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)


def main() -> int:
    """Command-line entry point."""
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
