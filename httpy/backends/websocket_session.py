"""One accepted WebSocket over a byte transport: the reader, keep-alive pings, sends.

:class:`WebSocketSession` implements :class:`~httpy.core.websocket.WebSocketChannel`
over anything with ``receive`` / ``send`` / ``aclose`` — the TCP (or TLS) stream after
an HTTP/1.1 upgrade, or the DATA of an HTTP/2 stream (RFC 8441).

* The **reader** task feeds :class:`~httpy.core.websocket.WebSocketProtocol` and queues
  complete messages for ``receive``.  It stops reading once ``max_queue`` messages wait
  unread, so a handler that does not read pushes back on the peer (TCP window, or the
  HTTP/2 stream window) instead of growing memory.  The reader is a task on every loop
  and transport: protocol work never runs in an event-loop callback (anyio refuses task
  starts there, and behaviour would differ between loops).
* **Sends** take one FIFO lock around "encode, write": messages from concurrent tasks go
  out whole and in call order.  A write waits while the peer is not reading
  (back-pressure), as long as it takes ``min_send_rate`` per ``send_timeout``; then, or
  when the transport is gone, the connection is failed (1006) and the send raises
  :class:`~httpy.core.websocket.WebSocketDisconnect`.
* **Keep-alive** (optional): a ping every ``ws_ping_interval``; no pong within
  ``ws_ping_timeout`` fails the connection (reported as 1006: no close frame came).
* **Closing**: the peer's close is answered by the core; ours waits up to
  ``ws_close_timeout`` for the answer.  Either way the transport is then closed.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ..core.config import Config
from ..core.websocket import (
    ABNORMAL_CLOSURE,
    INVALID_DATA,
    LARGE_READ,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    POLICY_VIOLATION,
    PROTOCOL_ERROR,
    WebSocketClose,
    WebSocketData,
    WebSocketDisconnect,
    WebSocketEvent,
    WebSocketPong,
    WebSocketProtocol,
)
from .logs import RateLimitedLog, error_log
from .send import send_all

#: How long a connection failed for bad input reads and drops the peer's bytes.
_LINGER_SECONDS = 2.0
# Close codes that mean the peer broke the rules: worth a log line (and a linger).
_FAILURES = (PROTOCOL_ERROR, INVALID_DATA, POLICY_VIOLATION, MESSAGE_TOO_BIG)
_TRANSPORT_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
)


class Transport(Protocol):
    """The bytes under a WebSocket."""

    async def receive(self, max_bytes: int) -> bytes:
        """Next bytes from the peer, at most ``max_bytes`` where the transport can cut
        (an HTTP/2 or HTTP/3 stream gives its DATA as it came); ``b""`` once the peer
        sent everything (EOF)."""
        ...

    async def send(self, data: bytes) -> None:
        """Write ``data``; waits while the peer is not reading, as long as it keeps up
        with the send-progress rule (``send_timeout``, ``min_send_rate``; then
        TimeoutError).  Raises on a lost peer."""
        ...

    async def aclose(self) -> None:
        """End the transport (close the socket, or end the HTTP/2 stream)."""
        ...

    async def linger(self) -> None:
        """We failed the connection (bad input): send nothing more and read and drop
        what the peer still sends until it closes (the caller bounds the time), so its
        unread bytes do not make the kernel reset the connection and destroy our close
        frame.  A no-op where the protocol below lingers itself (HTTP/2)."""
        ...


class StreamTransport:
    """A :class:`Transport` over an anyio byte stream (HTTP/1.1 after the upgrade)."""

    def __init__(self, stream: anyio.abc.ByteStream, config: Config) -> None:
        self._stream = stream
        self._config = config

    async def receive(self, max_bytes: int) -> bytes:
        try:
            return await self._stream.receive(max_bytes)
        except _TRANSPORT_ERRORS:
            return b""

    async def send(self, data: bytes) -> None:
        await send_all(self._stream, data, self._config)

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._stream.aclose()

    async def linger(self) -> None:
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await self._stream.send_eof()
            while await self._stream.receive(LARGE_READ):
                pass


class WebSocketSession:
    """An open WebSocket; see the module docstring.  Start it with :meth:`start`, end it
    with :meth:`finish` (the backend does both around the application's call)."""

    def __init__(
        self,
        transport: Transport,
        protocol: WebSocketProtocol,
        config: Config,
        peer: str,
        bad_peer_log: RateLimitedLog | None = None,
    ) -> None:
        """``bad_peer_log`` gets one line per peer that broke the protocol (rate-limited,
        like bad requests); without it they go to ``httpy.error`` at INFO."""
        self._transport = transport
        self._bad_peer_log = bad_peer_log
        self._proto = protocol
        self._config = config
        self._peer = peer
        # fast_acquire: no event-loop round trip when the lock is free (the common case,
        # twice per echoed message); waiters still queue in FIFO order.
        self._lock = anyio.Lock(fast_acquire=True)
        self._queue: deque[WebSocketData] = deque()
        self._readable = anyio.Event()
        self._room = anyio.Event()
        self._pong = anyio.Event()
        self._done = anyio.Event()
        self._discard = False
        self._scope = anyio.CancelScope()
        self._transport_closed = False

    # -- WebSocketChannel --------------------------------------------------------------

    @property
    def close_code(self) -> int | None:
        return self._proto.close_code

    @property
    def close_reason(self) -> str:
        return self._proto.close_reason

    @property
    def closing(self) -> bool:
        return self._proto.closing

    async def receive(self) -> WebSocketData | WebSocketClose:
        while True:
            if self._queue:
                message = self._queue.popleft()
                self._room.set()
                return message
            code = self._proto.close_code
            if code is not None and (self._done.is_set() or self._proto.finished):
                return WebSocketClose(code, self._proto.close_reason)
            if self._done.is_set():
                return WebSocketClose(ABNORMAL_CLOSURE, "connection lost")
            if self._readable.is_set():  # replaced only once fired: no waiter is orphaned
                self._readable = anyio.Event()
            await self._readable.wait()

    async def send(self, data: str | bytes) -> None:
        async with self._lock:
            self._proto.send_message(data)  # raises WebSocketDisconnect once closing
            await self._write()

    async def ping(self, payload: bytes = b"") -> None:
        async with self._lock:
            self._proto.send_ping(payload)
            await self._write()

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        # Messages that arrive after our close frame are not for anyone: drop them, so a
        # full queue cannot keep the reader from seeing the peer's close frame.
        self._discard = True
        self._queue.clear()
        self._room.set()
        if not self._proto.closing:
            async with self._lock:
                self._proto.close(code, reason)
                try:
                    await self._write()
                except WebSocketDisconnect:
                    return
        with anyio.move_on_after(self._config.ws_close_timeout):
            await self._done.wait()
        if not self._done.is_set():
            self._proto.abort(code, "no close frame from the peer")
            self._scope.cancel()

    # -- driven by the backend ---------------------------------------------------------

    def start(self, tasks: anyio.abc.TaskGroup, leftover: bytes = b"") -> None:
        """Run the reader (and the keep-alive pinger, if configured) in ``tasks``;
        ``leftover`` is what the peer sent right behind its handshake."""
        tasks.start_soon(self._run, leftover)

    async def finish(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """The application is done: close with ``code`` if still open, wait for the
        closing handshake (bounded), stop the tasks, close the transport."""
        try:
            if not self._done.is_set():
                await self.close(code, reason)
        finally:
            self._scope.cancel()
            await self._close_transport()

    def begin_shutdown(self, tasks: anyio.abc.TaskGroup) -> None:
        """Server shutdown: close with 1012 (Service Restart) without waiting here."""
        tasks.start_soon(self.close, 1012, "server shutting down")

    # -- internals ---------------------------------------------------------------------

    async def _run(self, leftover: bytes) -> None:
        try:
            with self._scope:
                async with anyio.create_task_group() as tasks:
                    if self._config.ws_ping_interval is not None:
                        tasks.start_soon(self._keepalive, self._config.ws_ping_interval)
                    await self._read_loop(leftover)
                    tasks.cancel_scope.cancel()
        finally:
            if not self._proto.finished:
                self._proto.receive_eof()
            self._done.set()
            self._readable.set()
            if self._proto.close_code in _FAILURES and not self._transport_closed:
                # Our close frame must reach a peer that goes on sending (Autobahn 4.2.5
                # on trio lost it now and then): linger, briefly.
                with anyio.CancelScope(shield=True), anyio.move_on_after(_LINGER_SECONDS):
                    await self._transport.linger()
            await self._close_transport()

    async def _read_loop(self, leftover: bytes) -> None:
        proto = self._proto
        if leftover:
            await self._handle(proto.receive_data(leftover, anyio.current_time()))
        while not proto.finished:
            deadline = proto.next_deadline()
            if deadline is None:
                data = await self._transport.receive(proto.read_size)
            else:
                # A message is partial: it has until the deadline to arrive whole (a
                # scope only then: most reads find no message in progress).
                data = b""
                with anyio.CancelScope(deadline=deadline):
                    data = await self._transport.receive(proto.read_size)
                    if not data:
                        await self._handle(proto.receive_eof())
                        continue
                if not data:
                    # Too late: close 1008 (the frame goes out with _handle's flush).
                    await self._handle(proto.handle_timer(anyio.current_time()))
                    continue
            await self._handle(
                proto.receive_data(data, anyio.current_time()) if data else proto.receive_eof()
            )
            if proto.read_size < LARGE_READ:
                # A message in many small fragments: small reads, and other connections
                # get the loop between two (a read with data waiting need not yield).
                await anyio.lowlevel.checkpoint()

    def _deliver(self, event: WebSocketEvent) -> bool:
        """Queue a message for ``receive`` (dropped once we are closing); a pong wakes
        the keep-alive, a close the peer caused is logged.  True when the queue is full:
        the caller stops reading until ``receive`` makes room."""
        if isinstance(event, WebSocketData):
            if self._discard:
                return False
            self._queue.append(event)
            self._readable.set()
            return len(self._queue) >= self._config.ws_max_queue
        if isinstance(event, WebSocketPong):
            self._pong.set()
        elif isinstance(event, WebSocketClose) and event.code in _FAILURES:
            message = "bad WebSocket input from %s: closed with %d (%s)"
            if self._bad_peer_log is not None:
                self._bad_peer_log.warning(message, self._peer, event.code, event.reason)
            else:
                error_log.info(message, self._peer, event.code, event.reason)
        return False

    async def _handle(self, events: list[WebSocketEvent]) -> None:
        await self._flush_quietly()  # pongs, close answers
        for event in events:
            if self._deliver(event):
                paused = anyio.current_time()
                while len(self._queue) >= self._config.ws_max_queue and not self._discard:
                    self._room = anyio.Event()
                    await self._room.wait()
                # Not reading was our doing: a message in progress gets the time back.
                self._proto.pause_timer(anyio.current_time() - paused)

    async def _keepalive(self, interval: float) -> None:
        timeout = self._config.ws_ping_timeout
        while not self._proto.closing:
            await anyio.sleep(interval)
            self._pong = anyio.Event()
            try:
                await self.ping()
            except WebSocketDisconnect:
                return
            with anyio.move_on_after(timeout if timeout is not None else math.inf):
                await self._pong.wait()
            if not self._pong.is_set():
                error_log.info("WebSocket from %s: no pong within %.1fs", self._peer, timeout)
                async with self._lock:
                    self._proto.abort(1011, "keepalive ping timeout")
                await self._flush_quietly()
                self._scope.cancel()
                return

    async def _write(self) -> None:
        """Write what the core queued (caller holds the lock).  A lost or stalled peer
        fails the connection and raises WebSocketDisconnect."""
        data = self._proto.data_to_send()
        if not data:
            return
        try:
            await self._transport.send(data)
        except (*_TRANSPORT_ERRORS, TimeoutError) as exc:
            self._proto.abort(ABNORMAL_CLOSURE, "connection lost")
            self._scope.cancel()
            raise WebSocketDisconnect(
                self._proto.close_code or ABNORMAL_CLOSURE, self._proto.close_reason
            ) from exc

    async def _flush_quietly(self) -> None:
        if not self._proto.has_data_to_send:
            return
        # A lost peer: the reader sees the end at its next read.
        async with self._lock:
            with contextlib.suppress(WebSocketDisconnect):
                await self._write()

    async def _close_transport(self) -> None:
        if self._transport_closed:
            return
        self._transport_closed = True
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                await self._transport.aclose()
