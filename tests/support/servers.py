"""Start real HTTPy servers for tests the way users start them.

Each server runs in a thread of its own, through a public entry point, never inside the
test's event loop (anyio's pytest plugin runs tests inside ``anyio.run``, whose context
once hid a bug that killed WebSocket connections under a plain ``asyncio.run``).

``HTTPY_TEST_ENTRY`` picks the entry point, so the suite can be run through each one:

``native`` (default, the README's way)
    ``asyncio.run(serve(...))`` or ``trio.run(partial(serve, ...))``
``anyio-run``
    ``anyio.run(partial(serve, ...), backend="asyncio" | "trio")``
``uvloop-run``
    ``uvloop.run(serve(...))`` for asyncio (``trio.run`` for trio)

On exit the fixtures stop the server through its ``shutdown_trigger``, join the thread and
re-raise whatever ``serve`` raised.  They also fail the test on errors that are only
logged, which the test would not see otherwise: on asyncio, what the server's loop reported
to its exception handler (a transport callback that raised: "Fatal error:
protocol.data_received() call failed", "Exception in callback", "Task exception was never
retrieved"); on both loops, a "connection task failed" line on ``httpy.error`` from the
server's thread (an exception escaped a connection's driver: a server bug, not an
application error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any, cast

import anyio
import anyio.abc
import anyio.to_thread
import sniffio

from httpy import Config, serve
from httpy.core.application import Application

#: Environment variable naming the entry point the fixtures start servers through.
ENTRY_VARIABLE = "HTTPY_TEST_ENTRY"
ENTRY_POINTS = ("native", "anyio-run", "uvloop-run")
_ALIASES = {"asyncio-run": "native", "trio-run": "native", "run": "native"}

#: Log lines on ``httpy.error`` that mean the server itself failed (fail the test).
SERVER_FAILURES = ("connection task failed",)

#: How long a server may take to start listening, and to stop once asked.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0


def entry_point() -> str:
    """The entry point named by ``HTTPY_TEST_ENTRY`` (default ``native``)."""
    value = os.environ.get(ENTRY_VARIABLE, "").strip().lower() or "native"
    value = _ALIASES.get(value, value)
    if value not in ENTRY_POINTS:
        raise ValueError(
            f"{ENTRY_VARIABLE}={value!r}: expected one of {', '.join(ENTRY_POINTS)}"
        )
    return value


def make_config(**options: Any) -> Config:
    options.setdefault("binds", ("127.0.0.1:0",))
    options.setdefault("access_log", False)
    return Config(**options)


class ServerThread:
    """``serve(app, config)`` in a new thread, on a new ``backend`` loop.

    ``start()``, then ``wait_started()`` (True once listening, False if ``serve`` ended
    first), ``stop()`` from any thread, ``join()`` to wait and re-raise.
    """

    def __init__(
        self, app: Application, config: Config, backend: str, entry: str | None = None
    ) -> None:
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"unknown backend {backend!r}")
        self.app = app
        self.config = config
        self.backend = backend
        self.entry = entry or entry_point()
        #: The bound addresses ``serve`` reported through its task status.
        self.addresses: list[tuple[str, int]] = []
        #: What ``serve`` raised (re-raised by ``join``).
        self.error: BaseException | None = None
        #: Errors the asyncio loop's exception handler received, and the server's own
        #: failures logged on ``httpy.error`` from its thread (fail ``join``).
        self.loop_errors: list[str] = []
        self._started = threading.Event()
        self._wake: Callable[[], object] | None = None
        self._stop_event: asyncio.Event | Any
        if backend == "asyncio":
            self._stop_event = asyncio.Event()  # binds to the loop at its first wait
        else:
            import trio

            self._stop_event = trio.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"httpy-server-{backend}-{self.entry}", daemon=True
        )

    # -- from the test ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wait_started(self, timeout: float = START_TIMEOUT) -> bool:
        if not self._started.wait(timeout):
            raise AssertionError(f"server ({self.describe()}) not listening after {timeout}s")
        return self._wake is not None

    def stop(self) -> None:
        """Ask the server to shut down gracefully (safe from any thread, at any time)."""
        wake = self._wake
        if wake is None or not self._thread.is_alive():
            return
        # RuntimeError: the loop has already ended (serve returned or raised on its own).
        with contextlib.suppress(RuntimeError):
            wake()

    def join(self, timeout: float = STOP_TIMEOUT) -> None:
        """Wait for the thread; re-raise what ``serve`` raised or the loop reported."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"server ({self.describe()}) still running {timeout}s after stop")
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.loop_errors:
            raise AssertionError(
                f"the server ({self.describe()}) logged errors that are its own bugs:\n\n"
                + "\n\n".join(self.loop_errors)
            )
        if self._wake is None:
            raise AssertionError(f"server ({self.describe()}) returned before listening")

    def describe(self) -> str:
        return f"{self.backend}, entry point {self.entry}"

    # -- in the server's thread ------------------------------------------------------

    def _main(self) -> None:
        failures = _FailureLog(threading.get_ident(), self.loop_errors)
        logging.getLogger("httpy.error").addHandler(failures)
        try:
            if self.entry == "anyio-run":
                anyio.run(self._serve, backend=self.backend)
            elif self.backend == "trio":
                import trio

                trio.run(self._serve)
            elif self.entry == "uvloop-run":
                import uvloop

                uvloop.run(self._serve())
            else:
                asyncio.run(self._serve())
        except BaseException as exc:  # re-raised by join() in the test's thread
            self.error = exc
        finally:
            logging.getLogger("httpy.error").removeHandler(failures)
            self._started.set()

    def _serve(self) -> Coroutine[Any, Any, None]:
        return serve(
            self.app,
            self.config,
            shutdown_trigger=self._stop_event.wait,
            task_status=cast("anyio.abc.TaskStatus[list[tuple[str, int]]]", self),
        )

    def started(self, value: list[tuple[str, int]] | None = None) -> None:
        """``serve``'s task status: called in the server's loop once it listens."""
        self.addresses = list(value or [])
        if self.backend == "asyncio":
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(self._loop_error)
            self._wake = partial(loop.call_soon_threadsafe, self._stop_event.set)
        else:
            import trio

            token = trio.lowlevel.current_trio_token()
            self._wake = partial(token.run_sync_soon, self._stop_event.set)
        self._started.set()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop.default_exception_handler(context)  # still logged, as asyncio would
        lines = [str(context.get("message", "unhandled exception in the event loop"))]
        for key, value in context.items():
            if key not in ("message", "exception"):
                lines.append(f"{key}: {value!r}")
        exception = context.get("exception")
        if isinstance(exception, BaseException):
            lines.extend(
                line.rstrip("\n")
                for line in traceback.format_exception(
                    type(exception), exception, exception.__traceback__
                )
            )
        self.loop_errors.append("\n".join(lines))


