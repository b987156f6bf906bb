"""``Response``: what a handler returns.

``Response(content, status=200, headers=None)`` with ``content`` as ``bytes`` or ``str``
(encoded as UTF-8).  ``Response.json``, ``Response.html`` and ``Response.text`` set the
content type.  The server always computes ``Content-Length`` from the body, so a wrong
value given by the application can't desynchronise the connection.

Also here: cookies (:meth:`Response.set_cookie`, :meth:`Response.delete_cookie`),
redirects (:class:`RedirectResponse`, ``Response.redirect``), and responses whose body
is produced while it is sent: :class:`StreamingResponse` (an async iterable of bytes or
str, sent chunked on HTTP/1.1) and :class:`EventSourceResponse` (server-sent events).
Files are in :mod:`httpy.framework.files` (``Response.file``).

Trailers: ``Response(..., trailers={...})`` or ``response.trailers[name] = value`` (a
:class:`MutableHeaders` read when the body is complete, so a streaming body can fill it
in as its last act).  They go out after the body: as a trailing HEADERS frame on HTTP/2,
and on HTTP/1.1 in the last chunk of a chunked body when the client sent ``TE:
trailers``; otherwise they are dropped (a ``Content-Length`` body or an HTTP/1.0 client
has no place for them; a ``Response`` with trailers is sent without ``Content-Length``,
so chunked on HTTP/1.1).  The names known when the head is sent are announced in a
``Trailer`` header (RFC 9110 6.6.2).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote

from ..core.application import HTTPStream
from ..core.events import Headers as RawHeaders
from ..core.headers import HeaderInput, MutableHeaders

if TYPE_CHECKING:
    from .files import FileResponse

T = TypeVar("T")
#: The ``samesite`` values ``set_cookie`` takes (any case is accepted at run time).
SameSite = Literal["lax", "strict", "none", "Lax", "Strict", "None"]


@functools.lru_cache(maxsize=64)
def _content_type_field(media_type: str) -> tuple[str, str]:
    """The ``content-type`` field for ``media_type`` (text gets ``charset=utf-8``),
    checked as any header value is (ValueError for CR, LF, NUL or non-latin-1)."""
    if media_type.startswith("text/") and "charset" not in media_type:
        media_type += "; charset=utf-8"
    checked = MutableHeaders({"content-type": media_type})
    return ("content-type", checked["content-type"])


class Response:
    """A complete, in-memory response."""

    media_type: str | None = None

    def __init__(
        self,
        content: bytes | str | None = b"",
        status: int = 200,
        headers: HeaderInput = None,
        media_type: str | None = None,
        trailers: HeaderInput = None,
    ) -> None:
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a valid HTTP status code")
        self.status = status
        if content is None:
            content = b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.body: bytes = bytes(content)
        media_type = media_type or self.media_type
        if headers is None and media_type is not None:
            # The common case: one field, checked once per media type.
            self.headers = MutableHeaders.from_checked([_content_type_field(media_type)])
        else:
            self.headers = MutableHeaders(headers)
            if media_type is not None and "content-type" not in self.headers:
                self.headers["content-type"] = _content_type_field(media_type)[1]
        #: ``[(path, as), ...]``: resources to push (HTTP/2) or announce with ``Link``.
        self.push_resources: list[tuple[str, str]] = []
        self._trailers = MutableHeaders(trailers) if trailers is not None else None

    @property
    def trailers(self) -> MutableHeaders:
        """Trailer fields sent after the body (see the module docstring)."""
        if self._trailers is None:
            self._trailers = MutableHeaders()
        return self._trailers

    @trailers.setter
    def trailers(self, value: HeaderInput) -> None:
        self._trailers = value if isinstance(value, MutableHeaders) else MutableHeaders(value)

    @property
    def status_code(self) -> int:
        """Alias of :attr:`status`."""
        return self.status

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeaderInput = None) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        return cls(body, status=status, headers=headers, media_type="application/json")

    @classmethod
    def html(cls, content: str, status: int = 200, headers: HeaderInput = None) -> Response:
        return cls(content, status=status, headers=headers, media_type="text/html")

    @classmethod
    def text(cls, content: str, status: int = 200, headers: HeaderInput = None) -> Response:
        return cls(content, status=status, headers=headers, media_type="text/plain")

    @staticmethod
    def redirect(url: str, status: int = 307, headers: HeaderInput = None) -> RedirectResponse:
        """A redirect to ``url`` (``307`` keeps the method and body; ``303`` turns the
        follow-up into a GET; ``301``/``308`` are permanent)."""
        return RedirectResponse(url, status=status, headers=headers)

    @staticmethod
    def file(
        path: str | PathLike[str],
        status: int = 200,
        headers: HeaderInput = None,
        media_type: str | None = None,
        filename: str | None = None,
    ) -> FileResponse:
        """A file streamed from disk, with validators, conditional requests and ranges
        (see :class:`httpy.framework.files.FileResponse`)."""
        from .files import FileResponse

        return FileResponse(
            path, status=status, headers=headers, media_type=media_type, filename=filename
        )

    # -- cookies ---------------------------------------------------------------------

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | timedelta | None = None,
        expires: datetime | int | float | str | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header (RFC 6265); call it once per cookie.

        ``value`` must be made of RFC 6265 cookie-octets (no whitespace, ``"``, ``,``,
        ``;`` or ``\\``): encode anything else (base64, percent-encoding) first.  ``expires``
        is a ``datetime`` (naive means UTC), a number of seconds from now, or a preformatted
        HTTP-date.  ``samesite="none"`` requires ``secure=True``, as browsers do.  Invalid
        input raises :class:`ValueError`.
        """
        self.headers.append(
            "set-cookie",
            format_cookie(
                key,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
            ),
        )

    def delete_cookie(
        self,
        key: str,
        path: str | None = "/",
        domain: str | None = None,
        *,
        secure: bool = False,
        httponly: bool = False,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Ask the client to drop cookie ``key``: an empty value that expired in 1970.

        ``path`` and ``domain`` must be those the cookie was set with.
        """
        self.set_cookie(
            key,
            "",
            max_age=0,
            expires=_EPOCH,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    def json_body(self) -> Any:
        """The body parsed as JSON (for tests)."""
        return json.loads(self.body)

    def text_body(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def raw_headers(self) -> RawHeaders:
        """Headers for the wire, with ``Content-Length`` computed from the body (none when
        there are trailers) and a ``Link: <path>; rel=preload`` for each of
        :attr:`push_resources`."""
        pairs = [(n, v) for n, v in self.headers.raw() if n != b"content-length"]
        # With trailers, no Content-Length: HTTP/1.1 then sends the body chunked, the
        # framing that can carry them.
        if self.status >= 200 and self.status not in (204, 304) and not self._trailers:
            pairs.append((b"content-length", b"%d" % len(self.body)))
        if self.push_resources or self._trailers:
            pairs += self._link_headers()
        return tuple(pairs)

    def _link_headers(self) -> RawHeaders:
        links = tuple(
            (b"link", f"<{path}>; rel=preload; as={kind}".encode("latin-1"))
            for path, kind in self.push_resources
        )
        if self._trailers and "trailer" not in self.headers:
            links += ((b"trailer", ", ".join(self._trailers).encode("latin-1")),)
        return links

    def raw_trailers(self) -> RawHeaders:
        """The trailer fields for the wire; raises :class:`ValueError` for a field that
        may not be a trailer (framing, routing, content metadata: RFC 9110 6.5.1)."""
        if not self._trailers:
            return ()
        raw = self._trailers.raw()
        for name, _ in raw:
            if name in FORBIDDEN_TRAILERS or name.startswith(b":"):
                raise ValueError(f"{name.decode('latin-1')!r} is not allowed as a trailer field")
        return raw

    async def end_body(self, stream: HTTPStream, data: bytes = b"") -> None:
        """Send the last body piece ``data``, then the trailers if there are any."""
        trailers = self.raw_trailers()
        if trailers:
            if data:
                await stream.send_body(data)
            await stream.send_trailers(trailers)
        else:
            await stream.send_body(data, end=True)

    async def write(self, stream: HTTPStream) -> None:
        """Send this response on ``stream``: head and whole body in one write.

        Subclasses that stream their body (files, iterators) override this.
        """
        self.raw_trailers()  # refused (ValueError) before the head goes out
        await stream.send_response(self.status, self.raw_headers())
        await self.end_body(stream, self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class RedirectResponse(Response):
    """An empty response with ``Location: url`` and a 3xx status (default 307).

    Non-ASCII characters and anything that is not allowed in a URL (spaces, CR, LF) are
    percent-encoded; existing percent-escapes are kept.
    """

    def __init__(self, url: str, status: int = 307, headers: HeaderInput = None) -> None:
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect needs a 3xx status, not {status}")
        super().__init__(b"", status=status, headers=headers)
        self.headers["location"] = quote(str(url), safe=_URL_SAFE)

    def __repr__(self) -> str:
        return f"<RedirectResponse {self.status} {self.headers.get('location')!r}>"


Content = AsyncIterable[bytes | str] | Iterable[bytes | str]

#: Fields a trailer may not carry (RFC 9110 6.5.1: framing, routing, request modifiers,
#: content metadata the recipient needs before the body), refused by ``raw_trailers``.
FORBIDDEN_TRAILERS = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"trailer",
        b"te",
        b"host",
        b"connection",
        b"keep-alive",
        b"upgrade",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"authorization",
        b"set-cookie",
        b"cache-control",
        b"expect",
        b"range",
    }
)


class StreamingResponse(Response):
    """A response whose body comes from an iterable of ``bytes``/``str`` chunks.

    Async iterables are the normal case; a plain iterable is iterated in the event loop,
    so it must not block.  Without a ``Content-Length`` header (given by the application,
    which then must produce exactly that many bytes) the body is sent chunked on HTTP/1.1
    and until close on HTTP/1.0.  The head is sent before the first chunk is produced,
    and every chunk is sent as soon as it is produced, with the server's back-pressure: a
    slow client slows the iteration down.  A HEAD request does not iterate at all.  The
    iterable is closed (``aclose``) when the response ends or the client goes away.
    """

    def __init__(
        self,
        content: Content,
        status: int = 200,
        headers: HeaderInput = None,
        media_type: str | None = None,
        trailers: HeaderInput = None,
    ) -> None:
        super().__init__(
            b"", status=status, headers=headers, media_type=media_type, trailers=trailers
        )
        self.content = content

    def raw_headers(self) -> RawHeaders:
        """The headers as given: no ``Content-Length`` is computed for a stream."""
        return self.headers.raw() + self._link_headers()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body chunks, encoded; override to produce them differently."""
        async for chunk in _async_iterator(self.content):
            yield _encode_chunk(chunk)

    async def write(self, stream: HTTPStream) -> None:
        await stream.send_response(self.status, self.raw_headers())
        if stream.head.method == "HEAD" or self.status in (204, 304):
            await _close(self.content)
            await stream.send_body(b"", end=True)
            return
        await stream.send_body(b"")  # the head goes out now, not with the first chunk
        chunks = self.chunks()
        try:
            async for chunk in chunks:
                if chunk:
                    await stream.send_body(chunk)
        finally:
            await _close(chunks)
            await _close(self.content)
        await self.end_body(stream)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status}>"


