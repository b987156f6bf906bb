"""Dependencies stay honest.

* Each module that uses a library's private internals checks them at import
  (:func:`httpy.core.private_api.require`); here every one of those checks is shown to
  fail, naming the library, its version and the attribute, when that attribute is gone
  (a check that cannot fail is not a check), and to pass on what is installed.
* Every library those modules reach into has an upper bound in pyproject.toml.
* ``scripts/min_requirements.py`` (behind ``make test-minimum``) pins every runtime
  dependency to its lower bound.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from httpy.core.private_api import InternalsChanged, installed_version, missing_attribute, require

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: The quarantine modules: each has REQUIRED, probes() and check(found).
QUARANTINES = [
    "httpy.core.h2_internals",
    "httpy.core.wsproto_internals",
    "httpy.core.multipart_internals",
    "httpy.core.http3_aioquic",
]


def _module(name: str) -> Any:
    if name.endswith("http3_aioquic") and importlib.util.find_spec("aioquic") is None:
        pytest.skip("aioquic is not installed (the http3 extra)")
    return importlib.import_module(name)


class _Without:
    """``target`` with the dotted attribute ``path`` missing (everything else, and the
    path's leading attributes, are the target's own)."""

    __slots__ = ("_without_name", "_without_rest", "_without_target")

    def __init__(self, target: object, path: str) -> None:
        name, _, rest = path.partition(".")
        self._without_target = target
        self._without_name = name
        self._without_rest = rest

    def __getattr__(self, name: str) -> Any:
        if name == self._without_name:
            if not self._without_rest:
                raise AttributeError(name)
            return _Without(getattr(self._without_target, name), self._without_rest)
        return getattr(self._without_target, name)


def _every_required_attribute() -> Iterator[Any]:
    for name in QUARANTINES:
        spec_name = name.rsplit(".", 1)[-1]
        try:
            module = importlib.import_module(name)
        except ImportError:  # aioquic missing: one skipped case stands for the module
            yield pytest.param(name, "", "", "", id=f"{spec_name}-not-installed")
            continue
        for distribution, required in module.REQUIRED.items():
            for label, paths in required.items():
                for path in paths:
                    yield pytest.param(
                        name, distribution, label, path, id=f"{spec_name}:{label}.{path}"
                    )


@pytest.mark.parametrize("name", QUARANTINES)
def test_internals_are_there_in_the_installed_versions(name: str) -> None:
    _module(name).check()


REQUIRED_ATTRIBUTES = list(_every_required_attribute())


@pytest.mark.parametrize(("name", "distribution", "label", "path"), REQUIRED_ATTRIBUTES)
def test_each_quarantine_check_fails_when_an_attribute_is_gone(
    name: str, distribution: str, label: str, path: str
) -> None:
    module = _module(name)
    found = module.probes()
    found[label] = _Without(found[label], path)
    with pytest.raises(ImportError) as caught:
        module.check(found)
    assert isinstance(caught.value, InternalsChanged)
    message = str(caught.value)
    assert f"{label}.{path}" in message
    assert f"{distribution} {installed_version(distribution)}" in message
    assert name in message  # where to look


def test_h2_check_fails_on_a_dummy_module() -> None:
    module = _module("httpy.core.h2_internals")
    found = module.probes()
    found["h2.utilities"] = types.ModuleType("h2.utilities")  # as if h2 dropped them all
    with pytest.raises(InternalsChanged, match=r"h2 \S+ does not have: h2\.utilities\."):
        module.check(found)


def test_aioquic_check_fails_without_a_frame_handler() -> None:
    module = _module("httpy.core.http3_aioquic")
    found = module.probes()
    quic = found["QuicConnection()"]
    table = dict(quic._QuicConnection__frame_handlers)
    del table[0x01]  # PING

    class WithoutPingHandler:
        _QuicConnection__frame_handlers = table

        def __getattr__(self, name: str) -> Any:
            return getattr(quic, name)

    found["QuicConnection()"] = WithoutPingHandler()
    with pytest.raises(InternalsChanged, match=r"no entry for frame types 0x1\."):
        module.check(found)


def test_require_names_library_version_and_attribute() -> None:
    probe = types.SimpleNamespace(present=types.SimpleNamespace(inner=1))
    require("h2", {"thing": probe}, {"thing": ("present.inner",)}, module="m")
    assert missing_attribute(probe, "present.gone") == "gone"
    with pytest.raises(InternalsChanged) as caught:
        require("h2", {"thing": probe}, {"thing": ("present.gone",)}, module="httpy.m")
    message = str(caught.value)
    assert f"h2 {installed_version('h2')}" in message
    assert "thing.present.gone (no attribute 'gone')" in message
    assert "httpy.m" in message


# ------------------------------------------------------------------- pyproject bounds


def _requirements() -> dict[str, str]:
    project = PYPROJECT["project"]
    items = list(project["dependencies"])
    for extra, values in project["optional-dependencies"].items():
        if extra != "dev":
            items += values
    result = {}
    for item in items:
        match = re.match(r"([A-Za-z0-9._-]+)\s*(.*)", item)
        assert match is not None, item
        result[match[1].lower().replace("_", "-")] = match[2]
    return result


def test_libraries_with_private_internals_have_upper_bounds() -> None:
    requirements = _requirements()
    distributions: set[str] = set()
    for name in QUARANTINES:
        try:
            distributions |= set(importlib.import_module(name).REQUIRED)
        except ImportError:
            distributions.add("aioquic")
    for distribution in sorted(distributions):
        assert distribution in requirements, f"{distribution} is not declared"
        assert "<" in requirements[distribution], f"{distribution} needs an upper bound"


def test_min_requirements_pins_every_runtime_dependency() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "min_requirements.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    pins = dict(line.split("==") for line in out)
    requirements = _requirements()
    assert set(pins) == set(requirements)
    for name, spec in requirements.items():
        assert f">={pins[name]}" in spec.replace(" ", ""), (name, spec)
