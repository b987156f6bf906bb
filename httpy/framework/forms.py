"""``FormData`` and ``UploadFile``: what ``await request.form()`` returns.

``multipart/form-data`` bodies are parsed as they arrive (through
:class:`httpy.core.multipart.MultipartReader`), so memory stays bounded whatever the
upload size: each file part goes to a :class:`UploadFile` whose ``file`` is a
``SpooledTemporaryFile`` kept in memory up to 1 MiB and moved to disk beyond, and the
files of one form keep at most :data:`FORM_MEMORY_BUDGET` (4 MiB) in memory together.  Writes to
a file on disk run in a worker thread, in batches of about 1 MiB; small uploads never
leave the event loop.  ``application/x-www-form-urlencoded`` bodies are parsed with
``urllib.parse.parse_qsl``.  A broken limit or a malformed body raises
:class:`~httpy.framework.exceptions.HTTPException` (413 or 400), after closing the files
created so far.
"""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from typing import IO, TypeVar
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread

from ..core.headers import Headers
from ..core.multipart import (
    MultipartError,
    MultipartLimits,
    MultipartReader,
    PartData,
    PartEnded,
    PartEvent,
    PartStarted,
    parse_content_type,
)
from .exceptions import HTTPException

__all__ = ["FormData", "FormValue", "UploadFile", "parse_multipart", "parse_urlencoded"]

#: An upload stays in memory up to this size, then moves to a temporary file on disk.
SPOOL_MAX_SIZE = 1024 * 1024
#: The uploads of one form keep at most this much in memory together; past it, the file
#: being received goes to disk at once (600 parts of 1 MB each held ~580 MiB before).
FORM_MEMORY_BUDGET = 4 * 1024 * 1024
#: Data for a file on disk is written in batches of about this size (one thread call).
DISK_WRITE_BATCH = 1024 * 1024


class UploadFile:
    """An uploaded file (a multipart part with a ``filename``).

    ``file`` is a real binary file object, positioned at the start once ``form()``
    returns, so synchronous code can ``upload.file.read()``; the ``async`` methods do the
    same without blocking the event loop when the data is on disk.
    """

    def __init__(
        self,
        filename: str,
        *,
        content_type: str | None = None,
        headers: Headers | None = None,
        file: IO[bytes] | None = None,
    ) -> None:
        self.filename = filename
        self.content_type = content_type
        self.headers = headers if headers is not None else Headers()
        if file is None:
            # Closed by close(), which the request calls when it ends.
            file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_SIZE)  # noqa: SIM115
        self.file: IO[bytes] = file
        #: Bytes received for this file.
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        #: The form's in-memory budget (shared by its uploads), and this file's share.
        self._budget: _MemoryBudget | None = None
        self._memory_bytes = 0

    def _in_memory(self, extra: int = 0) -> bool:
        """True while the file is a memory buffer and ``extra`` more bytes keep it one."""
        if getattr(self.file, "_rolled", True):  # not a SpooledTemporaryFile, or on disk
            return False
        limit: int = getattr(self.file, "_max_size", 0)
        return limit <= 0 or self.file.tell() + extra <= limit

    async def write(self, data: bytes) -> None:
        await self._flush()
        self.size += len(data)
        if self._in_memory(len(data)):
            self.file.write(data)
        else:
            await anyio.to_thread.run_sync(self.file.write, data)

    async def read(self, size: int = -1) -> bytes:
        await self._flush()
        if self._in_memory():
            return self.file.read(size)
        return await anyio.to_thread.run_sync(self.file.read, size)

    async def seek(self, offset: int, whence: int = 0) -> int:
        await self._flush()
        if self._in_memory():
            return self.file.seek(offset, whence)
        return await anyio.to_thread.run_sync(self.file.seek, offset, whence)

    async def close(self) -> None:
        """Close the file (a temporary file is deleted).  Safe to call twice."""
        self._pending.clear()
        if self.file.closed:
            return
        if self._in_memory():
            self.file.close()
        else:
            with anyio.CancelScope(shield=True):  # also runs while a request is cancelled
                await anyio.to_thread.run_sync(self.file.close)

    @property
    def closed(self) -> bool:
        return self.file.closed

    async def _append(self, data: bytes) -> None:
        """The parser's write: memory writes at once, disk writes batched in a thread."""
        self.size += len(data)
        if not self._pending and self._in_memory(len(data)):
            budget = self._budget
            if budget is None or budget.take(len(data)):
                self.file.write(data)
                self._memory_bytes += len(data)
                return
            # The form's memory budget is spent: this file goes to disk now.
            await anyio.to_thread.run_sync(self._to_disk)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= DISK_WRITE_BATCH:
            await self._flush()

    def _to_disk(self) -> None:
        """Move the file's memory buffer to disk (a thread), giving its share back."""
        rollover = getattr(self.file, "rollover", None)
        if rollover is not None:
            rollover()
        self._release_memory()

    def _release_memory(self) -> None:
        """The file is on disk: its share of the form's memory budget goes back."""
        if self._budget is not None:
            self._budget.give(self._memory_bytes)
        self._memory_bytes = 0

    async def _flush(self) -> None:
        if self._pending:
            chunks, self._pending, self._pending_bytes = self._pending, [], 0
            await anyio.to_thread.run_sync(self.file.writelines, chunks)
            if self._memory_bytes and not self._in_memory():
                self._release_memory()  # past its own spool size, it went to disk

    def __repr__(self) -> str:
        return (
            f"UploadFile(filename={self.filename!r}, content_type={self.content_type!r}, "
            f"size={self.size})"
        )


