"""The event loop is reached only through a transport (docs/design.md): no module of
``httpy/`` outside ``backends/*transport*.py`` imports asyncio or trio, or branches on the
running loop's name."""

from __future__ import annotations

import re
from pathlib import Path

import httpy

PACKAGE = Path(httpy.__file__).parent
LOOP_NAMES = re.compile(
    r"^\s*(import (asyncio|trio|uvloop)\b|from (asyncio|trio|uvloop)\b)"
    r"|current_async_library\(\)\s*==",
    re.MULTILINE,
)


def test_only_the_transports_name_an_event_loop() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("backends/") and "transport" in path.name:
            continue
        for match in LOOP_NAMES.finditer(path.read_text()):
            offenders.append(f"{relative}: {match.group(0).strip()}")
    assert offenders == [], offenders
    # The check can fail: the transports themselves do name their loops.
    transport = (PACKAGE / "backends" / "trio_transport.py").read_text()
    assert LOOP_NAMES.search(transport)
