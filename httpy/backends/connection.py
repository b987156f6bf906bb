"""What every connection driver shares: the per-server :class:`ConnectionContext`, the
application's view of a request head, the protocol switches HTTP/1.1 can end in, the
HTTP/2 prior-knowledge sniffer, and the access-log line.  The drivers themselves:
:mod:`~httpy.backends.http1_driver`, :mod:`~httpy.backends.http2_driver`,
:mod:`~httpy.backends.http3_driver`, :mod:`~httpy.backends.websocket_driver`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..core.application import (
    Application,
    RequestHead,
)
from ..core.config import Config
from ..core.events import (
    Headers,
    RequestReceived,
)
from ..core.http1 import HTTP1Connection
from ..core.http2_checks import FloodBudgets, valid_upgrade_settings
from .clients import ClientTable
from .logs import HTTPDate, RateLimitedLog, access_line, access_log, error_log
from .proxy import chain, proxy_headers_hook
from .request_id import RequestIdEchoApp, ensure_request_id, with_request_id_echo

READ_SIZE = 64 * 1024
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class PrefaceSniffer:
    """Tells HTTP/2 with prior knowledge (RFC 9113 3.3) from HTTP/1.x on a cleartext
    connection, from its first bytes (both HTTP/1.1 drivers use it).

    HTTP/2 is the preface, or a first line that is no HTTP/1.x request line at all: a
    client that is not speaking HTTP/1.x gets its invalid preface answered the HTTP/2
    way, GOAWAY PROTOCOL_ERROR (RFC 9113 3.4), by the HTTP/2 core, as over TLS; an
    HTTP/1.x request line (``... HTTP/x.y``) stays HTTP/1.x, errors included (400/505).
    Undecided until the first line is complete (at most ``max_line`` bytes)."""

    __slots__ = ("_max_line", "held")

    def __init__(self, max_line: int) -> None:
        #: The bytes received so far, all held back until the verdict.
        self.held = b""
        self._max_line = max_line

    def feed(self, data: bytes) -> bool | None:
        """True: HTTP/2 (feed :attr:`held` to its core); False: HTTP/1.x (feed
        :attr:`held` to its parser); None: not yet known."""
        seen = self.held = self.held + data
        if HTTP2_PREFACE.startswith(seen[: len(HTTP2_PREFACE)]):
            return True if len(seen) >= len(HTTP2_PREFACE) else None
        start = 0
        while seen.startswith(b"\r\n", start):  # empty lines before the request line
            start += 2
        # The line ends at its first CR or LF (a bare one is HTTP/1.1's to refuse).
        ends = [i for i in (seen.find(b"\r", start), seen.find(b"\n", start)) if i >= 0]
        if not ends:
            return False if len(seen) - start > self._max_line else None
        line = seen[start : min(ends)]
        if not line:  # a lone CR (a CRLF to come?) or LF: no request line to judge
            return None if seen[start:] == b"\r" else False
        if line == HTTP2_PREFACE[:14]:  # "PRI * HTTP/2.0", then not the rest of a preface
            return True
        return not line.rpartition(b" ")[2].startswith(b"HTTP/")

    def for_http1(self) -> bytes:
        """What to give the HTTP/1.1 parser when the connection times out or ends while
        undecided: the bytes held, unless they are the start of an HTTP/2 preface."""
        if HTTP2_PREFACE.startswith(self.held[: len(HTTP2_PREFACE)]):
            return b""
        return self.held


Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """What a connection's drivers need (one object, not many arguments): what every
    connection of one server shares, and, once :meth:`for_connection` made it one
    connection's, that connection's two ends."""

    app: Application
    config: Config
    bad_requests: RateLimitedLog
    date: HTTPDate
    scheme: str = "http"
    #: Rewrites each request head before the application sees it: proxy headers from
    #: trusted peers, the TLS client certificate (None: nothing to do, no cost).
    head_hook: Callable[[RequestHead], RequestHead] | None = None
    #: The client's address (the PROXY header's, if any) and ours; None where unknown
    #: (a Unix socket) or before :meth:`for_connection`.
    client: Address | None = None
    server: Address | None = None
    #: The server's clients (shared flood budgets, per-client limits); None in tests
    #: that drive a connection by hand.
    clients: ClientTable | None = None

    def for_connection(self, client: Address | None, server: Address | None) -> ConnectionContext:
        """This context for one connection between ``client`` and ``server``."""
        # Built directly: dataclasses.replace() costs several microseconds per connection.
        return ConnectionContext(
            app=self.app,
            config=self.config,
            bad_requests=self.bad_requests,
            date=self.date,
            scheme=self.scheme,
            head_hook=self.head_hook,
            client=client,
            server=server,
            clients=self.clients,
        )

    def flood_budgets(self, now: float) -> FloodBudgets | None:
        """The flood budgets an HTTP/2 or HTTP/3 connection of this context spends: its
        client's (see :class:`~.clients.ClientTable`), or None: one of its own."""
        if self.clients is None:
            return None
        return self.clients.flood_budgets(self.client, now)

    def server_headers(self, headers: Headers) -> Headers:
        """``headers`` plus what the server adds to every response: Date, and Server
        unless ``Config.server_header`` is empty."""
        extra: Headers = ((b"date", self.date.now()),)
        if self.config.server_header:
            extra += ((b"server", self.config.server_header.encode("latin-1")),)
        return (*headers, *extra)

    @classmethod
    def create(
        cls,
        app: Application,
        config: Config,
        scheme: str = "http",
        clients: ClientTable | None = None,
    ) -> ConnectionContext:
        head_hook = proxy_headers_hook(config)
        if config.request_id:
            head_hook = chain(ensure_request_id, head_hook)
            if not isinstance(app, RequestIdEchoApp):
                app = with_request_id_echo(app)
        return cls(
            app=app,
            config=config,
            bad_requests=RateLimitedLog(error_log, config.bad_request_log_rate),
            date=HTTPDate(),
            scheme=scheme,
            head_hook=head_hook,
            clients=clients,
        )

    def request_head(self, event: RequestReceived) -> RequestHead:
        """The application's view of the request ``event`` opens on this connection,
        after ``head_hook`` (proxy headers, request id, client certificate)."""
        path, _, query = event.target.partition(b"?")
        head = RequestHead(
            method=event.method,
            path=path.decode("latin-1"),
            query_string=query,
            headers=event.headers,
            http_version=event.http_version,
            scheme=self.scheme,
            client=self.client,
            server=self.server,
            body_expected=event.body_expected,
            stream_id=event.stream_id,
        )
        return head if self.head_hook is None else self.head_hook(head)


