"""Print pip requirements pinning every runtime dependency of HTTPy to its declared lower
bound, read from pyproject.toml, so ``make test-minimum`` cannot drift from it.

Runtime dependencies are ``[project] dependencies`` plus every optional extra except
``dev`` (trio, http3, speed, reload).  ``name>=1.2,<2`` becomes ``name==1.2``; an entry
without a lower bound is an error (each must have one).  The test tools of the ``dev``
extra are not pinned: pip resolves them under these pins (``-c``).

With ``--names`` it prints instead every declared dependency, test tools included, by
name (and extras) only: what ``make test-latest`` upgrades to the newest releases,
above the upper bounds too.

    python scripts/min_requirements.py [--names] [pyproject.toml]
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;.*)?$"
)
_LOWER = re.compile(r">=\s*(?P<version>[^,\s]+)")


def declared(pyproject: Path, *, dev: bool) -> list[tuple[str, str, str]]:
    """``(name, extras, specifier)`` of each dependency in ``pyproject`` (runtime ones,
    and the ``dev`` extra's too if ``dev``); names normalised, extras as written."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        if dev or extra != "dev":
            requirements += items
    result = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot parse requirement {requirement!r}")
        name = match["name"].lower().replace("_", "-")
        result.append((name, match["extras"] or "", match["spec"]))
    return result


def lower_bounds(pyproject: Path) -> dict[str, str]:
    """``{name: lower bound}`` of the runtime dependencies declared in ``pyproject``."""
    pins: dict[str, str] = {}
    for name, _extras, spec in declared(pyproject, dev=False):
        lower = _LOWER.search(spec)
        if lower is None:
            raise SystemExit(f"{name}{spec} has no lower bound (>=): every one needs it")
        version = lower["version"]
        if pins.get(name, version) != version:
            raise SystemExit(f"{name} is declared with two lower bounds: {pins[name]}, {version}")
        pins[name] = version
    return pins


def main(argv: list[str]) -> int:
    args = argv[1:]
    names = "--names" in args
    args = [arg for arg in args if arg != "--names"]
    path = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "pyproject.toml"
    if names:
        seen: dict[str, str] = {}
        for name, extras, _spec in declared(path, dev=True):
            seen[name] = seen.get(name) or extras  # anyio and anyio[trio]: keep the extras
        for name, extras in sorted(seen.items()):
            print(f"{name}{extras}")
        return 0
    for name, version in sorted(lower_bounds(path).items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
