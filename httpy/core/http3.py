"""Server side of one HTTP/3 connection: a sans-IO state machine over aioquic.

The same contract as :class:`~httpy.core.http2.HTTP2Connection`, with datagrams for
bytes and an explicit clock::

    conn = HTTP3Connection(config, quic_configuration, original_destination_connection_id=dcid)
    events = conn.receive_datagram(data, addr, now)
    conn.send(SendResponse(...)); conn.send(SendData(...))
    for datagram, addr in conn.datagrams_to_send(now): ...
    at = conn.get_timer(); events = conn.handle_timer(now)

aioquic's ``QuicConnection`` does QUIC (TLS 1.3, loss recovery, flow control, connection
IDs) and ``H3Connection`` does HTTP/3 framing and QPACK.  This class adds what they leave
to their caller:

* **Protocol-neutral events** (:mod:`.events`) for requests, bodies, resets and the end
  of the connection, plus :class:`ConnectionIdIssued` / :class:`ConnectionIdRetired` so
  the backend can route datagrams by connection ID.
* **Malformed requests are stream errors** (RFC 9114 4.1.2: H3_MESSAGE_ERROR on that
  stream); aioquic would close the whole connection.  Requests also go through the
  HTTP/2 header rules of :mod:`.http2_checks` (RFC 9114 4.2 forbids the same fields).
* **Limits** as HTTP/1.1 and HTTP/2 have them: ``max_body_bytes`` (413),
  ``max_header_count`` and ``max_header_bytes`` (431), answered on the stream.  A
  HEADERS frame longer than ``max_header_bytes`` is answered 431 from its frame header,
  before aioquic buffers it, with a :class:`ProtocolError` naming the stream (for the
  log: on HTTP/3 such a stream-level one does not end the connection).
* **Bounded receive windows**: stream and connection credit follow what was consumed
  (:class:`~.http3_aioquic.ServerQuicConnection`), never what merely arrived.
* **Graceful shutdown**: a GOAWAY frame (aioquic has none), new requests refused with
  H3_REQUEST_REJECTED, and CONNECTION_CLOSE once the open streams are done.
* **Stateless reset tokens** derived from the connection ID (``reset_token``), so a
  server that lost the connection's state can still reset it (RFC 9000 10.3).
* **Server push** via :meth:`push` when the client sent MAX_PUSH_ID.
* **Extended CONNECT** (RFC 9220, WebSockets): ``RequestReceived.upgrade`` is the
  ``:protocol``; the stream's DATA is a tunnel, not a body (no ``max_body_bytes``).
* **Rapid reset defence**: streams reset by the client or refused as malformed spend
  the HTTP/2 reset budget (``h2_max_reset_streams``, ``h2_reset_rate``); over it,
  CONNECTION_CLOSE H3_EXCESSIVE_LOAD.  Frames that carry no request (QUIC control
  frames, tiny DATA, unknown HTTP/3 frames) spend the HTTP/2 control-frame budget
  (``h2_max_control_frames``, ``h2_control_frame_rate``) the same way.

What this needs of aioquic beyond its public API is in :mod:`.http3_aioquic`.

Nothing raises out of ``receive_datagram``: a broken peer ends in
:class:`ConnectionTerminated` (with CONNECTION_CLOSE sent) or a :class:`StreamReset`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import aioquic.h3.connection as h3c
import aioquic.h3.events as h3e
import aioquic.quic.events as qe
from aioquic.h3.exceptions import NoAvailablePushIDError
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress

from . import events as ev
from .config import Config
from .errors import StreamClosedError
from .fields import multiplexed_fields
from .http2_checks import REQUEST_RULES, TRAILER_RULES, FloodBudgets, malformed
from .http3_aioquic import (
    HeadersTooLarge,
    RequestRejected,
    ServerH3Connection,
    ServerQuicConnection,
    all_acknowledged,
    connection_ids,
    derive_reset_tokens,
    has_peer,
    local_control_stream,
    set_stream_limits,
    unsent_bytes,
    written_acknowledged,
)
from .multiplexed_head import BodyCounter, MultiplexedHead
from .protocol import MultiplexedProtocol, error_body

H3_NO_ERROR = h3c.ErrorCode.H3_NO_ERROR
H3_INTERNAL_ERROR = h3c.ErrorCode.H3_INTERNAL_ERROR
H3_REQUEST_REJECTED = h3c.ErrorCode.H3_REQUEST_REJECTED
H3_REQUEST_CANCELLED = h3c.ErrorCode.H3_REQUEST_CANCELLED
H3_MESSAGE_ERROR = h3c.ErrorCode.H3_MESSAGE_ERROR
H3_EXCESSIVE_LOAD = h3c.ErrorCode.H3_EXCESSIVE_LOAD


@dataclass(frozen=True, slots=True)
class ConnectionIdIssued(ev.Event):
    """The connection now also answers to ``connection_id``: route it here."""

    connection_id: bytes


@dataclass(frozen=True, slots=True)
class ConnectionIdRetired(ev.Event):
    """The peer stopped using ``connection_id``: stop routing it here."""

    connection_id: bytes


class HTTP3Connection(MultiplexedProtocol):
    """One server-side HTTP/3 connection.  Not thread-safe; one task drives it.

    ``reset_token(cid)`` gives the 16-byte stateless reset token of a connection ID; the
    backend uses the same function to answer packets for connections it no longer has.
    """

    library_errors = (h3c.FrameUnexpected,)

    def __init__(
        self,
        config: Config,
        quic_configuration: QuicConfiguration,
        *,
        original_destination_connection_id: bytes,
        retry_source_connection_id: bytes | None = None,
        reset_token: Callable[[bytes], bytes] | None = None,
        flood_budgets: FloodBudgets | None = None,
    ) -> None:
        if quic_configuration.is_client:
            raise ValueError("HTTP3Connection is the server side: is_client must be False")
        self._config = config
        self._quic = ServerQuicConnection(
            configuration=quic_configuration,
            original_destination_connection_id=original_destination_connection_id,
            retry_source_connection_id=retry_source_connection_id,
        )
        # Stream limits are not part of QuicConfiguration; they become transport
        # parameters at the handshake, so set them before the first datagram.
        set_stream_limits(self._quic, config.quic_max_streams_bidi, config.quic_max_streams_uni)
        self._reset_token = reset_token
        self._tokens_fixed: set[int] = set()
        self._fix_reset_tokens()
        self._h3 = ServerH3Connection(self._quic, max_field_section=config.max_header_bytes)
        self._open_streams: set[int] = set()
        self._receiving: set[int] = set()
        self._responded: set[int] = set()
        self._bodiless: set[int] = set()
        self._body_bytes = BodyCounter(config.max_body_bytes)
        self._rejected: set[int] = set()
        budgets = flood_budgets if flood_budgets is not None else FloodBudgets(config)
        self._resets = budgets.resets
        self._control = budgets.control
        self._now = 0.0
        #: Extended CONNECT streams (RFC 9220): their DATA is a tunnel (a WebSocket).
        self._tunnels: set[int] = set()
        #: Finished responses whose bytes may still be in flight (graceful close waits).
        self._unacked: set[int] = set()
        self._goaway_sent = False
        #: After GOAWAY: requests on streams from this id on are refused (RFC 9114 5.2).
        self._goaway_id = 0
        self._closing = False
        self._terminated = False
        self._highest_request = -1
        #: The QUIC handshake is done (until then the connection is half-open).
        self.handshake_complete = False
        #: Request streams whose head has begun (bytes arrived) and not ended: since when.
        #: ``header_timeout`` bounds each (a client sending PINGs keeps the connection,
        #: not its unfinished heads).
        self._head_since: dict[int, float] = {}
        self._pending: list[ev.Event] = [ConnectionIdIssued(c) for c in connection_ids(self._quic)]

    # ------------------------------------------------------------------ inspection

    @property
    def terminated(self) -> bool:
        """True once the connection is gone: send what is left, then forget it."""
        return self._terminated

    @property
    def host_cids(self) -> list[bytes]:
        """Every connection ID the peer may currently use to reach this connection."""
        return connection_ids(self._quic)

    @property
    def peer_address(self) -> NetworkAddress | None:
        return self._quic.get_peer_address()

    @property
    def push_enabled(self) -> bool:
        return not self._goaway_sent and self._h3.push_allowed

    def pending_bytes(self, stream_id: int) -> int:
        """Response bytes written on ``stream_id`` that QUIC has not sent yet (flow
        control or congestion control is holding them)."""
        return unsent_bytes(self._quic, stream_id)

    # ------------------------------------------------------------------ input

    def receive_datagram(self, data: bytes, addr: NetworkAddress, now: float) -> list[ev.Event]:
        """Feed one UDP datagram from ``addr``; return the events it completes."""
        events, self._pending = self._pending, []
        if self._terminated:
            return events
        self._now = now
        self._quic.receive_datagram(data, addr, now)
        self._drain_quic(events)
        self._spend_control(events)
        if not has_peer(self._quic):
            # Not one packet of it was valid (aioquic only learns the peer's address
            # from a packet it could decrypt): keep no state for it.
            self._terminate(events, 0, "no valid packet")
        return events

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must run next (the clock of ``now``), or None."""
        if self._terminated:
            return None
        timer = self._quic.get_timer()
        if self._head_since:
            head = min(self._head_since.values()) + self._config.header_timeout
            timer = head if timer is None else min(timer, head)
        return timer

    def handle_timer(self, now: float) -> list[ev.Event]:
        """Loss detection, idle timeout, end of the closing period; request heads not
        complete within ``header_timeout`` (408)."""
        events, self._pending = self._pending, []
        if not self._terminated:
            self._now = now
            self._expire_heads(now, events)
            self._quic.handle_timer(now)
            self._drain_quic(events)
        return events

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` body bytes of ``stream_id``: the client may
        send that much more (MAX_STREAM_DATA, with the next datagrams)."""
        self._quic.consume(stream_id, size)

    # ------------------------------------------------------------------ output

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, NetworkAddress]]:
        """Datagrams to send now, each with its destination."""
        if not has_peer(self._quic):
            return []  # nowhere to send yet (see receive_datagram)
        datagrams = self._quic.datagrams_to_send(now)
        self._collect_quic_events()
        return datagrams

    def next_events(self) -> list[ev.Event]:
        """Events produced outside ``receive_datagram`` (by sending: new connection IDs)."""
        events, self._pending = self._pending, []
        return events

    # ------------------------------------------------------------------ output

    @property
    def finished(self) -> bool:
        """True once the connection takes no more commands (see ``ServerProtocol``)."""
        return self._terminated

    def _on_close_connection(self, command: ev.CloseConnection) -> None:
        self._goaway()

    def _on_send_response(self, command: ev.SendResponse) -> None:
        self._send_headers(command.stream_id, command.status, command.headers)

    def _on_send_informational(self, command: ev.SendInformational) -> None:
        if 100 < command.status < 200 and command.status != 101:
            self._send_headers(command.stream_id, command.status, command.headers)

    def _on_send_data(self, command: ev.SendData) -> None:
        self._send_data(command.stream_id, command.data, command.end_stream)

    def _on_send_trailers(self, command: ev.SendTrailers) -> None:
        self._send_trailers(command.stream_id, command.headers)

    def _on_reset_stream(self, command: ev.ResetStream) -> None:
        self._reset(command.stream_id, command.error_code or H3_INTERNAL_ERROR)

    def push(
        self, stream_id: int, method: str, path: str, authority: bytes, scheme: str
    ) -> int | None:
        """Promise a pushed response for ``path`` on request ``stream_id``.

        Returns the push stream's id (its response is then sent like any other), or
        None when the client allows no (more) pushes or the stream is gone.
        """
        if not self.push_enabled or stream_id not in self._open_streams:
            return None
        headers = [
            (b":method", method.encode("ascii")),
            (b":scheme", scheme.encode("ascii")),
            (b":authority", authority),
            (b":path", path.encode("latin-1")),
        ]
        try:
            promised = self._h3.send_push_promise(stream_id, headers)
        except (NoAvailablePushIDError, h3c.FrameUnexpected, ValueError):
            return None
        self._open_streams.add(promised)
        return promised

    # ------------------------------------------------------------------ internals

    def _fix_reset_tokens(self) -> None:
        if self._reset_token is not None:
            derive_reset_tokens(self._quic, self._reset_token, self._tokens_fixed)

    def _collect_quic_events(self) -> None:
        """Connection-ID events can come from sending too (replenishing CIDs)."""
        self._drain_quic(self._pending)

    def _drain_quic(self, events: list[ev.Event]) -> None:
        while (quic_event := self._quic.next_event()) is not None:
            if isinstance(quic_event, qe.ConnectionIdIssued):
                self._fix_reset_tokens()
                events.append(ConnectionIdIssued(quic_event.connection_id))
                continue
            if isinstance(quic_event, qe.ConnectionIdRetired):
                events.append(ConnectionIdRetired(quic_event.connection_id))
                continue
            if isinstance(quic_event, qe.ConnectionTerminated):
                self._terminate(events, quic_event.error_code, quic_event.reason_phrase)
                continue
            if isinstance(quic_event, qe.HandshakeCompleted):
                self.handshake_complete = True
            if self._terminated:
                continue  # closed by a flood defence while this batch was handled
            if isinstance(quic_event, qe.StreamDataReceived):
                sid = quic_event.stream_id
                if sid in self._rejected:
                    if quic_event.end_stream:
                        self._rejected.discard(sid)
                    continue  # the rest of a request we refused
                if sid % 4 == 0 and sid not in self._open_streams and quic_event.data:
                    self._head_since.setdefault(sid, self._now)  # a request head begins
            elif isinstance(quic_event, qe.StreamReset | qe.StopSendingReceived):
                sid = quic_event.stream_id
                self._rejected.discard(sid)
                self._head_since.pop(sid, None)
                if sid in self._open_streams:
                    self._forget(sid)
                    events.append(ev.StreamReset(sid, quic_event.error_code))
                    self._spend_reset(events, "client reset")
            try:
                h3_events = self._h3.handle_event(quic_event)
            except HeadersTooLarge as exc:
                self._headers_too_large(exc.stream_id, exc.size, events)
                continue
            except RequestRejected as exc:
                self._reject(exc.stream_id, H3_MESSAGE_ERROR)
                if exc.stream_id in self._open_streams:
                    # Found once the handler runs (DATA disagreeing with content-length):
                    # cancel it now, not when the body times out.
                    self._forget(exc.stream_id)
                    events.append(ev.StreamReset(exc.stream_id, H3_MESSAGE_ERROR))
                self._spend_reset(events, "malformed request")
                continue
            for h3_event in h3_events:
                self._translate(h3_event, events)
        self._check_done()

    def _translate(self, event: h3e.H3Event, events: list[ev.Event]) -> None:
        if isinstance(event, h3e.HeadersReceived):
            sid = event.stream_id
            self._head_since.pop(sid, None)
            if sid in self._open_streams:
                self._on_trailers(event, events)
            else:
                # Streams are independent: requests may arrive in any order.  (Trailers
                # after we answered never get here: the STOP_SENDING we sent with the
                # answer makes aioquic drop the rest of the stream.)
                self._on_request(event, events)
        elif isinstance(event, h3e.DataReceived):
            sid = event.stream_id
            if sid in self._receiving and event.data and self._accept_body(sid, event, events):
                self._quic.deliver(sid, len(event.data))
                last = events[-1] if events else None
                if isinstance(last, ev.BodyReceived) and last.stream_id == sid:
                    # Pieces of one datagram (tiny DATA or STREAM frames) reach the
                    # handler together: one wakeup, not one per frame.
                    events[-1] = ev.BodyReceived(sid, last.data + event.data)
                else:
                    events.append(ev.BodyReceived(sid, bytes(event.data)))
            if event.stream_ended:
                self._end_of_request(sid, events)

    def _on_request(self, event: h3e.HeadersReceived, events: list[ev.Event]) -> None:
        sid = event.stream_id
        if self._goaway_sent and sid >= self._goaway_id:
            self._reject(sid, H3_REQUEST_REJECTED)  # the client may retry it elsewhere
            return
        reason = malformed(event.headers, REQUEST_RULES)
        if reason is not None:
            self._reject(sid, H3_MESSAGE_ERROR)
            self._spend_reset(events, "malformed request")
            return
        self._highest_request = max(self._highest_request, sid)
        head = MultiplexedHead.parse(event.headers)
        self._open_streams.add(sid)
        self._control.give(10)  # a request's own small frames (a short last DATA, ...)
        problem = head.limit_problem(self._config)
        if problem is not None:
            self._answer(sid, *problem)
            return
        if not event.stream_ended:
            self._receiving.add(sid)
            self._quic.track(sid)  # body credit follows what the application reads
        if head.protocol is not None:
            self._tunnels.add(sid)  # extended CONNECT (RFC 9220)
        if head.method == b"HEAD":
            self._bodiless.add(sid)
        events.append(head.request_event(sid, "3", body_expected=not event.stream_ended))

    def _on_trailers(self, event: h3e.HeadersReceived, events: list[ev.Event]) -> None:
        """Request trailers: checked like HTTP/2's (a stream error when malformed)."""
        sid = event.stream_id
        if malformed(event.headers, TRAILER_RULES):
            self._receiving.discard(sid)
            self._reject(sid, H3_MESSAGE_ERROR)
            self._forget(sid)
            events.append(ev.StreamReset(sid, H3_MESSAGE_ERROR))
            return
        if sid in self._receiving:
            events.append(ev.TrailersReceived(sid, tuple(event.headers)))
        if event.stream_ended:
            self._end_of_request(sid, events)

    def _end_of_request(self, sid: int, events: list[ev.Event]) -> None:
        if sid in self._receiving:
            self._receiving.discard(sid)
            events.append(ev.StreamEnded(sid))

    def _accept_body(self, sid: int, event: h3e.DataReceived, events: list[ev.Event]) -> bool:
        # A tunnel's DATA is not a body: no max_body_bytes.
        if sid in self._tunnels or self._body_bytes.accept(sid, len(event.data)):
            return True
        events.append(ev.StreamReset(sid, H3_REQUEST_CANCELLED))
        self._answer(sid, 413, f"request body larger than {self._body_bytes.limit} bytes")
        return False

    def _answer(self, sid: int, status: int, reason: str) -> None:
        """Answer an open stream ourselves (a limit was broken)."""
        self._receiving.discard(sid)
        if sid in self._responded:
            self._reset(sid, H3_REQUEST_CANCELLED)
            return
        headers, body = error_body(status, reason)
        self._send_headers(sid, status, headers)
        self._send_data(sid, body, True)

    def _send_headers(self, sid: int, status: int, headers: ev.Headers) -> None:
        if sid not in self._open_streams:
            raise StreamClosedError(f"stream {sid} is closed")
        block = [(b":status", b"%d" % status), *multiplexed_fields(headers)]
        self._h3.send_headers(sid, block, end_stream=False)
        self._head_sent(sid, status)

    def _send_data(self, sid: int, data: bytes, end: bool) -> None:
        if sid not in self._open_streams:
            raise StreamClosedError(f"stream {sid} is closed")
        if sid in self._bodiless:
            data = b""
        if data or end:
            self._h3.send_data(sid, data, end)
            # The MAX_STREAM_DATA / MAX_DATA frames the client legitimately sends back
            # (as HTTP/2 earns 2 per DATA frame of at most 16 KiB).
            self._control.give(2 * (1 + len(data) // 16384))
        if end:
            self._stream_done(sid)

    def _send_trailers(self, sid: int, headers: ev.Headers) -> None:
        """Trailer fields in a HEADERS frame that ends the stream (RFC 9114 4.1)."""
        if sid not in self._open_streams:
            raise StreamClosedError(f"stream {sid} is closed")
        fields = multiplexed_fields(headers)
        if fields and sid not in self._bodiless:
            self._h3.send_headers(sid, fields, end_stream=True)
        else:
            self._h3.send_data(sid, b"", True)
        self._stream_done(sid)

    def _stream_done(self, sid: int) -> None:
        if sid in self._receiving:
            # The response is complete but the request body is still coming: ask the
            # client to stop sending it, without error (RFC 9114 4.1).
            with contextlib.suppress(ValueError):
                self._quic.stop_stream(sid, H3_NO_ERROR)
        self._forget(sid)
        self._unacked.add(sid)
        self._check_done()

    def _forget(self, sid: int) -> None:
        self._open_streams.discard(sid)
        self._receiving.discard(sid)
        self._responded.discard(sid)
        self._bodiless.discard(sid)
        self._body_bytes.forget(sid)
        self._tunnels.discard(sid)
        self._quic.untrack(sid)

    def _reset(self, sid: int, code: int) -> None:
        if sid in self._open_streams:
            with contextlib.suppress(ValueError):
                self._quic.reset_stream(sid, code)
            self._stream_done(sid)

    def _headers_too_large(self, sid: int, size: int, events: list[ev.Event]) -> None:
        """A HEADERS frame over the header limit, refused from its frame header (before
        aioquic buffers it): 431 on the stream (RFC 9114 4.2.2), STOP_SENDING H3_NO_ERROR
        for the rest (4.1), the connection serves on.  Trailers that large end the
        handler's body with a reset first."""
        limit = self._config.max_header_bytes
        reason = f"HEADERS frame of {size} bytes, over the {limit}-byte header limit"
        if self._goaway_sent and sid >= self._goaway_id and sid not in self._open_streams:
            self._reject(sid, H3_REQUEST_REJECTED)
            return
        if sid in self._open_streams:
            if sid in self._receiving:
                events.append(ev.StreamReset(sid, H3_REQUEST_CANCELLED))
        else:
            self._highest_request = max(self._highest_request, sid)
            self._open_streams.add(sid)
        self._answer(sid, 431, reason)  # a reset instead when the response started
        self._stop_reading(sid, H3_NO_ERROR)
        events.append(ev.ProtocolError(status=431, reason=f"HTTP/3: {reason}", stream_id=sid))
        self._spend_reset(events, "header frame too large")

    def _expire_heads(self, now: float, events: list[ev.Event]) -> None:
        limit = self._config.header_timeout
        for sid, since in list(self._head_since.items()):
            if now - since >= limit:
                del self._head_since[sid]
                self._head_timed_out(sid, limit, events)

    def _head_timed_out(self, sid: int, limit: float, events: list[ev.Event]) -> None:
        """A request head not complete within ``header_timeout``: 408 on the stream, as
        HTTP/1.1 answers, and what aioquic buffered of it dropped (STOP_SENDING for the
        rest); the connection serves on."""
        reason = f"request head not complete within {limit:g} s (header_timeout)"
        if self._goaway_sent and sid >= self._goaway_id:
            self._reject(sid, H3_REQUEST_REJECTED)
            return
        self._highest_request = max(self._highest_request, sid)
        self._open_streams.add(sid)
        self._answer(sid, 408, reason)
        self._stop_reading(sid, H3_NO_ERROR)
        events.append(ev.ProtocolError(status=408, reason=f"HTTP/3: {reason}", stream_id=sid))

    def _stop_reading(self, sid: int, code: int) -> None:
        """Drop the rest of a request stream: its later bytes are neither parsed nor
        buffered, and get no more flow-control credit."""
        self._head_since.pop(sid, None)
        self._rejected.add(sid)
        self._h3.forget_stream(sid)
        self._quic.untrack(sid)
        with contextlib.suppress(ValueError):
            self._quic.stop_stream(sid, code)

    def _reject(self, sid: int, code: int) -> None:
        """Refuse a request stream before any handler saw it (both directions)."""
        self._head_since.pop(sid, None)
        self._rejected.add(sid)
        self._h3.forget_stream(sid)
        self._quic.untrack(sid)
        with contextlib.suppress(ValueError):
            self._quic.reset_stream(sid, code)
        with contextlib.suppress(ValueError):
            self._quic.stop_stream(sid, code)

    def _spend_reset(self, events: list[ev.Event], kind: str) -> None:
        """Streams the client opens only to reset (or to send malformed) cost a token:
        the rapid-reset defence (CVE-2023-44487) HTTP/2 has, with the same budget.  Over
        budget: CONNECTION_CLOSE H3_EXCESSIVE_LOAD."""
        if self._resets.take(self._now) or self._terminated:
            return
        reason = f"too many streams reset or malformed ({kind}): rapid reset"
        self._quic.close(error_code=H3_EXCESSIVE_LOAD, reason_phrase=reason)
        events.append(ev.ProtocolError(status=400, reason=f"HTTP/3: {reason}"))
        self._terminate(events, H3_EXCESSIVE_LOAD, reason)

    def _spend_control(self, events: list[ev.Event]) -> None:
        """Frames that carry no request (QUIC PING, MAX_*, *_BLOCKED, connection-ID and
        path frames; tiny DATA and unknown HTTP/3 frames) spend HTTP/2's control-frame
        budget (``h2_max_control_frames``, ``h2_control_frame_rate``).  Over budget:
        CONNECTION_CLOSE H3_EXCESSIVE_LOAD."""
        count = self._quic.take_control_frames() + self._h3.take_control_frames()
        if not count or self._control.take(self._now, count) or self._terminated:
            return
        reason = "control or tiny frames over the control-frame budget (flood)"
        self._quic.close(error_code=H3_EXCESSIVE_LOAD, reason_phrase=reason)
        events.append(ev.ProtocolError(status=400, reason=f"HTTP/3: {reason}"))
        self._terminate(events, H3_EXCESSIVE_LOAD, reason)

    def _goaway(self) -> None:
        """Graceful shutdown: GOAWAY, refuse new requests, finish open ones, then close."""
        if self._terminated or self._goaway_sent:
            return
        self._goaway_sent = True
        self._closing = True
        # The first request stream id we will not process (RFC 9114 5.2).
        self._goaway_id = self._highest_request + 4 if self._highest_request >= 0 else 0
        self._h3.send_goaway(self._goaway_id)
        self._check_done()

    def _check_done(self) -> None:
        if not self._closing or self._open_streams or self._terminated:
            return
        # CONNECTION_CLOSE discards whatever is unsent or unacknowledged: wait until
        # every finished response has been delivered (an idle peer hits the timeout).
        self._unacked = {s for s in self._unacked if not all_acknowledged(self._quic, s)}
        # The GOAWAY too: a client that never sees it (its packet lost, and the
        # retransmission cut off by CONNECTION_CLOSE) cannot tell which of its requests
        # were refused unprocessed (RFC 9114 5.2).
        goaway_delivered = written_acknowledged(self._quic, local_control_stream(self._h3))
        if not self._unacked and goaway_delivered:
            self._closing = False
            self._quic.close(error_code=H3_NO_ERROR, reason_phrase="server shutting down")

    def _terminate(self, events: list[ev.Event], code: int, reason: str) -> None:
        if self._terminated:
            return
        self._terminated = True
        for sid in sorted(self._open_streams):
            events.append(ev.StreamReset(sid, code))
        self._open_streams.clear()
        self._receiving.clear()
        events.append(ev.ConnectionTerminated(code, reason or "connection closed"))
