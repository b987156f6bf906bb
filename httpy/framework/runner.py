"""``run()``: serve an application from ``asyncio.run(...)``, ``trio.run(...)`` or
``anyio.run(...)``, with SIGINT/SIGTERM handled gracefully."""

from __future__ import annotations

import importlib.util
import logging
import ssl
import sys
from typing import Any

from ..backends import server as _server
from ..backends.tls import enable_alpn
from ..core.application import Application
from ..core.config import HTTP3_CONFIG_KEYS, Config
from .app import default_app
from .asgi import ASGIApp, as_application

#: True when the ``http3`` extra (aioquic) is installed.
AIOQUIC_AVAILABLE = importlib.util.find_spec("aioquic") is not None


async def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    ssl_context: ssl.SSLContext | None = None,
    http3_port: int | None = None,
    http3_config: dict[str, Any] | None = None,
    app: Application | ASGIApp | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` (default: the app behind ``@get``/``@post``…) until SIGINT/SIGTERM.

    ``app`` may also be any ASGI 3 application (Starlette, FastAPI, …): it is served
    through :class:`~httpy.framework.asgi.ASGIAdapter`.

    ``options`` are :class:`~httpy.core.config.Config` fields (``keepalive_timeout=…``,
    ``max_body_bytes=…``); an unknown one raises :class:`TypeError` naming it.

    ``http3_port`` also serves HTTP/3 on that UDP port (needs ``ssl_context`` or
    ``certfile``, and the ``http3`` extra); ``http3_config`` tunes it with the keys of
    :data:`~httpy.core.config.HTTP3_CONFIG_KEYS` (an unknown key is a ``ValueError``).
    """
    if ssl_context is not None:
        enable_alpn(ssl_context)  # offer h2 and http/1.1 on the user's context
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if http3_port is not None or http3_config is not None:
        options.update(http3_options(host, http3_port, http3_config, ssl_context, options))
    config = Config(binds=(bind,)).with_options(**options)
    configure_default_logging()
    await serve(
        app if app is not None else default_app,
        config,
        install_signal_handlers=True,
        ssl_context=ssl_context,
    )


def http3_options(
    host: str,
    http3_port: int | None,
    http3_config: dict[str, Any] | None,
    ssl_context: ssl.SSLContext | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The :class:`Config` options of ``run(http3_port=..., http3_config=...)``, checked."""
    if not AIOQUIC_AVAILABLE:
        raise RuntimeError(
            "HTTP/3 needs the aioquic package: install it with pip install httpy[http3]"
        )
    if http3_port is None:
        raise ValueError("http3_config needs http3_port (the UDP port for HTTP/3)")
    settings = dict(http3_config or {})
    unknown = sorted(set(settings) - set(HTTP3_CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"unknown http3_config key(s): {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(HTTP3_CONFIG_KEYS)})"
        )
    if ssl_context is None and not options.get("certfile"):
        raise ValueError("HTTP/3 needs TLS: pass ssl_context= (or certfile=/keyfile=)")
    bind = f"[{host}]:{http3_port}" if ":" in host else f"{host}:{http3_port}"
    return {"http3_binds": (bind,), **settings}


async def serve(app: Application | ASGIApp, config: Config | None = None, **kwargs: Any) -> None:
    """:func:`httpy.backends.server.serve` (same arguments) for an HTTPy application or
    any ASGI 3 application (wrapped in :class:`~httpy.framework.asgi.ASGIAdapter`)."""
    await _server.serve(as_application(app), config, **kwargs)


def configure_default_logging(level: int = logging.INFO) -> None:
    """Show httpy's log lines on stderr unless the application configured logging."""
    root = logging.getLogger()
    httpy_logger = logging.getLogger("httpy")
    if root.handlers or httpy_logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    httpy_logger.addHandler(handler)
    httpy_logger.setLevel(level)
