"""``FileResponse``: a file streamed from disk, with HTTP caching and byte ranges.

``FileResponse(path)`` (or ``Response.file(path)``) checks the file when it is created
(a missing file, or anything that is not a regular file, raises ``HTTPException(404)``,
which the app's exception handling turns into a 404), and sets:

* ``Content-Type`` guessed from the file name with :mod:`mimetypes` (``text/*`` types
  get ``; charset=utf-8``), ``application/octet-stream`` when unknown;
* ``Content-Disposition: attachment`` when ``filename`` is given, with an RFC 5987
  ``filename*`` for names that are not plain ASCII (RFC 6266);
* a weak ``ETag`` made of the size and the modification time in nanoseconds,
  ``Last-Modified`` and ``Accept-Ranges: bytes``.

When it is written, it looks at the request head (``stream.head``) and answers, in the
order of RFC 9110 13.2.2: ``412`` for a failed ``If-Match`` / ``If-Unmodified-Since``;
``304`` (no body) when ``If-None-Match`` matches (weak comparison, ``*`` and lists
allowed) or, without ``If-None-Match``, when the file is not newer than
``If-Modified-Since``; then, for GET, the ``Range`` header (through
:func:`httpy.core.ranges.parse_range`, honoured only if ``If-Range`` is absent or
matches): one range gives ``206`` with ``Content-Range``, several give ``206``
``multipart/byteranges``, none satisfiable gives ``416`` with ``Content-Range: bytes
*/size``, and an invalid header is ignored (``200``, whole file).  ``If-Range`` needs a
strong validator (RFC 9110 13.1.5): our ETags are weak, so only an ``If-Range`` date
equal to ``Last-Modified`` can match.  Conditionals and ranges apply to ``200``
responses to GET and HEAD only.

The body is read in :attr:`FileResponse.chunk_size` pieces through
:func:`anyio.open_file` (a worker thread), each sent before the next is read, so memory
stays flat whatever the file size and a slow client slows the reading down.  HEAD
requests never open the file.
"""

from __future__ import annotations

import mimetypes
import os
import secrets
import stat
import unicodedata
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from os import PathLike
from pathlib import Path
from urllib.parse import quote

import anyio

from ..core.application import HTTPStream
from ..core.events import Headers as RawHeaders
from ..core.headers import HeaderInput, Headers
from ..core.ranges import Unsatisfiable, parse_range
from .exceptions import HTTPException
from .response import Response

__all__ = ["FileResponse", "content_disposition"]

CHUNK_SIZE = 64 * 1024

# Headers a 304 keeps (RFC 9110 15.4.5): the validators, caching metadata and anything
# that is not about the body (Set-Cookie, ...).  These describe the body, so they go.
_BODY_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-range",
        "transfer-encoding",
    }
)


