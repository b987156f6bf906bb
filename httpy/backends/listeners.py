"""Listening sockets: TCP (IPv4/IPv6), unix domain sockets, and already-open descriptors.

A bind address is one of:

* ``host:port`` (``[::1]:8000`` for IPv6; a name such as ``localhost`` listens on
  every address it resolves to, on one port);
* ``unix:/path/to.sock``: a unix domain socket (a stale socket file is replaced; the
  file is removed when the server that created it stops);
* ``fd:N``: descriptor ``N``, already bound (and usually listening), inherited from the
  process that started us: a supervisor, ``systemd`` socket activation (see
  :func:`systemd_binds`), or a shell.

Sockets are created synchronously so that the worker supervisor
(:mod:`httpy.backends.workers`) can bind them once and hand the descriptors to its
workers; :class:`~httpy.backends.server.Server` wraps them in anyio listeners.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..core.config import parse_bind

#: First descriptor systemd passes (``SD_LISTEN_FDS_START``).
SYSTEMD_FIRST_FD = 3


@dataclass(slots=True)
class BoundSocket:
    """A listening socket, whether it speaks TLS, and the unix path to remove at the end."""

    sock: socket.socket
    tls: bool
    bind: str
    unlink_path: str | None = None

    def describe(self) -> str:
        """``http://127.0.0.1:8000``, ``https://[::1]:8443``, ``http://unix:/run/x.sock``."""
        scheme = "https" if self.tls else "http"
        if self.sock.family == socket.AF_UNIX:
            return f"{scheme}://unix:{self.sock.getsockname() or self.bind}"
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{port}"

    def close(self) -> None:
        self.sock.close()
        remove_socket_file(self.unlink_path)


def parse_fd_bind(bind: str) -> int | None:
    """The descriptor number of an ``fd:N`` (or ``fd://N``) bind, else None."""
    if not bind.startswith("fd:"):
        return None
    text = bind[3:].removeprefix("//")
    if not text.isdigit():
        raise ValueError(f"bind address {bind!r}: fd:N needs a descriptor number")
    return int(text)


def unix_path(bind: str) -> str | None:
    """The path of a ``unix:PATH`` bind, else None."""
    if not bind.startswith("unix:"):
        return None
    path = bind[5:]
    if not path:
        raise ValueError(f"bind address {bind!r}: unix: needs a path")
    return path


def bind_sockets(
    binds: Iterable[str],
    tls_binds: Iterable[str] = (),
    *,
    backlog: int = 1024,
    reuse_port: bool = False,
) -> list[BoundSocket]:
    """Open (or adopt) a listening socket for every bind; all or nothing.

    ``reuse_port`` sets ``SO_REUSEPORT`` on TCP sockets, so several processes can bind
    the same port and the kernel spreads connections between them.
    """
    opened: list[BoundSocket] = []
    try:
        for tls, group in ((False, binds), (True, tls_binds)):
            for bind in group:
                opened.extend(_open(bind, tls, backlog, reuse_port))
    except BaseException:
        for bound in opened:
            bound.close()
        raise
    return opened


def _open(bind: str, tls: bool, backlog: int, reuse_port: bool) -> list[BoundSocket]:
    fd = parse_fd_bind(bind)
    if fd is not None:
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM:
            sock.detach()
            raise ValueError(f"descriptor {fd} is not a stream socket")
        sock.listen(backlog)  # harmless when already listening; needed when only bound
        sock.setblocking(False)
        return [BoundSocket(sock, tls, bind)]
    path = unix_path(bind)
    if path is not None:
        return [_open_unix(path, tls, bind, backlog)]
    host, port = parse_bind(bind)
    return _open_tcp(host, port, tls, bind, backlog, reuse_port)


def _open_unix(path: str, tls: bool, bind: str, backlog: int) -> BoundSocket:
    with contextlib.suppress(FileNotFoundError):
        # A socket file left by a server that died is in the way; anything else is not
        # ours to delete.
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return BoundSocket(sock, tls, bind, unlink_path=path)


def _open_tcp(
    host: str, port: int, tls: bool, bind: str, backlog: int, reuse_port: bool
) -> list[BoundSocket]:
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_ADDRCONFIG
    )
    seen: set[tuple[int, object]] = set()
    opened: list[BoundSocket] = []
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            opened.append(BoundSocket(sock, tls, bind))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                # One socket per family, as for "localhost" (127.0.0.1 and ::1).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(opened) > 1:
                # Port 0 for a name with several addresses: one port for all of them.
                address = (address[0], opened[0].sock.getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for bound in opened:
            bound.close()
        raise
    return opened


def systemd_binds(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``fd:N`` binds for the sockets systemd passed (socket activation), if any.

    systemd sets ``LISTEN_FDS`` (how many, from descriptor 3) and ``LISTEN_PID`` (the
    process they are for: a child that inherited the environment must not take them).
    """
    env = os.environ if environ is None else environ
    count, pid = env.get("LISTEN_FDS", ""), env.get("LISTEN_PID", "")
    if not count.isdigit() or (pid and pid != str(os.getpid())):
        return ()
    return tuple(f"fd:{SYSTEMD_FIRST_FD + i}" for i in range(int(count)))


def remove_socket_file(path: str | None) -> None:
    """Remove a unix socket file we created (ignoring one already gone)."""
    if path is None:
        return
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
