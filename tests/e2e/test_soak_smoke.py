"""The soak harness (``make soak``, ``bench/soak.py``) for a few seconds on each backend.

A real server process under the soak's whole client mix: every protocol makes progress
(including the disconnects the clients make on purpose), nothing unexpected fails, and
the server's RSS is sampled.  Memory flatness is not judged: 8 s is far too short for
that, the 10-minute ``make soak`` judges it.
"""

from __future__ import annotations

import pytest

from bench.soak import SoakConfig, run_soak


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_soak_smoke(backend: str) -> None:
    result = run_soak(SoakConfig(backend=backend, duration=8.0, warmup=2.0, interval=1.0))

    for name, stats in result.stats.items():
        assert stats.connections > 0, name
        assert stats.requests > 0, name
        assert stats.aborted > 0, name  # the disconnects on purpose happened too
    assert len(result.samples) >= 8
    assert all(sample.rss_kib > 0 for sample in result.samples)
    assert result.idle_after_kib > 0
    assert result.summary.warmup_rss_mib > 0

    # Every failure by message: the clients' and the server log's error lines.
    unexpected = [m for stats in result.stats.values() for m in stats.error_messages]
    assert unexpected + list(result.server_problems) == []
    assert result.errors == 0
