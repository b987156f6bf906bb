"""Setting up what the benchmark needs, and describing the machine and versions.

System load generators come from Debian (``wrk``, ``nghttp2-client`` for h2load) and are
installed with apt-get when missing.  Peer servers and matplotlib go into their own
virtualenv, ``bench/.venv-peers``, never into the project's ``.venv``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

from bench.scenarios import Tools
from bench.servers import MAIN_PYTHON, PEERS_PYTHON, PEERS_VENV

#: Executable -> Debian package that ships it.
SYSTEM_TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client"}
#: What the peers' virtualenv gets (pip requirement specifiers).
PEER_REQUIREMENTS = ("uvicorn[standard]", "hypercorn[trio]", "granian", "matplotlib")
#: Modules that must import in the peers' venv for it to count as ready.
PEER_MODULES = ("uvicorn", "httptools", "uvloop", "hypercorn", "trio", "granian", "matplotlib")
#: Distributions whose versions the report lists, per interpreter.
MAIN_DISTRIBUTIONS = ("httpy", "h11", "h2", "anyio", "trio")
PEER_DISTRIBUTIONS = (
    "uvicorn", "httptools", "uvloop", "hypercorn", "h11", "h2", "trio", "granian", "matplotlib",
)  # fmt: skip


def log(message: str) -> None:
    """Progress output (flushed, so it interleaves with subprocess output)."""
    print(message, flush=True)


def ensure_system_tools() -> Tools:
    """Find wrk and h2load; apt-get install the missing ones once (as root)."""
    missing = {name: pkg for name, pkg in SYSTEM_TOOLS.items() if shutil.which(name) is None}
    reasons: dict[str, str] = {}
    if missing:
        packages = sorted(set(missing.values()))
        if shutil.which("apt-get") is None:
            reasons = {n: f"{n} not found and apt-get is not available" for n in missing}
        elif os.geteuid() != 0:
            reasons = {n: f"{n} not found (apt-get needs root)" for n in missing}
        else:
            log(f"installing {' '.join(packages)} with apt-get ...")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            for argv in (
                ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
            ):
                try:
                    subprocess.run(argv, check=True, env=env, timeout=300)
                except (subprocess.SubprocessError, OSError) as exc:
                    log(f"  {' '.join(argv[:2])} failed: {exc}")
                    break
    tools = Tools(wrk=shutil.which("wrk"), h2load=shutil.which("h2load"))
    for name, package in SYSTEM_TOOLS.items():
        if getattr(tools, name) is None:
            tools.missing[name] = reasons.get(
                name, f"{name} not found (Debian package {package} did not install)"
            )
            log(f"  {tools.missing[name]}: its rows will be skipped")
    return tools


def peers_ready() -> bool:
    """Whether the peers' venv exists and imports every peer module."""
    if not PEERS_PYTHON.exists():
        return False
    code = "import " + ", ".join(PEER_MODULES)
    done = subprocess.run(
        [str(PEERS_PYTHON), "-c", code], capture_output=True, timeout=120, check=False
    )
    return done.returncode == 0


def ensure_peers_venv() -> str | None:
    """Create/complete bench/.venv-peers; return None when ready, else the reason."""
    if peers_ready():
        return None
    log(f"setting up {PEERS_VENV.relative_to(PEERS_VENV.parent.parent)} ...")
    try:
        if not PEERS_PYTHON.exists():
            # The project's interpreter as base: every server runs the same CPython.
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(PEERS_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(PEERS_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--upgrade", *PEER_REQUIREMENTS],
            check=True,
            timeout=900,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        return f"could not set up {PEERS_VENV}: {exc}"
    return None if peers_ready() else f"{PEERS_VENV} is missing modules after pip install"


def _versions_here(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _peer_versions() -> tuple[str, dict[str, str]]:
    """(Python version, distribution versions) of the peers' venv."""
    code = (
        "import json, platform\nfrom importlib import metadata\nv = {}\n"
        f"for n in {PEER_DISTRIBUTIONS!r}:\n"
        "    try: v[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: v[n] = 'not installed'\n"
        "print(json.dumps([platform.python_version(), v]))"
    )
    try:
        done = subprocess.run(
            [str(PEERS_PYTHON), "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        python, versions = json.loads(done.stdout)
    except (subprocess.SubprocessError, OSError, ValueError):
        return "unavailable", {}
    return str(python), dict(versions)


def _tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (subprocess.SubprocessError, OSError):
        return "unavailable"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].partition(" Copyright")[0].strip() if lines else "unavailable"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine(tools: Tools) -> dict[str, Any]:
    """Machine, interpreters and package versions, for the report header."""
    peer_python, peer_versions = _peer_versions()
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python_main": f"{platform.python_version()} ({MAIN_PYTHON})",
        "python_peers": f"{peer_python} ({PEERS_PYTHON})",
        "versions_main": _versions_here(MAIN_DISTRIBUTIONS),
        "versions_peers": peer_versions,
        "wrk": _tool_version([tools.wrk, "-v"]) if tools.wrk else "missing",
        "h2load": _tool_version([tools.h2load, "--version"]) if tools.h2load else "missing",
    }
