"""What the streams of the multiplexed drivers (HTTP/2, HTTP/3) share.

Each driver's stream class implements :class:`~httpy.core.application.HTTPStream`.  This
base holds everything that does not depend on the protocol: the request body buffer the
driver feeds and the handler reads (with ``body_timeout``), the response bookkeeping for
the access log, sending body and trailers with back-pressure (wait while the protocol's
flow control holds our data, up to ``send_timeout``, then reset), and the rule for a
handler that returned without finishing its response: 500 if nothing was sent yet, else
abort the stream.

A subclass says how to reach its driver: :meth:`_submit` (apply a command),
:meth:`_pending` (bytes the protocol still holds), :meth:`_body_timed_out` (answer 408),
and optionally :meth:`_consumed` (credit flow control for bytes the handler read).
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

import anyio

from ..core.application import ClientDisconnected, RequestBodyError, RequestHead
from ..core.config import Config
from ..core.errors import LocalProtocolError
from ..core.events import (
    Command,
    Headers,
    ResetStream,
    SendData,
    SendResponse,
    SendTrailers,
)

_ERROR_BODY = b"Internal Server Error\n"


class StreamBase(ABC):
    """Shared state and behaviour of one request stream."""

    #: Error code of the reset sent when the peer's window stays shut (HTTP/2 CANCEL).
    cancel_code = 0x8

    def __init__(self, head: RequestHead, ended: bool, config: Config) -> None:
        self._head = head
        self._config = config
        self._chunks: deque[bytes] = deque()
        self._ended = ended
        self._trailers: Headers = ()
        self._error: Exception | None = None
        self._changed = anyio.Event()
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self.bytes_sent = 0
        self.started_at = time.monotonic()
        #: Cancelled when the client resets the stream or the connection ends.
        self.cancel_scope = anyio.CancelScope()
        #: The ``:protocol`` of an extended CONNECT (RFC 8441 / RFC 9220: a WebSocket).
        self.connect_protocol: bytes | None = None
        #: Called by a graceful shutdown (a WebSocket on this stream closes with 1012).
        self.on_shutdown: Callable[[], None] | None = None

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    async def _submit(self, command: Command) -> None:
        """Apply ``command`` to the connection and get its bytes on their way."""

    @abstractmethod
    def _pending(self) -> int:
        """Response bytes the protocol holds back (flow or congestion control)."""

    @abstractmethod
    async def _body_timed_out(self) -> None:
        """The request body stalled for ``body_timeout``: :meth:`answer_body_timeout`
        (and the driver logs it)."""

    @abstractmethod
    def _server_headers(self, headers: Headers) -> Headers:
        """``headers`` plus what the server adds to every response (Date, Server)."""

    async def _consumed(self, size: int) -> None:  # noqa: B027 (optional hook)
        """The handler read ``size`` body bytes (credit the peer's window, if needed)."""

    def _receive_timeout(self) -> float:
        # A tunnel (extended CONNECT) may stay quiet: its protocol has its own keep-alive.
        return self._config.body_timeout if self.connect_protocol is None else math.inf

    # -- HTTPStream -------------------------------------------------------------------------

    @property
    def head(self) -> RequestHead:
        return self._head

    @property
    def disconnected(self) -> bool:
        return self._error is not None

    @property
    def trailers(self) -> Headers:
        return self._trailers

    async def receive(self) -> bytes:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                await self._consumed(len(chunk))
                return chunk
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            # body_timeout, as on HTTP/1.1: a client that stops sending a body it started
            # gets 408 (or a reset, once the response has started).
            with anyio.move_on_after(self._receive_timeout()) as waited:
                await self._wait()
            if waited.cancelled_caught and not self._chunks and not self._ended:
                await self._body_timed_out()

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if self._error is not None:
            raise self._error
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_body")
        self.bytes_sent += len(data)
        await self._send(SendData(self._head.stream_id, data, end), end)

    async def send_trailers(self, headers: Headers) -> None:
        if self._error is not None:
            raise self._error
        if not self.response_started:
            raise LocalProtocolError("send_response must come before send_trailers")
        await self._send(SendTrailers(self._head.stream_id, headers), True)

    async def abort(self) -> None:
        """Abandon a started response (the client sees the stream reset)."""
        await self._submit(ResetStream(self._head.stream_id))

    async def answer_body_timeout(self) -> None:
        """Answer 408 (or reset the stream if the response has started); the handler's
        ``receive`` then raises :class:`RequestBodyError`."""
        sid = self._head.stream_id
        reason = "request body not received in time"
        self.fail(RequestBodyError(408, reason))
        try:
            if not self.response_started:
                body = b"408 Request Timeout: %s\n" % reason.encode()
                headers = (
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(body)),
                )
                self.response_started, self.status = True, 408
                self.response_complete, self.bytes_sent = True, len(body)
                await self._submit(SendResponse(sid, 408, self._server_headers(headers)))
                await self._submit(SendData(sid, body, True))
            else:
                await self._submit(ResetStream(sid, self.cancel_code))
        except (ClientDisconnected, LocalProtocolError):
            pass

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

    @abstractmethod
    async def send_response(self, status: int, headers: Headers) -> None: ...

    async def _send(self, command: SendData | SendTrailers, end: bool) -> None:
        if end:
            self.response_complete = True
        await self._submit(command)
        if end and not self._ended:
            # The core asked the client to stop sending the body (HTTP/2 RST_STREAM
            # NO_ERROR, HTTP/3 STOP_SENDING): what is buffered can still be read, then
            # receive() raises.
            self.fail(ClientDisconnected("response complete; request body abandoned"))
        # Back-pressure: wait until the protocol has sent what we queued.  A peer that
        # keeps its window shut (a zero-window stall) gets send_timeout, then a reset.
        if self._pending() > 0:
            with anyio.move_on_after(self._config.send_timeout) as waited:
                while self._pending() > 0:
                    if self._error is not None:
                        raise self._error
                    await self._wait()
            if waited.cancelled_caught:
                self.fail(ClientDisconnected("flow-control window stayed closed"))
                await self._submit(ResetStream(self._head.stream_id, self.cancel_code))
                raise ClientDisconnected("flow-control window stayed closed")

    # -- driven by the connection -----------------------------------------------------------

    async def _wait(self) -> None:
        # Shared by every task waiting on this stream (a WebSocket reads and writes from
        # two tasks): replace the event only once it has fired, so no waiter is orphaned.
        if self._changed.is_set():
            self._changed = anyio.Event()
        await self._changed.wait()

    def wake(self) -> None:
        self._changed.set()

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self.wake()

    def end(self) -> None:
        self._ended = True
        self.wake()

    def set_trailers(self, headers: Headers) -> None:
        self._trailers = headers

    def fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.wake()

    def discard_unread(self) -> int:
        """Drop body bytes the handler never read; returns how many (to acknowledge)."""
        size = sum(len(chunk) for chunk in self._chunks)
        self._chunks.clear()
        return size


def pushed_request(parent: RequestHead, path: str, stream_id: int) -> RequestHead:
    """The request a server push of ``path`` answers: a GET on ``stream_id`` from the
    same client as ``parent``, with the parent's Host, User-Agent and Accept-Encoding."""
    pushed_path, _, query = path.partition("?")
    forwarded = tuple(
        (n, v) for n, v in parent.headers if n in (b"host", b"user-agent", b"accept-encoding")
    )
    return dataclasses.replace(
        parent,
        method="GET",
        path=pushed_path,
        query_string=query.encode("latin-1"),
        headers=forwarded,
        body_expected=False,
        stream_id=stream_id,
    )
