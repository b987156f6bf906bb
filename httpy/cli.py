"""Command line: ``python -m httpy module:app [options]`` (also the ``httpy`` script).

``module:app`` names a module and an attribute holding the application (an :class:`App`,
anything with ``async def handle_http(stream)``, or any ASGI 3 application such as a
Starlette or FastAPI app, served through :class:`~httpy.framework.asgi.ASGIAdapter`).
``module`` alone serves the default app that the module's ``@get``/``@post`` decorators
registered on.  A failing application startup exits with status 1 after one log line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial

import anyio

from .backends.listeners import systemd_binds
from .backends.tls import generate_dev_certificate
from .backends.workers import Supervisor, in_worker, serve_process, worker_command, worker_config
from .core.application import Application, StartupError
from .core.config import Config
from .framework.app import default_app
from .framework.asgi import as_application
from .framework.runner import configure_default_logging

_DEFAULTS = Config()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="httpy",
        description="Serve an HTTPy application (or any handle_http or ASGI 3 application).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("app", help="the application, as module:attribute (or module)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    parser.add_argument(
        "--bind",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="listen on this address ([::1]:8000 for IPv6); repeat for several; "
        "replaces --host/--port",
    )
    parser.add_argument(
        "--uds",
        action="append",
        default=None,
        metavar="PATH",
        help="listen on this unix domain socket (same as --bind unix:PATH); repeatable",
    )
    parser.add_argument(
        "--fd",
        action="append",
        type=int,
        default=None,
        metavar="N",
        help="serve on inherited, bound socket descriptor N (same as --bind fd:N); "
        "sockets passed by systemd (LISTEN_FDS) are used when no address is given",
    )
    procs = parser.add_argument_group("processes")
    procs.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run N worker processes on the same sockets, under a supervisor that restarts "
        "dead workers, drains on SIGTERM/SIGINT and does a rolling restart on SIGHUP",
    )
    procs.add_argument(
        "--reuse-port",
        action="store_true",
        help="with --workers: each worker binds its own TCP sockets with SO_REUSEPORT "
        "(kernel load balancing; a rolling restart may then reset queued connections)",
    )
    procs.add_argument(
        "--reload",
        action="store_true",
        help="restart on source changes (development only; needs watchfiles)",
    )
    procs.add_argument(
        "--reload-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="directory to watch with --reload (default: --app-dir); repeatable",
    )
    tls = parser.add_argument_group("TLS (HTTPS, HTTP/2 by ALPN)")
    tls.add_argument(
        "--tls-bind",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="also listen with TLS on this address; repeat for several",
    )
    tls.add_argument("--certfile", help="PEM certificate chain for --tls-bind")
    tls.add_argument("--keyfile", help="PEM private key for --tls-bind")
    tls.add_argument(
        "--dev-cert",
        metavar="DIR",
        help="generate (or reuse) a development CA and localhost certificate in DIR and "
        "serve --tls-bind with it; clients trust DIR/ca.pem (development only)",
    )
    tls.add_argument(
        "--ca-certs", metavar="PEM", help="CA bundle that client certificates must chain to"
    )
    tls.add_argument(
        "--ssl-cert-reqs",
        choices=("none", "optional", "required"),
        default=_DEFAULTS.verify_client,
        help="ask TLS clients for a certificate (mutual TLS; needs --ca-certs); the "
        "verified certificate is request.client_cert",
    )
    tls.add_argument(
        "--require-client-cert",
        action="store_true",
        help="same as --ssl-cert-reqs required",
    )
    tls.add_argument("--ssl-ciphers", metavar="CIPHERS", help="OpenSSL cipher string (TLS 1.2)")
    tls.add_argument(
        "--ssl-min-version",
        choices=("TLSv1.2", "TLSv1.3"),
        default=_DEFAULTS.ssl_min_version,
        help="oldest TLS version accepted",
    )
    tls.add_argument(
        "--tls-handshake-timeout",
        type=float,
        default=_DEFAULTS.tls_handshake_timeout,
        help="seconds a client gets to finish the TLS handshake",
    )
    h3 = parser.add_argument_group("HTTP/3 (QUIC over UDP; needs the TLS certificate)")
    h3.add_argument(
        "--http3-port",
        type=int,
        metavar="PORT",
        help="serve HTTP/3 on this UDP port of --host (TCP responses then carry Alt-Svc)",
    )
    h3.add_argument(
        "--http3-bind",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="serve HTTP/3 on this UDP address; repeat for several",
    )
    h3.add_argument(
        "--quic-idle-timeout",
        type=float,
        default=_DEFAULTS.quic_idle_timeout,
        help="seconds a silent QUIC connection is kept",
    )
    h3.add_argument(
        "--quic-retry",
        action="store_true",
        help="validate client addresses with a QUIC Retry before keeping state",
    )
    parser.add_argument(
        "--backend",
        choices=("asyncio", "trio"),
        default="asyncio",
        help="event loop to run on",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="asyncio event loop implementation: auto picks uvloop when it is installed "
        "(pip install 'httpy[speed]'); ignored with --backend trio",
    )
    parser.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path to import the app"
    )
    parser.add_argument(
        "--http1-parser",
        choices=("auto", "python", "httptools"),
        default="auto",
        help="HTTP/1.1 request-head parser: httptools (the speed extra) or ours; h11 "
        "handles chunked bodies and errors either way (auto: httptools when installed)",
    )
    proxies = parser.add_argument_group("behind a proxy or load balancer")
    proxies.add_argument(
        "--forwarded-allow-ips",
        default=",".join(_DEFAULTS.forwarded_allow_ips),
        metavar="LIST",
        help="comma-separated addresses/CIDRs (or '*', 'unix:') whose Forwarded and "
        "X-Forwarded-For/Proto/Host headers set the request's client, scheme and host; "
        "'' to ignore those headers",
    )
    proxies.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="every connection starts with a PROXY protocol v1/v2 header (HAProxy, AWS NLB)",
    )
    ops = parser.add_argument_group("health and metrics (off by default)")
    ops.add_argument(
        "--health-path",
        metavar="PATH",
        help="answer 200 ok on PATH (503 while draining), e.g. /healthz",
    )
    ops.add_argument(
        "--metrics-path",
        metavar="PATH",
        help="answer Prometheus metrics on PATH, e.g. /metrics",
    )
    limits = parser.add_argument_group("limits and timeouts")
    for name, kind, text in (
        ("max_connections", int, "concurrent connections"),
        ("max_body_bytes", int, "largest request body in bytes (413 beyond)"),
        ("max_header_bytes", int, "largest request head in bytes (431 beyond)"),
        ("max_header_count", int, "most header fields per request (431 beyond)"),
        ("max_request_line_bytes", int, "longest request line (414 beyond)"),
        ("header_timeout", float, "seconds to receive a request head"),
        ("keepalive_timeout", float, "idle seconds between keep-alive requests"),
        ("body_timeout", float, "seconds of silence allowed while a body arrives"),
        ("send_timeout", float, "seconds a client may take to accept response bytes"),
        ("drain_timeout", float, "seconds in-flight requests get on shutdown"),
    ):
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=getattr(_DEFAULTS, name),
            help=text,
        )
    ws = parser.add_argument_group("WebSockets")
    ws.add_argument(
        "--ws-max-message-bytes",
        type=int,
        default=_DEFAULTS.ws_max_message_bytes,
        help="largest WebSocket message after decompression (close 1009 beyond)",
    )
    ws.add_argument(
        "--ws-ping-interval",
        type=float,
        default=_DEFAULTS.ws_ping_interval,
        help="seconds between keep-alive pings (0: no pings)",
    )
    ws.add_argument(
        "--ws-ping-timeout",
        type=float,
        default=_DEFAULTS.ws_ping_timeout,
        help="seconds a pong may take before the connection is dropped",
    )
    ws.add_argument(
        "--ws-close-timeout",
        type=float,
        default=_DEFAULTS.ws_close_timeout,
        help="seconds to wait for the answer to our close frame",
    )
    ws.add_argument(
        "--no-ws-compression", action="store_true", help="don't accept permessage-deflate"
    )
    logs = parser.add_argument_group("logging")
    logs.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="level of the httpy loggers",
    )
    logs.add_argument(
        "--no-access-log", action="store_true", help="don't write the httpy.access log"
    )
    logs.add_argument(
        "--access-log-format",
        choices=("common", "combined", "json"),
        default=_DEFAULTS.access_log_format,
        help="Common Log Format, combined (plus referer, user agent), or JSON lines",
    )
    logs.add_argument(
        "--request-id",
        action="store_true",
        help="give every request an X-Request-ID (kept from the client or generated), "
        "echoed on the response and written in the JSON access log",
    )
    parser.add_argument(
        "--debug", action="store_true", help="tracebacks in 500 responses (development only)"
    )
    return parser


def load_app(spec: str, app_dir: str = ".") -> Application:
    """Import ``module:attribute``; raise :class:`SystemExit` with a clear message."""
    module_name, _, attribute = spec.partition(":")
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"httpy: cannot import {module_name!r}: {exc}") from exc
    if not attribute:
        return default_app
    target: object = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SystemExit(f"httpy: {module_name!r} has no attribute {attribute!r}") from None
    try:
        return as_application(target)  # an ASGI app gets wrapped in ASGIAdapter
    except TypeError:
        raise SystemExit(
            f"httpy: {spec!r} is not an application (no handle_http method, "
            "and not an ASGI 3 callable taking scope, receive, send)"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    host = args.host
    binds = (
        tuple(args.bind)
        if args.bind
        else (f"[{host}]:{args.port}" if ":" in host else f"{host}:{args.port}",)
    )
    extra = tuple(f"unix:{p}" for p in args.uds or ()) + tuple(f"fd:{n}" for n in args.fd or ())
    if not args.bind and not extra:
        extra = systemd_binds()  # socket activation: systemd's sockets replace --host/--port
    if extra:
        binds = (tuple(args.bind) if args.bind else ()) + extra
    certfile, keyfile = args.certfile, args.keyfile
    if args.dev_cert:
        cert, key, ca = generate_dev_certificate(args.dev_cert)
        certfile, keyfile = str(cert), str(key)
        print(f"httpy: development certificate {cert} (clients trust {ca})", file=sys.stderr)
    if args.tls_bind and not certfile:
        print("httpy: --tls-bind needs --certfile/--keyfile or --dev-cert", file=sys.stderr)
        return 2
    http3_binds = tuple(args.http3_bind or ())
    if args.http3_port is not None:
        shown_host = f"[{host}]" if ":" in host else host
        http3_binds += (f"{shown_host}:{args.http3_port}",)
    if http3_binds and not certfile:
        print("httpy: HTTP/3 needs --certfile/--keyfile or --dev-cert", file=sys.stderr)
        return 2
    if http3_binds and importlib.util.find_spec("aioquic") is None:
        print("httpy: HTTP/3 needs aioquic: pip install 'httpy[http3]'", file=sys.stderr)
        return 2
    if http3_binds and (args.workers or 1) > 1 and not args.reuse_port:
        # Each worker binds the UDP port itself: only SO_REUSEPORT lets them share it.
        print("httpy: HTTP/3 with --workers needs --reuse-port", file=sys.stderr)
        return 2
    try:
        config = Config(
            binds=binds,
            tls_binds=tuple(args.tls_bind or ()),
            certfile=certfile,
            keyfile=keyfile,
            tls_handshake_timeout=args.tls_handshake_timeout,
            http3_binds=http3_binds,
            quic_idle_timeout=args.quic_idle_timeout,
            quic_retry=args.quic_retry,
            reuse_port=args.reuse_port,
            ca_certs=args.ca_certs,
            verify_client="required" if args.require_client_cert else args.ssl_cert_reqs,
            ssl_ciphers=args.ssl_ciphers,
            ssl_min_version=args.ssl_min_version,
            forwarded_allow_ips=tuple(
                item.strip() for item in args.forwarded_allow_ips.split(",") if item.strip()
            ),
            proxy_protocol=args.proxy_protocol,
            access_log=not args.no_access_log,
            http1_parser=args.http1_parser,
            access_log_format=args.access_log_format,
            request_id=args.request_id,
            health_path=args.health_path,
            metrics_path=args.metrics_path,
            max_connections=args.max_connections,
            max_body_bytes=args.max_body_bytes,
            max_header_bytes=args.max_header_bytes,
            max_header_count=args.max_header_count,
            max_request_line_bytes=args.max_request_line_bytes,
            header_timeout=args.header_timeout,
            keepalive_timeout=args.keepalive_timeout,
            body_timeout=args.body_timeout,
            send_timeout=args.send_timeout,
            drain_timeout=args.drain_timeout,
            ws_max_message_bytes=args.ws_max_message_bytes,
            ws_ping_interval=args.ws_ping_interval or None,
            ws_ping_timeout=args.ws_ping_timeout,
            ws_close_timeout=args.ws_close_timeout,
            ws_compression=not args.no_ws_compression,
        )
    except (TypeError, ValueError) as exc:
        print(f"httpy: {exc}", file=sys.stderr)
        return 2
    configure_default_logging(getattr(logging, args.log_level.upper()))
    if (args.workers is not None or args.reload) and not in_worker():
        # The supervisor never imports the application: the workers do (and re-do).
        reload_dirs = (args.reload_dir or [args.app_dir]) if args.reload else []
        supervisor = Supervisor(
            worker_command(argv), config, workers=args.workers or 1, reload_dirs=reload_dirs
        )
        try:
            return supervisor.run()
        except OSError as exc:
            logging.getLogger("httpy.error").error("httpy could not start: %s", exc)
            return 1
    if in_worker():
        config = worker_config(config)  # the supervisor's sockets
    app = load_app(args.app, args.app_dir)
    if getattr(app, "debug", None) is False and args.debug:
        app.debug = True  # type: ignore[attr-defined]
    backend_options: dict[str, object] = {}
    if args.backend == "asyncio":
        have_uvloop = importlib.util.find_spec("uvloop") is not None
        if args.loop == "uvloop" and not have_uvloop:
            print("httpy: --loop uvloop needs uvloop: pip install 'httpy[speed]'", file=sys.stderr)
            return 2
        backend_options["use_uvloop"] = args.loop == "uvloop" or (
            args.loop == "auto" and have_uvloop
        )
    try:
        anyio.run(
            partial(serve_process, app, config),
            backend=args.backend,
            backend_options=backend_options,
        )
    except OSError as exc:
        logging.getLogger("httpy.error").error("httpy could not start: %s", exc)
        return 1
    except StartupError:
        return 1  # serve() has logged the cause, in one line
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
