"""``make autobahn``: the Autobahn WebSocket testsuite (fuzzing client) against HTTPy's echo
endpoint (scripts/autobahn_echo.py), over HTTP/1.1, on each backend.

    python scripts/autobahn.py [--backends asyncio,trio] [--cases "1.*,2.*"]

Installs ``wstest`` with ../shared/tools/autobahn/install.sh when it is missing
(``AB_HOME``, default ~/.cache/autobahn), writes the HTML/JSON reports under
build/autobahn/<backend>/ and the counts per outcome to build/autobahn/summary.txt.
Exits 1 if any case FAILED.
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


def wstest() -> Path:
    home = Path(os.environ.get("AB_HOME", Path.home() / ".cache" / "autobahn"))
    binary = home / "bin" / "wstest"
    if not binary.exists():
        subprocess.run(["bash", str(TOOLS / "install.sh")], check=True)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("echo server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("echo server did not start")


def run(backend: str, cases: list[str], binary: Path) -> Path:
    port = free_port()
    outdir = OUT / backend
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
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "autobahn_echo.py"), str(port), backend], env=env
    )
    try:
        wait_for_port(port, server)
        started = time.monotonic()
        subprocess.run(
            [str(binary), "-m", "fuzzingclient", "-s", str(spec_path)],
            cwd=outdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{backend}: {time.monotonic() - started:.0f}s", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return outdir / "index.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    (OUT / "summary.txt").write_text(summary)
    print(summary)
    failed = any(
        case["behavior"] == "FAILED" or case["behaviorClose"] == "FAILED"
        for index in indexes
        for cases_ in json.loads(index.read_text()).values()
        for case in cases_.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
