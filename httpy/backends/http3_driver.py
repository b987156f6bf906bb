"""The HTTP/3 connection driver: datagrams <-> :class:`HTTP3Connection` <-> the app.

One task per QUIC connection owns the core: it takes the datagrams the listener routed to
it, fires the core's timers, and sends what the core has queued.  Each request stream's
handler runs in its own task (as on HTTP/2); its commands go into the core at once and
the connection task is woken to send them, so the core is only ever touched from one
thread and sending always happens in one place.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol, cast

import anyio
import anyio.abc
from aioquic.quic.connection import NetworkAddress

from ..core.application import ClientDisconnected, RequestBodyError, RequestHead
from ..core.errors import StreamClosedError
from ..core.events import (
    BodyReceived,
    CloseConnection,
    Command,
    ConnectionTerminated,
    Event,
    Headers,
    ProtocolError,
    RequestReceived,
    SendInformational,
    SendResponse,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from ..core.http3 import (
    H3_REQUEST_CANCELLED,
    ConnectionIdIssued,
    ConnectionIdRetired,
    HTTP3Connection,
)
from .connection import ConnectionContext, format_peer, log_exchange
from .http2_websocket import serve_http2_websocket
from .logs import error_log
from .stream_base import StreamBase, pushed_request

if TYPE_CHECKING:
    from .http2_driver import HTTP2Stream

#: Datagrams queued for one connection before more are dropped (UDP may drop anyway;
#: QUIC retransmits).  Bounds the memory a fast sender can pin.
INBOX_SIZE = 256


class Router(Protocol):
    """What a driver needs from its listener: send datagrams, route connection IDs."""

    async def send_datagrams(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None: ...

    def route(self, cid: bytes, driver: HTTP3Driver) -> None: ...

    def unroute(self, cid: bytes) -> None: ...


class HTTP3Stream(StreamBase):
    """The :class:`~httpy.core.application.HTTPStream` of one HTTP/3 request stream (the
    body buffer, back-pressure and the end-of-handler rule are :class:`StreamBase`'s).

    Reading the body credits the client's stream window (``_consumed``); ``send_body``
    waits while QUIC holds our data back."""

    cancel_code = H3_REQUEST_CANCELLED

    def __init__(self, driver: HTTP3Driver, head: RequestHead, ended: bool) -> None:
        super().__init__(head, ended, driver.config)
        self._driver = driver

    async def _submit(self, command: Command) -> None:
        self._driver.command(command)

    async def _consumed(self, size: int) -> None:
        # Consumed: the client may send that much more on this stream.
        self._driver.acknowledge(self._head.stream_id, size)

    def _pending(self) -> int:
        return self._driver.pending_bytes(self._head.stream_id)

    async def _body_timed_out(self) -> None:
        await self._driver.body_timed_out(self)

    def _server_headers(self, headers: Headers) -> Headers:
        return self._driver.add_server_headers(headers)

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        self._driver.command(SendInformational(self._head.stream_id, status, headers))

    async def send_response(self, status: int, headers: Headers) -> None:
        if self._error is not None:
            raise self._error
        self._driver.command(
            SendResponse(self._head.stream_id, status, self._driver.add_server_headers(headers))
        )
        self.response_started = True
        self.status = status

    async def push(self, path: str) -> bool:
        """Push a GET of ``path`` when the client allows pushes; False otherwise."""
        return self._driver.push(self, path)


class HTTP3Driver:
    """Runs one QUIC connection to completion (see the module docstring)."""

    def __init__(
        self,
        conn: HTTP3Connection,
        router: Router,
        context: ConnectionContext,
        client: NetworkAddress,
        server: tuple[str, int] | None,
    ) -> None:
        self._conn = conn
        self._router = router
        self._context = context
        self.config = context.config
        self._client = (str(client[0]), int(client[1]))
        self._server = server
        self._handlers: anyio.abc.TaskGroup | None = None
        self._streams: dict[int, HTTP3Stream] = {}
        #: Datagrams routed here, not yet fed to the core.  A deque and an event, not a
        #: memory stream: waking up (a timer, a handler's command) never cancels a
        #: receive, so no datagram is lost in the hand-over.
        self._inbox: deque[tuple[bytes, NetworkAddress]] = deque()
        self._wakeup = anyio.Event()
        self._dirty = False
        self.closed = anyio.Event()

    # -- used by the listener ----------------------------------------------------------

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        """Queue a datagram routed to this connection; dropped when the inbox is full."""
        if len(self._inbox) < INBOX_SIZE:
            self._inbox.append((data, addr))
        self._wakeup.set()

    def begin_shutdown(self) -> None:
        """GOAWAY, let open streams finish (WebSockets close with 1012), then
        CONNECTION_CLOSE."""
        self._conn.send(CloseConnection())
        for stream in list(self._streams.values()):
            if stream.on_shutdown is not None:
                stream.on_shutdown()
        self._kick()

    async def run(self, first: tuple[bytes, NetworkAddress]) -> None:
        """Serve the connection until it terminates; unroutes its connection IDs."""
        try:
            async with anyio.create_task_group() as handlers:
                self._handlers = handlers
                self._dispatch(self._conn.receive_datagram(*first, time.monotonic()))
                await self._loop()
                handlers.cancel_scope.cancel()
            # Outside the cancelled task group, or the send would be cancelled with it.
            await self._transmit()  # a CONNECTION_CLOSE the core queued as it ended
        except Exception:
            error_log.exception("HTTP/3 connection task failed")
        finally:
            for cid in self._conn.host_cids:
                self._router.unroute(cid)
            self._inbox.clear()
            self.closed.set()

    # -- used by HTTP3Stream -------------------------------------------------------------

    def command(self, command: Command) -> None:
        """Apply a command now; the connection task sends the result."""
        try:
            self._conn.send(command)
        except StreamClosedError as exc:
            raise ClientDisconnected(str(exc)) from exc
        self._kick()

    def pending_bytes(self, stream_id: int) -> int:
        return self._conn.pending_bytes(stream_id)

    def acknowledge(self, stream_id: int, size: int) -> None:
        self._conn.acknowledge(stream_id, size)
        self._kick()

    def add_server_headers(self, headers: Headers) -> Headers:
        return self._context.server_headers(headers)

    def push(self, parent: HTTP3Stream, path: str) -> bool:
        head = parent.head
        authority = dict(head.headers).get(b"host", b"")
        promised = self._conn.push(head.stream_id, "GET", path, authority, head.scheme)
        if promised is None:
            return False
        self._kick()
        self._start(pushed_request(head, path, promised), ended=True)
        return True

    async def body_timed_out(self, stream: HTTP3Stream) -> None:
        """The request body stalled for ``body_timeout``: 408 or a reset (see
        :meth:`StreamBase.answer_body_timeout`), and a log line."""
        await stream.answer_body_timeout()
        self._context.bad_requests.warning(
            "HTTP/3 request body from %s timed out (stream %d)",
            format_peer(self._client),
            stream.head.stream_id,
        )

    # -- internals ---------------------------------------------------------------------

    def _kick(self) -> None:
        """Wake the connection task: there is something to send."""
        self._dirty = True
        self._wakeup.set()

    async def _loop(self) -> None:
        conn = self._conn
        while not conn.terminated:
            await self._transmit()
            if conn.terminated:
                break
            timer = conn.get_timer()
            delay = math.inf if timer is None else max(0.0, timer - time.monotonic())
            if not self._inbox and not self._dirty:
                with anyio.move_on_after(delay):
                    await self._wakeup.wait()
            self._wakeup = anyio.Event()
            self._dirty = False
            now = time.monotonic()
            # Everything that has arrived, before sending: one flight answers it all.
            while self._inbox and not conn.terminated:
                data, addr = self._inbox.popleft()
                self._dispatch(conn.receive_datagram(data, addr, time.monotonic()))
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                self._dispatch(conn.handle_timer(now))

    async def _transmit(self) -> None:
        datagrams = self._conn.datagrams_to_send(time.monotonic())
        self._dispatch(self._conn.next_events())
        if datagrams:
            await self._router.send_datagrams(datagrams)
        # Sending may have emptied a stream's queue: let its handler continue.
        for stream in self._streams.values():
            if stream.response_started:
                stream.wake()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RequestReceived):
                self._open_stream(event)
            elif isinstance(event, BodyReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.feed(event.data)
            elif isinstance(event, StreamEnded):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.end()
            elif isinstance(event, TrailersReceived):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.set_trailers(event.headers)
            elif isinstance(event, StreamReset):
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.fail(ClientDisconnected(f"stream reset ({event.error_code:#x})"))
                    stream.cancel_scope.cancel()
            elif isinstance(event, ConnectionIdIssued):
                self._router.route(event.connection_id, self)
            elif isinstance(event, ConnectionIdRetired):
                self._router.unroute(event.connection_id)
            elif isinstance(event, ProtocolError):
                self._context.bad_requests.warning(
                    "bad HTTP/3 input from %s: %s", format_peer(self._client), event.reason
                )
            elif isinstance(event, ConnectionTerminated):
                for stream in self._streams.values():
                    stream.fail(ClientDisconnected(event.reason))
                    stream.cancel_scope.cancel()

    def _open_stream(self, event: RequestReceived) -> None:
        path, _, query = event.target.partition(b"?")
        head = self._context.adjust(  # trusted proxy headers, as on TCP
            RequestHead(
                method=event.method,
                path=path.decode("latin-1"),
                query_string=query,
                headers=event.headers,
                http_version="3",
                scheme="https",
                client=self._client,
                server=self._server,
                body_expected=event.body_expected,
                stream_id=event.stream_id,
            )
        )
        stream = self._start(head, ended=not event.body_expected)
        if event.method == "CONNECT":
            stream.connect_protocol = event.upgrade

    def _start(self, head: RequestHead, ended: bool) -> HTTP3Stream:
        stream = HTTP3Stream(self, head, ended)
        self._streams[head.stream_id] = stream
        assert self._handlers is not None
        self._handlers.start_soon(self._run_handler, stream)
        return stream

    async def _run_handler(self, stream: HTTP3Stream) -> None:
        try:
            with stream.cancel_scope:
                try:
                    if stream.connect_protocol == b"websocket":
                        # RFC 9220 is RFC 8441 over HTTP/3: the same handshake and
                        # session, over this stream's DATA frames.  (The function only
                        # uses what StreamBase provides, plus on_shutdown.)
                        await serve_http2_websocket(
                            self._context.app, cast("HTTP2Stream", stream), self._context
                        )
                    else:
                        await self._context.app.handle_http(stream)
                except (ClientDisconnected, RequestBodyError):
                    pass  # RequestBodyError: the driver has answered (408)
                except Exception:
                    error_log.exception(
                        "application error on %s %s", stream.head.method, stream.head.path
                    )
            if not stream.response_complete and not stream.disconnected:
                await stream.finish_incomplete()
        finally:
            self._streams.pop(stream.head.stream_id, None)
            log_exchange(self.config, self._client, stream)
