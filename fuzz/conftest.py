"""Hypothesis profiles for the fuzz targets.

``ci`` (the default) is short enough to run inside ``make test``; ``long`` is what
``make fuzz`` uses.  Pick one with ``HYPOTHESIS_PROFILE=long``.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=300,
    # The same examples every run: CI stays reproducible; `make fuzz` explores.
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=50_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
