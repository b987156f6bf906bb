"""``make autobahn``: the Autobahn WebSocket testsuite (fuzzing client) against HTTPy's echo
endpoint (scripts/autobahn_echo.py), over HTTP/1.1, on each backend.

    python scripts/autobahn.py [--backends asyncio,trio] [--cases "1.*,2.*"]

The server is started as users start it, ``python -m httpy autobahn_echo:app``, with the
default configuration.  Installs ``wstest`` with ../shared/tools/autobahn/install.sh when
it is missing (``AB_HOME``, default ~/.cache/autobahn), writes the HTML/JSON reports and
the server's log under build/autobahn/<backend>/ and the counts per outcome to
build/autobahn/summary.txt.  Exits 1 if any case FAILED or any close was not clean.

tests/e2e/test_autobahn.py imports this module to run cases 1-10 in the test suite.
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

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT.parent / "shared" / "tools" / "autobahn"
OUT = ROOT / "build" / "autobahn"
#: Everything but the permessage-deflate groups 12 and 13 (~10 minutes on their own).
CASES_1_TO_10 = [f"{group}.*" for group in range(1, 11)]


class WstestUnavailable(Exception):
    """wstest is not installed and could not be installed here."""


def wstest(install: bool = True) -> Path:
    """The wstest binary; installed with the shared install.sh when missing."""
    home = Path(os.environ.get("AB_HOME", Path.home() / ".cache" / "autobahn"))
    binary = home / "bin" / "wstest"
    if binary.exists():
        return binary
    script = TOOLS / "install.sh"
    if not install or not script.exists():
        raise WstestUnavailable(f"no {binary}, and no {script} to install it with")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not binary.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise WstestUnavailable(f"{script} failed (exit {done.returncode}):\n{tail}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"echo server exited early:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"echo server did not start:\n{log.read_text()}")


def run(backend: str, cases: list[str], binary: Path, out: Path = OUT) -> Path:
    """Run ``cases`` against a fresh ``python -m httpy`` on ``backend``; the index.json."""
    port = free_port()
    outdir = out / backend
    outdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "outdir": str(outdir),
        "servers": [{"agent": f"httpy-{backend}", "url": f"ws://127.0.0.1:{port}/echo"}],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    spec_path = outdir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    log = outdir / "server.log"
    command = [
        sys.executable, "-m", "httpy", "autobahn_echo:app",
        "--app-dir", str(ROOT / "scripts"),
        "--port", str(port),
        "--backend", backend,
    ]  # fmt: skip
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    try:
        wait_for_port(port, server, log)
        started = time.monotonic()
        subprocess.run(
            [str(binary), "-m", "fuzzingclient", "-s", str(spec_path)],
            cwd=outdir,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"{backend}: {time.monotonic() - started:.0f}s", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return outdir / "index.json"


def results(index: Path) -> dict[str, dict[str, object]]:
    """Each case of an index.json (one agent), with ``wasClean`` from its own report."""
    cases: dict[str, dict[str, object]] = {}
    for agent_cases in json.loads(index.read_text()).values():
        for case, result in agent_cases.items():
            report = index.parent / str(result["reportfile"])
            was_clean = json.loads(report.read_text()).get("wasClean")
            cases[case] = {**result, "wasClean": was_clean}
    return cases


def offending(index: Path) -> list[str]:
    """The cases that FAILED or did not close cleanly, one line each."""
    lines = []
    for case, result in sorted(results(index).items(), key=lambda c: _case_key(c[0])):
        if (
            result["behavior"] == "FAILED"
            or result["behaviorClose"] in ("FAILED", "UNCLEAN")
            or result["wasClean"] is False
        ):
            lines.append(
                f"{case}: {result['behavior']} / close {result['behaviorClose']}, "
                f"wasClean {result['wasClean']}, remote close code {result['remoteCloseCode']}"
            )
    return lines


def _case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case.split("."))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument("--cases", default="*", help="comma-separated case patterns")
    args = parser.parse_args()
    binary = wstest()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    indexes = [run(b.strip(), cases, binary) for b in args.backends.split(",") if b.strip()]
    summary = subprocess.run(
        [sys.executable, str(TOOLS / "summary.py"), *map(str, indexes)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    bad = {index.parent.name: offending(index) for index in indexes}
    for backend, lines in bad.items():
        summary += f"{backend}: {len(lines)} case(s) FAILED or closed uncleanly\n"
        summary += "".join(f"  {line}\n" for line in lines)
    (OUT / "summary.txt").write_text(summary)
    print(summary)
    return 1 if any(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
