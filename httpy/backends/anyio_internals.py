"""What HTTPy needs from anyio beyond its public API, in one place: when anyio changes,
this is the module to check.  :func:`check` runs at import and raises
:class:`~httpy.core.private_api.InternalsChanged` when it is missing.

* :func:`writes_straight_through` recognises anyio's trio socket streams by the private
  module that defines them (``anyio._backends._trio``): they keep no bytes of their own
  between the caller and the socket, so a direct ``socket.send`` cannot overtake earlier
  data (``backends/send.py``).  Were the module renamed, the answer would silently become
  False for every stream: correct, but the trio fast path gone.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from ..core.private_api import InternalsChanged, installed_version

#: The module anyio defines its trio socket streams in.
TRIO_BACKEND = "anyio._backends._trio"


def check(find_spec: Callable[[str], object | None] = importlib.util.find_spec) -> None:
    """Raise ``InternalsChanged`` unless :data:`TRIO_BACKEND` exists (without importing
    it, which would import trio)."""
    try:
        spec = find_spec(TRIO_BACKEND)
    except ImportError:
        spec = None
    if spec is None:
        raise InternalsChanged(
            f"HTTPy relies on internals of anyio that the installed anyio "
            f"{installed_version('anyio')} does not have: no module {TRIO_BACKEND}.  "
            f"Install an anyio release within the bounds in HTTPy's pyproject.toml, or "
            f"update {__name__}."
        )


check()


def writes_straight_through(stream: object) -> bool:
    """True for anyio's trio socket streams (see the module docstring)."""
    return type(stream).__module__.startswith(TRIO_BACKEND)
