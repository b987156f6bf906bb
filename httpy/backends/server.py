"""``serve()``: listeners, one task per connection, graceful shutdown.

Runs under ``anyio.run(..., backend="asyncio" | "trio")``, ``asyncio.run`` and
``trio.run`` alike: everything goes through anyio.

Shutdown order (on a signal, the ``shutdown_trigger``, or cancellation of ``serve``):

1. stop accepting and close the listening sockets;
2. close idle keep-alive connections at once; requests in flight finish and their
   responses carry ``Connection: close``;
3. after ``Config.drain_timeout`` cancel whatever is still running;
4. return (or re-raise the cancellation that started it).
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import sniffio
from anyio.abc import SocketAttribute

from ..core.application import Application
from ..core.config import Config, parse_bind
from .asyncio_stream import AsyncioSocketStream
from .connection import ConnectionContext, HTTP1Driver
from .logs import error_log

ShutdownTrigger = Callable[[], Awaitable[object]]

# Accept errors that mean "out of resources right now", not "listener broken".
_TRANSIENT_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Server:
    """One running server: its listeners, its connections, its shutdown state."""

    def __init__(self, app: Application, config: Config) -> None:
        self.config = config
        self._context = ConnectionContext.create(app, config)
        self._drivers: set[HTTP1Driver] = set()
        self._limiter = anyio.Semaphore(config.max_connections)
        self._draining = False
        self._all_closed = anyio.Event()
        self.addresses: list[tuple[str, int]] = []

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
        listeners = await self._open_listeners()
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
            if install_signal_handlers and threading.current_thread() is threading.main_thread():
                watchers.start_soon(watch, self._wait_for_signal)
            async with anyio.create_task_group() as connections:
                connections.cancel_scope.shield = True
                async with anyio.create_task_group() as accepting:
                    for listener in listeners:
                        accepting.start_soon(self._accept_loop, listener, connections)
                    task_status.started(list(self.addresses))
                    await stop.wait()
                    accepting.cancel_scope.cancel()
                await self._drain(listeners, connections)
            watchers.cancel_scope.cancel()
        error_log.info("httpy stopped")

    # -- listening -----------------------------------------------------------------

    async def _open_listeners(self) -> list[anyio.abc.SocketListener]:
        listeners: list[anyio.abc.SocketListener] = []
        try:
            for bind in self.config.binds:
                host, port = parse_bind(bind)
                multi = await anyio.create_tcp_listener(
                    local_host=host, local_port=port, backlog=self.config.backlog
                )
                for listener in multi.listeners:
                    if not isinstance(listener, anyio.abc.SocketListener):
                        continue
                    listeners.append(listener)
                    address = listener.extra(SocketAttribute.local_address)
                    if isinstance(address, tuple):
                        self.addresses.append((str(address[0]), int(address[1])))
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        for host, port in self.addresses:
            shown = f"[{host}]" if ":" in host else host
            error_log.info("httpy serving HTTP/1.1 on http://%s:%d", shown, port)
        return listeners

    async def _accept_loop(
        self, listener: anyio.abc.SocketListener, connections: anyio.abc.TaskGroup
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
                connections.start_soon(self._handle_connection, sock)

    async def _handle_connection(self, sock: socket.socket) -> None:
        driver: HTTP1Driver | None = None
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _address(sock.getpeername())
            server = _address(sock.getsockname())
            stream: anyio.abc.ByteStream
            if sniffio.current_async_library() == "asyncio":
                stream = await AsyncioSocketStream.from_socket(sock)
            else:
                stream = await anyio.abc.SocketStream.from_socket(sock)
            driver = HTTP1Driver(stream, self._context, client, server)
            self._drivers.add(driver)
            if self._draining:
                driver.begin_shutdown()
            await driver.run()
        except Exception:
            error_log.exception("connection task failed")
        finally:
            if driver is not None:
                self._drivers.discard(driver)
            else:
                sock.close()
            self._limiter.release()
            if self._draining and not self._drivers:
                self._all_closed.set()

    # -- shutdown ------------------------------------------------------------------

    async def _wait_for_signal(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                error_log.info("received %s: shutting down gracefully", signal.Signals(signum).name)
                return

    async def _drain(
        self, listeners: list[anyio.abc.SocketListener], connections: anyio.abc.TaskGroup
    ) -> None:
        self._draining = True
        for listener in listeners:
            await listener.aclose()
        for driver in list(self._drivers):
            driver.begin_shutdown()
        if self._drivers:
            error_log.info(
                "waiting up to %.1fs for %d connection(s) to finish",
                self.config.drain_timeout,
                len(self._drivers),
            )
            with anyio.move_on_after(self.config.drain_timeout):
                await self._all_closed.wait()
            if self._drivers:
                error_log.warning("drain timeout: cancelling %d connection(s)", len(self._drivers))
        connections.cancel_scope.cancel()


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
    task_status: anyio.abc.TaskStatus[list[tuple[str, int]]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until shutdown; see the module docstring for the shutdown order.

    ``task_status.started`` receives the bound ``(host, port)`` addresses, so
    ``await task_group.start(serve, app, config)`` works with port 0.
    """
    server = Server(app, config if config is not None else Config())
    await server.serve(
        shutdown_trigger=shutdown_trigger,
        install_signal_handlers=install_signal_handlers,
        task_status=task_status,
    )
