"""The one place where an HTTP connection core turns a command into work.

``HTTP1Connection``, ``HTTP2Connection`` and ``HTTP3Connection`` accept the same
commands (:mod:`httpy.core.events`).  ``ServerProtocol.send`` is the single dispatch over
them: it refuses commands on a finished connection, hands each command to the method of
the core that applies it, and turns the wrapped library's exceptions into ours.  A core
implements one ``_on_*`` method per command and never re-reads the command's type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, ClassVar

from . import events as ev
from .errors import LocalProtocolError, StreamClosedError

_Handler = Callable[[Any, Any], None]

#: The method of a core that applies each command (``CloseConnection`` aside: it is
#: accepted even on a finished connection).
_HANDLER_NAMES: dict[type[ev.Command], str] = {
    ev.SendResponse: "_on_send_response",
    ev.SendInformational: "_on_send_informational",
    ev.SendData: "_on_send_data",
    ev.SendTrailers: "_on_send_trailers",
    ev.ResetStream: "_on_reset_stream",
}


class ServerProtocol(ABC):
    """Base of the HTTP connection cores: applies the application's commands.

    Contract of ``send``: ``CloseConnection`` is always accepted (it ends the connection
    gracefully); any other command on a finished connection raises
    :class:`StreamClosedError`; an unknown command raises :class:`LocalProtocolError`.
    Errors the wrapped library raises (listed in ``library_errors``) reach the caller as
    the exception ``translate_error`` returns.
    """

    __slots__ = ()

    #: Exceptions of the wrapped library that ``send`` translates with ``translate_error``.
    library_errors: ClassVar[tuple[type[Exception], ...]] = ()
    # Command type -> the subclass's method that applies it; built once per subclass, so
    # sending costs one dict lookup (this is on every response's path).
    _handlers: ClassVar[dict[type[ev.Command], _Handler]]

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            # A missing method fails here, when the core is defined, not mid-response.
            cls._handlers = {kind: getattr(cls, name) for kind, name in _HANDLER_NAMES.items()}

    @property
    @abstractmethod
    def finished(self) -> bool:
        """True once the connection takes no more commands but ``CloseConnection``."""

    def send(self, command: ev.Command) -> None:
        """Apply a command from the application; its bytes go to the core's output."""
        if isinstance(command, ev.CloseConnection):
            self._on_close_connection(command)
            return
        if self.finished:
            raise StreamClosedError("connection is closed")
        handler = self._handlers.get(type(command))
        if handler is None:
            raise LocalProtocolError(f"unknown command {command!r}")
        try:
            handler(self, command)
        except self.library_errors as exc:
            raise self.translate_error(exc) from exc

    def translate_error(self, exc: Exception) -> Exception:
        """Our exception for ``exc``, one of ``library_errors``."""
        return LocalProtocolError(str(exc))

    @abstractmethod
    def _on_close_connection(self, command: ev.CloseConnection) -> None: ...


class MultiplexedProtocol(ServerProtocol, abstract=True):
    """Base of the cores that carry many streams at once (HTTP/2, HTTP/3).

    ``_open_streams`` holds the request streams (and pushed ones) not finished yet.
    """

    __slots__ = ()

    _open_streams: set[int]
    #: Open streams whose final response head went out, and those whose response has
    #: no body (HEAD requests, 204, 304).
    _responded: set[int]
    _bodiless: set[int]

    @property
    def idle(self) -> bool:
        """True when no stream is open (the keep-alive timeout applies)."""
        return not self._open_streams

    @property
    def open_stream_count(self) -> int:
        return len(self._open_streams)

    def _head_sent(self, stream_id: int, status: int) -> None:
        """Record a response head sent on ``stream_id``."""
        if status >= 200:
            self._responded.add(stream_id)
            if status in (204, 304):
                self._bodiless.add(stream_id)


def error_body(status: int, reason: str) -> tuple[ev.Headers, bytes]:
    """The plain-text answer a core sends by itself when a request breaks a rule (every
    HTTP version answers the same): its content fields and its body."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{status} {phrase}: {reason}\n".encode("ascii", "replace")
    length = b"%d" % len(body)
    return ((b"content-type", b"text/plain; charset=utf-8"), (b"content-length", length)), body


class QueuedOutput:
    """Output a core builds in pieces (``_out``) and hands over joined."""

    __slots__ = ()

    _out: list[bytes]

    def data_to_send(self) -> bytes:
        """Bytes queued for the peer since the last call (may be empty)."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out
