"""Server side of one HTTP/2 connection: a sans-IO state machine over the h2 library.

Same contract as :class:`~httpy.core.http1.HTTP1Connection`::

    conn = HTTP2Connection(config)       # the server preface is queued at once
    events = conn.receive_data(data, now)   # now: the backend's clock (flood budgets)
    conn.send(SendResponse(...)); conn.send(SendData(...))
    out = conn.data_to_send()
    conn.should_close

h2 does framing, HPACK and stream states.  This class adds what h2 leaves to its caller
(and works around what it does not do right):

* **Flow control policy.**  Request body bytes are acknowledged (WINDOW_UPDATE) only when
  the application has consumed them (:meth:`acknowledge`), so a slow handler throttles
  its own stream, not the connection.  Response data the peer's window cannot take yet
  is held per stream and sent as WINDOW_UPDATEs arrive; :class:`StreamWritable` tells the
  backend when a stream's queue is empty, so it never queues without bound.
* **Malformed requests are stream errors** (RST_STREAM PROTOCOL_ERROR, RFC 9113 8.1.1),
  checked with h2's own rules (:mod:`.http2_checks`); h2 would end the connection.  So
  is a body whose DATA disagrees with its content-length (counted here, not by h2); the
  handler gets a :class:`StreamReset`, never the end of that body.
* **Limits** as HTTP/1.1 has them: ``max_body_bytes`` (413), ``max_header_count`` (431),
  answered on the stream; ``max_header_bytes`` is SETTINGS_MAX_HEADER_LIST_SIZE.
* **Connection-specific headers** (``connection``, ``transfer-encoding``, ...) from the
  application are dropped from responses, as RFC 9113 8.2.2 requires; so is content in
  answers to HEAD and in 204/304 responses.
* **Concurrency**: streams over SETTINGS_MAX_CONCURRENT_STREAMS are refused one by one
  (REFUSED_STREAM, RFC 9113 5.1.2); h2 would end the connection.
* **Flood defences**: two token buckets refilled on the caller's clock.  Resets (the
  client's, CVE-2023-44487, and those its input provokes, "MadeYouReset") and control
  frames (PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty or tiny DATA, unknown) end the
  connection with GOAWAY ENHANCE_YOUR_CALM when their budget runs dry.  The buckets
  (``flood_budgets``) may be shared by all connections of one client, so reconnecting
  does not refill them.  Oversized frames are refused from their header; h2 bounds
  CONTINUATION sequences and the header list.
* **Timeouts** are timed by the backend: :meth:`receive_timeout` ends an idle connection
  (GOAWAY NO_ERROR) or one whose header block is still incomplete
  (:attr:`receiving_header_block`; GOAWAY PROTOCOL_ERROR).
* **Error codes h2 gets wrong** (RFC 9113 4.3, 5.1, 6.5): COMPRESSION_ERROR for HPACK
  errors, FRAME_SIZE_ERROR for a SETTINGS ACK with a payload, STREAM_CLOSED as a
  connection error for DATA after END_STREAM both ways (:mod:`.http2_checks`).
* **Trailers** both ways: :class:`TrailersReceived` events, :class:`SendTrailers` sent as
  a HEADERS frame once the stream's queued data is out.
* **Graceful GOAWAY**: built here, since h2 stops sending on any GOAWAY; a client's
  graceful GOAWAY lets its open streams finish.  :attr:`said_goodbye` tells the backend
  to close lingering.
* **h2c upgrade** (RFC 7540 3.2): ``HTTP2Connection(config, upgrade=(settings, request))``
  answers the upgraded request as stream 1.
* **Server push** via :meth:`push`, when the client allows it.

Peer errors become :class:`ProtocolError` events (connection errors, with GOAWAY sent)
or :class:`StreamReset` events (stream errors); nothing raises out of ``receive_data``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from . import events as ev
from .config import Config
from .errors import LocalProtocolError, StreamClosedError
from .fields import CONNECTION_SPECIFIC, multiplexed_fields
from .h2_internals import (
    closed_by_end_stream,
    fix_table_size_updates,
    get_stream,
    install_decoder,
    is_closed,
    reopen_after_goaway,
    replace_local_settings,
)
from .http2_checks import (
    REQUEST_RULES,
    TRAILER_RULES,
    FloodBudgets,
    FrameLengthGuard,
    ServerH2Connection,
    StrictDecoder,
    malformed,
)
from .http2_outbound import Outbound, send_window
from .multiplexed_head import BodyCounter, MultiplexedHead
from .protocol import MultiplexedProtocol, error_body

#: DATA frames smaller than this (and not ending the body) cost a control-frame token:
#: a body dribbled a few bytes per frame costs a frame's work per byte.
SMALL_DATA = 128

_ENDED_KEPT = 256


class HTTP2Connection(MultiplexedProtocol):
    """One server-side HTTP/2 connection.  Not thread-safe; one task drives it."""

    library_errors = (h2.exceptions.ProtocolError,)

    def __init__(
        self,
        config: Config | None = None,
        *,
        upgrade: tuple[bytes, ev.RequestReceived] | None = None,
        flood_budgets: FloodBudgets | None = None,
    ) -> None:
        self._config = config if config is not None else Config()
        cfg = self._config
        # Request headers are validated here, not by h2 (validate_inbound_headers=False):
        # h2 makes every malformed request a connection error, while RFC 9113 8.1.1 makes
        # it a stream error, so one bad request must not end its neighbours' streams.
        self._h2 = ServerH2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_inbound_headers=False,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self._settings: dict[h2.settings.SettingCodes, int] = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: cfg.h2_max_concurrent_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: cfg.max_header_bytes,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: cfg.h2_stream_window,
            # RFC 8441: extended CONNECT (WebSockets over HTTP/2).
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        }
        replace_local_settings(self._h2, self._settings)
        # Settings given as initial values never go through h2's "acknowledged" path,
        # which is what applies MAX_HEADER_LIST_SIZE to the HPACK decoder: apply it here
        # (otherwise the decoder keeps h2's 64 KiB default).  The decoder reports
        # decoding errors as COMPRESSION_ERROR (RFC 9113 4.3).  A list over
        # max_header_bytes is answered 431 on its stream, as HTTP/1.1 and HTTP/3 do; that
        # needs the block decoded (RFC 9113 10.5.1: HPACK state must stay consistent), so
        # the decoder itself stops only at twice the limit (then ENHANCE_YOUR_CALM).
        install_decoder(self._h2, StrictDecoder(max_header_list_size=2 * cfg.max_header_bytes))
        self._outbound: dict[int, Outbound] = {}
        self._closed = False
        self._goaway_sent = False
        #: The peer closed, or went away with its own GOAWAY: nothing left to linger for.
        self._peer_left = False
        #: The peer sent a graceful GOAWAY: finish the open streams, then close.
        self._goaway_received = False
        #: Frames h2 cannot send itself (a graceful GOAWAY), in order with h2's output.
        self._out = bytearray()
        # A header block twice max_header_bytes is where h2's decoding stops too (431
        # below that, on the stream; GOAWAY above): cut it there, before it is buffered.
        self._frame_lengths = FrameLengthGuard(2 * cfg.max_header_bytes)
        #: Recent streams closed by END_STREAM both ways: DATA on them is a connection
        #: error (RFC 9113 5.1).  Bounded: older ones get h2's stream error instead.
        self._ended: dict[int, None] = {}
        # Flood budgets (token buckets on the backend's clock, given to receive_data).
        self._now = 0.0
        budgets = flood_budgets if flood_budgets is not None else FloodBudgets(cfg)
        self._resets = budgets.resets
        self._control = budgets.control
        #: Why the connection is over budget (checked after each h2 event), or None.
        self._flood: str | None = None
        self._open_streams: set[int] = set()
        #: Open streams whose request body is still coming and wanted, with its size so far.
        self._receiving: set[int] = set()
        self._body_bytes = BodyCounter(cfg.max_body_bytes)
        #: Open streams with a content-length: the body bytes still expected.
        self._declared: dict[int, int] = {}
        #: Extended CONNECT streams (RFC 8441): their DATA is a tunnel, not a body, so
        #: max_body_bytes does not apply (the WebSocket layer bounds its messages).
        self._tunnels: set[int] = set()
        #: Open streams whose final response head has been sent.
        self._responded: set[int] = set()
        #: Open streams whose response has no content (HEAD requests; 204 and 304
        #: answers, RFC 9110 6.4.1): the body the application writes is dropped.
        self._bodiless: set[int] = set()
        self._upgrade_events: list[ev.Event] = []
        if upgrade is not None:
            settings, request = upgrade
            self._h2.initiate_upgrade_connection(settings)
            self._open_streams.add(1)
            if request.method == "HEAD":
                self._bodiless.add(1)
            self._upgrade_events.append(
                ev.RequestReceived(
                    stream_id=1,
                    method=request.method,
                    target=request.target,
                    headers=tuple(
                        h
                        for h in request.headers
                        if h[0] not in CONNECTION_SPECIFIC and h[0] != b"http2-settings"
                    ),
                    http_version="2",
                    body_expected=False,
                )
            )
            self._upgrade_events.append(ev.StreamEnded(1))
        else:
            self._h2.initiate_connection()
        # The SETTINGS frame above advertised h2_max_concurrent_streams; h2 itself gets a
        # higher limit.  Streams over the advertised one are refused here one by one
        # (REFUSED_STREAM, RFC 9113 5.1.2), where h2 would end the connection.  h2 counts
        # the streams of a whole read before we see them (and reset the refused or
        # malformed ones), so its limit leaves room for a read's worth of those; it stays
        # the hard cap against a client that ignores both the refusals and the budget.
        replace_local_settings(
            self._h2,
            {
                **self._settings,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: (
                    2 * cfg.h2_max_concurrent_streams + cfg.h2_max_reset_streams
                ),
            },
        )
        extra_window = cfg.h2_connection_window - 65535
        if extra_window > 0:
            self._h2.increment_flow_control_window(extra_window)

    # ------------------------------------------------------------------ inspection

    @property
    def should_close(self) -> bool:
        """True once the connection is finished: flush ``data_to_send``, then close."""
        return self._closed

    @property
    def said_goodbye(self) -> bool:
        """True when the connection ended by our GOAWAY (error or graceful) while the peer
        may still be sending: the backend closes with a lingering read, so the peer gets
        to read the GOAWAY."""
        return self._closed and not self._peer_left

    @property
    def receiving_header_block(self) -> bool:
        """True while a header block is partly received: from a HEADERS frame's header
        until its END_HEADERS frame is whole (h2 shows nothing of it before).  The
        backend bounds that time by ``header_timeout`` (see :meth:`receive_timeout`)."""
        return self._frame_lengths.in_header_block

    def pending_bytes(self, stream_id: int) -> int:
        """Response bytes queued on ``stream_id`` awaiting flow-control window."""
        outbound = self._outbound.get(stream_id)
        return outbound.size if outbound is not None else 0

    @property
    def push_enabled(self) -> bool:
        return (
            bool(self._h2.remote_settings.enable_push)
            and not self._goaway_sent
            and not self._goaway_received
        )

    # ------------------------------------------------------------------ input

    def initial_events(self) -> list[ev.Event]:
        """Events for the request an h2c upgrade carried (empty otherwise)."""
        events, self._upgrade_events = self._upgrade_events, []
        return events

    def receive_data(self, data: bytes, now: float = 0.0) -> list[ev.Event]:
        """Feed bytes from the peer; return the events they complete.

        ``now`` (seconds, any monotonic clock) refills the flood budgets: without it
        they are plain counts over the connection's life.
        """
        if self._closed:
            return []
        self._now = now
        events: list[ev.Event] = []
        guard = self._frame_lengths
        refused = guard.check(data, self._h2.max_inbound_frame_size, self._ended)
        if refused:
            self._fail(events, *refused)
            return events
        if guard.resets and guard.resets > self._resets.available(now):
            # More resets than the budget holds: refused before h2 parses the streams
            # they cancel (the budget is the client's, so reconnecting does not help).
            self._resets.take(now, guard.resets)
            reason = f"{guard.resets} stream resets in one read, over budget (rapid reset)"
            self._fail(events, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, reason)
            return events
        split = guard.after_goaway
        zero_increments = guard.zero_window_updates
        if zero_increments:
            data, split = _without_frames(data, zero_increments, split)
        if split is None:
            self._feed(data, events)
        else:
            # h2 closes its state machine on any GOAWAY, and reads the frames behind it
            # in the same call in that state (a SETTINGS ACK there is a "protocol
            # error").  A graceful GOAWAY leaves the connection open for the requests in
            # flight (RFC 9113 6.8): feed it alone, so _translate can reopen h2 first.
            self._feed(data[:split], events)
            if not self._closed:
                self._feed(data[split:], events)
        for _, _, stream_id in zero_increments:
            self._zero_increment(stream_id, events)
        return events

    def _zero_increment(self, stream_id: int, events: list[ev.Event]) -> None:
        """A WINDOW_UPDATE of 0 on a stream: a stream error (RFC 9113 6.9), counted
        against the reset budget; on a stream already closed, nothing to reset."""
        if self._closed or stream_id not in self._open_streams:
            return
        self._reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        self._spend_reset("WINDOW_UPDATE of 0")
        events.append(ev.StreamReset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR))

    def _feed(self, data: bytes, events: list[ev.Event]) -> None:
        # h2 drops its unsent output when a GOAWAY arrives: keep it.
        self._out += self._h2.data_to_send()
        try:
            for event in self._h2.receive_data(data):
                self._translate(event, events)
                if not self._closed:
                    self._check_floods(events)  # per frame: stop at the limit
                if self._closed:
                    break
        except h2.exceptions.ProtocolError as exc:
            code = getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._fail(events, int(code), str(exc) or type(exc).__name__)

    def receive_eof(self) -> list[ev.Event]:
        """The peer closed the connection."""
        if self._closed:
            return []
        self._closed = self._peer_left = True
        events: list[ev.Event] = [ev.StreamReset(sid) for sid in sorted(self._open_streams)]
        self._open_streams.clear()
        events.append(ev.ConnectionTerminated(reason="peer closed the connection"))
        return events

    def receive_timeout(self) -> list[ev.Event]:
        """The backend's timer fired: the idle timeout (no open stream), or
        ``header_timeout`` while :attr:`receiving_header_block`.

        Idle: say goodbye (GOAWAY NO_ERROR) and close.  A header block still incomplete
        is a connection error (GOAWAY PROTOCOL_ERROR, a :class:`ProtocolError` event):
        nothing else may be sent on the connection until the block ends (RFC 9113 6.10),
        so a client dripping CONTINUATION frames would hold it indefinitely.
        """
        if self._closed:
            return []
        if self._frame_lengths.in_header_block:
            events: list[ev.Event] = []
            self._fail(
                events,
                h2.errors.ErrorCodes.PROTOCOL_ERROR,
                "header block not completed within header_timeout",
            )
            return events
        self._h2.close_connection(h2.errors.ErrorCodes.NO_ERROR)
        self._closed = True
        return [ev.ConnectionTerminated(reason="idle timeout")]

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` body bytes of ``stream_id``: open the window."""
        if self._closed or size <= 0:
            return
        # h2 credits the connection window even when the stream is gone, so that other
        # streams don't starve; it only refuses a stream it never knew.
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.acknowledge_received_data(size, stream_id)

    # ------------------------------------------------------------------ output

    @property
    def finished(self) -> bool:
        """True once the connection takes no more commands (see ``ServerProtocol``)."""
        return self._closed

    def translate_error(self, exc: Exception) -> Exception:
        if isinstance(exc, h2.exceptions.StreamClosedError):
            return StreamClosedError(f"stream {exc.stream_id} is closed")
        return LocalProtocolError(str(exc))

    def _on_close_connection(self, command: ev.CloseConnection) -> None:
        self._goaway(command.error_code)

    def _on_send_response(self, command: ev.SendResponse) -> None:
        self._send_headers(command.stream_id, command.status, command.headers, False)

    def _on_send_informational(self, command: ev.SendInformational) -> None:
        if 100 < command.status < 200 and command.status != 101:
            self._send_headers(command.stream_id, command.status, command.headers, False)

    def _on_send_data(self, command: ev.SendData) -> None:
        self._queue_data(command.stream_id, command.data, command.end_stream)

    def _on_send_trailers(self, command: ev.SendTrailers) -> None:
        self._queue_data(command.stream_id, b"", True, command.headers)

    def _on_reset_stream(self, command: ev.ResetStream) -> None:
        self._reset(command.stream_id, command.error_code or h2.errors.ErrorCodes.INTERNAL_ERROR)

    def push(
        self, stream_id: int, method: str, path: str, authority: bytes, scheme: str
    ) -> int | None:
        """Promise a pushed response for ``path`` on ``stream_id``.

        Returns the promised stream id (its response is then sent like any other), or
        None when the client disabled push or the stream can no longer carry a promise.
        """
        if not self.push_enabled or stream_id % 2 == 0 or stream_id not in self._open_streams:
            return None
        promised = self._h2.get_next_available_stream_id()
        try:
            self._h2.push_stream(
                stream_id,
                promised,
                [
                    (b":method", method.encode("ascii")),
                    (b":path", path.encode("latin-1")),
                    (b":authority", authority),
                    (b":scheme", scheme.encode("ascii")),
                ],
            )
        except h2.exceptions.ProtocolError:
            return None
        self._open_streams.add(promised)
        return promised

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call (may be empty)."""
        if self._out:
            self._out += self._h2.data_to_send()
            data = bytes(self._out)
            self._out.clear()
            return data
        return self._h2.data_to_send()

    # ------------------------------------------------------------------ internals

    def _translate(self, event: h2.events.Event, events: list[ev.Event]) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event, events)
        elif isinstance(event, h2.events.DataReceived):
            sid, unread = event.stream_id, event.flow_controlled_length
            if len(event.data) < SMALL_DATA and not event.stream_ended:
                self._spend_control("empty or tiny DATA frames")
            if sid in self._declared:
                self._declared[sid] -= len(event.data)
                if self._declared[sid] < 0:
                    self._body_disagrees(sid, events)
            if sid in self._receiving and self._accept_body(sid, len(event.data), events):
                if event.data:
                    events.append(ev.BodyReceived(sid, bytes(event.data)))
                unread -= len(event.data)  # acknowledged as the application reads it
            if unread > 0:
                # Padding, and body no one will read (the response is complete, or the
                # body is over the limit): give the window back now.
                self._h2.acknowledge_received_data(unread, sid)
        elif isinstance(event, h2.events.StreamEnded):
            if self._declared.get(event.stream_id):
                self._body_disagrees(event.stream_id, events)  # fewer bytes than declared
            if event.stream_id in self._receiving:
                self._receiving.discard(event.stream_id)
                events.append(ev.StreamEnded(event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self._open_streams:
                self._forget(event.stream_id)
                # The client's resets (rapid reset), and the ones its input made h2 send
                # ("MadeYouReset"): both end work the client asked for.
                self._spend_reset("client" if event.remote_reset else "provoked")
                events.append(ev.StreamReset(event.stream_id, int(event.error_code or 0)))
        elif isinstance(event, h2.events.WindowUpdated):
            # Paid back by the DATA frames we send (_send_window): a client acknowledging
            # what it receives never runs out; one flooding WINDOW_UPDATEs does.
            self._spend_control("WINDOW_UPDATE frames")
            self._flush_outbound(events)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._spend_control("SETTINGS frames")
            fix_table_size_updates(self._h2)
            self._flush_outbound(events)
        elif isinstance(
            event,
            h2.events.PingReceived
            | h2.events.PriorityUpdated
            | h2.events.SettingsAcknowledged
            | h2.events.UnknownFrameReceived,
        ):
            self._spend_control("control frames (PING, PRIORITY, SETTINGS ACK, unknown)")
        elif isinstance(event, h2.events.ConnectionTerminated):
            if event.error_code == h2.errors.ErrorCodes.NO_ERROR and self._open_streams:
                # A graceful GOAWAY from the client: the requests it already sent still
                # get their answers (RFC 9113 6.8); only new pushes are off.  h2 closes
                # its state machine on any GOAWAY (python-hyper/h2#1181): reopen it.
                reopen_after_goaway(self._h2)
                self._goaway_received = True
                return
            self._closed = self._peer_left = True
            for sid in sorted(self._open_streams):
                events.append(ev.StreamReset(sid, int(event.error_code or 0)))
            self._open_streams.clear()
            events.append(ev.ConnectionTerminated(int(event.error_code or 0), "peer sent GOAWAY"))
        elif isinstance(event, h2.events.TrailersReceived):
            self._on_trailers(event, events)

    def _on_trailers(self, event: h2.events.TrailersReceived, events: list[ev.Event]) -> None:
        sid = event.stream_id
        if sid not in self._open_streams:
            return
        fields = event.headers or ()
        if malformed(fields, TRAILER_RULES):
            self._h2.reset_stream(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._stream_done(sid)
            self._spend_reset("malformed trailers")
            events.append(ev.StreamReset(sid, h2.errors.ErrorCodes.PROTOCOL_ERROR))
        elif sid in self._receiving:
            # The StreamEnded h2 reports with them follows.
            events.append(ev.TrailersReceived(sid, tuple((bytes(n), bytes(v)) for n, v in fields)))

    def _on_request(self, event: h2.events.RequestReceived, events: list[ev.Event]) -> None:
        stream_id = event.stream_id
        if self._goaway_sent:
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        client_streams = sum(1 for sid in self._open_streams if sid % 2)
        if client_streams >= self._config.h2_max_concurrent_streams:
            # Over SETTINGS_MAX_CONCURRENT_STREAMS: a stream error (RFC 9113 5.1.2); the
            # client may retry it.  Counted as a reset we were made to send.
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            self._spend_reset("refused")
            return
        if malformed(event.headers or (), REQUEST_RULES) or not _valid_content_length(
            event.headers or ()
        ):
            # A malformed request is a stream error (RFC 9113 8.1.1, 8.2.1, 8.2.2, 8.3);
            # it counts with client resets against the rapid-reset limit.
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._spend_reset("malformed request")
            return
        head = MultiplexedHead.parse(event.headers or ())
        self._control.give(10)  # a stream's own PRIORITY, WINDOW_UPDATE, ... frames
        self._open_streams.add(stream_id)
        problem = head.limit_problem(self._config)
        if problem is not None:
            self._answer(stream_id, *problem)
            return
        declared = head.declared_length
        if declared is not None and head.protocol is None:
            self._declared[stream_id] = declared
        self._receiving.add(stream_id)  # until StreamEnded, which may be in this batch
        if head.protocol is not None:
            self._tunnels.add(stream_id)  # extended CONNECT (RFC 8441)
        if head.method == b"HEAD":
            self._bodiless.add(stream_id)
        events.append(head.request_event(stream_id, "2", body_expected=event.stream_ended is None))

    def _send_headers(self, stream_id: int, status: int, headers: ev.Headers, end: bool) -> None:
        block = [(b":status", b"%d" % status), *multiplexed_fields(headers)]
        self._h2.send_headers(stream_id, block, end_stream=end)
        self._head_sent(stream_id, status)
        if end:
            self._stream_done(stream_id)

    def _accept_body(self, stream_id: int, size: int, events: list[ev.Event]) -> bool:
        """Count ``size`` body bytes; over ``max_body_bytes``, answer 413 and say False."""
        if stream_id in self._tunnels or self._body_bytes.accept(stream_id, size):
            return True
        # The handler is cancelled (its stream "reset"); the client gets a 413 if no
        # response has started, else RST_STREAM CANCEL.
        events.append(ev.StreamReset(stream_id, h2.errors.ErrorCodes.CANCEL))
        self._answer(stream_id, 413, f"request body larger than {self._body_bytes.limit} bytes")
        return False

    def _body_disagrees(self, stream_id: int, events: list[ev.Event]) -> None:
        """The DATA sent disagrees with the content-length: a malformed request, so a
        stream error (RFC 9113 8.1.1) that cancels the handler before its body ends."""
        self._declared.pop(stream_id, None)
        if stream_id in self._open_streams:
            self._reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._spend_reset("content-length disagrees with DATA")
            events.append(ev.StreamReset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR))

    def _answer(self, stream_id: int, status: int, reason: str) -> None:
        """Answer an open stream ourselves (a limit was broken), as HTTP/1.1's core does."""
        self._receiving.discard(stream_id)
        if stream_id in self._responded:
            self._reset(stream_id, h2.errors.ErrorCodes.CANCEL)
            return
        self._outbound.pop(stream_id, None)
        headers, body = error_body(status, reason)
        self._send_headers(stream_id, status, headers, False)
        self._queue_data(stream_id, body, True)

    def _queue_data(
        self, stream_id: int, data: bytes, end: bool, trailers: ev.Headers | None = None
    ) -> None:
        if stream_id not in self._open_streams:
            raise StreamClosedError(f"stream {stream_id} is closed")
        if stream_id in self._bodiless:
            data, trailers = b"", None
        outbound = self._outbound.setdefault(stream_id, Outbound())
        if outbound.end:
            raise LocalProtocolError(f"the response on stream {stream_id} is complete")
        outbound.add(data, end, trailers)
        self._send_window(stream_id, outbound, None)

    def _flush_outbound(self, events: list[ev.Event]) -> None:
        for stream_id, outbound in list(self._outbound.items()):
            stream = get_stream(self._h2, stream_id)
            if stream is None or stream.closed:
                # Reset by the client later in this same read: h2 processes every frame
                # of a read before it reports any, so the StreamReset for it comes after
                # this event.  Nothing more may be sent on it.
                continue
            self._send_window(stream_id, outbound, events)

    def _send_window(
        self, stream_id: int, outbound: Outbound, events: list[ev.Event] | None
    ) -> None:
        """Send as much of ``outbound`` as the windows allow."""
        frames, progress = send_window(self._h2, stream_id, outbound)
        self._control.give(2 * frames)  # the WINDOW_UPDATEs (stream, connection) they earn
        if progress == "finished":
            self._stream_done(stream_id)
        if progress != "blocked" and events is not None:
            events.append(ev.StreamWritable(stream_id))

    def _forget(self, stream_id: int) -> None:
        self._open_streams.discard(stream_id)
        self._receiving.discard(stream_id)
        self._responded.discard(stream_id)
        self._bodiless.discard(stream_id)
        self._outbound.pop(stream_id, None)
        self._body_bytes.forget(stream_id)
        self._declared.pop(stream_id, None)
        self._tunnels.discard(stream_id)

    def _stream_done(self, stream_id: int) -> None:
        self._outbound.pop(stream_id, None)
        if stream_id in self._open_streams:
            self._forget(stream_id)
            stream = get_stream(self._h2, stream_id)
            if stream is not None and not stream.closed:
                # The response is complete but the request body is still coming (an early
                # 413, a handler that ignored the body): ask the client to stop sending,
                # without error (RFC 9113 8.1), so its stream doesn't stall on our window.
                self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)
            elif stream is not None and closed_by_end_stream(stream):
                self._ended[stream_id] = None
                if len(self._ended) > _ENDED_KEPT:
                    del self._ended[next(iter(self._ended))]
        if not self._open_streams:
            if self._goaway_sent:
                self._closed = True
            elif self._goaway_received:
                self._goaway(h2.errors.ErrorCodes.NO_ERROR)  # and close

    def _reset(self, stream_id: int, code: int) -> None:
        if stream_id in self._open_streams:
            self._h2.reset_stream(stream_id, code)
            self._stream_done(stream_id)

    def _goaway(self, code: int) -> None:
        """Graceful shutdown: refuse new streams, finish open ones, then close.

        The GOAWAY frame is built here, not by ``H2Connection.close_connection``: h2 closes
        its state machine on any GOAWAY and would refuse to send the responses still owed
        (python-hyper/h2#1181).
        """
        if self._closed or self._goaway_sent:
            return
        self._goaway_sent = True
        frame = hyperframe.frame.GoAwayFrame(
            0, last_stream_id=self._h2.highest_inbound_stream_id, error_code=code
        )
        self._out += self._h2.data_to_send()
        self._out += frame.serialize()
        if not self._open_streams:
            self._closed = True

    def _spend_reset(self, kind: str) -> None:
        if not self._resets.take(self._now) and self._flood is None:
            self._flood = f"stream resets over budget (rapid reset; last one {kind})"

    def _spend_control(self, kind: str) -> None:
        if not self._control.take(self._now) and self._flood is None:
            self._flood = f"{kind} over the control-frame budget (flood)"

    def _check_floods(self, events: list[ev.Event]) -> None:
        if self._flood is not None:
            # h2 answered every PING of this read already: drop those answers, so a flood
            # gets one GOAWAY back, not its own volume.
            self._h2.clear_outbound_data_buffer()
            self._fail(events, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, self._flood)

    def _fail(self, events: list[ev.Event], code: int, reason: str) -> None:
        """A connection error: GOAWAY with ``code``, then close."""
        # When h2 itself raised, it has queued its GOAWAY already: don't send a second.
        if not is_closed(self._h2):
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.close_connection(code)
        self._closed = True
        for sid in sorted(self._open_streams):
            events.append(ev.StreamReset(sid, code))
        self._open_streams.clear()
        events.append(ev.ProtocolError(status=400, reason=f"HTTP/2 error {code}: {reason}"))


def _without_frames(
    data: bytes, frames: list[tuple[int, int, int]], split: int | None
) -> tuple[bytes, int | None]:
    """``data`` without the ``(start, end, _)`` byte ranges, and ``split`` (an offset in
    ``data``, or None) moved to match."""
    kept, at, removed_before_split = [], 0, 0
    for start, end, _ in frames:
        kept.append(data[at:start])
        at = end
        if split is not None and end <= split:
            removed_before_split += end - start
    kept.append(data[at:])
    return b"".join(kept), None if split is None else split - removed_before_split


def _valid_content_length(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """content-length fields are digits, all the same value (RFC 9110 8.6)."""
    values = {bytes(v) for n, v in headers if bytes(n) == b"content-length"}
    return len(values) <= 1 and all(v.isdigit() for v in values)
