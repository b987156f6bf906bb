"""Server side of one HTTP/2 connection: a sans-IO state machine over the h2 library.

Same contract as :class:`~httpy.core.http1.HTTP1Connection`::

    conn = HTTP2Connection(config)       # the server preface is queued at once
    events = conn.receive_data(data)
    conn.send(SendResponse(...)); conn.send(SendData(...))
    out = conn.data_to_send()
    conn.should_close

h2 does framing, HPACK, stream states and header validation (RFC 9113 section 8).  This
class adds what h2 leaves to its caller:

* **Flow control policy.**  Request body bytes are acknowledged (WINDOW_UPDATE) only when
  the application has consumed them (:meth:`acknowledge`), so a slow handler throttles
  its own stream, not the connection.  Response data the peer's window cannot take yet
  is held per stream and sent as WINDOW_UPDATEs arrive; :class:`StreamWritable` tells the
  backend when a stream's queue is empty, so it never queues without bound.
* **Connection-specific headers** (``connection``, ``transfer-encoding``, ...) from the
  application are dropped from responses, as RFC 9113 8.2.2 requires.
* **Flood defences**: rapid reset (CVE-2023-44487), PING/SETTINGS/empty-DATA floods end
  the connection with GOAWAY ENHANCE_YOUR_CALM; h2 itself bounds CONTINUATION sequences
  and the decoded header list (SETTINGS_MAX_HEADER_LIST_SIZE).
* **h2c upgrade** (RFC 7540 3.2): ``HTTP2Connection(config, upgrade=(settings, request))``
  answers the upgraded request as stream 1.
* **Server push** via :meth:`push`, when the client allows it.

Peer errors become :class:`ProtocolError` events (connection errors, with GOAWAY sent)
or :class:`StreamReset` events (stream errors); nothing raises out of ``receive_data``.
"""

from __future__ import annotations

import contextlib
from collections import deque

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .config import Config
from .errors import LocalProtocolError, StreamClosedError
from .events import (
    BodyReceived,
    CloseConnection,
    Command,
    ConnectionTerminated,
    Event,
    Headers,
    ProtocolError,
    RequestReceived,
    ResetStream,
    SendData,
    SendInformational,
    SendResponse,
    StreamEnded,
    StreamReset,
    StreamWritable,
)

#: Header fields that are meaningful only to one HTTP/1.1 hop (RFC 9113 8.2.2).
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Outbound:
    """Response data waiting for flow-control window on one stream."""

    __slots__ = ("chunks", "end", "size")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.end = False


