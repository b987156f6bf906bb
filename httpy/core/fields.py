"""Response field rules shared by every HTTP version (RFC 9110 5.1, 5.5; RFC 9113 8.2;
RFC 9114 4.2).

One place decides what a valid response or trailer field is, so no protocol can forget
a rule: a name is a token, a value holds no CR, LF or NUL and no surrounding space or
tab.  HTTP/2 and HTTP/3 also send names in lower case and leave out the fields that only
mean something to one HTTP/1.1 hop (:data:`CONNECTION_SPECIFIC`); HTTP/1.1 checks the
same rules on its serialised block (``http1_writer``) and reports through
:func:`refuse_invalid`.  A field that breaks a rule raises
:class:`~httpy.core.errors.LocalProtocolError`; the backend turns that into a logged 500
(or a reset once the head is out).
"""

from __future__ import annotations

import re

from .errors import LocalProtocolError
from .events import Headers

#: Fields that are meaningful only to one HTTP/1.1 hop: never sent on HTTP/2
#: (RFC 9113 8.2.2) or HTTP/3 (RFC 9114 4.2).
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)

# RFC 9110 5.1: a field name is a token; 5.5: a value has no CR, LF or NUL, and no
# leading or trailing whitespace.
_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LOWER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")


def refuse_invalid(headers: Headers) -> None:
    """Raise :class:`LocalProtocolError` naming the first invalid field, if any."""
    for name, value in headers:
        if _NAME.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value) is not None:
            raise LocalProtocolError(f"invalid value for header {name!r}")


def multiplexed_fields(headers: Headers) -> list[tuple[bytes, bytes]]:
    """``headers`` as HTTP/2 and HTTP/3 send them: lower-case names, connection-specific
    and pseudo-header fields left out, every field checked (LocalProtocolError)."""
    fields = []
    for raw_name, value in headers:
        name = raw_name.lower()
        if name in CONNECTION_SPECIFIC or name.startswith(b":"):
            continue
        if _LOWER_NAME.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid header name {raw_name!r}")
        if _BAD_VALUE.search(value) is not None:
            raise LocalProtocolError(f"invalid value for header {raw_name!r}")
        fields.append((name, value))
    return fields
