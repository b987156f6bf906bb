"""Several server processes on the same sockets: the supervisor, and the worker side.

``python -m httpy app --workers 4`` (and ``--reload``) runs a :class:`Supervisor`.  It
binds every listening socket once, then starts the workers: each is the same command
line again, with the sockets inherited as descriptors (``fd:N`` binds, in
``HTTPY_WORKER_SOCKETS``).  All workers accept from the same kernel queue, so

* a worker that stops (drains, crashes, is replaced) never takes queued connections
  with it: the others still accept them.  That is why a shared socket is the default
  rather than ``SO_REUSEPORT``, where the kernel hashes each connection to one socket
  and resets the queue of a socket that closes (Linux), dropping connections during a
  rolling restart.  ``--reuse-port`` is there for those who prefer the kernel's even
  spread over that guarantee: each worker then binds its own TCP sockets.

The supervisor:

* restarts a worker that exits unexpectedly (``kill -9``), with a pause when workers
  keep dying at startup;
* on SIGTERM / SIGINT sends SIGTERM to every worker (each drains gracefully: see
  :mod:`httpy.backends.server`), waits, and exits 0;
* on SIGHUP replaces the workers one by one (a rolling restart): a new worker first,
  and only once it is serving, SIGTERM to an old one.  A new worker that fails to start
  stops the rolling restart; the old workers keep serving;
* exits 1 when the application fails to start (the first worker starts alone, so the
  cause is printed once, by it);
* with ``reload`` (development), watches the source tree with ``watchfiles`` and does a
  rolling restart on every change: a change that breaks the app leaves the previous
  version serving, and the next change is tried again.

A worker says it is serving by writing one byte on an inherited pipe
(``HTTPY_WORKER_READY_FD``) once its listeners are open and its lifespan has started;
it stops by itself if the supervisor disappears (``kill -9`` of the supervisor).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import FrameType

import anyio

from ..core.application import Application
from ..core.config import Config
from .listeners import BoundSocket, bind_sockets, parse_fd_bind, unix_path
from .server import serve

log = logging.getLogger("httpy.workers")

SOCKETS_ENV = "HTTPY_WORKER_SOCKETS"
TLS_SOCKETS_ENV = "HTTPY_WORKER_TLS_SOCKETS"
READY_FD_ENV = "HTTPY_WORKER_READY_FD"
SUPERVISOR_ENV = "HTTPY_SUPERVISOR_PID"
#: With reuse_port: the TCP binds each worker binds itself (newline-separated), as the
#: supervisor resolved them (a worker must not re-derive them: systemd's LISTEN_FDS, for
#: one, names the supervisor's pid, not the worker's).
TCP_BINDS_ENV = "HTTPY_WORKER_TCP_BINDS"
TCP_TLS_BINDS_ENV = "HTTPY_WORKER_TCP_TLS_BINDS"

#: How long a new worker gets to start serving before it counts as failed.
STARTUP_TIMEOUT = 60.0
#: Workers dying this soon after starting are paused for before being started again.
CRASH_WINDOW = 1.0


# -- the worker side -----------------------------------------------------------------


def in_worker(environ: dict[str, str] | None = None) -> bool:
    """True in a process started by a :class:`Supervisor`."""
    return SUPERVISOR_ENV in (os.environ if environ is None else environ)


def worker_config(config: Config) -> Config:
    """Inside a worker: ``config`` listening on the supervisor's sockets instead."""
    plain = _fds(os.environ.get(SOCKETS_ENV, ""))
    tls = _fds(os.environ.get(TLS_SOCKETS_ENV, ""))
    own_tcp: tuple[str, ...] = ()
    own_tls: tuple[str, ...] = ()
    if config.reuse_port:  # each worker binds its own TCP sockets
        own_tcp = _lines(os.environ.get(TCP_BINDS_ENV, ""))
        own_tls = _lines(os.environ.get(TCP_TLS_BINDS_ENV, ""))
    return replace(config, binds=own_tcp + plain, tls_binds=own_tls + tls)


async def serve_process(app: Application, config: Config) -> None:
    """What ``python -m httpy`` runs in its event loop: :func:`serve` with signal
    handlers, plus the worker duties inside a supervised worker."""
    if not in_worker():
        await serve(app, config, install_signal_handlers=True)
        return
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # SIGHUP is for the supervisor
    supervisor = int(os.environ[SUPERVISOR_ENV])
    ready_fd = int(os.environ.get(READY_FD_ENV, "-1"))

    async def supervisor_gone() -> None:
        # No event announces a parent's death portably: poll, once a second.
        while os.getppid() == supervisor:  # noqa: ASYNC110
            await anyio.sleep(1.0)
        log.warning("supervisor %d is gone: shutting down", supervisor)

    try:
        async with anyio.create_task_group() as tasks:
            await tasks.start(
                partial(
                    serve,
                    app,
                    config,
                    install_signal_handlers=True,
                    shutdown_trigger=supervisor_gone,
                )
            )
            if ready_fd >= 0:
                with contextlib.suppress(OSError):
                    os.write(ready_fd, b"1")
                    os.close(ready_fd)
    except BaseExceptionGroup as group:
        # The task group wraps what serve() raised (StartupError, OSError): unwrap a
        # lone exception so the command line reports it as it does without workers.
        leaves = _leaves(group)
        if len(leaves) == 1:
            raise leaves[0] from leaves[0].__cause__
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def _fds(text: str) -> tuple[str, ...]:
    return tuple(f"fd:{n}" for n in text.split(",") if n.strip().isdigit())


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line for line in text.split("\n") if line)


