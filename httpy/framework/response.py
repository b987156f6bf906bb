"""``Response``: what a handler returns.

``Response(content, status=200, headers=None)`` with ``content`` as ``bytes`` or ``str``
(encoded as UTF-8).  ``Response.json``, ``Response.html`` and ``Response.text`` set the
content type.  The server always computes ``Content-Length`` from the body, so a wrong
value given by the application can't desynchronise the connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..core.application import HTTPStream
from ..core.events import Headers as RawHeaders
from ..core.headers import HeaderInput, MutableHeaders


class Response:
    """A complete, in-memory response."""

    media_type: str | None = None

    def __init__(
        self,
        content: bytes | str | None = b"",
        status: int = 200,
        headers: HeaderInput = None,
        media_type: str | None = None,
    ) -> None:
        if not 100 <= status <= 999:
            raise ValueError(f"status {status} is not a valid HTTP status code")
        self.status = status
        self.headers = MutableHeaders(headers)
        if content is None:
            content = b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.body: bytes = bytes(content)
        media_type = media_type or self.media_type
        if media_type is not None and "content-type" not in self.headers:
            if media_type.startswith("text/") and "charset" not in media_type:
                media_type += "; charset=utf-8"
            self.headers["content-type"] = media_type
        #: ``[(path, as), ...]``: resources to push (HTTP/2) or announce with ``Link``.
        self.push_resources: list[tuple[str, str]] = []

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

    def json_body(self) -> Any:
        """The body parsed as JSON (for tests)."""
        return json.loads(self.body)

    def text_body(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def raw_headers(self) -> RawHeaders:
        """Headers for the wire, with ``Content-Length`` computed from the body and a
        ``Link: <path>; rel=preload`` for each of :attr:`push_resources`."""
        pairs = [(n, v) for n, v in self.headers.raw() if n != b"content-length"]
        if self.status >= 200 and self.status not in (204, 304):
            pairs.append((b"content-length", b"%d" % len(self.body)))
        return tuple(pairs) + self._link_headers()

    def _link_headers(self) -> RawHeaders:
        return tuple(
            (b"link", f"<{path}>; rel=preload; as={kind}".encode("latin-1"))
            for path, kind in self.push_resources
        )

    async def write(self, stream: HTTPStream) -> None:
        """Send this response on ``stream``: head and whole body in one write.

        Subclasses that stream their body (files, iterators) override this.
        """
        await stream.send_response(self.status, self.raw_headers())
        await stream.send_body(self.body, end=True)

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None, accept: str
) -> Response:
    """The default body for an error: JSON for API clients, plain text otherwise."""
    if "application/json" in accept:
        return Response.json({"error": detail}, status=status, headers=headers)
    return Response.text(f"{detail}\n", status=status, headers=headers)