class FileResponse(Response):
    """The file at ``path``; see the module docstring for what is sent when."""

    chunk_size = CHUNK_SIZE

    def __init__(
        self,
        path: str | PathLike[str],
        status: int = 200,
        headers: HeaderInput = None,
        media_type: str | None = None,
        filename: str | None = None,
        *,
        content_disposition_type: str = "attachment",
        stat_result: os.stat_result | None = None,
    ) -> None:
        self.path = Path(path)
        if stat_result is None:
            try:
                stat_result = os.stat(self.path)
            except (OSError, ValueError):  # ValueError: a NUL byte in the path
                raise HTTPException(404) from None
        if not stat.S_ISREG(stat_result.st_mode):
            raise HTTPException(404)
        self.stat_result = stat_result
        if media_type is None:
            media_type = guess_media_type(filename or self.path.name)
        super().__init__(b"", status=status, headers=headers, media_type=media_type)
        self.filename = filename
        if filename is not None:
            self.headers.setdefault(
                "content-disposition", content_disposition(filename, content_disposition_type)
            )
        self.headers.setdefault("etag", make_etag(stat_result))
        self.headers.setdefault("last-modified", formatdate(stat_result.st_mtime, usegmt=True))
        self.headers.setdefault("accept-ranges", "bytes")

    @property
    def size(self) -> int:
        return self.stat_result.st_size

    def raw_headers(self) -> RawHeaders:
        """Headers for a ``200`` with the whole file."""
        return self._headers_with_length(self.size)

    def _headers_with_length(
        self, length: int, replace: dict[str, str] | None = None
    ) -> RawHeaders:
        """Our headers with ``Content-Length: length``; ``replace`` (lower-case names)
        overrides or adds fields."""
        replace = replace or {}
        pairs = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in self.headers.items()
            if n != "content-length" and n not in replace
        ]
        pairs += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in replace.items()]
        pairs.append((b"content-length", b"%d" % length))
        return tuple(pairs) + self._link_headers()

    # -- writing -------------------------------------------------------------------

    async def write(self, stream: HTTPStream) -> None:
        head = stream.head
        request_headers = Headers(raw=head.headers)
        method = head.method
        if self.status != 200 or method not in ("GET", "HEAD"):
            await self._send_whole(stream, head_only=method == "HEAD")
            return
        verdict = self._evaluate_preconditions(request_headers)
        if verdict is not None:
            await self._send_empty(stream, verdict)
            return
        ranges = None
        range_header = request_headers.getlist("range")
        # Range is defined for GET only (RFC 9110 14.2); one field, or it is ignored.
        if method == "GET" and len(range_header) == 1 and self._if_range_holds(request_headers):
            ranges = parse_range(range_header[0], self.size)
        if ranges is None:
            await self._send_whole(stream, head_only=method == "HEAD")
        elif isinstance(ranges, Unsatisfiable):
            await self._send_empty(stream, 416, {"content-range": f"bytes */{self.size}"})
        elif len(ranges) == 1:
            await self._send_single_range(stream, *ranges[0])
        else:
            await self._send_multiple_ranges(stream, ranges)

    def _evaluate_preconditions(self, headers: Headers) -> int | None:
        """RFC 9110 13.2.2 steps 1-4 for GET/HEAD: 412, 304 or None (go on)."""
        etag = self.headers.get("etag")
        last_modified = int(self.stat_result.st_mtime)
        if_match = _list_field(headers, "if-match")
        if if_match is not None:
            if not etag_matches(if_match, etag, weak=False):
                return 412
        else:
            since = _parse_http_date(headers.get("if-unmodified-since"))
            if since is not None and last_modified > since:
                return 412
        if_none_match = _list_field(headers, "if-none-match")
        if if_none_match is not None:
            if etag_matches(if_none_match, etag, weak=True):
                return 304
        else:
            since = _parse_http_date(headers.get("if-modified-since"))
            if since is not None and last_modified <= since:
                return 304
        return None

    def _if_range_holds(self, headers: Headers) -> bool:
        """RFC 9110 13.1.5: send the ranges only if the validator still matches."""
        if_range = headers.get("if-range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            # Strong comparison: a weak tag (ours are) never matches.
            etag = self.headers.get("etag")
            return (
                etag is not None
                and not etag.startswith("W/")
                and not if_range.startswith("W/")
                and if_range == etag
            )
        date = _parse_http_date(if_range)
        return date is not None and date == int(self.stat_result.st_mtime)

    async def _send_empty(
        self, stream: HTTPStream, status: int, extra: dict[str, str] | None = None
    ) -> None:
        """304, 412 or 416: the validators and non-body headers, no body."""
        pairs = [
            (n.encode("latin-1"), v.encode("latin-1"))
            for n, v in self.headers.items()
            if n not in _BODY_HEADERS
        ]
        pairs += [(n.encode("latin-1"), v.encode("latin-1")) for n, v in (extra or {}).items()]
        if status != 304:
            pairs.append((b"content-length", b"0"))
        await stream.send_response(status, tuple(pairs))
        await stream.send_body(b"", end=True)

    async def _send_whole(self, stream: HTTPStream, *, head_only: bool) -> None:
        await self._send_ranges(
            stream, self.status, self.raw_headers(), [(0, self.size - 1)], head_only=head_only
        )

    async def _send_single_range(self, stream: HTTPStream, first: int, last: int) -> None:
        headers = self._headers_with_length(
            last - first + 1, {"content-range": f"bytes {first}-{last}/{self.size}"}
        )
        await self._send_ranges(stream, 206, headers, [(first, last)])

    async def _send_multiple_ranges(
        self, stream: HTTPStream, ranges: list[tuple[int, int]]
    ) -> None:
        boundary = secrets.token_hex(16)
        part_type = self.headers.get("content-type", "application/octet-stream")
        heads = [
            (
                f"--{boundary}\r\nContent-Type: {part_type}\r\n"
                f"Content-Range: bytes {first}-{last}/{self.size}\r\n\r\n"
            ).encode("latin-1")
            for first, last in ranges
        ]
        # The CRLF before each delimiter belongs to the delimiter (RFC 2046 5.1.1).
        separators = [b""] + [b"\r\n"] * (len(ranges) - 1)
        tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
        length = (
            sum(len(h) + len(s) for h, s in zip(heads, separators, strict=True))
            + sum(last - first + 1 for first, last in ranges)
            + len(tail)
        )
        headers = self._headers_with_length(
            length, {"content-type": f"multipart/byteranges; boundary={boundary}"}
        )
        prefixes = [s + h for s, h in zip(separators, heads, strict=True)]
        await self._send_ranges(stream, 206, headers, ranges, prefixes, tail)

    async def _send_ranges(
        self,
        stream: HTTPStream,
        status: int,
        headers: RawHeaders,
        ranges: list[tuple[int, int]],
        prefixes: list[bytes] | None = None,
        tail: bytes = b"",
        *,
        head_only: bool = False,
    ) -> None:
        """Send the head, then for each range its prefix and its bytes, then ``tail``.

        The file is opened before the head is sent: if it vanished since it was checked,
        the answer is still a clean 404.
        """
        if head_only or self.size == 0:
            await stream.send_response(status, headers)
            await stream.send_body(b"", end=True)
            return
        try:
            file = await anyio.open_file(self.path, "rb")
        except OSError:
            await Response.text("Not Found\n", status=404).write(stream)
            return
        try:
            await stream.send_response(status, headers)
            pending = b""  # a part's head, sent with the first bytes of its range
            for index, (first, last) in enumerate(ranges):
                if prefixes is not None:
                    pending += prefixes[index]
                await file.seek(first)
                remaining = last - first + 1
                while remaining > 0:
                    chunk = await file.read(min(self.chunk_size, remaining))
                    if not chunk:
                        # The file shrank after its size was announced: the response
                        # can't be completed; raising makes the server close the connection.
                        raise OSError(f"{self.path} ended {remaining} bytes early")
                    remaining -= len(chunk)
                    if pending:
                        chunk, pending = pending + chunk, b""
                    await stream.send_body(chunk)
            await stream.send_body(pending + tail, end=True)
        finally:
            # Shielded: a client that leaves mid-file cancels this task, and before 4.16
            # anyio's AsyncFile.aclose() then raised at once without closing the file.
            with anyio.CancelScope(shield=True):
                await file.aclose()

    def __repr__(self) -> str:
        return f"<FileResponse {self.status} {str(self.path)!r}>"


def guess_media_type(name: str) -> str:
    """The media type for a file name (``application/octet-stream`` when unknown)."""
    media_type, _ = mimetypes.guess_type(name, strict=False)
    return media_type or "application/octet-stream"


def make_etag(stat_result: os.stat_result) -> str:
    """A weak entity tag from the file's size and modification time (nanoseconds)."""
    return f'W/"{stat_result.st_size:x}-{stat_result.st_mtime_ns:x}"'


def etag_matches(header: str, etag: str | None, *, weak: bool) -> bool:
    """Whether an ``If-Match`` / ``If-None-Match`` value matches ``etag``.

    ``*`` matches any existing representation.  With ``weak=True`` (If-None-Match)
    ``W/"x"`` and ``"x"`` are the same tag; with ``weak=False`` (If-Match) weak tags
    never match (RFC 9110 8.8.3.2).
    """
    if header.strip() == "*":
        return True
    if etag is None:
        return False
    for candidate in _split_etags(header):
        if weak:
            if candidate.removeprefix("W/") == etag.removeprefix("W/"):
                return True
        elif not candidate.startswith("W/") and not etag.startswith("W/") and candidate == etag:
            return True
    return False


def _split_etags(header: str) -> list[str]:
    """The entity tags of a comma-separated list; commas may appear inside quotes."""
    tags: list[str] = []
    index, size = 0, len(header)
    while index < size:
        while index < size and header[index] in " \t,":
            index += 1
        start = index
        if header.startswith("W/", index):
            index += 2
        if index < size and header[index] == '"':
            end = header.find('"', index + 1)
            if end == -1:
                break  # unterminated: ignore the rest
            index = end + 1
            tags.append(header[start:index])
        else:
            # Not an entity tag (a bare token some clients send): skip to the next comma.
            end = header.find(",", index)
            index = size if end == -1 else end + 1
    return tags


def _list_field(headers: Headers, name: str) -> str | None:
    """A list-based field (RFC 9110 5.3): repeated fields joined with commas."""
    values = headers.getlist(name)
    return ", ".join(values) if values else None


def _parse_http_date(value: str | None) -> int | None:
    """An HTTP-date as a UNIX timestamp (whole seconds), or None if absent or invalid."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # asctime format or "-0000": HTTP-dates are GMT anyway
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return int(parsed.timestamp())
    except (OverflowError, OSError, ValueError):
        return None


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``attachment; filename="..."`` with an RFC 5987 ``filename*`` when needed.

    The plain ``filename`` is an ASCII fallback: accents stripped, other non-ASCII
    characters, quotes, backslashes and control characters replaced with ``_``.
    """
    fallback = "".join(
        c if " " <= c <= "~" and c not in '"\\' else "_"
        for c in unicodedata.normalize("NFKD", filename)
        if not unicodedata.combining(c)
    )
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        encoded = quote(filename, safe="!#$&+-.^_`|~", encoding="utf-8")
        value += f"; filename*=UTF-8''{encoded}"
    return value
