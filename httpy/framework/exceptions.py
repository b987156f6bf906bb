"""Exceptions the framework understands."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus


class HTTPException(Exception):
    """Raise from a handler or middleware to answer with ``status``.

    ``detail`` becomes the body (JSON ``{"error": detail}`` for clients that accept JSON,
    plain text otherwise); ``headers`` are added to the response.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status).phrase
            except ValueError:
                detail = "Error"
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