class _FailureLog(logging.Handler):
    """Collects the :data:`SERVER_FAILURES` lines one server thread logs."""

    def __init__(self, thread: int, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.thread = thread
        self.into = into
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and any(
            failure in record.getMessage() for failure in SERVER_FAILURES
        ):
            self.into.append(self.format(record))


@asynccontextmanager
async def running_server(app: Application, **options: Any) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on an ephemeral loopback port from a thread of its own, on the same
    kind of loop as the calling test (asyncio or trio); yields ``(host, port)``.

    The test's loop and the server's are different loops: share only thread-safe state
    with the application (plain values, :class:`ThreadEvent`, not ``anyio.Event``).
    """
    server = ServerThread(app, make_config(**options), sniffio.current_async_library())
    server.start()
    try:
        if await anyio.to_thread.run_sync(server.wait_started):
            yield server.addresses[0]
    finally:
        with anyio.CancelScope(shield=True):
            server.stop()
            await anyio.to_thread.run_sync(server.join)


@contextmanager
def server_thread(app: Application, backend: str, **options: Any) -> Iterator[tuple[str, int]]:
    """Serve ``app`` from a thread running its own ``backend`` event loop; yields
    ``(host, port)``.  For clients that bring their own loop or none (aiohttp, sync
    httpx, curl)."""
    server = ServerThread(app, make_config(**options), backend)
    server.start()
    try:
        if server.wait_started():
            yield server.addresses[0]
    finally:
        server.stop()
        server.join()


class ThreadEvent:
    """An event that a test and the application it serves can share across threads
    (``anyio.Event`` belongs to one loop): ``set()`` from anywhere, ``await wait()``
    on any loop."""

    def __init__(self) -> None:
        self._flag = threading.Event()

    def set(self) -> None:
        self._flag.set()

    def is_set(self) -> bool:
        return self._flag.is_set()

    async def wait(self) -> None:
        while not self._flag.is_set():
            await anyio.sleep(0.005)


def free_port() -> int:
    """A TCP port that was free a moment ago (for servers started in subprocesses)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