class _MemoryBudget:
    """Bytes the uploads of one form may still keep in memory (see
    :data:`FORM_MEMORY_BUDGET`)."""

    __slots__ = ("left",)

    def __init__(self, size: int) -> None:
        self.left = size

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True

    def give(self, size: int) -> None:
        self.left += size


FormValue = str | UploadFile
V = TypeVar("V")


class MultiDict(Mapping[str, V]):
    """A read-only multi-dict: ``d["name"]`` and ``d.get("name")`` give the first value
    of a name, ``d.getlist("name")`` every one, ``d.multi_items()`` all pairs in order.
    The base of :class:`FormData` and of ``request.query``'s ``QueryParams``."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        self._items = list(items)
        self._index: dict[str, V] = {}
        for key, value in self._items:
            self._index.setdefault(key, value)

    def __getitem__(self, key: str) -> V:
        return self._index[key]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getlist(self, key: str) -> list[V]:
        return [v for k, v in self._items if k == key]

    def multi_items(self) -> list[tuple[str, V]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class FormData(MultiDict[FormValue]):
    """A parsed form: a read-only multi-dict of field values (``str``) and files."""

    __slots__ = ()

    def files(self) -> list[UploadFile]:
        """Every uploaded file, in order."""
        return [v for _, v in self._items if isinstance(v, UploadFile)]

    async def close(self) -> None:
        """Close every uploaded file (the request does this when it ends)."""
        for upload in self.files():
            await upload.close()


async def parse_multipart(
    chunks: AsyncIterable[bytes], boundary: bytes, limits: MultipartLimits
) -> FormData:
    """Read a ``multipart/form-data`` body from ``chunks`` into a :class:`FormData`."""
    builder = _FormBuilder()
    try:
        reader = MultipartReader(boundary, limits)
        async for chunk in chunks:
            await builder.handle(reader.feed(chunk))
        await builder.handle(reader.finish())
        for upload in builder.uploads:
            await upload.seek(0)
    except MultipartError as exc:
        await builder.discard()
        raise HTTPException(exc.status, exc.reason) from None
    except BaseException:
        await builder.discard()
        raise
    return FormData(builder.items)


def parse_urlencoded(body: bytes, limits: MultipartLimits, charset: str = "utf-8") -> FormData:
    """Parse an ``application/x-www-form-urlencoded`` body.

    At most ``limits.max_parts`` fields, each value at most ``limits.max_field_bytes``
    characters; beyond either, 413.
    """
    charset = _codec(charset)
    try:
        pairs = parse_qsl(
            body.decode(charset, errors="replace"),
            keep_blank_values=True,
            max_num_fields=limits.max_parts,
            encoding=charset,
            errors="replace",
        )
    except ValueError:
        raise HTTPException(413, f"more than {limits.max_parts} form fields") from None
    for _, value in pairs:
        if len(value) > limits.max_field_bytes:
            raise HTTPException(413, f"form field over {limits.max_field_bytes} bytes")
    items: list[tuple[str, FormValue]] = list(pairs)
    return FormData(items)


class _FormBuilder:
    """Turns reader events into form items."""

    def __init__(self) -> None:
        self.items: list[tuple[str, FormValue]] = []
        self.uploads: list[UploadFile] = []
        self._memory = _MemoryBudget(FORM_MEMORY_BUDGET)
        self._part: PartStarted | None = None
        self._upload: UploadFile | None = None
        self._field: list[bytes] = []

    async def handle(self, events: list[PartEvent]) -> None:
        for event in events:
            if isinstance(event, PartData):
                if self._upload is not None:
                    await self._upload._append(event.data)
                else:
                    self._field.append(event.data)
            elif isinstance(event, PartStarted):
                self._part = event
                self._field = []
                if event.filename is not None:
                    self._upload = UploadFile(
                        event.filename,
                        content_type=event.content_type,
                        headers=Headers(raw=event.headers),
                    )
                    self._upload._budget = self._memory
                    self.uploads.append(self._upload)
                    self.items.append((event.name, self._upload))
            elif isinstance(event, PartEnded) and self._part is not None:
                if self._upload is not None:
                    await self._upload._flush()
                else:
                    self.items.append((self._part.name, self._field_value(self._part)))
                self._part = None
                self._upload = None
                self._field = []

    def _field_value(self, part: PartStarted) -> str:
        charset = "utf-8"
        if part.content_type is not None:
            charset = parse_content_type(part.content_type)[1].get("charset", charset)
        return b"".join(self._field).decode(_codec(charset), errors="replace")

    async def discard(self) -> None:
        for upload in self.uploads:
            await upload.close()


def _codec(charset: str) -> str:
    """``charset`` if it names a text encoding (not ``base64``, ``zlib``...), else UTF-8."""
    try:
        info = codecs.lookup(charset)
        if not getattr(info, "_is_text_encoding", True):
            return "utf-8"
        b"a\xff".decode(info.name, errors="replace")
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        return "utf-8"
    return info.name
