"""What the streams of the multiplexed drivers (HTTP/2, HTTP/3) share.

Each driver's stream class implements :class:`~httpy.core.application.HTTPStream`; this
base holds the bookkeeping every one of them keeps (response progress for the access log,
the handler's cancel scope) and the rule for a handler that returned without finishing
its response: answer 500 if nothing was sent yet, else abort the stream.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import anyio

from ..core.application import ClientDisconnected, RequestHead
from ..core.errors import LocalProtocolError
from ..core.events import Headers

_ERROR_BODY = b"Internal Server Error\n"


class StreamBase(ABC):
    """Shared state of one request stream; subclasses do the sending."""

    def __init__(self, head: RequestHead) -> None:
        self._head = head
        self._error: Exception | None = None
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self.bytes_sent = 0
        self.started_at = time.monotonic()
        #: Cancelled when the client resets the stream or the connection ends.
        self.cancel_scope = anyio.CancelScope()

    @property
    def head(self) -> RequestHead:
        return self._head

    @abstractmethod
    async def send_response(self, status: int, headers: Headers) -> None: ...

    @abstractmethod
    async def send_body(self, data: bytes, *, end: bool = False) -> None: ...

    @abstractmethod
    async def abort(self) -> None:
        """Abandon a started response (the client sees the stream reset)."""

    async def finish_incomplete(self) -> None:
        """The handler returned without completing its response: 500 if it had not
        started one, else abort the stream.  A client already gone is ignored."""
        try:
            if not self.response_started:
                await self.send_response(
                    500,
                    (
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", b"%d" % len(_ERROR_BODY)),
                    ),
                )
                await self.send_body(_ERROR_BODY, end=True)
            else:
                await self.abort()
        except (ClientDisconnected, LocalProtocolError):
            pass
