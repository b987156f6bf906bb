"""``serve()``: listeners, one task per connection, graceful shutdown.

Runs under ``anyio.run(..., backend="asyncio" | "trio")``, ``asyncio.run`` and
``trio.run`` alike: everything goes through anyio.

Startup: an application that is a :class:`~httpy.core.application.LifespanApplication`
has its lifespan entered first; if that fails the cause is logged once on ``httpy.error``,
no listener is opened, and :class:`~httpy.core.application.StartupError` is raised.

Shutdown order (on a signal, the ``shutdown_trigger``, or cancellation of ``serve``):

1. stop accepting and close the listening sockets;
2. close idle keep-alive connections at once; requests in flight finish and their
   responses carry ``Connection: close``;
3. after ``Config.drain_timeout`` cancel whatever is still running;
4. exit the application's lifespan (its shutdown; a failure is logged, not raised);
5. return (or re-raise the cancellation that started it).
"""

from __future__ import annotations

import errno
import signal
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from ..core.application import Application, LifespanApplication, StartupError
from ..core.config import Config
from ..core.proxy_protocol import ProxyProtocolError
from .cert_files import install as _record_cert_files
from .clients import ClientEntry, ClientTable
from .connection import ConnectionContext, SwitchToHTTP2, SwitchToWebSocket, format_peer
from .http1_driver import HTTP1Driver
from .http2_driver import HTTP2Driver
from .listeners import bind_sockets, remove_socket_file
from .logs import error_log
from .metrics import with_operations
from .proxy import chain, read_proxy_header
from .tls import client_cert_hook, config_ssl_context, enable_alpn, peer_certificate, tls_handshake
from .transport import open_socket_stream, run_transport_services
from .websocket_driver import WebSocketDriver

if TYPE_CHECKING:
    from .quic import QuicListener  # imported when HTTP/3 is on: aioquic is optional

ShutdownTrigger = Callable[[], Awaitable[object]]

_Result = TypeVar("_Result", covariant=True)
_R = TypeVar("_R")


class _Driver(Protocol[_Result]):
    """What the server needs of a connection driver (any protocol)."""

    def begin_shutdown(self) -> None: ...

    def run(self) -> Awaitable[_Result]: ...


_record_cert_files()  # so that run(ssl_context=..., http3_port=...) finds the cert files

