"""The import-time check shared by the modules that use a library's private internals.

HTTPy reaches past the public API of a few libraries (h2 and hpack, aioquic, wsproto,
python-multipart, anyio).  Each such use lives in one module per library, which lists,
next to the code, what it relies on, and calls :func:`require` when it is imported::

    require("wsproto", {"Connection(SERVER)": probe}, {"Connection(SERVER)": ("_proto",)})

When a release renames or drops one of those attributes, importing HTTPy then fails at
once with an :class:`InternalsChanged` (an :class:`ImportError`) naming the library, its
installed version and the missing attribute, instead of misbehaving at run time: an
override of a private method that no longer exists is silently never called.

The probes are the library's own classes (never our subclasses, which would define the
overridden methods themselves) or fresh instances of them, for attributes set in
``__init__``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping


class InternalsChanged(ImportError):
    """An installed library lacks a private attribute HTTPy relies on."""


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("unknown version" if not found)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def missing_attribute(subject: object, path: str) -> str | None:
    """The first component of the dotted ``path`` that ``subject`` lacks, or None."""
    current = subject
    for part in path.split("."):
        try:
            current = getattr(current, part)
        except AttributeError:
            return part
    return None


def require(
    distribution: str,
    probes: Mapping[str, object],
    required: Mapping[str, Iterable[str]],
    *,
    module: str,
) -> None:
    """Raise :class:`InternalsChanged` unless, for every ``label`` in ``required``, each
    dotted path in ``required[label]`` resolves on ``probes[label]``.

    ``module`` is the quarantine module that needs them (named in the message, as the
    place to look); ``distribution`` the library's name on PyPI.
    """
    for label, paths in required.items():
        if label not in probes:
            raise InternalsChanged(f"{module}: no probe for {label!r} (a bug in HTTPy's own check)")
        subject = probes[label]
        for path in paths:
            part = missing_attribute(subject, path)
            if part is not None:
                raise InternalsChanged(
                    f"HTTPy relies on internals of {distribution} that the installed "
                    f"{distribution} {installed_version(distribution)} does not have: "
                    f"{label}.{path} (no attribute {part!r}).  Install a {distribution} "
                    f"release within the bounds in HTTPy's pyproject.toml, or update "
                    f"{module} for this one."
                )
