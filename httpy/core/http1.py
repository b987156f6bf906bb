"""Server side of one HTTP/1.1 connection: a sans-IO state machine over h11.

Contract::

    conn = HTTP1Connection(config)
    events = conn.receive_data(data)     # bytes from the socket -> events
    events = conn.receive_eof()          # the peer closed its sending side
    conn.send(SendResponse(...))         # commands from the application
    out = conn.data_to_send()            # bytes for the socket
    conn.should_close                    # True: flush, then close the transport

h11 parses requests; responses are serialised by :mod:`httpy.core.http1_writer` (h11's
send path cost as much as parsing, for work we validate anyway).  This class adds what
h11 leaves to its caller:

* **Strict framing** (RFC 9112).  Before h11 sees a request head we check the raw bytes:
  no bare CR or bare LF line endings, no obsolete line folding, no NUL.  A request with
  both ``Content-Length`` and ``Transfer-Encoding`` is rejected (section 6.1), as is any
  version other than 1.0 and 1.1 (505).  h11 accepts all of these.
* **Limits** from :class:`~httpy.core.config.Config`: request line (414), head size and
  header count (431), body size (413).  Each error is answered with a short plain-text
  body and ``Connection: close``, then the connection closes.
* **Pipelining**.  Each request gets its own h11 cycle.  Bytes that arrive after the
  current request are kept here, unparsed, until its response is complete; then
  ``receive_data(b"")`` parses the next one.  ``buffered_bytes`` tells the backend when
  to stop reading.
* **Stream ids**, so HTTP/1.1 requests look like HTTP/2 streams: 1, 3, 5, ...
* **HEAD** responses keep the application's headers and drop its body bytes.
* **Expect: 100-continue** is reported on the request event; the backend sends
  ``SendInformational(100)`` when the application first reads the body.
* **Trailers**: request trailers (chunked bodies) become :class:`TrailersReceived`;
  :class:`SendTrailers` writes response trailers only in a chunked body to a client that
  sent ``TE: trailers`` (RFC 9110 6.5, 10.1.4), and otherwise just ends the body.

Bad input never raises out of ``receive_data``: it becomes a
:class:`~httpy.core.events.ProtocolError` event with the status that was sent.
Commands that break the protocol raise :class:`~httpy.core.errors.LocalProtocolError`.
"""

from __future__ import annotations

import re
from enum import Enum

import h11

from . import events as ev
from .config import Config
from .errors import LocalProtocolError, StreamClosedError
from .http1_head import SimpleHead, head_parser
from .http1_writer import ResponseWriter, informational_head, start_response
from .protocol import QueuedOutput, ServerProtocol, error_body

_SUPPORTED_VERSIONS = (b"1.1", b"1.0")


