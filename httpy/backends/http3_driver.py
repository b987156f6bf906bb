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
from typing import Protocol

import anyio
from aioquic.quic.connection import NetworkAddress

from ..core.application import ClientDisconnected
from ..core.errors import StreamClosedError
from ..core.events import CloseConnection, Command, Event
from ..core.http3 import (
    H3_REQUEST_CANCELLED,
    ConnectionIdIssued,
    ConnectionIdRetired,
    HTTP3Connection,
)
from .connection import ConnectionContext
from .logs import error_log
from .streams import FedStreamsPort, Streams

#: Datagrams queued for one connection before more are dropped (UDP may drop anyway;
#: QUIC retransmits).  Bounds the memory a fast sender can pin.
INBOX_SIZE = 256


class Router(Protocol):
    """What a driver needs from its listener: send datagrams, route connection IDs."""

    async def send_datagrams(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None: ...

    def route(self, cid: bytes, driver: HTTP3Driver) -> None: ...

    def unroute(self, cid: bytes) -> None: ...


class HTTP3Driver(FedStreamsPort):
    """Runs one QUIC connection to completion (see the module docstring); its streams
    are :class:`~httpy.backends.streams.Streams`'."""

    #: A handler abandoned its response, or QUIC's window stayed shut.
    cancel_code: int = H3_REQUEST_CANCELLED
    _conn: HTTP3Connection

    def __init__(
        self,
        conn: HTTP3Connection,
        router: Router,
        context: ConnectionContext,
    ) -> None:
        self._conn = conn
        self._router = router
        self._context = context
        self.config = context.config
        self._streams = Streams(self, context, "HTTP/3")
        #: Datagrams routed here, not yet fed to the core.  A deque and an event, not a
        #: memory stream: waking up (a timer, a handler's command) never cancels a
        #: receive, so no datagram is lost in the hand-over.
        self._inbox: deque[tuple[bytes, NetworkAddress]] = deque()
        self._wakeup = anyio.Event()
        self._dirty = False
        self.closed = anyio.Event()

    # -- used by the listener ----------------------------------------------------------

    @property
    def handshake_complete(self) -> bool:
        """False while the connection is half-open (its QUIC handshake not done)."""
        return self._conn.handshake_complete

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        """Queue a datagram routed to this connection; dropped when the inbox is full."""
        if len(self._inbox) < INBOX_SIZE:
            self._inbox.append((data, addr))
        self._wakeup.set()

    def begin_shutdown(self) -> None:
        """GOAWAY, let open streams finish (WebSockets close with 1012), then
        CONNECTION_CLOSE."""
        self._conn.send(CloseConnection())
        self._streams.begin_shutdown()
        self._kick()

    async def run(self, first: tuple[bytes, NetworkAddress]) -> None:
        """Serve the connection until it terminates; unroutes its connection IDs."""
        try:
            async with anyio.create_task_group() as handlers:
                self._streams.bind(handlers)
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

    # -- StreamPort (used by the streams' exchanges) ----------------------------------

    def queue(self, command: Command) -> None:
        """Apply a command now; the connection task sends the result."""
        try:
            self._conn.send(command)
        except StreamClosedError as exc:
            raise ClientDisconnected(str(exc)) from exc
        self._kick()

    async def submit(self, command: Command) -> None:
        self.queue(command)

    async def _send_queued(self) -> None:
        self._kick()  # the connection's task sends

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
        for stream in self._streams.open.values():
            if stream.response_started:
                stream.wake()

    def _dispatch(self, events: list[Event]) -> None:
        for event in self._streams.dispatch(events):
            if isinstance(event, ConnectionIdIssued):
                self._router.route(event.connection_id, self)
            elif isinstance(event, ConnectionIdRetired):
                self._router.unroute(event.connection_id)