class HTTP2Connection:
    """One server-side HTTP/2 connection.  Not thread-safe; one task drives it."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        upgrade: tuple[bytes, RequestReceived] | None = None,
    ) -> None:
        self._config = config if config is not None else Config()
        cfg = self._config
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: cfg.h2_max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: cfg.max_header_bytes,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: cfg.h2_stream_window,
            },
        )
        self._outbound: dict[int, _Outbound] = {}
        self._closed = False
        self._goaway_sent = False
        self._streams_opened = 0
        self._resets_received = 0
        self._control_frames = 0
        self._open_streams: set[int] = set()
        self._upgrade_events: list[Event] = []
        if upgrade is not None:
            settings, request = upgrade
            self._h2.initiate_upgrade_connection(settings)
            self._streams_opened = 1
            self._open_streams.add(1)
            self._upgrade_events.append(
                RequestReceived(
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
            self._upgrade_events.append(StreamEnded(1))
        else:
            self._h2.initiate_connection()
        extra_window = cfg.h2_connection_window - 65535
        if extra_window > 0:
            self._h2.increment_flow_control_window(extra_window)

    # ------------------------------------------------------------------ inspection

    @property
    def should_close(self) -> bool:
        """True once the connection is finished: flush ``data_to_send``, then close."""
        return self._closed

    @property
    def idle(self) -> bool:
        """True when no stream is open (the keep-alive timeout applies)."""
        return not self._open_streams

    @property
    def open_stream_count(self) -> int:
        return len(self._open_streams)

    def pending_bytes(self, stream_id: int) -> int:
        """Response bytes queued on ``stream_id`` awaiting flow-control window."""
        outbound = self._outbound.get(stream_id)
        return outbound.size if outbound is not None else 0

    @property
    def push_enabled(self) -> bool:
        return bool(self._h2.remote_settings.enable_push) and not self._goaway_sent

    # ------------------------------------------------------------------ input

    def initial_events(self) -> list[Event]:
        """Events for the request an h2c upgrade carried (empty otherwise)."""
        events, self._upgrade_events = self._upgrade_events, []
        return events

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes from the peer; return the events they complete."""
        if self._closed:
            return []
        events: list[Event] = []
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR)
            self._fail(events, int(code), str(exc) or type(exc).__name__)
            return events
        for event in h2_events:
            self._translate(event, events)
            if self._closed:
                break
        if not self._closed:
            self._check_floods(events)
        return events

    def receive_eof(self) -> list[Event]:
        """The peer closed the connection."""
        if self._closed:
            return []
        self._closed = True
        events: list[Event] = [StreamReset(sid) for sid in sorted(self._open_streams)]
        self._open_streams.clear()
        events.append(ConnectionTerminated(reason="peer closed the connection"))
        return events

    def receive_timeout(self) -> list[Event]:
        """The backend's idle timer fired: say goodbye (GOAWAY NO_ERROR) and close."""
        if self._closed:
            return []
        self._h2.close_connection(h2.errors.ErrorCodes.NO_ERROR)
        self._closed = True
        return [ConnectionTerminated(reason="idle timeout")]

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` body bytes of ``stream_id``: open the window."""
        if self._closed or size <= 0:
            return
        try:
            self._h2.acknowledge_received_data(size, stream_id)
        except (h2.exceptions.StreamClosedError, KeyError):
            # The stream is gone; credit the connection window so others don't starve.
            self._h2.increment_flow_control_window(size)

    # ------------------------------------------------------------------ output

    def send(self, command: Command) -> None:
        """Apply a command from the application; its bytes go to ``data_to_send``."""
        if isinstance(command, CloseConnection):
            self._goaway(command.error_code)
            return
        if self._closed:
            raise StreamClosedError("connection is closed")
        try:
            if isinstance(command, SendResponse):
                self._send_headers(command.stream_id, command.status, command.headers, False)
            elif isinstance(command, SendInformational):
                if 100 < command.status < 200 and command.status != 101:
                    self._send_headers(command.stream_id, command.status, command.headers, False)
            elif isinstance(command, SendData):
                self._queue_data(command.stream_id, command.data, command.end_stream)
            elif isinstance(command, ResetStream):
                self._reset(
                    command.stream_id, command.error_code or h2.errors.ErrorCodes.INTERNAL_ERROR
                )
            else:
                raise LocalProtocolError(f"unknown command {command!r}")
        except h2.exceptions.StreamClosedError as exc:
            raise StreamClosedError(f"stream {exc.stream_id} is closed") from exc
        except h2.exceptions.ProtocolError as exc:
            raise LocalProtocolError(str(exc)) from exc

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
        return self._h2.data_to_send()

    # ------------------------------------------------------------------ internals

    def _translate(self, event: h2.events.Event, events: list[Event]) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event, events)
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id in self._open_streams:
                if event.data:
                    events.append(BodyReceived(event.stream_id, bytes(event.data)))
                elif not event.stream_ended:
                    self._control_frames += 1  # empty DATA frames (flood defence)
                # Padding is flow-controlled but never reaches the application.
                padding = event.flow_controlled_length - len(event.data)
                if padding > 0:
                    self._h2.acknowledge_received_data(padding, event.stream_id)
            elif event.flow_controlled_length:
                self._h2.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self._open_streams:
                events.append(StreamEnded(event.stream_id))
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in self._open_streams:
                self._open_streams.discard(event.stream_id)
                self._outbound.pop(event.stream_id, None)
                if event.remote_reset:
                    self._resets_received += 1
                events.append(StreamReset(event.stream_id, int(event.error_code or 0)))
        elif isinstance(event, h2.events.WindowUpdated):
            self._flush_outbound(events)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._control_frames += 1
            self._flush_outbound(events)
        elif isinstance(event, h2.events.PingReceived | h2.events.PriorityUpdated):
            self._control_frames += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._closed = True
            for sid in sorted(self._open_streams):
                events.append(StreamReset(sid, int(event.error_code or 0)))
            self._open_streams.clear()
            events.append(ConnectionTerminated(int(event.error_code or 0), "peer sent GOAWAY"))
        elif isinstance(event, h2.events.TrailersReceived):
            pass  # request trailers are not surfaced; StreamEnded follows if they end it

    def _on_request(self, event: h2.events.RequestReceived, events: list[Event]) -> None:
        stream_id = event.stream_id
        if self._goaway_sent:
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        method = path = b""
        authority: bytes | None = None
        regular: list[tuple[bytes, bytes]] = []
        has_host = False
        for name, value in event.headers or ():
            name, value = bytes(name), bytes(value)
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name.startswith(b":"):
                continue  # :scheme, :protocol (extended CONNECT arrives with WebSockets)
            else:
                has_host = has_host or name == b"host"
                regular.append((name, value))
        if authority is not None and not has_host:
            regular.insert(0, (b"host", authority))
        self._streams_opened += 1
        self._open_streams.add(stream_id)
        events.append(
            RequestReceived(
                stream_id=stream_id,
                method=method.decode("ascii", "replace"),
                target=path,
                headers=tuple(regular),
                http_version="2",
                body_expected=event.stream_ended is None,
            )
        )

    def _send_headers(self, stream_id: int, status: int, headers: Headers, end: bool) -> None:
        block = [(b":status", b"%d" % status)]
        block.extend(
            (name.lower(), value)
            for name, value in headers
            if name.lower() not in CONNECTION_SPECIFIC
        )
        self._h2.send_headers(stream_id, block, end_stream=end)
        if end:
            self._stream_done(stream_id)

    def _queue_data(self, stream_id: int, data: bytes, end: bool) -> None:
        if stream_id not in self._open_streams:
            raise StreamClosedError(f"stream {stream_id} is closed")
        outbound = self._outbound.setdefault(stream_id, _Outbound())
        if data:
            outbound.chunks.append(data)
            outbound.size += len(data)
        outbound.end = outbound.end or end
        self._send_window(stream_id, outbound, None)

    def _flush_outbound(self, events: list[Event]) -> None:
        for stream_id, outbound in list(self._outbound.items()):
            self._send_window(stream_id, outbound, events)

    def _send_window(self, stream_id: int, outbound: _Outbound, events: list[Event] | None) -> None:
        """Send as much of ``outbound`` as the windows allow."""
        h2conn = self._h2
        while outbound.chunks:
            window = min(
                h2conn.local_flow_control_window(stream_id), h2conn.max_outbound_frame_size
            )
            if window <= 0:
                return
            chunk = outbound.chunks.popleft()
            if len(chunk) > window:
                outbound.chunks.appendleft(chunk[window:])
                chunk = chunk[:window]
            outbound.size -= len(chunk)
            last = outbound.end and not outbound.chunks
            h2conn.send_data(stream_id, chunk, end_stream=last)
            if last:
                self._stream_done(stream_id)
                if events is not None:
                    events.append(StreamWritable(stream_id))
                return
        if outbound.end:
            h2conn.end_stream(stream_id)
            self._stream_done(stream_id)
        if events is not None:
            events.append(StreamWritable(stream_id))

    def _stream_done(self, stream_id: int) -> None:
        self._outbound.pop(stream_id, None)
        self._open_streams.discard(stream_id)
        if self._goaway_sent and not self._open_streams:
            self._closed = True

    def _reset(self, stream_id: int, code: int) -> None:
        if stream_id in self._open_streams:
            self._h2.reset_stream(stream_id, code)
            self._stream_done(stream_id)

    def _goaway(self, code: int) -> None:
        """Graceful shutdown: refuse new streams, finish open ones, then close."""
        if self._closed or self._goaway_sent:
            return
        self._goaway_sent = True
        self._h2.close_connection(code, last_stream_id=self._h2.highest_inbound_stream_id)
        if not self._open_streams:
            self._closed = True

    def _check_floods(self, events: list[Event]) -> None:
        cfg = self._config
        if (
            self._resets_received > cfg.h2_max_reset_streams
            and self._resets_received * 2 > self._streams_opened
        ):
            self._fail(
                events,
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                f"{self._resets_received} streams reset by the client (rapid reset)",
            )
        elif self._control_frames > cfg.h2_max_control_frames + 10 * self._streams_opened:
            self._fail(
                events,
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                f"{self._control_frames} control frames (flood)",
            )

    def _fail(self, events: list[Event], code: int, reason: str) -> None:
        """A connection error: GOAWAY with ``code``, then close."""
        with contextlib.suppress(h2.exceptions.ProtocolError):  # h2 may be closed already
            self._h2.close_connection(code)
        self._closed = True
        for sid in sorted(self._open_streams):
            events.append(StreamReset(sid, code))
        self._open_streams.clear()
        events.append(ProtocolError(status=400, reason=f"HTTP/2 error {code}: {reason}"))
