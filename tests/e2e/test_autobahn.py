"""The Autobahn WebSocket testsuite, cases 1-10 (framing, pings, fragmentation, UTF-8,
close handshake, limits, opening handshake; not the permessage-deflate groups 12-13),
against the seed-style echo handler in scripts/autobahn_echo.py served by
``python -m httpy`` with the default configuration, on asyncio and on trio: no case may
FAIL and every close must be clean.

The same runner as ``make autobahn`` (scripts/autobahn.py).  ``wstest`` (Python 2) is
installed into ~/.cache/autobahn with ../shared/tools/autobahn/install.sh on first use;
the tests are skipped, saying why, only when that installation is impossible here.
About 20-30 s per backend.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_runner() -> ModuleType:
    path = ROOT / "scripts" / "autobahn.py"
    spec = importlib.util.spec_from_file_location("autobahn_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


runner = load_runner()


@pytest.fixture(scope="module")
def wstest() -> Path:
    try:
        return Path(runner.wstest(install=True))
    except runner.WstestUnavailable as exc:
        pytest.skip(f"Autobahn's wstest is not installed and cannot be installed here: {exc}")


@pytest.mark.slow
@pytest.mark.timeout(900)  # a first run installs wstest (~1 min) before the cases
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_autobahn_cases_1_to_10(wstest: Path, backend: str, tmp_path: Path) -> None:
    index = runner.run(backend, runner.CASES_1_TO_10, wstest, out=tmp_path)
    results = runner.results(index)
    assert len(results) > 250, f"only {len(results)} cases ran (see {index})"
    offending = runner.offending(index)
    assert not offending, (
        f"{len(offending)} Autobahn case(s) FAILED or closed uncleanly on {backend} "
        f"(reports in {index.parent}):\n  " + "\n  ".join(offending)
    )
