"""Serialisation of HTTP/1.1 responses: status line, headers, body framing.

h11 stays our request parser; responses are written here.  Profiling showed h11's
``send`` path (event construction, header re-validation, the state machine) cost about
as much as parsing the request, for work that is small and fully specified (RFC 9112
sections 4-7): a status line, validated header lines, and one of three body framings.

Contract: :func:`start_response` validates the head and chooses the framing;
:class:`ResponseWriter` frames each body piece and refuses to write more or fewer bytes
than a declared ``Content-Length``.  Errors raise :class:`LocalProtocolError`.
"""

from __future__ import annotations

import re
from http import HTTPStatus

from .errors import LocalProtocolError
from .events import Headers
from .fields import refuse_invalid

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
# The rules of .fields, checked on a whole serialised block.  Lines of valid fields: a
# token, ": ", a value with no NUL, CR or LF and no surrounding space or tab, CRLF.
# (Only sound with the CR/LF count check in _fields.)
_FIELD_LINES = re.compile(
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: (?:[^\x00\r\n \t](?:[^\x00\r\n]*[^\x00\r\n \t])?)?\r\n)*"
)
# Bodies of these responses are never sent (RFC 9110 6.4.1, 15.3.5, 15.4.5).
NO_BODY_STATUSES = frozenset({204, 304})

LENGTH, CHUNKED, UNTIL_CLOSE, NO_BODY = "length", "chunked", "until-close", "no-body"


def informational_head(status: int, headers: Headers) -> bytes:
    """A complete 1xx response."""
    if not 100 <= status < 200:
        raise LocalProtocolError(f"{status} is not an informational status")
    return _head(status, headers)


def _head(status: int, headers: Headers) -> bytes:
    status_line = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))
    return status_line + _fields(headers) + b"\r\n"


def _fields(headers: Headers) -> bytes:
    """Validated ``name: value`` lines (a head's or a trailer section's).

    Checked as one block (one regex match instead of two per field): when the block
    holds exactly one CR and one LF per field, every CR and LF is a line end, so each
    line is one field and the match checks each name and value on its own.
    """
    block = b"".join([b"%s: %s\r\n" % (name, value) for name, value in headers])
    count = len(headers)
    if (
        block.count(b"\n") != count
        or block.count(b"\r") != count
        or _FIELD_LINES.fullmatch(block) is None
    ):
        _refuse(headers)
    return block


def _refuse(headers: Headers) -> None:
    """Raise :class:`LocalProtocolError` naming the first invalid field."""
    refuse_invalid(headers)
    raise AssertionError("unreachable: _fields refused valid fields")  # pragma: no cover


class ResponseWriter:
    """Frames one response's body after its head has been written."""

    __slots__ = ("framing", "keep_alive", "remaining")

    def __init__(self, framing: str, remaining: int, keep_alive: bool) -> None:
        self.framing = framing
        self.remaining = remaining
        #: False when the connection must close after this response.
        self.keep_alive = keep_alive

    def body(self, data: bytes) -> bytes:
        """The bytes that carry ``data``."""
        if not data or self.framing == NO_BODY:
            return b""
        if self.framing == LENGTH:
            if len(data) > self.remaining:
                raise LocalProtocolError("more body than the declared Content-Length")
            self.remaining -= len(data)
            return data
        if self.framing == CHUNKED:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def end(self, trailers: Headers = ()) -> bytes:
        """The bytes that end the body.  ``trailers`` go in the last chunk of a chunked
        body (RFC 9112 7.1.2); other framings have no place for them: they are dropped."""
        if self.framing == LENGTH and self.remaining:
            self.keep_alive = False
            raise LocalProtocolError(
                f"response ended {self.remaining} bytes short of its Content-Length"
            )
        if self.framing == CHUNKED:
            if trailers:
                return b"0\r\n" + _fields(trailers) + b"\r\n"
            return b"0\r\n\r\n"
        return b""


def start_response(
    status: int,
    headers: Headers,
    *,
    request_method_head: bool,
    request_version: bytes,
    keep_alive: bool,
) -> tuple[bytes, ResponseWriter]:
    """Validate a final response head, choose its framing; return its bytes and writer.

    ``keep_alive`` is whether the connection may stay open as far as the request and the
    server are concerned; the framing may still force a close (an HTTP/1.0 client and no
    ``Content-Length``).
    """
    if not 200 <= status <= 999:
        raise LocalProtocolError(f"{status} is not a final status")
    length: int | None = None
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise LocalProtocolError(f"invalid or conflicting Content-Length {value!r}")
            length = int(value)
        elif lname == b"transfer-encoding":
            if value.lower() != b"chunked":
                raise LocalProtocolError("only Transfer-Encoding: chunked is supported")
        elif lname != b"connection":  # framing and connection management are ours
            kept.append((lname, value))

    if status in NO_BODY_STATUSES:
        framing = NO_BODY
    elif request_method_head:
        framing = NO_BODY  # the headers GET would have, no body bytes
        if length is not None:
            kept.append((b"content-length", b"%d" % length))
    elif length is not None:
        framing = LENGTH
        kept.append((b"content-length", b"%d" % length))
    elif request_version == b"1.1":
        framing = CHUNKED
        kept.append((b"transfer-encoding", b"chunked"))
    else:
        framing = UNTIL_CLOSE
        keep_alive = False

    if not keep_alive:
        kept.append((b"connection", b"close"))
    elif request_version == b"1.0":
        kept.append((b"connection", b"keep-alive"))
    return _head(status, tuple(kept)), ResponseWriter(framing, length or 0, keep_alive)