# Accept errors that mean "out of resources right now", not "listener broken".
_TRANSIENT_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Server:
    """One running server: its listeners, its connections, its shutdown state."""

    def __init__(
        self, app: Application, config: Config, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        # Health check and metrics endpoints, when configured (else app is unchanged).
        app, self.metrics = with_operations(
            app,
            config,
            connections=lambda: self._connection_tasks,
            draining=lambda: self._draining,
        )
        #: What the server knows of each client across its connections.
        self.clients = ClientTable(config)
        self._context = ConnectionContext.create(app, config, clients=self.clients)
        self._tls_context_conn = ConnectionContext.create(
            app, config, scheme="https", clients=self.clients
        )
        if ssl_context is None and config.tls_binds:
            if not config.certfile:
                raise ValueError("tls_binds need a certificate: set certfile/keyfile")
            ssl_context = config_ssl_context(config)  # certificate, mTLS, ciphers, version
        elif ssl_context is not None:
            enable_alpn(ssl_context)  # a context the caller built: offer h2 and http/1.1
        self._ssl_context = ssl_context
        self._drivers: set[_Driver[object]] = set()
        self._limiter = anyio.Semaphore(config.max_connections)
        self._draining = False
        self._all_closed = anyio.Event()
        # Connection tasks started and not finished, drivers or not yet: the drain waits
        # for these (a task still setting up has no driver yet, but has a client).
        self._connection_tasks = 0
        self.addresses: list[tuple[str, int]] = []
        #: HTTP/3 (UDP) listeners and their bound addresses, when ``http3_binds`` is set.
        self._quic_listeners: list[QuicListener] = []
        self.http3_addresses: list[tuple[str, int]] = []
        self._socket_files: list[str] = []  # unix sockets we created: removed at the end

    @property
    def connection_count(self) -> int:
        return len(self._drivers)

    async def serve(
        self,
        *,
        shutdown_trigger: ShutdownTrigger | None = None,
        install_signal_handlers: bool = False,
        task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        async with self._lifespan():
            await self._serve(shutdown_trigger, install_signal_handlers, task_status)
        error_log.info("httpy stopped")

    async def _serve(
        self,
        shutdown_trigger: ShutdownTrigger | None,
        install_signal_handlers: bool,
        task_status: anyio.abc.TaskStatus[list[tuple[str, int]]],
    ) -> None:
        listeners = await self._open_listeners()
        try:
            await self._open_http3()
        except BaseException:
            for listener, _ in listeners:
                await listener.aclose()
            raise
        stop = anyio.Event()

        async def watch(wait: ShutdownTrigger) -> None:
            # Runs outside the shield: when serve() itself is cancelled, this task is
            # cancelled too, and its finally starts the graceful shutdown.
            try:
                await wait()
            finally:
                stop.set()

        async with anyio.create_task_group() as watchers:
            watchers.start_soon(watch, shutdown_trigger or anyio.sleep_forever)
            watchers.start_soon(run_transport_services)  # the loop's own (see transport.py)
            if install_signal_handlers and threading.current_thread() is threading.main_thread():
                watchers.start_soon(watch, self._wait_for_signal)
            async with anyio.create_task_group() as connections:
                connections.cancel_scope.shield = True
                for quic in self._quic_listeners:
                    connections.start_soon(quic.serve)
                async with anyio.create_task_group() as accepting:
                    for listener, tls in listeners:
                        accepting.start_soon(self._accept_loop, listener, tls, connections)
                    task_status.started(list(self.addresses))
                    await stop.wait()
                    accepting.cancel_scope.cancel()
                await self._drain(listeners, connections)
            watchers.cancel_scope.cancel()

    async def _open_http3(self) -> None:
        """UDP listeners for ``http3_binds``; from then on TCP responses announce them
        (``Alt-Svc``).  HTTP/3 connections run the application itself."""
        if not self.config.http3_binds:
            return
        from .alt_svc import alt_svc_value, with_alt_svc
        from .quic import open_quic_listeners

        app = self._context.app
        quic_context = ConnectionContext.create(
            app, self.config, scheme="https", clients=self.clients
        )
        self._quic_listeners = await open_quic_listeners(
            self.config, quic_context, self._ssl_context
        )
        self.http3_addresses = [quic.address for quic in self._quic_listeners]
        tcp_app = with_alt_svc(app, alt_svc_value([port for _, port in self.http3_addresses]))
        self._context = ConnectionContext.create(tcp_app, self.config, clients=self.clients)
        self._tls_context_conn = ConnectionContext.create(
            tcp_app, self.config, scheme="https", clients=self.clients
        )

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        """The application's startup before the listeners open, its shutdown after."""
        app = self._context.app
        if not isinstance(app, LifespanApplication):
            yield
            return
        lifespan = app.lifespan()
        try:
            await lifespan.__aenter__()
        except Exception as exc:
            # One line for people; the traceback for whoever runs with --log-level debug
            # (the exception itself reaches the caller of serve() as StartupError's cause).
            cause = _describe(exc)
            error_log.error("application startup failed: %s", cause)
            error_log.debug("application startup failure", exc_info=exc)
            raise StartupError(f"application startup failed: {cause}") from exc
        try:
            yield
        finally:
            try:
                await lifespan.__aexit__(None, None, None)
            except Exception:
                error_log.exception("application shutdown failed")

    # -- listening -----------------------------------------------------------------

    async def _open_listeners(self) -> list[tuple[anyio.abc.SocketListener, bool]]:
        """Listeners for ``binds`` (cleartext) and ``tls_binds``, tagged with TLS or not.

        Binds may be ``host:port``, ``unix:PATH`` or ``fd:N`` (see
        :mod:`httpy.backends.listeners`).
        """
        listeners: list[tuple[anyio.abc.SocketListener, bool]] = []
        tls_binds = self.config.tls_binds
        binds = self.config.binds
        if self._ssl_context is not None and not tls_binds:
            binds, tls_binds = (), binds  # run(ssl_context=...): every address is TLS
        bound = bind_sockets(
            binds, tls_binds, backlog=self.config.backlog, reuse_port=self.config.reuse_port
        )
        self._socket_files = [b.unlink_path for b in bound if b.unlink_path]
        try:
            for item in bound:
                shown = item.describe()
                listener = await anyio.abc.SocketListener.from_socket(item.sock)
                listeners.append((listener, item.tls))
                address = item.sock.getsockname()
                if isinstance(address, tuple):
                    self.addresses.append((str(address[0]), int(address[1])))
                error_log.info(
                    "httpy serving %s on %s",
                    "HTTP/2 and HTTP/1.1 (TLS)" if item.tls else "HTTP/1.1 and h2c",
                    shown,
                )
        except BaseException:
            for item in bound:
                item.close()
            raise
        return listeners

    async def _accept_loop(
        self, listener: anyio.abc.SocketListener, tls: bool, connections: anyio.abc.TaskGroup
    ) -> None:
        raw = listener.extra(SocketAttribute.raw_socket)
        while True:
            await anyio.wait_readable(raw)
            # Take every pending connection now, not one per event-loop turn: accepting
            # one at a time leaves a burst of new clients queued behind busy ones (with
            # 64 clients arriving at once, the last waited ~0.6 s for its first answer).
            for _ in range(self.config.backlog):
                try:
                    self._limiter.acquire_nowait()
                except anyio.WouldBlock:
                    await self._limiter.acquire()  # at max_connections: wait for a slot
                try:
                    sock, _ = raw.accept()
                except BlockingIOError:
                    self._limiter.release()
                    break
                except OSError as exc:
                    self._limiter.release()
                    if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                        raise
                    error_log.warning("accept() failed (%s); retrying in 100 ms", exc)
                    await anyio.sleep(0.1)
                    break
                self._connection_tasks += 1
                connections.start_soon(self._handle_connection, sock, tls)

    async def _handle_connection(self, sock: socket.socket, tls: bool) -> None:
        driver: _Driver[object] | None = None
        stream: anyio.abc.ByteStream | None = None
        entry: ClientEntry | None = None
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _address(sock.getpeername())
            server = _address(sock.getsockname())
            if self.config.proxy_protocol:
                try:
                    header = await read_proxy_header(sock, self.config.header_timeout)
                except (ProxyProtocolError, TimeoutError, OSError) as exc:
                    self._context.bad_requests.warning(
                        "no valid PROXY protocol header from %s: %s",
                        format_peer(client),
                        exc or "timeout",
                    )
                    return
                if header.client is not None:
                    client, server = header.client, header.server
            if self.config.max_connections_per_client is not None:
                entry = self.clients.connect(client, anyio.current_time())
                if entry is None:
                    self._context.bad_requests.warning(
                        "connection from %s refused: it has max_connections_per_client (%d) open",
                        format_peer(client),
                        self.config.max_connections_per_client,
                    )
                    return
            stream = await open_socket_stream(sock)
            context = self._context
            alpn: str | None = None
            if tls:
                assert self._ssl_context is not None
                context = self._tls_context_conn
                try:
                    stream, alpn = await tls_handshake(
                        stream, self._ssl_context, self.config.tls_handshake_timeout
                    )
                except (
                    TimeoutError,
                    ssl.SSLError,
                    anyio.BrokenResourceError,
                    anyio.EndOfStream,  # a TCP probe (load balancer, scanner): no hello
                    OSError,
                ) as exc:
                    context.bad_requests.warning(
                        "TLS handshake with %s failed: %s", format_peer(client), exc or "timeout"
                    )
                    return
                cert = peer_certificate(stream)
                if cert is not None:  # mutual TLS: the application sees the certificate
                    context = replace(
                        context, head_hook=chain(client_cert_hook(cert), context.head_hook)
                    )
            context = context.for_connection(client, server)
            if alpn == "h2":
                driver = HTTP2Driver(stream, context)
                await self._run_driver(driver)
                return
            http1 = HTTP1Driver(stream, context)
            driver = http1
            switch = await self._run_driver(http1)
            stream = http1.stream  # with what HTTP/1.1 read ahead, if anything
            if isinstance(switch, SwitchToHTTP2):
                driver = HTTP2Driver(
                    stream,
                    context,
                    initial_data=switch.unparsed,
                    upgrade=switch.upgrade,
                )
                await self._run_driver(driver)
            elif isinstance(switch, SwitchToWebSocket):
                driver = WebSocketDriver(stream, context, switch)
                await self._run_driver(driver)
        except Exception:
            error_log.exception("connection task failed")
        finally:
            if driver is None:
                with anyio.CancelScope(shield=True):
                    if stream is not None:
                        await stream.aclose()
                    else:
                        sock.close()
            if entry is not None:
                self.clients.disconnect(entry, anyio.current_time())
            self._limiter.release()
            self._connection_tasks -= 1
            if self._draining and not self._connection_tasks:
                self._all_closed.set()

    async def _run_driver(self, driver: _Driver[_R]) -> _R:
        self._drivers.add(driver)
        try:
            if self._draining:
                driver.begin_shutdown()
            return await driver.run()
        finally:
            self._drivers.discard(driver)

    # -- shutdown ------------------------------------------------------------------

    async def _wait_for_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                error_log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
                return

    async def _drain(
        self,
        listeners: list[tuple[anyio.abc.SocketListener, bool]],
        connections: anyio.abc.TaskGroup,
    ) -> None:
        self._draining = True
        for listener, _ in listeners:
            await listener.aclose()
        for path in self._socket_files:
            remove_socket_file(path)
        for driver in list(self._drivers):
            driver.begin_shutdown()
        for quic in self._quic_listeners:
            quic.begin_shutdown()  # H3 GOAWAY now, CONNECTION_CLOSE once streams are done
        if self._connection_tasks:
            error_log.info(
                "waiting up to %.1fs for %d connection(s) to finish",
                self.config.drain_timeout,
                self._connection_tasks,
            )
            with anyio.move_on_after(self.config.drain_timeout):
                await self._all_closed.wait()
            if self._connection_tasks:
                error_log.warning(
                    "drain timeout: cancelling %d connection(s)", self._connection_tasks
                )
        with anyio.move_on_after(self.config.drain_timeout):
            for quic in self._quic_listeners:
                await quic.wait_closed()
        connections.cancel_scope.cancel()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, StartupError) and text:
        return text  # already a description (an adapter reporting the app's failure)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


async def serve(
    app: Application,
    config: Config | None = None,
    *,
    shutdown_trigger: ShutdownTrigger | None = None,
    install_signal_handlers: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until shutdown; see the module docstring for the shutdown order.

    ``ssl_context`` serves ``Config.tls_binds`` over TLS (or, when there are none, every
    address); ALPN picks HTTP/2 or HTTP/1.1.  Cleartext addresses take HTTP/1.1, HTTP/2
    with prior knowledge, and ``Upgrade: h2c``.

    ``task_status.started`` receives the bound ``(host, port)`` addresses, so
    ``await task_group.start(serve, app, config)`` works with port 0.
    """
    server = Server(app, config if config is not None else Config(), ssl_context)
    await server.serve(
        shutdown_trigger=shutdown_trigger,
        install_signal_handlers=install_signal_handlers,
        task_status=task_status,
    )
