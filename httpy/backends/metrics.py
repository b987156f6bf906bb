"""Opt-in operations endpoints: a health check and Prometheus metrics.

``Config.health_path`` (``--health-path /healthz``) answers ``200 ok`` while the server
runs and ``503 draining`` once it is shutting down, so a load balancer stops sending new
requests before the connections close.  ``Config.metrics_path`` (``--metrics-path
/metrics``) answers the counters below in the Prometheus text format (version 0.0.4):

* ``httpy_requests_total{method, status}``: responses by method (``other`` beyond the
  standard ones) and status class (``2xx``…; ``none`` when no response started);
* ``httpy_active_connections``, ``httpy_active_requests``: gauges;
* ``httpy_request_body_bytes_total``, ``httpy_response_body_bytes_total``: body bytes
  read by the application and sent by it (headers and framing not included);
* ``httpy_websocket_upgrades_total``.

The endpoints answer before the application (its middleware doesn't see them) and
are not counted.  Counters are per process: with ``--workers``, each scrape reads the
worker that answered (``httpy_worker`` carries its pid).  Both off (the default), the
server does not install any of this: requests pay nothing.  Expose ``/metrics`` to your
monitoring only (a proxy rule, a private listener).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from ..core.application import Application, HTTPStream, LifespanApplication
from ..core.config import Config
from ..core.events import Headers
from ..core.websocket import WebSocketHandshake

_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)


class Metrics:
    """The counters of one server process."""

    def __init__(self, connections: Callable[[], int] = lambda: 0) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.active_requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.websocket_upgrades = 0
        self.connections = connections

    def render(self) -> bytes:
        """The Prometheus text exposition of the current values."""
        lines = [
            "# HELP httpy_requests_total Responses by request method and status class.",
            "# TYPE httpy_requests_total counter",
        ]
        for (method, status), count in sorted(self.requests.items()):
            lines.append(f'httpy_requests_total{{method="{method}",status="{status}"}} {count}')
        for name, kind, help_text, value in (
            ("httpy_active_connections", "gauge", "Open client connections.", self.connections()),
            ("httpy_active_requests", "gauge", "Requests being handled.", self.active_requests),
            (
                "httpy_request_body_bytes_total",
                "counter",
                "Request body bytes read by the application.",
                self.bytes_in,
            ),
            (
                "httpy_response_body_bytes_total",
                "counter",
                "Response body bytes sent by the application.",
                self.bytes_out,
            ),
            (
                "httpy_websocket_upgrades_total",
                "counter",
                "WebSocket handshakes received.",
                self.websocket_upgrades,
            ),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        lines += [
            "# HELP httpy_worker The process serving this scrape.",
            "# TYPE httpy_worker gauge",
            f'httpy_worker{{pid="{os.getpid()}"}} 1',
        ]
        return ("\n".join(lines) + "\n").encode("ascii")


class _CountingStream:
    """An :class:`HTTPStream` that counts body bytes and remembers the status."""

    __slots__ = ("_metrics", "_stream", "status")

    def __init__(self, stream: HTTPStream, metrics: Metrics) -> None:
        self._stream = stream
        self._metrics = metrics
        self.status = 0

    async def receive(self) -> bytes:
        data = await self._stream.receive()
        self._metrics.bytes_in += len(data)
        return data

    async def send_response(self, status: int, headers: Headers) -> None:
        self.status = status
        await self._stream.send_response(status, headers)

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        self._metrics.bytes_out += len(data)
        await self._stream.send_body(data, end=end)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class OperationsApp:
    """Answers the health and metrics paths; counts the application's requests."""

    def __init__(
        self,
        app: Application,
        config: Config,
        metrics: Metrics | None,
        draining: Callable[[], bool],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._health = config.health_path
        self._metrics_path = config.metrics_path
        self._draining = draining

    async def handle_http(self, stream: HTTPStream) -> None:
        head = stream.head
        if head.method in ("GET", "HEAD"):
            if head.path == self._health:
                draining = self._draining()
                body = b"draining\n" if draining else b"ok\n"
                await _answer(stream, 503 if draining else 200, body, b"text/plain")
                return
            if head.path == self._metrics_path and self.metrics is not None:
                content_type = b"text/plain; version=0.0.4; charset=utf-8"
                await _answer(stream, 200, self.metrics.render(), content_type)
                return
        metrics = self.metrics
        if metrics is None:
            await self.app.handle_http(stream)
            return
        method = head.method if head.method in _METHODS else "other"
        if isinstance(stream, WebSocketHandshake):
            # The WebSocket route needs the stream itself (isinstance checks).
            metrics.websocket_upgrades += 1
            await self.app.handle_http(stream)
            return
        counting = _CountingStream(stream, metrics)
        metrics.active_requests += 1
        try:
            wrapped: Any = counting
            await self.app.handle_http(wrapped)
        finally:
            metrics.active_requests -= 1
            status = f"{counting.status // 100}xx" if counting.status else "none"
            metrics.requests[(method, status)] += 1


class _LifespanOperationsApp(OperationsApp):
    def lifespan(self) -> AbstractAsyncContextManager[None]:
        assert isinstance(self.app, LifespanApplication)
        return self.app.lifespan()


async def _answer(stream: HTTPStream, status: int, body: bytes, content_type: bytes) -> None:
    headers = (
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    )
    await stream.send_response(status, headers)
    await stream.send_body(b"" if stream.head.method == "HEAD" else body, end=True)


def with_operations(
    app: Application,
    config: Config,
    *,
    connections: Callable[[], int],
    draining: Callable[[], bool],
) -> tuple[Application, Metrics | None]:
    """``app`` behind the health/metrics endpoints, when either is configured."""
    if config.health_path is None and config.metrics_path is None:
        return app, None
    metrics = Metrics(connections) if config.metrics_path is not None else None
    kind = _LifespanOperationsApp if isinstance(app, LifespanApplication) else OperationsApp
    return kind(app, config, metrics, draining), metrics
