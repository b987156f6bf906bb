"""What HTTPy needs from python-multipart beyond its documented API, in one place: when
python-multipart changes, this is the module to check.  :func:`check` runs at import and
raises :class:`~httpy.core.private_api.InternalsChanged` naming whatever is missing;
pyproject.toml caps python-multipart below its next minor release.

* :func:`silence` replaces a parser's ``logger`` attribute (set by ``BaseParser.__init__``,
  undocumented): python-multipart logs a warning for every malformed body it sees, and a
  client could use that to flood the logs.  Its errors reach the caller as exceptions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from python_multipart.multipart import MultipartParser

from .private_api import require

#: What :func:`check` looks for, per probe (see :func:`probes`).
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "python-multipart": {"MultipartParser()": ("logger.warning",)},
}


def probes() -> dict[str, object]:
    """The objects :data:`REQUIRED` is checked against."""
    return {"MultipartParser()": MultipartParser(b"boundary")}


def check(found: Mapping[str, object] | None = None) -> None:
    """Raise ``InternalsChanged`` unless python-multipart has everything listed above."""
    found = probes() if found is None else found
    for distribution, required in REQUIRED.items():
        require(distribution, found, required, module=__name__)


check()

_quiet_logger = logging.Logger("httpy.core.multipart.parser", level=logging.CRITICAL + 1)


def silence(parser: MultipartParser) -> None:
    """Make ``parser`` log nothing."""
    parser.logger = _quiet_logger