class HTTP1Connection(QueuedOutput, ServerProtocol):
    """One server-side HTTP/1.1 connection.  Not thread-safe; one task drives it."""

    def __init__(self, config: Config | None = None) -> None:
        self._config = config if config is not None else Config()
        self._parse_head = head_parser(self._config.http1_parser)
        # Input not yet handed to h11: the start of the next request head, or requests
        # pipelined behind the one in flight.
        self._buffer = bytearray()
        # Bytes for the h11 cycle not yet given to it (see _pull_events).
        self._h11_backlog = bytearray()
        self._out: list[bytes] = []
        #: The request in flight, from the first byte of its head to the end of its
        #: response (None between requests).
        self._request: _InFlight | None = None
        self._last_stream_id = -1
        self._eof = False
        self._keep_alive = True
        self._closed = False

    # ------------------------------------------------------------------ inspection

    @property
    def should_close(self) -> bool:
        """True once the connection is finished: flush ``data_to_send``, then close."""
        return self._closed

    @property
    def idle(self) -> bool:
        """True between requests: no request in flight and no partial head buffered."""
        return self._request is None and not self._buffer and not self._closed

    @property
    def awaiting_head(self) -> bool:
        """True while the next request's head is incomplete (header timeout applies)."""
        return self._request is None and not self._closed

    @property
    def receiving_body(self) -> bool:
        """True while the in-flight request's body is still arriving."""
        request = self._request
        return request is not None and request.phase is not _COMPLETE and not self._closed

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet parsed (pipelined requests); bounds read-ahead."""
        return len(self._buffer)

    @property
    def current_stream_id(self) -> int | None:
        """The stream id of the request in flight, if any."""
        return self._request.stream_id if self._request is not None else None

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> list[ev.Event]:
        """Feed bytes from the peer; return the events they complete.

        ``receive_data(b"")`` parses what is already buffered: call it after a response
        completes to pick up pipelined requests.  Use :meth:`receive_eof` for EOF.
        """
        if self._closed:
            return []
        request = self._request
        if data:
            if request is None or request.phase is _COMPLETE:
                self._buffer += data
            elif isinstance(request.parser, _FixedLengthBody):
                request.parser.receive_data(data)
            else:
                self._h11_backlog += data
        events: list[ev.Event] = []
        if request is None:
            request = self._start_request(events)
            if request is None:
                return events
        if request.phase is not _COMPLETE:
            self._pull_events(request, events)
        return events

    def receive_eof(self) -> list[ev.Event]:
        """The peer will send nothing more.  Returns the final events."""
        if self._closed:
            return []
        self._eof = True
        events: list[ev.Event] = []
        request = self._request
        if request is not None and request.phase is not _COMPLETE:
            # Mid-body: the request can never complete.
            events.append(ev.StreamReset(request.stream_id))
            self._closed = True
        elif request is None:
            # Between requests (or inside an unfinished head): nothing to answer.
            self._closed = True
        events.append(ev.ConnectionTerminated(reason="peer closed the connection"))
        return events

    def receive_timeout(self) -> list[ev.Event]:
        """The backend's read timer fired (header, body or keep-alive timeout).

        Between requests the connection just closes.  A half-received head or body is
        answered with 408 when no response has started; the connection then closes.
        """
        if self._closed:
            return []
        events: list[ev.Event] = []
        request = self._request
        if request is None and not self._buffer:
            self._closed = True
            events.append(ev.ConnectionTerminated(reason="keep-alive timeout"))
        elif request is None or request.phase is not _COMPLETE:
            self._fail(events, 408, "request not received in time")
        return events

    # ------------------------------------------------------------------ output

    @property
    def finished(self) -> bool:
        """True once the connection takes no more commands (see ``ServerProtocol``)."""
        return self._closed

    def _on_close_connection(self, command: ev.CloseConnection) -> None:
        self._keep_alive = False
        if self._request is None:
            self._closed = True

    def _in_flight(self, stream_id: int) -> _InFlight:
        request = self._request
        if request is None or stream_id != request.stream_id:
            raise StreamClosedError(f"stream {stream_id} is not in flight")
        return request

    def _on_reset_stream(self, command: ev.ResetStream) -> None:
        self._in_flight(command.stream_id)
        # HTTP/1.1 has no stream reset: abandoning a response means closing.
        self._closed = True

    def take_unparsed(self) -> bytes:
        """Hand over the bytes received but not parsed, and stop: used when the
        connection switches protocols (101) and the rest belongs to the new protocol."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._closed = True
        self._request = None
        return data

    # ------------------------------------------------------------------ internals

    def _start_request(self, events: list[ev.Event]) -> _InFlight | None:
        """Check the buffered head; start the request it begins (its head parsed by the
        fast path, or handed to a fresh h11 cycle).

        Returns None when more bytes are needed or the connection failed.
        """
        buffer = self._buffer
        # RFC 9112 2.2: ignore empty lines before the request line.
        start = 0
        while buffer.startswith(b"\r\n", start):
            start += 2
        if start:
            del buffer[:start]
        if not buffer:
            return None
        end = buffer.find(b"\r\n\r\n")
        line_end = buffer.find(b"\n")
        # The request line may be max_request_line_bytes long, plus its CRLF.
        limit_line = self._config.max_request_line_bytes + 1
        if line_end > limit_line or (line_end < 0 and len(buffer) > limit_line):
            self._fail(events, 414, "request line too long")
            return None
        if end < 0:
            if buffer.count(b"\n") != buffer.count(b"\r\n"):
                self._fail(events, 400, "bare LF line ending in request head")
            elif len(buffer) > self._config.max_header_bytes:
                self._fail(events, 431, "request head too large")
            return None
        head_length = end + 4
        if head_length > self._config.max_header_bytes:
            self._fail(events, 431, "request head too large")
            return None
        head = bytes(buffer[:head_length])
        simple = self._parse_head(head)
        if simple is not None:
            body = _FixedLengthBody(simple.content_length)
            body.receive_data(buffer[head_length:])
            buffer.clear()
            request = self._begin_request(body)
            return request if self._on_simple_head(request, simple, events) else None
        problem = _head_problem(head)
        if problem is not None:
            self._fail(events, 400, problem)
            return None
        # The same bound then applies to chunk-size lines and trailers.
        cycle = h11.Connection(h11.SERVER, max_incomplete_event_size=self._config.max_header_bytes)
        self._h11_backlog = bytearray(buffer)
        buffer.clear()
        return self._begin_request(cycle)

    def _begin_request(self, parser: h11.Connection | _FixedLengthBody) -> _InFlight:
        self._last_stream_id += 2
        request = self._request = _InFlight(self._last_stream_id, parser)
        return request

    def _on_simple_head(self, request: _InFlight, head: SimpleHead, events: list[ev.Event]) -> bool:
        """Announce a request parse_simple_head took; False if it was refused."""
        waiting_continue = False
        if head.http_version == b"1.1":
            for name, value in head.headers:
                if name == b"expect" and b"100-continue" in (
                    t.strip().lower() for t in value.split(b",")
                ):
                    waiting_continue = True
                    break
        return self._announce(
            request,
            head.method,
            head.target,
            head.http_version,
            head.headers,
            waiting_continue,
            events,
        )

    def _pull_body(
        self, request: _InFlight, body: _FixedLengthBody, events: list[ev.Event]
    ) -> None:
        """The fast path's body: ``Content-Length`` bytes, then the next request."""
        pending = body.pending
        if pending and body.remaining:
            if len(pending) <= body.remaining:
                chunk = bytes(pending)
                pending.clear()
            else:
                chunk = bytes(pending[: body.remaining])
                del pending[: body.remaining]
            body.remaining -= len(chunk)
            request.body_bytes += len(chunk)  # within max_body_bytes: checked on the head
            events.append(ev.BodyReceived(request.stream_id, chunk))
        if body.remaining == 0:
            request.phase = _COMPLETE
            events.append(ev.StreamEnded(request.stream_id))
            # What follows stays unparsed until the response is complete (pipelining).
            if pending:
                self._buffer[:0] = pending
                pending.clear()

    def _pull_events(self, request: _InFlight, events: list[ev.Event]) -> None:
        cycle = request.parser
        if isinstance(cycle, _FixedLengthBody):
            self._pull_body(request, cycle, events)
            return
        while True:
            try:
                event = cycle.next_event()
                if event is h11.NEED_DATA and self._h11_backlog:
                    # Fed in slices of max_header_bytes: h11 bounds only incomplete
                    # lines, so a chunk-size line or trailer section longer than twice
                    # the limit is refused however the bytes were split into reads.
                    size = self._config.max_header_bytes
                    cycle.receive_data(bytes(self._h11_backlog[:size]))
                    del self._h11_backlog[:size]
                    continue
            except h11.RemoteProtocolError as exc:
                if request.phase is not _HEAD and exc.error_status_hint == 431:
                    # In the body, h11's buffer limit means a chunk-size line or a
                    # trailer section over max_header_bytes: bad framing, not a big head.
                    self._fail(events, 400, "chunk-size line or trailer section too long")
                else:
                    self._fail(events, exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                headers: ev.Headers = tuple((bytes(n), bytes(v)) for n, v in event.headers)
                if not self._announce(
                    request,
                    bytes(event.method),
                    bytes(event.target),
                    bytes(event.http_version),
                    headers,
                    cycle.they_are_waiting_for_100_continue,
                    events,
                ):
                    return
            elif isinstance(event, h11.Data):
                request.body_bytes += len(event.data)
                limit = self._config.max_body_bytes
                if limit is not None and request.body_bytes > limit:
                    self._fail(events, 413, f"request body larger than {limit} bytes")
                    return
                if event.data:
                    events.append(ev.BodyReceived(request.stream_id, bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                request.phase = _COMPLETE
                if event.headers:
                    trailers = tuple((bytes(n), bytes(v)) for n, v in event.headers)
                    if len(trailers) > self._config.max_header_count:
                        self._fail(events, 431, "too many trailer fields")
                        return
                    events.append(ev.TrailersReceived(request.stream_id, trailers))
                events.append(ev.StreamEnded(request.stream_id))
                # Reclaim what follows this request: it stays unparsed until the
                # response is complete, so pipelined requests are answered in order.
                trailing, _closed = cycle.trailing_data
                if trailing or self._h11_backlog:
                    self._buffer[:0] = trailing + self._h11_backlog
                    self._h11_backlog.clear()
                return
            elif isinstance(event, h11.ConnectionClosed):
                events.append(ev.ConnectionTerminated(reason="peer closed the connection"))
                self._closed = True
                return

    def _announce(
        self,
        request: _InFlight,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: ev.Headers,
        waiting_continue: bool,
        events: list[ev.Event],
    ) -> bool:
        """Apply our rules to a parsed head and emit RequestReceived; False if refused."""
        if version not in _SUPPORTED_VERSIONS:
            self._fail(events, 505, f"HTTP/{version.decode('ascii', 'replace')} not supported")
            return False
        if len(headers) > self._config.max_header_count:
            self._fail(events, 431, f"more than {self._config.max_header_count} header fields")
            return False
        if not target.startswith(b"/"):
            origin = _origin_form(method, target, headers)
            if isinstance(origin, str):
                self._fail(events, 400, origin)
                return False
            target, headers = origin
        content_length: int | None = None
        chunked = False
        upgrade: bytes | None = None
        connection_tokens: bytes = b""
        te_tokens: bytes = b""
        for name, value in headers:
            if name == b"content-length":
                content_length = int(value)  # h11 has validated it
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"upgrade":
                upgrade = value.strip().lower()
            elif name == b"connection":
                connection_tokens += b"," + value.lower()
            elif name == b"te":
                te_tokens += b"," + value.lower()
        if content_length is not None and chunked:
            # RFC 9112 6.1: a request with both is a smuggling attempt; never keep the
            # connection open for a next request after it.
            self._fail(events, 400, "both Content-Length and Transfer-Encoding present")
            return False
        limit = self._config.max_body_bytes
        if limit is not None and content_length is not None and content_length > limit:
            self._fail(events, 413, f"Content-Length {content_length} over the {limit} limit")
            return False
        if upgrade is not None and b"upgrade" not in connection_tokens:
            upgrade = None
        request.http_version = version
        request.is_head = method == b"HEAD"
        if connection_tokens:
            tokens = {t.strip() for t in connection_tokens.split(b",")}
            request.client_keep_alive = (
                b"close" not in tokens if version == b"1.1" else b"keep-alive" in tokens
            )
        else:  # the common head: no Connection field, the version's default
            request.client_keep_alive = version == b"1.1"
        if chunked and version == b"1.0":
            # RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
            # framing: answer it, then close (what follows may be a smuggled request).
            request.client_keep_alive = False
        request.waiting_continue = waiting_continue
        request.accepts_trailers = bool(te_tokens) and b"trailers" in (
            t.split(b";", 1)[0].strip() for t in te_tokens.split(b",")
        )
        events.append(
            ev.RequestReceived(
                stream_id=request.stream_id,
                method=method.decode("ascii"),
                target=target,
                headers=headers,
                http_version=version.decode("ascii"),
                body_expected=chunked or bool(content_length),
                expects_continue=waiting_continue,
                upgrade=upgrade,
            )
        )
        request.phase = _BODY
        return True

    def _on_send_informational(self, command: ev.SendInformational) -> None:
        request = self._in_flight(command.stream_id)
        # 1xx must not go to HTTP/1.0 clients (RFC 9110 15.2), nor after the final head.
        if request.http_version == b"1.0" or request.writer is not None:
            return
        if command.status == 100:
            if not request.waiting_continue:
                return
            request.waiting_continue = False
        self._out.append(informational_head(command.status, command.headers))

    def _on_send_response(self, command: ev.SendResponse) -> None:
        request = self._in_flight(command.stream_id)
        if request.writer is not None:
            raise LocalProtocolError("response already started")
        # An unread request body, a client that asked to close, or our own shutdown:
        # this is the last exchange on the connection.
        keep_alive = self._keep_alive and request.phase is _COMPLETE and request.client_keep_alive
        head, request.writer = start_response(
            command.status,
            command.headers,
            request_method_head=request.is_head,
            request_version=request.http_version,
            keep_alive=keep_alive,
        )
        request.waiting_continue = False
        self._out.append(head)

    def _on_send_data(self, command: ev.SendData) -> None:
        request = self._in_flight(command.stream_id)
        writer = request.writer
        if writer is None:
            raise LocalProtocolError("body sent before the response head")
        try:
            if command.data:
                self._out.append(writer.body(command.data))
        except LocalProtocolError:
            self._closed = True  # the response on the wire is broken: end the connection
            raise
        if command.end_stream:
            self._send_end(request, ())

    def _on_send_trailers(self, command: ev.SendTrailers) -> None:
        request = self._in_flight(command.stream_id)
        self._send_end(request, command.headers if request.accepts_trailers else ())

    def _send_end(self, request: _InFlight, trailers: ev.Headers) -> None:
        """End the response body (with ``trailers`` where the framing carries them)."""
        writer = request.writer
        if writer is None:
            raise LocalProtocolError("body sent before the response head")
        try:
            self._out.append(writer.end(trailers))
        except LocalProtocolError:
            self._closed = True
            raise
        if not writer.keep_alive or request.phase is not _COMPLETE or self._eof:
            self._closed = True
        self._request = None

    def _fail(self, events: list[ev.Event], status: int, reason: str) -> None:
        """Answer ``status`` if no response has started, then close."""
        request = self._request
        stream_id = None
        if request is not None and request.phase is not _HEAD:
            stream_id = request.stream_id
        if request is None or request.writer is None:
            self._out.append(_error_response(status, reason))
        self._closed = True
        self._request = None
        self._buffer.clear()
        self._h11_backlog.clear()
        events.append(ev.ProtocolError(status=status, reason=reason, stream_id=stream_id))


#: Control characters a request head may not contain (CR and LF only as line ends, which
#: the line checks cover; HTAB is allowed in field values).
CONTROL_CHARACTER = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Phase(Enum):
    """Where the request in flight is."""

    #: Its head is arriving (h11 parses it); nothing announced yet.
    HEAD = "head"
    #: RequestReceived went out; its body is arriving (errors now name its stream).
    BODY = "body"
    #: Received whole; its response is being sent.
    COMPLETE = "complete"


# Module constants: an Enum member read through its class costs ~0.1 us on 3.11, and the
# phase is tested several times per request.
_HEAD, _BODY, _COMPLETE = _Phase.HEAD, _Phase.BODY, _Phase.COMPLETE


class _InFlight:
    """The one request in flight on a connection: its state, in one record."""

    __slots__ = (
        "accepts_trailers",
        "body_bytes",
        "client_keep_alive",
        "http_version",
        "is_head",
        "parser",
        "phase",
        "stream_id",
        "waiting_continue",
        "writer",
    )

    def __init__(self, stream_id: int, parser: h11.Connection | _FixedLengthBody) -> None:
        self.stream_id = stream_id
        #: An h11 cycle, or a body of known length for a head parse_simple_head took.
        self.parser = parser
        self.phase = _HEAD
        self.body_bytes = 0
        self.http_version = b"1.1"
        self.is_head = False
        self.client_keep_alive = True
        #: The client sent ``TE: trailers``: it accepts trailer fields in a chunked body.
        self.accepts_trailers = False
        self.waiting_continue = False
        self.writer: ResponseWriter | None = None


class _FixedLengthBody:
    """The body of a request taken by the fast path: ``remaining`` bytes to come."""

    __slots__ = ("pending", "remaining")

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.pending = bytearray()

    def receive_data(self, data: bytes | bytearray) -> None:
        self.pending += data


def _origin_form(
    method: bytes, target: bytes, headers: ev.Headers
) -> tuple[bytes, ev.Headers] | str:
    """A request target that is not origin-form (RFC 9112 3.2), as origin-form, or why
    it is refused.

    ``*`` is for OPTIONS only.  An absolute-form ``http(s)://authority/path`` target must
    be accepted by a server, which then uses its authority instead of ``Host``
    (RFC 9112 3.2.2): we rewrite both, so the application and the router see one form.
    Authority-form (CONNECT: we are not a proxy) and anything else are refused with 400.
    """
    if target == b"*":
        return (target, headers) if method == b"OPTIONS" else "'*' target outside OPTIONS"
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return "request target is neither origin-form nor absolute-form"
    end = len(rest)
    for delimiter in (b"/", b"?", b"#"):
        at = rest.find(delimiter)
        if 0 <= at < end:
            end = at
    authority, path = rest[:end], rest[end:]
    if not authority or b"@" in authority or path.startswith(b"#"):
        # RFC 9110 4.2.4: no userinfo in http(s) URIs; a fragment is never sent.
        return "invalid authority in absolute-form target"
    if not path.startswith(b"/"):
        path = b"/" + path
    headers = (*(field for field in headers if field[0] != b"host"), (b"host", authority))
    return path, headers


def _head_problem(head: bytes) -> str | None:
    """Why a raw request head (ending in CRLFCRLF) breaks RFC 9112, or None."""
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf:
        return "bare LF line ending in request head"
    if head.count(b"\r") != crlf:
        return "bare CR in request head"
    if b"\r\n " in head or b"\r\n\t" in head:
        return "obsolete line folding in request head"
    if b"\x00" in head:
        return "NUL byte in request head"
    if CONTROL_CHARACTER.search(head) is not None:
        # h11 lets these through in field values; RFC 9110 5.5 does not (HTAB aside).
        return "control character in request head"
    lowered = head.lower()
    if lowered.count(b"\ncontent-length:") > 1:
        return "more than one Content-Length field"
    at = lowered.find(b"\ncontent-length:")
    if at >= 0 and b"," in head[at : head.index(b"\r", at + 1)]:
        # h11 folds "5, 5" into 5; a list is how desync attacks start (RFC 9112 6.3).
        return "Content-Length with a list value"
    codings = [
        coding.strip()
        for line in lowered.split(b"\r\n")[1:]
        if line.startswith(b"transfer-encoding:")
        for coding in line[len(b"transfer-encoding:") :].split(b",")
    ]
    if codings and (codings.count(b"chunked") != 1 or codings[-1] != b"chunked"):
        # RFC 9112 6.3: unless chunked is the final coding (and applied once) the body
        # length cannot be known: 400 and close.  Other codings before a final chunked
        # are merely unsupported: h11 answers those with 501.
        return "Transfer-Encoding without chunked as its final coding"
    return None


def _error_response(status: int, reason: str) -> bytes:
    fields, body = error_body(status, reason)
    head, _ = start_response(
        status, fields, request_method_head=False, request_version=b"1.1", keep_alive=False
    )
    return head + body
