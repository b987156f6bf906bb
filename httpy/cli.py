"""Command line: ``python -m httpy module:app [options]`` (also the ``httpy`` script).

``module:app`` names a module and an attribute holding the application (an :class:`App`,
anything with ``async def handle_http(stream)``, or any ASGI 3 application such as a
Starlette or FastAPI app, served through :class:`~httpy.framework.asgi.ASGIAdapter`).
``module`` alone serves the default app that the module's ``@get``/``@post`` decorators
registered on.  A failing application startup exits with status 1 after one log line.

The options that set one ``Config`` field each are rows of :data:`CONFIG_FLAGS`: their
type, default and choices come from ``Config``, and :func:`config_options` turns the
parsed arguments into those fields.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from types import UnionType
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

import anyio

from .backends.listeners import systemd_binds
from .backends.tls import generate_dev_certificate
from .backends.workers import Supervisor, in_worker, serve_process, worker_command, worker_config
from .core.application import Application, StartupError
from .core.config import FIELD_CHOICES, Config
from .framework.app import default_app
from .framework.asgi import as_application
from .framework.runner import configure_default_logging

_DEFAULTS = Config()
_HINTS = get_type_hints(Config)

# The --help group titles; a ConfigFlag names its group by title ("": the main options).
_MAIN = ""
_PROCESSES = "processes"
_TLS = "TLS (HTTPS, HTTP/2 by ALPN)"
_HTTP3 = "HTTP/3 (QUIC over UDP; needs the TLS certificate)"
_PROXIES = "behind a proxy or load balancer"
_OPS = "health and metrics (off by default)"
_LIMITS = "limits and timeouts"
_WS = "WebSockets"
_LOGS = "logging"


@dataclass(frozen=True, slots=True)
class ConfigFlag:
    """A command-line option that sets one :class:`Config` field.

    Its type, default and choices come from ``Config``: a ``bool`` field is a switch
    (``--no-<field>`` when it defaults to True), an ``int`` or ``float`` field takes a
    number, a ``tuple`` field a comma-separated list or, with ``repeat``, one value per
    occurrence.  ``zero_is_none`` reads 0 as None (off).
    """

    group: str
    field: str
    help: str
    flag: str = ""  # default: --field-name
    metavar: str | None = None
    repeat: bool = False
    zero_is_none: bool = False

    @property
    def default(self) -> object:
        return getattr(_DEFAULTS, self.field)

    @property
    def kind(self) -> type:
        """The field's type without None: bool, int, float, str or tuple."""
        hint = _HINTS[self.field]
        if get_origin(hint) in (Union, UnionType):
            (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
        return cast(type, get_origin(hint) or hint)  # tuple[str, ...] -> tuple

    @property
    def option(self) -> str:
        if self.flag:
            return self.flag
        name = self.field.replace("_", "-")
        return f"--no-{name}" if self.default is True else f"--{name}"

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")

    def add_to(self, group: argparse._ActionsContainer) -> None:
        options: dict[str, Any] = {"help": self.help}
        if self.kind is bool:
            options["action"] = "store_true"
        elif self.kind is tuple and self.repeat:
            options.update(action="append", default=None)
        elif self.kind is tuple:
            options["default"] = ",".join(cast("tuple[str, ...]", self.default))
        else:
            options["default"] = self.default
            if self.kind is not str:
                options["type"] = self.kind
            if self.field in FIELD_CHOICES:
                options["choices"] = FIELD_CHOICES[self.field]
        if self.metavar:
            options["metavar"] = self.metavar
        group.add_argument(self.option, dest=self.dest, **options)

    def value(self, args: argparse.Namespace) -> object:
        """The ``Config`` value of what ``args`` holds for this option."""
        parsed: Any = getattr(args, self.dest)
        if self.kind is bool:
            return not parsed if self.default is True else parsed  # --no-...: turns it off
        if self.kind is tuple and self.repeat:
            return tuple(parsed or ())
        if self.kind is tuple:
            return tuple(item.strip() for item in parsed.split(",") if item.strip())
        if self.zero_is_none:
            return parsed or None
        return parsed


#: Every option that sets one Config field, in --help order within its group.
CONFIG_FLAGS = (
    ConfigFlag(
        _MAIN,
        "http1_parser",
        "HTTP/1.1 request-head parser: httptools (the speed extra) or ours; h11 "
        "handles chunked bodies and errors either way (auto: httptools when installed)",
    ),
    ConfigFlag(
        _PROCESSES,
        "reuse_port",
        "with --workers: each worker binds its own TCP sockets with SO_REUSEPORT "
        "(kernel load balancing; a rolling restart may then reset queued connections)",
    ),
    ConfigFlag(
        _TLS,
        "tls_binds",
        "also listen with TLS on this address; repeat for several",
        flag="--tls-bind",
        metavar="HOST:PORT",
        repeat=True,
    ),
    ConfigFlag(_TLS, "certfile", "PEM certificate chain for --tls-bind"),
    ConfigFlag(_TLS, "keyfile", "PEM private key for --tls-bind"),
    ConfigFlag(_TLS, "ca_certs", "CA bundle that client certificates must chain to", metavar="PEM"),
    ConfigFlag(
        _TLS,
        "verify_client",
        "ask TLS clients for a certificate (mutual TLS; needs --ca-certs); the "
        "verified certificate is request.client_cert",
        flag="--ssl-cert-reqs",
    ),
    ConfigFlag(_TLS, "ssl_ciphers", "OpenSSL cipher string (TLS 1.2)", metavar="CIPHERS"),
    ConfigFlag(_TLS, "ssl_min_version", "oldest TLS version accepted"),
    ConfigFlag(_TLS, "tls_handshake_timeout", "seconds a client gets to finish the TLS handshake"),
    ConfigFlag(_HTTP3, "quic_idle_timeout", "seconds a silent QUIC connection is kept"),
    ConfigFlag(
        _HTTP3, "quic_retry", "validate client addresses with a QUIC Retry before keeping state"
    ),
    ConfigFlag(
        _HTTP3,
        "quic_retry_threshold",
        "half-open QUIC connections past which new clients must pass a Retry first",
    ),
    ConfigFlag(
        _PROXIES,
        "forwarded_allow_ips",
        "comma-separated addresses/CIDRs (or '*', 'unix:') whose Forwarded and "
        "X-Forwarded-For/Proto/Host headers set the request's client, scheme and host; "
        "'' to ignore those headers",
        metavar="LIST",
    ),
    ConfigFlag(
        _PROXIES,
        "proxy_protocol",
        "every connection starts with a PROXY protocol v1/v2 header (HAProxy, AWS NLB)",
    ),
    ConfigFlag(
        _OPS,
        "health_path",
        "answer 200 ok on PATH (503 while draining), e.g. /healthz",
        metavar="PATH",
    ),
    ConfigFlag(
        _OPS, "metrics_path", "answer Prometheus metrics on PATH, e.g. /metrics", metavar="PATH"
    ),
    ConfigFlag(_LIMITS, "max_connections", "concurrent connections"),
    ConfigFlag(
        _LIMITS,
        "max_connections_per_client",
        "connections one client address may hold open (0: no limit, the default)",
        zero_is_none=True,
    ),
    ConfigFlag(
        _LIMITS,
        "client_request_rate",
        "requests per second per client, 429 beyond (0: no limit, the default)",
        zero_is_none=True,
    ),
    ConfigFlag(_LIMITS, "client_request_burst", "requests a client may make in a burst"),
    ConfigFlag(_LIMITS, "max_body_bytes", "largest request body in bytes (413 beyond)"),
    ConfigFlag(_LIMITS, "max_header_bytes", "largest request head in bytes (431 beyond)"),
    ConfigFlag(_LIMITS, "max_header_count", "most header fields per request (431 beyond)"),
    ConfigFlag(_LIMITS, "max_request_line_bytes", "longest request line (414 beyond)"),
    ConfigFlag(_LIMITS, "header_timeout", "seconds to receive a request head"),
    ConfigFlag(_LIMITS, "keepalive_timeout", "idle seconds between keep-alive requests"),
    ConfigFlag(_LIMITS, "body_timeout", "seconds of silence allowed while a body arrives"),
    ConfigFlag(
        _LIMITS,
        "send_timeout",
        "seconds in which a client must accept min_send_rate x send_timeout waiting bytes",
    ),
    ConfigFlag(_LIMITS, "min_send_rate", "bytes per second a slow reader must accept"),
    ConfigFlag(_LIMITS, "drain_timeout", "seconds in-flight requests get on shutdown"),
    ConfigFlag(
        _WS,
        "ws_max_message_bytes",
        "largest WebSocket message after decompression (close 1009 beyond)",
    ),
    ConfigFlag(
        _WS,
        "ws_ping_interval",
        "seconds between keep-alive pings (0: no pings)",
        zero_is_none=True,
    ),
    ConfigFlag(_WS, "ws_ping_timeout", "seconds a pong may take before the connection is dropped"),
    ConfigFlag(_WS, "ws_close_timeout", "seconds to wait for the answer to our close frame"),
    ConfigFlag(
        _WS,
        "ws_message_timeout",
        "seconds a message may take to arrive whole, then close 1008 (0: no limit)",
        zero_is_none=True,
    ),
    ConfigFlag(_WS, "ws_compression", "don't accept permessage-deflate"),
    ConfigFlag(_LOGS, "access_log", "don't write the httpy.access log"),
    ConfigFlag(
        _LOGS,
        "access_log_format",
        "Common Log Format, combined (plus referer, user agent), or JSON lines",
    ),
    ConfigFlag(
        _LOGS,
        "request_id",
        "give every request an X-Request-ID (kept from the client or generated), "
        "echoed on the response and written in the JSON access log",
    ),
)


def _add_config_flags(group: argparse._ActionsContainer, title: str) -> None:
    for flag in CONFIG_FLAGS:
        if flag.group == title:
            flag.add_to(group)


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields that ``args`` sets through :data:`CONFIG_FLAGS`, by name."""
    return {flag.field: flag.value(args) for flag in CONFIG_FLAGS}


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
    procs = parser.add_argument_group(_PROCESSES)
    procs.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="run N worker processes on the same sockets, under a supervisor that restarts "
        "dead workers, drains on SIGTERM/SIGINT and does a rolling restart on SIGHUP",
    )
    _add_config_flags(procs, _PROCESSES)
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
    tls = parser.add_argument_group(_TLS)
    _add_config_flags(tls, _TLS)
    tls.add_argument(
        "--dev-cert",
        metavar="DIR",
        help="generate (or reuse) a development CA and localhost certificate in DIR and "
        "serve --tls-bind with it; clients trust DIR/ca.pem (development only)",
    )
    tls.add_argument(
        "--require-client-cert",
        action="store_true",
        help="same as --ssl-cert-reqs required",
    )
    h3 = parser.add_argument_group(_HTTP3)
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
    _add_config_flags(h3, _HTTP3)
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
    _add_config_flags(parser, _MAIN)
    for title in (_PROXIES, _OPS, _LIMITS, _WS):
        _add_config_flags(parser.add_argument_group(title), title)
    logs = parser.add_argument_group(_LOGS)
    logs.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="level of the httpy loggers",
    )
    _add_config_flags(logs, _LOGS)
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
    options = config_options(args)
    if args.dev_cert:
        cert, key, ca = generate_dev_certificate(args.dev_cert)
        options.update(certfile=str(cert), keyfile=str(key))
        print(f"httpy: development certificate {cert} (clients trust {ca})", file=sys.stderr)
    if args.require_client_cert:
        options["verify_client"] = "required"
    if args.tls_bind and not options["certfile"]:
        print("httpy: --tls-bind needs --certfile/--keyfile or --dev-cert", file=sys.stderr)
        return 2
    http3_binds = tuple(args.http3_bind or ())
    if args.http3_port is not None:
        shown_host = f"[{host}]" if ":" in host else host
        http3_binds += (f"{shown_host}:{args.http3_port}",)
    if http3_binds and not options["certfile"]:
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
        config = Config(binds=binds, http3_binds=http3_binds, **options)
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