@dataclass(frozen=True, slots=True)
class SwitchToHTTP2:
    """The connection turned out to be HTTP/2: by ``Upgrade: h2c`` (``upgrade`` holds the
    HTTP2-Settings value and the request to answer as stream 1) or by prior knowledge
    (the client opened with the HTTP/2 preface; ``upgrade`` is None).  ``unparsed``
    holds the bytes already received that belong to HTTP/2."""

    upgrade: tuple[bytes, RequestReceived] | None
    unparsed: bytes


@dataclass(frozen=True, slots=True)
class SwitchToWebSocket:
    """An ``Upgrade: websocket`` request arrived: the WebSocket driver takes the
    connection.  ``connection`` is mid-exchange with ``request`` (so a refusal is still
    an HTTP/1.1 response) and holds the bytes received behind it."""

    request: RequestReceived
    connection: HTTP1Connection


def wants_websocket(event: RequestReceived) -> bool:
    # A body would have to be read over HTTP/1.1 first: such requests stay HTTP.
    return (
        event.upgrade is not None
        and b"websocket" in (t.strip() for t in event.upgrade.split(b","))
        and event.method == "GET"
        and not event.body_expected
    )


def wants_h2c(event: RequestReceived) -> bool:
    # Upgrade with a body would need the body read over HTTP/1.1 first; such requests
    # are simply answered over HTTP/1.1, which RFC 9113 3.2 allows.
    # Exactly one HTTP2-Settings, and valid (RFC 7540 3.2.1); otherwise no upgrade.
    if event.upgrade != b"h2c" or event.body_expected:
        return False
    settings = [value for name, value in event.headers if name == b"http2-settings"]
    return len(settings) == 1 and valid_upgrade_settings(settings[0])


def log_access(
    config: Config,
    client: tuple[str, int] | None,
    head: RequestHead,
    status: int,
    bytes_sent: int,
    started_at: float,
) -> None:
    """One ``httpy.access`` line for a finished exchange (any HTTP version)."""
    if not config.access_log or not access_log.isEnabledFor(logging.INFO):
        return
    line = access_line(config.access_log_format)
    access_log.info(
        "%s", line.format(client, head, status, bytes_sent, time.monotonic() - started_at)
    )


class Exchange(Protocol):
    """What an access-log line needs of a finished request (every driver's stream)."""

    @property
    def head(self) -> RequestHead: ...

    status: int
    bytes_sent: int
    started_at: float


def log_exchange(config: Config, client: tuple[str, int] | None, stream: Exchange) -> None:
    """:func:`log_access` for a finished stream of any HTTP version."""
    log_access(config, client, stream.head, stream.status, stream.bytes_sent, stream.started_at)


def format_peer(peer: tuple[str, int] | None) -> str:
    if peer is None:
        return "-"
    host, port = peer
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