ServerSentEvent = str | Mapping[str, Any]


class EventSourceResponse(StreamingResponse):
    """Server-sent events (``text/event-stream``) from an async iterable of events.

    Each event is a ``str`` (its data) or a mapping with any of ``data`` (a ``str``;
    anything else is sent as JSON), ``event``, ``id``, ``retry`` (milliseconds) and
    ``comment``.  Multi-line data is split into one ``data:`` line per line.  Send
    ``{"comment": ""}`` now and then to keep an idle connection open through proxies.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[ServerSentEvent] | Iterable[ServerSentEvent],
        status: int = 200,
        headers: HeaderInput = None,
    ) -> None:
        super().__init__(_events(content), status=status, headers=headers)
        self.headers.setdefault("cache-control", "no-cache")
        # Tell nginx not to buffer the stream (it would hold events back).
        self.headers.setdefault("x-accel-buffering", "no")
        self.events = content

    async def write(self, stream: HTTPStream) -> None:
        try:
            await super().write(stream)
        finally:
            await _close(self.events)


def format_sse(event: ServerSentEvent) -> str:
    """One event in the ``text/event-stream`` format, blank line included."""
    if isinstance(event, str):
        event = {"data": event}
    lines: list[str] = []
    if "comment" in event:
        lines.extend(f": {line}" for line in _LINES.split(str(event["comment"])))
    for field in ("event", "id"):
        if event.get(field) is not None:
            value = str(event[field])
            if _LINE_BREAK.search(value) or (field == "id" and "\x00" in value):
                raise ValueError(f"server-sent event {field} {value!r} contains a line break")
            lines.append(f"{field}: {value}")
    if event.get("retry") is not None:
        retry = event["retry"]
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ValueError(f"server-sent event retry must be an int >= 0, not {retry!r}")
        lines.append(f"retry: {retry}")
    if "data" in event:
        data = event["data"]
        if not isinstance(data, str):
            data = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        lines.extend(f"data: {line}" for line in _LINES.split(data))
    unknown = set(event) - {"comment", "event", "id", "retry", "data"}
    if unknown:
        raise ValueError(f"unknown server-sent event fields: {sorted(unknown)}")
    return "\n".join(lines) + "\n\n"


async def _events(
    content: AsyncIterable[ServerSentEvent] | Iterable[ServerSentEvent],
) -> AsyncIterator[bytes]:
    async for event in _async_iterator(content):
        yield format_sse(event).encode("utf-8")


def _async_iterator(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """``items`` as an async iterator; a plain iterable is iterated in the event loop."""
    if isinstance(items, AsyncIterable):
        return aiter(items)
    return _iterate_in_loop(items)


async def _iterate_in_loop(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def _encode_chunk(chunk: bytes | str) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a streaming response yields bytes or str, not {type(chunk).__name__}")


async def _close(iterable: object) -> None:
    """``aclose()`` an async generator (or anything with that method), once is enough."""
    aclose = getattr(iterable, "aclose", None)
    if aclose is not None:
        await aclose()


# -- cookies ---------------------------------------------------------------------------

# RFC 6265 4.1.1: cookie-name is a token; cookie-value is *cookie-octet, optionally quoted.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")
# Path and Domain attribute values: any CHAR except CTLs and ";" (RFC 6265 4.1.1).
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3A\x3C-\x7E]*")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Characters left as they are in a redirect URL (the rest is percent-encoded).
_URL_SAFE = ":/%#?=@[]!$&'()*+,;~"
_LINE_BREAK = re.compile(r"[\r\n]")
_LINES = re.compile(r"\r\n|\r|\n")


def format_cookie(
    key: str,
    value: str,
    *,
    max_age: int | timedelta | None = None,
    expires: datetime | int | float | str | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: str | None = "lax",
) -> str:
    """A ``Set-Cookie`` field value; raises :class:`ValueError` for anything invalid."""
    if not isinstance(key, str) or _TOKEN.fullmatch(key) is None:
        raise ValueError(f"invalid cookie name {key!r}: it must be an RFC 9110 token")
    if not isinstance(value, str):
        raise TypeError(f"cookie value must be a str, not {type(value).__name__}")
    inner = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if _COOKIE_VALUE.fullmatch(inner) is None:
        raise ValueError(
            f"invalid value for cookie {key!r}: no whitespace, control characters, '\"', "
            "',', ';' or '\\' (encode the value first)"
        )
    parts = [f"{key}={value}"]
    if max_age is not None:
        seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else max_age
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"max_age must be an int or a timedelta, not {max_age!r}")
        parts.append(f"Max-Age={int(seconds)}")
    if expires is not None:
        parts.append(f"Expires={_cookie_date(expires)}")
    for name, attribute in (("Path", path), ("Domain", domain)):
        if attribute is not None:
            if _ATTRIBUTE_VALUE.fullmatch(attribute) is None or not attribute:
                raise ValueError(f"invalid cookie {name} {attribute!r}")
            parts.append(f"{name}={attribute}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        same = _SAMESITE.get(samesite.lower())
        if same is None:
            raise ValueError(f"samesite must be 'lax', 'strict', 'none' or None, not {samesite!r}")
        if same == "None" and not secure:
            raise ValueError("samesite='none' requires secure=True (browsers drop the cookie)")
        parts.append(f"SameSite={same}")
    # RFC 6265bis cookie prefixes: browsers refuse these cookies unless the rules hold.
    if key.startswith("__Secure-") and not secure:
        raise ValueError(f"cookie {key!r} needs secure=True")
    if key.startswith("__Host-") and (not secure or path != "/" or domain is not None):
        raise ValueError(f"cookie {key!r} needs secure=True, path='/' and no domain")
    return "; ".join(parts)


def _cookie_date(expires: datetime | int | float | str) -> str:
    if isinstance(expires, str):
        if _ATTRIBUTE_VALUE.fullmatch(expires) is None or not expires:
            raise ValueError(f"invalid cookie Expires {expires!r}")
        return expires
    if isinstance(expires, bool):
        raise TypeError("expires must be a datetime, a number of seconds or a str")
    if isinstance(expires, int | float):
        expires = datetime.now(UTC) + timedelta(seconds=expires)
    elif expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return format_datetime(expires.astimezone(UTC), usegmt=True)


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None, accept: str
) -> Response:
    """The default body for an error: JSON for API clients, plain text otherwise."""
    if "application/json" in accept:
        return Response.json({"error": detail}, status=status, headers=headers)
    return Response.text(f"{detail}\n", status=status, headers=headers)
