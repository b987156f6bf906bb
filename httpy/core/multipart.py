"""A sans-IO ``multipart/form-data`` reader (RFC 7578) over python-multipart.

Bytes in, events out, like every parser in :mod:`httpy.core`::

    reader = MultipartReader(boundary, MultipartLimits())
    for chunk in body_chunks:
        for event in reader.feed(chunk):
            ...                          # PartStarted, PartData..., PartEnded, ...
    events = reader.finish()             # raises unless the closing boundary was seen

Each part is reported as one :class:`PartStarted` (its name, filename, Content-Type and
raw headers), any number of :class:`PartData`, then one :class:`PartEnded`.  Consecutive
data from one ``feed`` call comes out as a single :class:`PartData`; how the body is split
into chunks changes only how the data is cut, never the parts or their bytes.

python-multipart's streaming ``MultipartParser`` finds the boundaries; this module adds
what it leaves to the caller: Content-Disposition parsing, the limits of
:class:`MultipartLimits`, a check that the body was complete, and error mapping.  Bad or
oversized input never raises anything but :class:`MultipartError`, whose ``status`` is
413 for a broken size or count limit and 400 for malformed input; once raised, every
later call raises the same error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from python_multipart.multipart import MultipartParser

from .events import Headers
from .multipart_internals import silence

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = [
    "DEFAULT_MAX_FIELD_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_PARTS",
    "MultipartError",
    "MultipartLimits",
    "MultipartReader",
    "PartData",
    "PartEnded",
    "PartEvent",
    "PartStarted",
    "parse_content_type",
]

#: Header fields allowed in one part (browsers send two or three).
MAX_PART_HEADERS = 32
#: RFC 2046 5.1.1 allows 70 characters; be a little generous with odd clients.
MAX_BOUNDARY_BYTES = 200


DEFAULT_MAX_PARTS = 1000
DEFAULT_MAX_FIELD_BYTES = 1024 * 1024
DEFAULT_MAX_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class MultipartLimits:
    """Bounds on one multipart body (the server's ``max_body_bytes`` bounds its total).

    ``max_parts``: number of parts.  ``max_field_bytes``: data of one part without a
    filename (a plain field).  ``max_file_bytes``: data of one file part (None: only the
    body limit).  ``max_header_bytes``: the header block of one part.
    """

    max_parts: int = DEFAULT_MAX_PARTS
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    max_file_bytes: int | None = None
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES


class MultipartError(Exception):
    """The body is not acceptable: ``status`` 413 (a limit) or 400 (malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class PartEvent:
    """Base class of what :class:`MultipartReader` reports."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class PartStarted(PartEvent):
    """A part's headers arrived.

    ``name`` and ``filename`` come from its Content-Disposition (``filename`` is None
    for a plain field, ``""`` for a file input left empty); ``content_type`` is its
    Content-Type value, or None.  ``headers`` are the raw pairs, names lower-cased.
    """

    name: str
    filename: str | None
    content_type: str | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class PartData(PartEvent):
    """Bytes of the current part's content."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnded(PartEvent):
    """The current part is complete."""


class MultipartReader:
    """Parse one ``multipart/form-data`` body, fed in chunks of any size."""

    def __init__(self, boundary: bytes, limits: MultipartLimits | None = None) -> None:
        self.limits = limits if limits is not None else MultipartLimits()
        self._events: list[PartEvent] = []
        self._data: list[bytes] = []  # PartData pieces of the current feed, not yet joined
        self._error: MultipartError | None = None
        self._ended = False
        self._started = False  # a byte other than CR/LF has been seen
        self._parts = 0
        self._in_part = False
        self._is_file = False
        self._part_bytes = 0
        self._header_bytes = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._field: list[bytes] = []
        self._value: list[bytes] = []
        _check_boundary(boundary)
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._on_part_begin,
            "on_header_begin": self._on_header_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }
        try:
            # Recent python-multipart bounds part headers itself (per line); the same
            # numbers as ours, so whichever check fires first, the answer is 413.
            self._parser = MultipartParser(
                boundary,
                callbacks,
                max_header_count=MAX_PART_HEADERS,
                max_header_size=self.limits.max_header_bytes,
            )
        except TypeError:  # older versions lack those keywords: our own counting suffices
            self._parser = MultipartParser(boundary, callbacks)
        silence(self._parser)  # its warnings could flood the logs; errors are raised

    @property
    def ended(self) -> bool:
        """True once the closing boundary has been seen (later bytes are ignored)."""
        return self._ended

    def feed(self, data: bytes) -> list[PartEvent]:
        """Parse ``data``; return the events it completes."""
        if self._error is not None:
            raise self._error
        if not self._started:
            # Line breaks before the first boundary are skipped here, whatever the
            # chunking: python-multipart skips them (and, after one, anything up to the
            # next "-") only within one chunk, which would make the verdict depend on it.
            data = data.lstrip(b"\r\n")
            self._started = bool(data)
        if data and not self._ended:
            try:
                self._parser.write(data)
            except MultipartError as exc:
                self._fail(exc)
            except Exception as exc:  # the library's ParseError, or anything it let slip
                self._fail(_library_error(exc))
        return self._take_events()

    def finish(self) -> list[PartEvent]:
        """The body is complete: return the last events, or raise if it was truncated."""
        if self._error is not None:
            raise self._error
        if not self._ended:
            where = "inside a part" if self._in_part else "before the closing boundary"
            self._fail(MultipartError(400, f"multipart body ended {where} (truncated body)"))
        return self._take_events()

    # -- internals -----------------------------------------------------------------

    def _fail(self, error: MultipartError) -> NoReturn:
        self._error = error
        self._events.clear()
        self._data.clear()
        raise error from None

    def _take_events(self) -> list[PartEvent]:
        self._flush_data()
        events, self._events = self._events, []
        return events

    def _flush_data(self) -> None:
        if self._data:
            data = self._data[0] if len(self._data) == 1 else b"".join(self._data)
            self._data = []
            self._events.append(PartData(data))

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.limits.max_parts:
            raise MultipartError(413, f"more than {self.limits.max_parts} multipart parts")
        self._in_part = True
        self._headers = []
        self._header_bytes = 0
        self._part_bytes = 0

    def _on_header_begin(self) -> None:
        self._field = []
        self._value = []

    def _count_header_bytes(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.limits.max_header_bytes:
            raise MultipartError(
                413, f"multipart part headers over {self.limits.max_header_bytes} bytes"
            )

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._field.append(data[start:end])

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._value.append(data[start:end])

    def _on_header_end(self) -> None:
        self._count_header_bytes(4)  # ": " and CRLF
        if len(self._headers) >= MAX_PART_HEADERS:
            raise MultipartError(413, f"more than {MAX_PART_HEADERS} headers in a multipart part")
        name = b"".join(self._field).strip(b" \t").lower()
        value = b"".join(self._value).strip(b" \t")
        self._headers.append((name, value))

    def _on_headers_finished(self) -> None:
        disposition: bytes | None = None
        content_type: bytes | None = None
        for field, value in self._headers:
            if field == b"content-disposition" and disposition is None:
                disposition = value
            elif field == b"content-type" and content_type is None:
                content_type = value
        if disposition is None:
            raise MultipartError(400, "multipart part without a Content-Disposition header")
        kind, params = parse_content_type(_decode(disposition))
        if kind != "form-data":
            raise MultipartError(
                400, f"multipart part Content-Disposition is {kind!r}, not 'form-data'"
            )
        name = params.get("name")
        if name is None:
            raise MultipartError(400, "multipart part Content-Disposition has no name")
        filename = params.get("filename")
        self._is_file = filename is not None
        self._events.append(
            PartStarted(
                name=name,
                filename=filename,
                content_type=None if content_type is None else _decode(content_type),
                headers=tuple(self._headers),
            )
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._part_bytes += end - start
        if self._is_file:
            limit = self.limits.max_file_bytes
            if limit is not None and self._part_bytes > limit:
                raise MultipartError(413, f"uploaded file over {limit} bytes")
        elif self._part_bytes > self.limits.max_field_bytes:
            raise MultipartError(413, f"form field over {self.limits.max_field_bytes} bytes")
        self._data.append(data[start:end])

    def _on_part_end(self) -> None:
        if not self._in_part:
            return
        self._flush_data()
        self._events.append(PartEnded())
        self._in_part = False

    def _on_end(self) -> None:
        self._ended = True


def _check_boundary(boundary: bytes) -> None:
    if not boundary:
        raise MultipartError(400, "multipart/form-data without a boundary")
    if len(boundary) > MAX_BOUNDARY_BYTES:
        raise MultipartError(400, f"multipart boundary over {MAX_BOUNDARY_BYTES} bytes")
    if any(b < 0x20 or b > 0x7E for b in boundary) or boundary.endswith(b" "):
        raise MultipartError(400, "multipart boundary has invalid characters")


def _library_error(exc: Exception) -> MultipartError:
    message = str(exc) or type(exc).__name__
    if message.startswith("Maximum header"):  # python-multipart's own header limits
        return MultipartError(413, f"multipart part headers too large: {message}")
    return MultipartError(400, f"malformed multipart body: {message}")


def _decode(value: bytes) -> str:
    # Browsers send names and filenames as raw UTF-8 (HTML's form-data encoding).
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type (or Content-Disposition) value into type and parameters.

    ``'multipart/form-data; boundary="a b"'`` gives ``("multipart/form-data",
    {"boundary": "a b"})``.  The type and parameter names are lower-cased; quoted values
    lose their quotes and the backslash before ``"`` or ``\\``.  The first of repeated
    parameters wins; parameters without ``=`` and RFC 2231/5987 extended ones
    (``filename*=``, which RFC 7578 forbids) are skipped.  Never raises.
    """
    media_type, _, rest = value.partition(";")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t;":
            i += 1
        start = i
        while i < n and rest[i] not in "=;":
            i += 1
        key = rest[start:i].strip(" \t").lower()
        if i >= n or rest[i] == ";":
            continue  # no "=": not a parameter
        i += 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n:
                char = rest[i]
                if char == "\\" and i + 1 < n and rest[i + 1] in '"\\':
                    chars.append(rest[i + 1])
                    i += 2
                    continue
                i += 1
                if char == '"':
                    break
                chars.append(char)
            param = "".join(chars)
            while i < n and rest[i] != ";":
                i += 1
        else:
            start = i
            while i < n and rest[i] != ";":
                i += 1
            param = rest[start:i].strip(" \t")
        if key and "*" not in key:
            params.setdefault(key, param)
    return media_type.strip(" \t").lower(), params
