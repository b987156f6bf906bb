"""The application interface: what the backend hands an application, and what it expects.

This is the whole boundary between the server (``httpy.backends``) and the framework
(``httpy.framework``), and what the ASGI adapters translate.  It is pure typing: the
backend implements :class:`HTTPStream`, the framework implements :class:`Application`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .events import Headers


@dataclass(frozen=True, slots=True)
class RequestHead:
    """Everything known about a request before its body.

    ``path`` is the raw (percent-encoded) path, ``query_string`` the raw bytes after
    ``?``.  ``client`` and ``server`` are ``(host, port)`` when known.  ``client``,
    ``scheme`` and the ``host`` header are those a trusted proxy reported, if any
    (``Config.forwarded_allow_ips``).  ``client_cert`` is the client's verified TLS
    certificate, in :meth:`ssl.SSLSocket.getpeercert` form (``subject``, ``issuer``,
    ``serialNumber``, ``notBefore``, ``notAfter``, ``subjectAltName``), when the server
    asks for one (``Config.verify_client``) and the client sent it; else None.
    """

    method: str
    path: str
    query_string: bytes
    headers: Headers
    http_version: str
    scheme: str = "http"
    client: tuple[str, int] | None = None
    server: tuple[str, int] | None = None
    body_expected: bool = True
    stream_id: int = 1
    client_cert: Mapping[str, Any] | None = None


class StreamError(Exception):
    """Base of the errors a stream raises to the application."""


class ClientDisconnected(StreamError):
    """The client went away: nothing more can be received or sent on this stream."""


class RequestBodyError(StreamError):
    """The request body cannot be read: it broke a limit or timed out.

    The server has already answered (413, 408, 400) and will close the connection.
    ``status`` is what it answered.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class HTTPStream(Protocol):
    """One request/response exchange, whatever the HTTP version.

    Order of calls: any number of ``receive``; optionally ``send_informational``;
    ``send_response`` once; ``send_body`` until one call passes ``end=True``, or
    ``send_body`` calls then ``send_trailers`` (which completes the response).  The head
    is written with the first ``send_body`` call, so a small response is one write.
    """

    @property
    def head(self) -> RequestHead: ...

    @property
    def disconnected(self) -> bool:
        """True once the client is known to be gone."""
        ...

    async def receive(self) -> bytes:
        """The next piece of request body; ``b""`` once the body is complete.

        Raises :class:`ClientDisconnected` or :class:`RequestBodyError`.
        """
        ...

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        """Send a 1xx response (103 Early Hints); ignored where the protocol can't."""
        ...

    async def push(self, path: str) -> bool:
        """Server push (HTTP/2): promise a GET of ``path`` and answer it through the app.

        Returns False where the protocol or the client doesn't allow it (HTTP/1.1, push
        disabled by the client); the caller then announces the resource otherwise.
        """
        ...

    async def send_response(self, status: int, headers: Headers) -> None:
        """Start the response.  Raises :class:`ClientDisconnected` if the client left."""
        ...

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        """Send response body bytes; ``end=True`` completes the response."""
        ...

    async def send_trailers(self, headers: Headers) -> None:
        """Complete the response with trailer fields (after the last ``send_body``).

        Where the protocol or the client can't take them (HTTP/1.1 without ``TE:
        trailers`` or with a ``Content-Length`` body) the response just ends.
        """
        ...

    @property
    def trailers(self) -> Headers:
        """The request's trailer fields: filled in when ``receive`` has returned ``b""``
        (empty before that, and when the request had none)."""
        ...


@runtime_checkable
class Application(Protocol):
    """What the server runs: one call per request, in its own task."""

    async def handle_http(self, stream: HTTPStream) -> None:
        """Answer the request on ``stream``.

        The server cancels this call when the client disconnects or resets the stream.
        If it returns without completing the response, the server answers 500 (if no
        response had started) or aborts the response.
        """
        ...


@runtime_checkable
class LifespanApplication(Protocol):
    """An application with work to do before the first request and after the last.

    The server detects it with ``isinstance(app, LifespanApplication)``.  ``serve()``
    enters ``app.lifespan()`` *before* it opens its listeners and exits it *after* the
    graceful drain, on every stop (signal, shutdown trigger, cancellation of ``serve``):

    * an exception out of entering it is a failed startup: the server logs the cause on
      ``httpy.error``, opens no listener, and raises :class:`StartupError` from it;
    * an exception out of exiting it is logged, not raised;
    * when ``serve()`` is being cancelled the exit runs inside that cancellation, so an
      implementation shields the cleanup it must finish (``anyio.CancelScope(shield=True)``).

    A context manager rather than two calls, because an ASGI application's lifespan is
    one long call that spans startup and shutdown and needs a task that lives that long.
    """

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Run startup on entry and shutdown on exit."""
        ...


class StartupError(Exception):
    """The application's startup failed, so the server did not start.

    ``__cause__`` is what the application raised; the server has already logged it.
    """
