"""One HTTP exchange type for the multiplexed protocols (HTTP/2 and HTTP/3).

:class:`HTTPExchange` implements :class:`~httpy.core.application.HTTPStream` for one
request stream, whatever the protocol under it: the request body buffer the connection
feeds and the handler reads (with ``body_timeout``), the response bookkeeping for the
access log, sending body and trailers with back-pressure (wait while the protocol's flow
control holds our data, as long as the client takes it at ``min_send_rate``, else reset),
and the rule for a handler that returned without finishing its response: 500 if nothing
was sent yet, else abort the stream.

It reaches its connection only through a :class:`StreamPort` (the few things each
protocol's driver provides), so the exchange is the same object on HTTP/2 and HTTP/3.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import anyio

from ..core.application import ClientDisconnected, RequestBodyError, RequestHead
from ..core.config import Config
from ..core.errors import LocalProtocolError
from ..core.events import (
    Command,
    Headers,
    ResetStream,
    SendData,
    SendInformational,
    SendResponse,
    SendTrailers,
)
from ..core.send_progress import SendProgress

_ERROR_BODY = b"Internal Server Error\n"


class StreamPort(Protocol):
    """What an exchange needs of its connection's driver."""

    config: Config

    @property
    def body_timeout(self) -> float:
        """How long an exchange waits for more request body before ``body_timed_out``
        (``math.inf`` where the driver's reader enforces ``body_timeout`` itself)."""
        ...

    #: Error code of the reset sent when a handler abandons a stream or the peer's window
    #: stays shut (HTTP/2 CANCEL, HTTP/3 H3_REQUEST_CANCELLED).
    cancel_code: int
    #: True where the handler's own body reads drive the connection's reads
    #: (:meth:`pull_body`; HTTP/1.1, one request at a time); False where the connection's
    #: reader feeds every stream (HTTP/2, HTTP/3).
    pulls_body: bool

    async def pull_body(self, exchange: HTTPExchange) -> None:
        """Read the connection until ``exchange``'s body moves on (more bytes, its end,
        or an error), within ``body_timeout`` (only where :attr:`pulls_body`)."""
        ...

    def server_headers(self, headers: Headers) -> Headers:
        """``headers`` plus what the server adds to every response (Date, Server)."""
        ...

    def queue(self, command: Command) -> None:
        """Apply ``command`` now; it goes out with the next write (a response head waits
        for its first body bytes, so small responses leave in one write)."""
        ...

    async def submit(self, command: Command) -> None:
        """Apply ``command`` and get its bytes on their way."""
        ...

    def pending_bytes(self, stream_id: int) -> int:
        """Response bytes the protocol holds back (flow or congestion control)."""
        ...

    async def acknowledge(self, stream_id: int, size: int) -> None:
        """The handler consumed ``size`` body bytes: credit the peer's window."""
        ...

    async def push(self, parent: HTTPExchange, path: str) -> bool:
        """Push a GET of ``path`` (server push); False when the client does not allow it."""
        ...

    async def body_timed_out(self, exchange: HTTPExchange) -> None:
        """The request body stalled for ``body_timeout``: answer and log it."""
        ...


