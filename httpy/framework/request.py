"""``Request``: what a handler receives.

A request built by the server reads its body before the handler runs (up to
``Config.max_body_bytes``), so ``request.json()`` is synchronous as in the seed.  Routes
registered with ``stream=True`` skip that and read with ``async for chunk in
request.stream()``; so do ``multipart/form-data`` requests, which ``await request.form()``
parses as they arrive (see :mod:`httpy.framework.forms`).  Tests build requests directly::

    Request(method="GET", path="/api/users/1", headers={}, body=b"", path_params={"id": "1"})

Request trailers (HTTP/2, HTTP/1.1 chunked bodies) are ``await request.trailers()``: they
arrive after the body, so it reads (and keeps) whatever of the body is still unread.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..core.application import HTTPStream
from ..core.cookies import parse_cookie_headers
from ..core.headers import HeaderInput, Headers
from ..core.multipart import (
    DEFAULT_MAX_FIELD_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_PARTS,
    MultipartLimits,
    parse_content_type,
)
from .body_memory import BodyMemoryBudget
from .exceptions import HTTPException
from .forms import FormData, MultiDict, parse_multipart, parse_urlencoded


class QueryParams(MultiDict[str]):
    """Query-string parameters: ``get`` gives the first value, ``getlist`` all of them."""

    __slots__ = ()

    def __init__(self, query_string: str | bytes = "") -> None:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        super().__init__(parse_qsl(text, keep_blank_values=True))


class Request:
    """An HTTP request as a handler sees it."""

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        headers: HeaderInput | Headers = None,
        body: bytes = b"",
        path_params: Mapping[str, Any] | None = None,
        query_string: str | bytes = "",
        *,
        http_version: str = "1.1",
        scheme: str = "http",
        client: tuple[str, int] | None = None,
        stream: HTTPStream | None = None,
        trailers: HeaderInput | Headers = None,
        client_cert: Mapping[str, Any] | None = None,
        body_budget: BodyMemoryBudget | None = None,
    ) -> None:
        self.method = method.upper()
        raw_path, _, inline_query = path.partition("?")
        self.raw_path = raw_path
        self.path = unquote(raw_path) if "%" in raw_path else raw_path
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        # Parsed on first use: most handlers never look at the query string.
        self._query_string: str | bytes = query_string or inline_query
        self._query: QueryParams | None = None
        self.path_params: dict[str, Any] = dict(path_params or {})
        self.http_version = http_version
        self.scheme = scheme
        self.client = client
        #: The client's verified TLS certificate (mutual TLS), ``getpeercert()`` form:
        #: ``request.client_cert["subject"]``; None without one (see ``verify_client``).
        self.client_cert = client_cert
        self._stream = stream
        #: The application's budget for bodies held in memory, and this body's share.
        self._body_budget = body_budget
        self._body_share = 0
        #: Where the trailers come from once the body has been read (kept after
        #: ``stream()`` hands the stream out).
        self._source = stream
        self._trailers = (
            trailers if isinstance(trailers, Headers) or trailers is None else Headers(trailers)
        )
        # A request head that announces no body (no Content-Length, not chunked) has an
        # empty one, known now: nothing to read from the stream for it.
        self._body: bytes | None = (
            body if stream is None else None if stream.head.body_expected else b""
        )
        self._json: Any = _UNSET
        self._form: FormData | None = None
        self._cookies: dict[str, str] | None = None
        #: Per-request scratch space for middleware and handlers (``request.state.user``).
        self.state = SimpleNamespace()
        #: The router's verdict, set by the app before middleware runs (None: not routed).
        self.route_match: object | None = None

    @property
    def query(self) -> QueryParams:
        """The query-string parameters (``request.query.get("page")``)."""
        if self._query is None:
            self._query = QueryParams(self._query_string)
        return self._query

    @query.setter
    def query(self, value: QueryParams) -> None:
        self._query = value

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-ID`` (with ``Config.request_id`` on, every request has one:
        the client's or proxy's, or generated by the server)."""
        return self.headers.get("x-request-id")

    @property
    def query_params(self) -> QueryParams:
        """Alias of :attr:`query`."""
        return self.query

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case (``""`` when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies from the ``Cookie`` header(s): name -> value (first of a repeated name)."""
        if self._cookies is None:
            self._cookies = parse_cookie_headers(self.headers.getlist("cookie"))
        return self._cookies

    async def form(
        self,
        *,
        max_parts: int = DEFAULT_MAX_PARTS,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        max_file_bytes: int | None = None,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> FormData:
        """The body parsed as a form (``multipart/form-data`` or urlencoded); kept once read.

        Multipart bodies are streamed: files go to :class:`UploadFile` objects, spooled to
        disk beyond 1 MiB.  Limits: ``max_parts`` parts (or urlencoded fields),
        ``max_field_bytes`` per plain field, ``max_file_bytes`` per file (None: only the
        server's ``max_body_bytes``), ``max_header_bytes`` per part's headers.  A broken
        limit answers 413, a malformed body 400, another content type 415.  Uploaded
        files are closed when the request ends.
        """
        if self._form is not None:
            return self._form
        limits = MultipartLimits(max_parts, max_field_bytes, max_file_bytes, max_header_bytes)
        media_type, params = parse_content_type(self.headers.get("content-type", ""))
        if media_type == "multipart/form-data":
            boundary = params.get("boundary", "").encode("latin-1", errors="replace")
            async with aclosing(self.stream()) as chunks:  # closed even if parsing fails
                self._form = await parse_multipart(chunks, boundary, limits)
        elif media_type == "application/x-www-form-urlencoded":
            body = await self.body()
            self._form = parse_urlencoded(body, limits, params.get("charset", "utf-8"))
        elif not media_type and not await self.body():
            self._form = FormData()
        else:
            raise HTTPException(
                415,
                f"expected a form (multipart/form-data or application/x-www-form-urlencoded), "
                f"got {media_type or 'no content type'}",
            )
        return self._form

    async def close(self) -> None:
        """Release what the request holds (uploaded files, its share of the body memory
        budget).  The app calls this when the response has been sent."""
        if self._body_budget is not None and self._body_share:
            self._body_budget.give(self._body_share)
            self._body_share = 0
        if self._form is not None:
            await self._form.close()

    async def body(self) -> bytes:
        """The whole body (read once, then kept).

        Raises :class:`~httpy.framework.body_memory.BodyMemoryExhausted` (503) when the
        application's bodies in memory would pass their budget.
        """
        if self._body is None:
            budget = self._body_budget
            if budget is None or self._stream is None:
                self._body = b"".join([chunk async for chunk in self.stream()])
            else:
                self._body = await self._read_body_within(budget)
        return self._body

    async def _read_body_within(self, budget: BodyMemoryBudget) -> bytes:
        declared = self.headers.get("content-length", "")
        if declared.isdigit():
            # All of it before the first byte: a body is refused whole or read whole.
            budget.take(int(declared))
            self._body_share += int(declared)
        chunks, received = [], 0
        async with aclosing(self.stream()) as stream:  # closed even if the budget says no
            async for chunk in stream:
                received += len(chunk)
                if received > self._body_share:  # no length declared (or more came)
                    budget.take(received - self._body_share)
                    self._body_share = received
                chunks.append(chunk)
        return b"".join(chunks)

    async def trailers(self) -> Headers:
        """The request's trailer fields (empty when it had none).

        They follow the body, so the unread rest of it is read first and kept for
        :meth:`body`; after ``async for chunk in request.stream()`` has finished, nothing
        is left to read.  Reading trailers while ``stream()`` is still being iterated
        gives the fields that have arrived so far: none.
        """
        if self._trailers is None:
            if self._stream is not None:
                await self.body()
            source = self._source
            if source is None:
                self._trailers = Headers()
            else:
                trailers = source.trailers
                if not trailers:
                    return Headers()  # maybe not yet: ask again later
                self._trailers = Headers(raw=trailers)
        return self._trailers

    async def text(self) -> str:
        return (await self.body()).decode(self._charset(), errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.  Invalid JSON answers 400 (an HTTPException), and
        so does JSON nested deeper than Python's recursion limit (``[[[[...``).

        Synchronous: the body was read before the handler ran.  On a ``stream=True``
        route, ``await request.body()`` first.
        """
        if self._json is _UNSET:
            if self._body is None:
                if self.content_type == "multipart/form-data":
                    raise HTTPException(
                        400, "multipart/form-data body is not JSON: use await request.form()"
                    )
                raise RuntimeError("stream=True route: await request.body() before json()")
            try:
                self._json = json.loads(self._body) if self._body else None
            except (ValueError, UnicodeDecodeError) as exc:
                raise HTTPException(400, f"request body is not valid JSON: {exc}") from None
            except RecursionError:
                # A body of nested brackets ([[[[...) exhausts the parser's recursion
                # limit: bad input from the client, not a server error.
                raise HTTPException(
                    400, "request body is not valid JSON: nested too deeply"
                ) from None
        return self._json

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, piece by piece (or the buffered body, once)."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        while chunk := await stream.receive():
            yield chunk

    def _charset(self) -> str:
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return "utf-8"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"


_UNSET: Any = object()
