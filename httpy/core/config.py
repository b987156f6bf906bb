"""Every limit and timeout of the server, in one frozen dataclass with safe defaults.

The reasons for each default sit next to it.  ``Config`` is pure data: the backend reads
the timeouts and applies them with its clock; the core reads the limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

KiB = 1024
MiB = 1024 * KiB


def _one_of(default: str, choices: tuple[str, ...]) -> Any:
    """A ``str`` field that must hold one of ``choices`` (also the CLI flag's choices)."""
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True, slots=True)
class Config:
    """Server configuration.  Build one with keyword arguments; all have defaults."""

    # -- where to listen ---------------------------------------------------------------
    #: ``host:port`` pairs; IPv6 hosts in brackets (``[::1]:8000``); also ``unix:PATH``
    #: (a unix domain socket) and ``fd:N`` (an inherited, bound socket: systemd).
    binds: tuple[str, ...] = ("127.0.0.1:8000",)
    #: ``host:port`` pairs served over TLS (HTTP/2 or HTTP/1.1 by ALPN).  Needs a TLS
    #: context: ``certfile``/``keyfile`` here, or ``ssl_context`` given to ``serve``.
    tls_binds: tuple[str, ...] = ()
    #: PEM certificate chain and private key for ``tls_binds``.
    certfile: str | None = None
    keyfile: str | None = None
    #: A client that has not finished the TLS handshake by then is dropped.
    tls_handshake_timeout: float = 10.0
    #: PEM bundle of the CAs whose client certificates are accepted (mutual TLS).
    ca_certs: str | None = None
    #: Ask TLS clients for a certificate: ``"none"``, ``"optional"`` (verified when sent)
    #: or ``"required"`` (handshake fails without one).  Needs ``ca_certs``.
    verify_client: str = _one_of("none", ("none", "optional", "required"))
    #: OpenSSL cipher string for TLS 1.2 (None: Python's secure defaults).
    ssl_ciphers: str | None = None
    #: Oldest TLS version accepted: ``"TLSv1.2"`` or ``"TLSv1.3"``.
    ssl_min_version: str = _one_of("TLSv1.2", ("TLSv1.2", "TLSv1.3"))
    #: ``listen()`` backlog: matches common kernel defaults (somaxconn 4096).
    backlog: int = 1024
    #: ``SO_REUSEPORT`` on TCP listeners: several processes bind the same port and the
    #: kernel spreads connections (``--workers`` with ``--reuse-port``).
    reuse_port: bool = False

    # -- HTTP/1.1 limits ---------------------------------------------------------------
    #: Longest request line (method, target, version).  nginx's large buffer is 8 KiB;
    #: longer targets are answered with 414.
    max_request_line_bytes: int = 8 * KiB
    #: Largest request head (request line + headers).  h11 and uvicorn use 16 KiB, nginx
    #: up to 32 KiB; beyond it: 431.
    max_header_bytes: int = 32 * KiB
    #: Most header fields in one request.  Apache's LimitRequestFields is 100; beyond: 431.
    max_header_count: int = 100
    #: Largest request body accepted, in bytes (None: no limit); beyond it: 413.  Bodies of
    #: ordinary routes are read into memory, so this bounds memory per request.
    max_body_bytes: int | None = 16 * MiB
    #: Unprocessed bytes (pipelined requests) buffered per connection before we stop
    #: reading the socket.
    max_pipeline_bytes: int = 256 * KiB
    #: Request body bytes buffered ahead of the application before we stop reading.
    body_buffer_bytes: int = 256 * KiB

    # -- HTTP/2 ----------------------------------------------------------------------
    #: SETTINGS_MAX_CONCURRENT_STREAMS we advertise (RFC 9113 recommends >= 100).
    h2_max_concurrent_streams: int = 100
    #: Initial stream window: request body bytes a client may send ahead of the
    #: application.  Per-stream memory is bounded by it.
    h2_stream_window: int = 256 * KiB
    #: Connection window: body bytes in flight across all streams of a connection.
    h2_connection_window: int = 1 * MiB
    #: Stream resets in a burst before GOAWAY ENHANCE_YOUR_CALM: the client's own (rapid
    #: reset, CVE-2023-44487) and those its input makes the server send (malformed
    #: requests, refused streams, stream errors: "MadeYouReset", CVE-2025-8671).
    h2_max_reset_streams: int = 200
    #: PING, SETTINGS, PRIORITY, WINDOW_UPDATE, empty or tiny DATA and unknown frames in
    #: a burst before GOAWAY ENHANCE_YOUR_CALM (CVE-2019-9512/9515/9518 and the like).
    #: Each stream opened earns 10 more, each DATA frame sent 2 (its WINDOW_UPDATEs).
    h2_max_control_frames: int = 1000
    #: Refill rates (per second) of those two budgets, which are token buckets: a client
    #: may reset or send control frames at these rates for ever, in bursts up to the
    #: maxima above.  Rapid reset (CVE-2023-44487) runs at thousands per second.
    h2_reset_rate: float = 100.0
    h2_control_frame_rate: float = 500.0

    # -- HTTP/3 (QUIC) ----------------------------------------------------------------
    #: UDP ``host:port`` pairs served over HTTP/3; they use the TLS certificate.
    http3_binds: tuple[str, ...] = ()
    #: Largest UDP payload we send.  1350 fits common paths (1500 MTU minus IPv6, UDP
    #: and tunnel overheads) without fragmentation; QUIC's floor is 1200.
    max_datagram_size: int = 1350
    #: Bytes a client may send ahead on one stream, and on the whole connection.
    quic_max_stream_data: int = 1 * MiB
    quic_max_data: int = 5 * MiB
    #: Concurrent request streams, and unidirectional (control, QPACK) streams, per client.
    quic_max_streams_bidi: int = 100
    quic_max_streams_uni: int = 100
    #: A QUIC connection silent this long is dropped (the peer's shorter value wins).
    quic_idle_timeout: float = 30.0
    #: Validate client addresses with a Retry before creating connection state (one more
    #: round trip; a defence against spoofed-source floods).
    quic_retry: bool = False
    #: With quic_retry off: connections still in their handshake (half-open) past which
    #: new clients must pass a Retry first, as if quic_retry were on.  A flood of Initial
    #: packets then creates no more state (each half-open connection holds ~120 KiB for
    #: up to quic_idle_timeout).  0: always (the same as quic_retry).
    quic_retry_threshold: int = 100

    # -- drivers ----------------------------------------------------------------------
    #: Request-head parser for HTTP/1.1: "python" (ours, over h11's grammar), "httptools"
    #: (llhttp, the ``speed`` extra), or "auto" (httptools when installed).  Either way
    #: h11 parses what they decline (chunked bodies, anything unusual, every error).
    http1_parser: str = _one_of("auto", ("auto", "python", "httptools"))

    # -- WebSockets -------------------------------------------------------------------
    #: Largest WebSocket message (after decompression); beyond it: close 1009.  16 MiB
    #: like ``max_body_bytes`` (the Autobahn suite sends 16 MiB messages; websockets'
    #: default is 1 MiB, uvicorn's 16 MiB).
    ws_max_message_bytes: int = 16 * MiB
    #: Negotiate permessage-deflate (RFC 7692) when the client offers it.
    ws_compression: bool = True
    #: Seconds between keep-alive pings (None: no pings); uvicorn and websockets use 20.
    ws_ping_interval: float | None = 20.0
    #: A pong must come this soon after a ping, or the connection is dropped (1006).
    ws_ping_timeout: float | None = 20.0
    #: How long a close frame we sent waits for the peer's answer before we hang up.
    ws_close_timeout: float = 10.0
    #: Seconds a message may take to arrive whole, from its first byte (a frame or the
    #: fragments of one message); then close 1008.  None: no limit.  (The size limit,
    #: ``ws_max_message_bytes``, bounds its memory; this bounds how long that is held.)
    ws_message_timeout: float | None = 120.0
    #: Received messages queued unread before we stop reading (back-pressure).
    ws_max_queue: int = 16

    # -- timeouts (seconds) -----------------------------------------------------------
    #: From the first byte of a request until its head is complete (slow-header attacks);
    #: also how long a new connection may stay silent before its first request (HTTP/1.1
    #: and HTTP/2; capped by keepalive_timeout), the bound on an HTTP/2 header block, and
    #: on each HTTP/3 request head (408 on its stream).
    header_timeout: float = 10.0
    #: Idle time allowed between keep-alive requests.  Longer than the idle timeouts of
    #: common proxies and load balancers (AWS ALB and nginx: 60 s), so a proxy never reuses
    #: a connection we are about to close.
    keepalive_timeout: float = 75.0
    #: Longest silence while a request body is still arriving.
    body_timeout: float = 30.0
    #: Slow readers: while response bytes wait for a peer (its flow-control window is
    #: shut, or its socket buffer full), every ``send_timeout`` seconds it must have taken
    #: ``min_send_rate * send_timeout`` bytes (or all that waited), else the stream is
    #: reset or the connection closed.  A peer that opens its window a byte at a time is
    #: dropped as one that never opens it (see ``httpy.core.send_progress``).
    send_timeout: float = 30.0
    #: The rate floor of that rule, in bytes per second (0: any progress at all will do).
    min_send_rate: float = 1024.0
    #: On shutdown, how long in-flight requests get to finish before they are cancelled.
    drain_timeout: float = 30.0

    # -- behind proxies ----------------------------------------------------------------
    #: Peers whose ``Forwarded`` / ``X-Forwarded-*`` headers set the request's client,
    #: scheme and host: addresses and CIDR networks, ``"*"`` (anyone: only when nothing
    #: but the proxy can reach the server), ``"unix:"`` (unix-socket peers).  Empty:
    #: the headers are ignored.  Default: the local machine (a proxy on the same host).
    forwarded_allow_ips: tuple[str, ...] = ("127.0.0.1", "::1", "unix:")
    #: Every connection starts with a PROXY protocol (v1 or v2) header from a TCP proxy
    #: (HAProxy, AWS NLB): its addresses become the request's client and server.  A
    #: connection without one is closed.
    proxy_protocol: bool = False

    # -- connections -------------------------------------------------------------------
    #: Concurrent connections; further clients wait in the listen backlog.
    max_connections: int = 10_000
    #: Connections one client address may hold open at once (None: no limit); beyond it
    #: a new connection is closed at once.  Off by default: clients behind one NAT share
    #: an address.  Behind a proxy, use the PROXY protocol (the proxy's own address is
    #: never limited: see ``httpy.backends.clients``).
    max_connections_per_client: int | None = None
    #: Requests per second one client may make (None: no limit), in bursts of
    #: ``client_request_burst``; beyond: 429 with ``Retry-After``.  The client is the
    #: request's, after trusted proxy headers.
    client_request_rate: float | None = None
    client_request_burst: int = 50

    # -- logging -----------------------------------------------------------------------
    #: Write one ``httpy.access`` line per response.
    access_log: bool = True
    #: Its format: ``"common"`` (Common Log Format), ``"combined"`` (plus referer and
    #: user agent) or ``"json"`` (one JSON object per line, with duration and request id).
    access_log_format: str = _one_of("common", ("common", "combined", "json"))
    #: Give every request an ``X-Request-ID``: the client's (or proxy's) when it sent a
    #: valid one, else a generated one; echoed on the response, in the JSON access log,
    #: and on the request (``request.request_id``).
    request_id: bool = False
    #: Bad-request log lines allowed per second (the rest are counted, then summarised).
    bad_request_log_rate: float = 5.0

    # -- operations --------------------------------------------------------------------
    #: Path answering ``200 ok`` (``503 draining`` during shutdown) for load balancers
    #: and orchestrators; None: no health endpoint.
    health_path: str | None = None
    #: Path answering Prometheus metrics (requests by method and status class, active
    #: connections and requests, body bytes); None: no metrics, and no counting.
    metrics_path: str | None = None

    # -- identity ----------------------------------------------------------------------
    #: ``Server`` response header; empty string to omit it.
    server_header: str = "httpy"

    def __post_init__(self) -> None:
        for name, choices in FIELD_CHOICES.items():
            if getattr(self, name) not in choices:
                quoted = [repr(choice) for choice in choices]
                alternatives = ", ".join(quoted[:-1]) + " or " + quoted[-1]
                raise ValueError(f"Config.{name} must be {alternatives}")
        positive = (
            "max_request_line_bytes",
            "max_header_bytes",
            "max_header_count",
            "max_pipeline_bytes",
            "body_buffer_bytes",
            "max_connections",
            "backlog",
            "h2_max_concurrent_streams",
            "h2_stream_window",
            "h2_connection_window",
            "quic_max_stream_data",
            "quic_max_data",
            "quic_max_streams_bidi",
            "quic_max_streams_uni",
            "quic_idle_timeout",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"Config.{name} must be positive, got {getattr(self, name)!r}")
        for name in (
            "header_timeout",
            "keepalive_timeout",
            "body_timeout",
            "send_timeout",
            "drain_timeout",
            "tls_handshake_timeout",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"Config.{name} must not be negative")
        if self.max_connections_per_client is not None and self.max_connections_per_client < 1:
            raise ValueError("Config.max_connections_per_client must be None or >= 1")
        if self.client_request_rate is not None and self.client_request_rate <= 0:
            raise ValueError("Config.client_request_rate must be None or positive")
        if self.client_request_burst < 1:
            raise ValueError("Config.client_request_burst must be >= 1")
        if self.min_send_rate < 0:
            raise ValueError("Config.min_send_rate must not be negative")
        if self.quic_retry_threshold < 0:
            raise ValueError("Config.quic_retry_threshold must not be negative")
        if self.ws_max_message_bytes <= 0 or self.ws_max_queue <= 0:
            raise ValueError("Config.ws_max_message_bytes and Config.ws_max_queue must be positive")
        if self.ws_message_timeout is not None and self.ws_message_timeout <= 0:
            raise ValueError("Config.ws_message_timeout must be None or positive")
        if self.ws_close_timeout < 0:
            raise ValueError("Config.ws_close_timeout must not be negative")
        if self.max_body_bytes is not None and self.max_body_bytes < 0:
            raise ValueError("Config.max_body_bytes must be None or >= 0")
        if not 1200 <= self.max_datagram_size <= 65527:
            raise ValueError("Config.max_datagram_size must be between 1200 and 65527")
        if self.verify_client != "none" and not self.ca_certs:
            raise ValueError("Config.verify_client needs ca_certs (the clients' CA bundle)")
        for name in ("health_path", "metrics_path"):
            value = getattr(self, name)
            if value is not None and not value.startswith("/"):
                raise ValueError(f"Config.{name} must start with '/', got {value!r}")
        if not self.binds and not self.tls_binds:
            raise ValueError("Config needs at least one address in binds or tls_binds")

    def with_options(self, **options: Any) -> Config:
        """A copy with ``options`` replaced; an unknown option is an error naming it."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown server option(s): {', '.join(unknown)}")
        return replace(self, **options)


#: The fields limited to a fixed set of strings, and that set (in ``_one_of`` above).
FIELD_CHOICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {item.name: item.metadata["choices"] for item in fields(Config) if "choices" in item.metadata}
)

#: The keys of ``run(http3_config={...})``: the Config fields a user tunes for HTTP/3.
HTTP3_CONFIG_KEYS = (
    "max_datagram_size",
    "quic_max_stream_data",
    "quic_max_data",
    "quic_max_streams_bidi",
    "quic_max_streams_uni",
    "quic_idle_timeout",
)


def parse_bind(bind: str) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into host and port."""
    host, sep, port_text = bind.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"bind address {bind!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range in bind {bind!r}")
    return host or "0.0.0.0", port