class HTTPExchange:
    """One request stream on HTTP/2 or HTTP/3 (see the module docstring)."""

    def __init__(self, port: StreamPort, head: RequestHead, ended: bool) -> None:
        self._port = port
        self._head = head
        self._config = port.config
        self._chunks: deque[bytes] = deque()
        self._ended = ended
        self._trailers: Headers = ()
        self._error: Exception | None = None
        #: Set when the response completed before the request body: only ``receive``
        #: raises it (the response itself still waits for the client to take it).
        self._body_error: Exception | None = None
        #: Made when first awaited: most exchanges never wait (HTTP/1.1 pulls its body).
        self._changed: anyio.Event | None = None
        self.response_started = False
        self.response_complete = False
        self.status = 0
        self.bytes_sent = 0
        self.started_at = time.monotonic()
        self._cancel_scope: anyio.CancelScope | None = None
        #: The ``:protocol`` of an extended CONNECT (RFC 8441 / RFC 9220: a WebSocket).
        self.connect_protocol: bytes | None = None
        #: Called by a graceful shutdown (a WebSocket on this stream closes with 1012).
        self.on_shutdown: Callable[[], None] | None = None
        #: The client sent ``Expect: 100-continue``: the first body read answers 100.
        self.expects_continue = False

    @property
    def cancel_scope(self) -> anyio.CancelScope:
        """The scope a handler runs in when it has its own task (HTTP/2, HTTP/3):
        cancelled when the client resets the stream or the connection ends.  Made on
        first use: an HTTP/1.1 handler runs in its connection's scope instead."""
        if self._cancel_scope is None:
            self._cancel_scope = anyio.CancelScope()
        return self._cancel_scope

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
                # Consumed: the client may send that much more on this stream.
                await self._port.acknowledge(self._head.stream_id, len(chunk))
                return chunk
            error = self._error or self._body_error
            if error is not None:
                raise error
            if self._ended:
                return b""
            # body_timeout, as on HTTP/1.1: a client that stops sending a body it started
            # gets 408 (or a reset, once the response has started).  A tunnel (extended
            # CONNECT) may stay quiet: its protocol has its own keep-alive.
            timeout = self._port.body_timeout if self.connect_protocol is None else math.inf
            if self.expects_continue:
                self.expects_continue = False
                await self._port.submit(SendInformational(self._head.stream_id, 100))
            if self._port.pulls_body:
                await self._port.pull_body(self)
                continue
            with anyio.move_on_after(timeout) as waited:
                await self._wait()
            if waited.cancelled_caught and not self._chunks and not self._ended:
                await self._port.body_timed_out(self)

    async def push(self, path: str) -> bool:
        return await self._port.push(self, path)

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        await self._port.submit(SendInformational(self._head.stream_id, status, headers))

    async def send_response(self, status: int, headers: Headers) -> None:
        if self._error is not None:
            raise self._error
        self._port.queue(
            SendResponse(self._head.stream_id, status, self._port.server_headers(headers))
        )
        self.response_started = True
        self.status = status

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
        await self._port.submit(ResetStream(self._head.stream_id, self._port.cancel_code))

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
                await self._port.submit(SendResponse(sid, 408, self._port.server_headers(headers)))
                await self._port.submit(SendData(sid, body, True))
            else:
                await self._port.submit(ResetStream(sid, self._port.cancel_code))
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

    async def _send(self, command: SendData | SendTrailers, end: bool) -> None:
        if end:
            self.response_complete = True
        await self._port.submit(command)
        if end and not self._ended:
            # The core asked the client to stop sending the body (HTTP/2 RST_STREAM
            # NO_ERROR, HTTP/3 STOP_SENDING): what is buffered can still be read, then
            # receive() raises.  The response still waits below, under the send-progress
            # rule (a 503 to a client that keeps its window shut is reset like any other).
            self._body_error = ClientDisconnected("response complete; request body abandoned")
            self.wake()
        # Back-pressure: wait until the protocol has sent what we queued.  A peer that
        # does not take it at the minimum send rate (a window kept shut, or opened a byte
        # at a time) is reset at the end of a send_timeout interval.
        port, sid = self._port, self._head.stream_id
        waiting = port.pending_bytes(sid)
        if waiting <= 0:
            return
        config = self._config
        progress = SendProgress(
            waiting, anyio.current_time(), config.send_timeout, config.min_send_rate
        )
        while True:
            with anyio.CancelScope(deadline=progress.deadline):
                while port.pending_bytes(sid) > 0:
                    if self._error is not None:
                        raise self._error
                    await self._wait()
                return
            if not progress.keeps_up(port.pending_bytes(sid), anyio.current_time()):
                break
        self.fail(ClientDisconnected("the client did not take response data"))
        await port.submit(ResetStream(sid, port.cancel_code))
        raise ClientDisconnected(
            f"the client took less than {config.min_send_rate:g} B/s of response data "
            f"for {config.send_timeout:g} s"
        )

    # -- driven by the connection -----------------------------------------------------------

    async def _wait(self) -> None:
        # Shared by every task waiting on this stream (a WebSocket reads and writes from
        # two tasks): replace the event only once it has fired, so no waiter is orphaned.
        if self._changed is None or self._changed.is_set():
            self._changed = anyio.Event()
        await self._changed.wait()

    def wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self.wake()

    def end(self) -> None:
        self._ended = True
        self.wake()

    def set_trailers(self, headers: Headers) -> None:
        self._trailers = headers

    def input_ended(self) -> None:
        """The connection reads no more: a body still incomplete never will be."""
        if not self._ended:
            self.fail(ClientDisconnected("connection closed before the request body ended"))

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
