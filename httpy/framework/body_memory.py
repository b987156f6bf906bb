"""The request bodies an application holds in memory at once: one budget for all of them.

An ordinary route gets its body read into memory before its handler runs (the seed's
``request.json()`` is synchronous), and ``await request.body()`` reads one anywhere.
Each body is at most ``Config.max_body_bytes``, but together they are bounded by nothing
else: 100 HTTP/2 streams of 16 MB on one connection are 1.6 GB, held for as long as the
client keeps their responses waiting.

So the bodies one application reads share a budget (``App(body_memory_budget=...)``,
256 MiB by default).  A body takes its share before it is read: all of its declared
``Content-Length`` at once, or chunk by chunk when no length is declared.  It gives the
share back when its request ends.  A body that would take the budget past its limit is
not read: the request is answered 503 Service Unavailable with ``Retry-After``, and a log
line says so (413 if the body alone is larger than the budget).  Streamed bodies
(``stream=True`` routes, ``request.stream()``, multipart forms, which have their own
budget) are not counted: they are not held.
"""

from __future__ import annotations

import logging

from .exceptions import HTTPException

#: The default budget: 16 bodies of the default ``max_body_bytes`` at once.
DEFAULT_BODY_MEMORY_BUDGET = 256 * 1024 * 1024

logger = logging.getLogger("httpy.error")


class BodyMemoryExhausted(HTTPException):
    """The application holds as many request bodies as its budget allows: 503."""

    def __init__(self, size: int, budget: BodyMemoryBudget) -> None:
        super().__init__(
            503,
            "Too many request bodies in memory; retry shortly",
            headers={"retry-after": "1"},
        )
        self.size = size
        logger.warning(
            "request body of %d bytes refused (503): %d of the %d bytes of the body "
            "memory budget are in use",
            size,
            budget.in_use,
            budget.limit,
        )


class BodyMemoryBudget:
    """Bytes of request body held in memory, against a limit."""

    __slots__ = ("in_use", "limit")

    def __init__(self, limit: int = DEFAULT_BODY_MEMORY_BUDGET) -> None:
        if limit <= 0:
            raise ValueError(f"the body memory budget must be positive, got {limit!r}")
        self.limit = limit
        self.in_use = 0

    def take(self, size: int) -> None:
        """Take ``size`` bytes, or raise :class:`BodyMemoryExhausted` (taking nothing);
        413 for a body larger than the whole budget (waiting would not help)."""
        if size > self.limit:
            raise HTTPException(413, "Request body larger than the application holds in memory")
        if self.in_use + size > self.limit:
            raise BodyMemoryExhausted(size, self)
        self.in_use += size

    def give(self, size: int) -> None:
        """Give back ``size`` bytes taken earlier."""
        self.in_use -= size
