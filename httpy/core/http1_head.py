"""A fast parser for the common HTTP/1.1 request head; h11 stays the reference.

Most requests a server sees are simple: a valid request line, a handful of fields, one
``Host``, no body or a ``Content-Length`` one.  Parsing those through h11 cost about half
of our core's time per request (events, state machine, validation in several passes).
:func:`parse_simple_head` parses exactly that shape with the grammar h11 uses (RFC 9112
request line, RFC 9110 field syntax, the same regular expressions) and returns None for
anything else: a ``Transfer-Encoding``, a missing or repeated ``Host``, a malformed line,
a control character,
an unusual ``Content-Length``, a version other than 1.0 / 1.1.  The caller then hands the
head to h11, which accepts or rejects it with its own error.  So this parser never has
to be right about an error: it only has to agree with h11 on what it accepts, and the
differential fuzz targets (``fuzz/fuzz_http1.py``, ``fuzz/fuzz_http1_head.py``) check
that against h11.

With the ``speed`` extra installed, :func:`parse_simple_head_httptools` does the same
with the C parser of httptools (llhttp) and a few checks of ours where llhttp is more
lenient than h11; ``HTTP1Connection`` picks it by ``Config.http1_parser``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .events import Headers

# The ABNF of RFC 9112 / 9110 as h11 writes it (h11/_abnf.py), so both accept the same.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/(1\.[01])")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_DIGITS = re.compile(rb"[0-9]{1,20}")
# Control characters h11 would accept in field values but HTTP does not (HTAB aside).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class SimpleHead:
    """A request head :func:`parse_simple_head` accepted.  Field names are lower-cased,
    values stripped of surrounding whitespace (as h11 reports them)."""

    method: bytes
    target: bytes
    http_version: bytes
    headers: Headers
    content_length: int


def parse_simple_head(head: bytes) -> SimpleHead | None:
    """Parse ``head`` (the request line and fields, ending with the empty line's CRLF
    CRLF) when it has the common shape; None means "let h11 decide"."""
    if _CONTROL.search(head) is not None:
        return None
    lines = head[:-4].split(b"\r\n")
    request_line = _REQUEST_LINE.fullmatch(lines[0])
    if request_line is None:
        return None
    method, target, version = request_line.groups()
    fields: list[tuple[bytes, bytes]] = []
    fullmatch = _FIELD.fullmatch
    for line in lines[1:]:
        field = fullmatch(line)
        if field is None:
            return None
        fields.append((field[1].lower(), field[2]))
    return _simple_head(method, target, version, fields)


def _simple_head(
    method: bytes, target: bytes, version: bytes, fields: list[tuple[bytes, bytes]]
) -> SimpleHead | None:
    """The head from parsed parts (names lower-cased, values stripped), or None when
    its framing or ``Host`` is not of the simple shape."""
    hosts = 0
    content_length = 0
    seen_length = False
    for name, value in fields:
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if seen_length or _DIGITS.fullmatch(value) is None:
                return None
            seen_length = True
            content_length = int(value)
        elif name == b"transfer-encoding":
            return None
    # RFC 9112 3.2: exactly one Host in HTTP/1.1; h11 words the other cases itself.
    if hosts > 1 or (hosts == 0 and version == b"1.1"):
        return None
    return SimpleHead(method, target, version, tuple(fields), content_length)


_TARGET = re.compile(rb"[\x21-\x7e]+")
_OWS = b" \t"


class _HeadCollector:
    """httptools callbacks: the target and the fields, as they are parsed."""

    __slots__ = ("fields", "target")

    def __init__(self) -> None:
        self.target = b""
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name, value))


def _load_httptools() -> Any:
    try:
        return importlib.import_module("httptools")
    except ImportError:
        return None


#: The httptools module when the ``speed`` extra is installed, else None.
httptools: Any = _load_httptools()


def parse_simple_head_httptools(head: bytes) -> SimpleHead | None:
    """:func:`parse_simple_head` on llhttp; the same contract (None: let h11 decide)."""
    # llhttp takes some things h11 refuses, or reports them differently: control
    # characters, obsolete line folding, bare CR or LF.  Those heads go to h11.
    if (
        _CONTROL.search(head) is not None
        or b"\r\n " in head
        or b"\r\n\t" in head
        or head.count(b"\n") != head.count(b"\r\n")
        or head.count(b"\r") != head.count(b"\r\n")
    ):
        return None
    collector = _HeadCollector()
    parser = httptools.HttpRequestParser(collector)
    try:
        parser.feed_data(head)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None  # errors are h11's to word; upgrades go the portable way
    version = parser.get_http_version().encode("ascii")
    if version not in (b"1.1", b"1.0") or _TARGET.fullmatch(collector.target) is None:
        return None
    if head[: head.index(b" ")] != parser.get_method():
        return None  # llhttp knows a fixed method list; h11 takes any token
    fields = [(name.lower(), value.strip(_OWS)) for name, value in collector.fields]
    return _simple_head(parser.get_method(), collector.target, version, fields)


def head_parser(name: str) -> Callable[[bytes], SimpleHead | None]:
    """The head parser ``Config.http1_parser`` names: ``"python"``, ``"httptools"``, or
    ``"auto"`` (httptools when installed)."""
    if name == "python" or (name == "auto" and httptools is None):
        return parse_simple_head
    if httptools is None:
        raise RuntimeError(
            "http1_parser='httptools' needs the speed extra: pip install 'httpy[speed]'"
        )
    return parse_simple_head_httptools