def _is_tcp(bind: str) -> bool:
    return parse_fd_bind(bind) is None and unix_path(bind) is None


# -- the supervisor ------------------------------------------------------------------


@dataclass(eq=False)
class Worker:
    """One worker process and the read end of its readiness pipe."""

    process: subprocess.Popen[bytes]
    ready_fd: int | None
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    failed: bool = False  # closed its pipe without becoming ready

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll_ready(self) -> None:
        if self.ready_fd is None:
            return
        data = os.read(self.ready_fd, 1)
        os.close(self.ready_fd)
        self.ready_fd = None
        self.ready, self.failed = bool(data), not data

    def close(self) -> None:
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


class Supervisor:
    """Run ``workers`` copies of ``command`` on ``config``'s sockets; see the module."""

    def __init__(
        self,
        command: Sequence[str],
        config: Config,
        *,
        workers: int = 1,
        reload_dirs: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.command = list(command)
        self.config = config
        self.count = workers
        self.reload_dirs = list(reload_dirs)
        self.workers: list[Worker] = []
        self.retiring: list[Worker] = []
        self._sockets: list[BoundSocket] = []
        self._stop_signal: int | None = None
        self._rolling = False
        self._changed = threading.Event()
        self._watch_stop = threading.Event()

    # -- public ------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; the process exit status."""
        binds, tls_binds = self.config.binds, self.config.tls_binds
        if self.config.reuse_port:  # workers bind TCP themselves (SO_REUSEPORT)
            binds = tuple(b for b in binds if not _is_tcp(b))
            tls_binds = tuple(b for b in tls_binds if not _is_tcp(b))
        self._sockets = bind_sockets(binds, tls_binds, backlog=self.config.backlog)
        for bound in self._sockets:
            bound.sock.set_inheritable(True)
            log.info("httpy supervisor listening on %s", bound.describe())
        previous = self._install_signal_handlers()
        watcher = self._start_watcher() if self.reload_dirs else None
        try:
            return self._supervise()
        finally:
            self._stop_all()
            self._watch_stop.set()
            if watcher is not None:
                watcher.join(timeout=5)
            for bound in self._sockets:
                bound.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            log.info("httpy supervisor stopped")

    # -- main loop ---------------------------------------------------------------

    def _supervise(self) -> int:
        # One worker first, the others once it serves: an application that cannot start
        # fails once, with its cause printed once, instead of in every worker at once.
        self.workers = [self._spawn()]
        started = self._wait_ready(self.workers)
        if started:
            self.workers += [self._spawn() for _ in range(self.count - 1)]
            started = self._wait_ready(self.workers)
        if started:
            log.info(
                "httpy supervisor %d started %d worker(s): %s",
                os.getpid(),
                self.count,
                " ".join(str(w.pid) for w in self.workers),
            )
        elif self._stop_signal is None:
            if not self.reload_dirs:
                log.error("a worker failed to start: stopping")
                return 1
            log.error("the application failed to start: waiting for a change to retry")
        while self._stop_signal is None:
            self._tick(0.2)
            self._reap()
            if self._changed.is_set():
                self._changed.clear()
                log.info("source changed: reloading")
                self._rolling_restart()
            if self._rolling:
                self._rolling = False
                log.info("SIGHUP: rolling restart of %d worker(s)", len(self.workers))
                self._rolling_restart()
        log.info(
            "received %s: stopping %d worker(s)",
            signal.Signals(self._stop_signal).name,
            len(self.workers),
        )
        return 0

    def _spawn(self) -> Worker:
        read_fd, write_fd = os.pipe()
        plain = [str(b.sock.fileno()) for b in self._sockets if not b.tls]
        tls = [str(b.sock.fileno()) for b in self._sockets if b.tls]
        env = {
            **os.environ,
            SOCKETS_ENV: ",".join(plain),
            TLS_SOCKETS_ENV: ",".join(tls),
            READY_FD_ENV: str(write_fd),
            SUPERVISOR_ENV: str(os.getpid()),
            TCP_BINDS_ENV: "\n".join(b for b in self.config.binds if _is_tcp(b)),
            TCP_TLS_BINDS_ENV: "\n".join(b for b in self.config.tls_binds if _is_tcp(b)),
        }
        try:
            process = subprocess.Popen(
                self.command,
                env=env,
                pass_fds=(*(b.sock.fileno() for b in self._sockets), write_fd),
                # Its own process group: a terminal's Ctrl-C reaches the supervisor
                # only, which then stops the workers once, in order.
                process_group=0,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return Worker(process, read_fd)

    def _tick(self, timeout: float, workers: list[Worker] | None = None) -> None:
        """Wait up to ``timeout`` for readiness news (or a signal) and record it."""
        polled = self.workers if workers is None else workers
        waiting = {w.ready_fd: w for w in polled if w.ready_fd is not None}
        if not waiting:
            time.sleep(timeout)  # interrupted early by signals (handlers run)
            return
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(list(waiting), [], [], timeout)
            for fd in readable:
                waiting[fd].poll_ready()

    def _wait_ready(self, workers: list[Worker]) -> bool:
        """Wait until every one of ``workers`` serves; False if one fails first."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self._stop_signal is None:
            if any(w.failed or w.process.poll() is not None for w in workers if not w.ready):
                return False
            if all(w.ready for w in workers):
                return True
            if time.monotonic() > deadline:
                log.error("worker(s) not serving after %.0fs", STARTUP_TIMEOUT)
                return False
            self._tick(0.1, workers)
        return False

    def _reap(self) -> None:
        for worker in list(self.retiring):
            if worker.process.poll() is not None:
                self.retiring.remove(worker)
                worker.close()
        for index, worker in enumerate(list(self.workers)):
            code = worker.process.poll()
            if code is None:
                continue
            worker.close()
            if worker.ready:
                log.warning("worker %d exited (status %d): starting another", worker.pid, code)
            else:
                log.warning("worker %d failed to start (status %d)", worker.pid, code)
                if self.reload_dirs:
                    self.workers.remove(worker)  # broken code: wait for the next change
                    continue
            if time.monotonic() - worker.started_at < CRASH_WINDOW:
                time.sleep(CRASH_WINDOW)  # don't spin on an app that dies at once
            self.workers[index] = self._spawn()

    def _rolling_restart(self) -> None:
        """Replace the workers one at a time, a new one serving before an old one stops."""
        while len(self.workers) < self.count and self._stop_signal is None:
            new = self._spawn()  # the slots of workers that could not start
            if not self._wait_ready([new]):
                log.error("new worker %d failed to start", new.pid)
                self._terminate(new)
                self.retiring.append(new)
                return
            self.workers.append(new)
        for index, old in enumerate(list(self.workers)):
            if self._stop_signal is not None:
                return
            new = self._spawn()
            if not self._wait_ready([new]):
                log.error("new worker %d failed to start: keeping the running workers", new.pid)
                self._terminate(new)
                self.retiring.append(new)
                return
            self.workers[index] = new
            self._terminate(old)
            self.retiring.append(old)
            log.info("worker %d replaced by %d", old.pid, new.pid)

    # -- stopping ----------------------------------------------------------------

    def _terminate(self, worker: Worker) -> None:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)

    def _stop_all(self) -> None:
        everyone = self.workers + self.retiring
        for worker in everyone:
            self._terminate(worker)
        deadline = time.monotonic() + self.config.drain_timeout + 5.0
        for worker in everyone:
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop: killing it", worker.pid)
                worker.process.kill()
                worker.process.wait()
            worker.close()
        self.workers, self.retiring = [], []

    def _install_signal_handlers(self) -> dict[int, signal._HANDLER]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self._stop_signal = signum

        def roll(signum: int, frame: FrameType | None) -> None:
            self._rolling = True

        previous: dict[int, signal._HANDLER] = {}
        for signum, handler in (
            (signal.SIGTERM, stop),
            (signal.SIGINT, stop),
            (signal.SIGHUP, roll),
        ):
            previous[signum] = signal.signal(signum, handler)
        return previous

    # -- reload ------------------------------------------------------------------

    def _start_watcher(self) -> threading.Thread:
        try:
            import watchfiles
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("--reload needs watchfiles: pip install 'httpy[reload]'") from exc

        def watch() -> None:
            for _ in watchfiles.watch(
                *self.reload_dirs,
                watch_filter=watchfiles.PythonFilter(),
                stop_event=self._watch_stop,
                debounce=200,
            ):
                self._changed.set()

        thread = threading.Thread(target=watch, name="httpy-reload", daemon=True)
        thread.start()
        log.info("watching %s for changes (development only)", ", ".join(self.reload_dirs))
        return thread


def worker_command(argv: Sequence[str] | None) -> list[str]:
    """The command that starts one worker: this same command line again."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [sys.executable, "-m", "httpy", *args]
