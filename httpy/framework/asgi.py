"""ASGI 3, both ways.

**An HTTPy app under any ASGI server.**  :class:`~httpy.framework.app.App` is an ASGI 3
application (``App.__call__`` calls :func:`serve_asgi`), so ``uvicorn module:app`` serves
it.  ``http`` scopes run through the same ``App.handle_http`` as under HTTPy's own
server, over :class:`ASGIHTTPStream` (an ``HTTPStream`` made of ``receive``/``send``), so
every ``Response`` subclass streams unchanged.  ``lifespan`` scopes run the app's startup
and shutdown hooks.  ``websocket`` scopes run the app's WebSocket routes
(:mod:`httpy.framework.asgi_websocket`).

**Any ASGI app on HTTPy's server.**  :class:`ASGIAdapter` wraps an ASGI 3 application
into an HTTPy application (``handle_http`` plus the lifespan protocol).
:func:`as_application` does the wrapping where an application is accepted
(``httpy.serve``, ``run(app=...)``, ``python -m httpy module:asgi_app``): an object with
``handle_http`` is served natively, an ``async`` callable taking ``(scope, receive, send)``
through the adapter.

**Trailers** use the ``http.response.trailers`` extension both ways.  HTTPy's server
offers it in every scope.  Under another server, an HTTPy response's trailers are sent
only when the server offers it and the response announced them in its head (a
``Trailer`` header, which ``Response`` adds for the trailers known at that point);
otherwise they are dropped.  ASGI has no request trailers.
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol, cast
from urllib.parse import quote, unquote

import anyio

from ..core.application import (
    Application,
    ClientDisconnected,
    HTTPStream,
    LifespanApplication,
    RequestBodyError,
    RequestHead,
    StartupError,
)
from ..core.events import Headers
from ..core.websocket import WebSocketHandshake
from .asgi_websocket import run_asgi_websocket, serve_asgi_websocket

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
LIFESPAN_VERSION = {"version": "3.0", "spec_version": "2.0"}

logger = logging.getLogger("httpy.error")


class ServableApplication(Application, LifespanApplication, Protocol):
    """What :func:`serve_asgi` runs: an application with a lifespan (``App`` is one)."""


# ----------------------------------------------------------- HTTPy app, ASGI server


async def serve_asgi(app: ServableApplication, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` for one ASGI connection scope (``http``, ``lifespan``, ``websocket``)."""
    kind = scope["type"]
    if kind == "http":
        await _serve_http(app, scope, receive, send)
    elif kind == "lifespan":
        await _serve_lifespan(app, receive, send)
    elif kind == "websocket":
        await serve_asgi_websocket(app, head_from_scope(scope), scope, receive, send)
    else:
        raise ValueError(f"unsupported ASGI scope type {kind!r}")


class ASGIHTTPStream:
    """An :class:`~httpy.core.application.HTTPStream` over an ASGI ``http`` scope.

    ``receive`` maps ``http.request`` messages to body chunks (``b""`` at the end) and
    ``http.disconnect`` to :class:`ClientDisconnected`; ``send_response``/``send_body``
    send ``http.response.start``/``http.response.body``.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._head = head_from_scope(scope)
        self._receive = receive
        self._send = send
        self._body_done = anyio.Event()
        self._disconnected = False
        self._can_trail = "http.response.trailers" in (scope.get("extensions") or {})
        self._trailing = False  # trailers announced in http.response.start
        self.response_started = False
        self.response_complete = False

    @property
    def head(self) -> RequestHead:
        return self._head

    @property
    def disconnected(self) -> bool:
        return self._disconnected

    @property
    def trailers(self) -> Headers:
        return ()  # ASGI does not carry request trailers

    async def receive(self) -> bytes:
        while True:
            if self._disconnected:
                raise ClientDisconnected("client disconnected")
            if self._body_done.is_set():
                return b""
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._disconnected = True
                continue
            if message["type"] != "http.request":
                raise RuntimeError(f"unexpected ASGI message {message['type']!r}")
            if not message.get("more_body", False):
                self._body_done.set()
            body = bytes(message.get("body", b""))
            if body:
                return body

    async def send_informational(self, status: int, headers: Headers = ()) -> None:
        """Ignored: ASGI has no 1xx responses."""

    async def push(self, path: str) -> bool:
        """ASGI's ``http.response.push`` extension is not used: never pushes."""
        return False

    async def send_response(self, status: int, headers: Headers) -> None:
        if self._disconnected:
            raise ClientDisconnected("client disconnected")
        message = {"type": "http.response.start", "status": status, "headers": list(headers)}
        if self._can_trail and any(name.lower() == b"trailer" for name, _ in headers):
            message["trailers"] = self._trailing = True
        await self._send_message(message)
        self.response_started = True

    async def send_body(self, data: bytes, *, end: bool = False) -> None:
        if self._disconnected:
            raise ClientDisconnected("client disconnected")
        message = {"type": "http.response.body", "body": data, "more_body": not end}
        await self._send_message(message)
        if end:
            if self._trailing:  # announced: the server waits for them
                await self._send_message({"type": "http.response.trailers", "headers": []})
            self.response_complete = True

    async def send_trailers(self, headers: Headers) -> None:
        if not self._trailing:
            await self.send_body(b"", end=True)  # not announced: dropped
            return
        self._trailing = False
        await self.send_body(b"", end=True)
        await self._send_message({"type": "http.response.trailers", "headers": list(headers)})

    async def _send_message(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError as exc:  # ASGI 2.4 servers raise OSError once the client is gone
            self._disconnected = True
            raise ClientDisconnected("client disconnected") from exc

    async def watch_disconnect(self, on_disconnect: Callable[[], object]) -> None:
        """Once the body is read, wait for ``http.disconnect``; call ``on_disconnect``
        if it arrives before the response is complete (under HTTPy's own server a
        disconnect cancels the handler; this gives the same behaviour under ASGI)."""
        await self._body_done.wait()
        while not self._disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if not self.response_complete:
                    self._disconnected = True
                    on_disconnect()
                return


def head_from_scope(scope: Scope) -> RequestHead:
    """The :class:`RequestHead` of an ASGI ``http`` scope, ``root_path`` removed."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    raw = scope.get("raw_path")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    raw_path = quote(path)
    if raw is not None:
        raw_text = bytes(raw).decode("latin-1")
        prefix = quote(root_path)
        if raw_text.startswith(prefix):
            raw_path = raw_text[len(prefix) :]
    return RequestHead(
        method=scope.get("method", "GET"),
        path=raw_path or "/",
        query_string=bytes(scope.get("query_string", b"")),
        headers=tuple((bytes(name).lower(), bytes(value)) for name, value in scope["headers"]),
        http_version=scope.get("http_version", "1.1"),
        scheme=scope.get("scheme", "http"),
        client=_address(scope.get("client")),
        server=_address(scope.get("server")),
    )


def _address(value: Any) -> tuple[str, int] | None:
    if value is None or len(value) < 2 or value[1] is None:
        return None
    return str(value[0]), int(value[1])


async def _serve_http(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    stream = ASGIHTTPStream(scope, receive, send)
    error: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stream.watch_disconnect, tasks.cancel_scope.cancel)
        try:
            await app.handle_http(stream)
        except ClientDisconnected:
            pass
        except Exception as exc:
            error = exc  # raised below, not wrapped in the task group's ExceptionGroup
        finally:
            tasks.cancel_scope.cancel()
    # An exception or an incomplete response is left to the ASGI server, which answers
    # 500 (nothing sent yet) or aborts the response, as HTTPy's own server does.
    if error is not None:
        raise error


async def _serve_lifespan(app: LifespanApplication, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "lifespan.startup":
        raise RuntimeError(f"expected lifespan.startup, got {message['type']!r}")
    lifespan = app.lifespan()
    try:
        await lifespan.__aenter__()
    except Exception as exc:
        await send({"type": "lifespan.startup.failed", "message": _format(exc)})
        return
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    try:
        await lifespan.__aexit__(None, None, None)
    except Exception as exc:
        await send({"type": "lifespan.shutdown.failed", "message": _format(exc)})
        return
    await send({"type": "lifespan.shutdown.complete"})


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


# ----------------------------------------------------------- ASGI app, HTTPy server


class ASGIAdapter:
    """Serve an ASGI 3 application on HTTPy's server.

    ``lifespan``: ``"auto"`` runs the ASGI lifespan protocol and carries on without it
    if the application does not support it; ``"on"`` makes that a startup failure;
    ``"off"`` skips it.  ``root_path`` is the prefix the application is mounted under.

    Disconnects: HTTPy's server cancels a handler whose client left.  The adapter turns
    that into ``http.disconnect`` from ``receive()`` and gives the application
    ``disconnect_grace`` seconds to return before cancelling it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: Literal["auto", "on", "off"] = "auto",
        root_path: str = "",
        disconnect_grace: float = 1.0,
    ) -> None:
        self.app = app
        self.lifespan_mode = lifespan
        self.root_path = root_path.rstrip("/")
        self.disconnect_grace = disconnect_grace
        #: The lifespan ``state``; each request's scope gets a shallow copy.
        self.state: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ASGIAdapter({self.app!r})"

    async def handle_http(self, stream: HTTPStream) -> None:
        if isinstance(stream, WebSocketHandshake):
            await run_asgi_websocket(self.app, self.http_scope(stream.head), stream)
            return
        exchange = _HTTPExchange(stream)
        scope = self.http_scope(stream.head)
        finished = anyio.Event()
        # Shielded: a server-side cancellation becomes http.disconnect, not a Cancelled
        # raised at whatever the application is awaiting.
        app_scope = anyio.CancelScope(shield=True)
        errors: list[Exception] = []

        async def run_app() -> None:
            try:
                with app_scope:
                    try:
                        await self.app(scope, exchange.receive, exchange.send)
                    except Exception as exc:
                        errors.append(exc)
            finally:
                finished.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_app)
            try:
                await finished.wait()
            except anyio.get_cancelled_exc_class():
                exchange.disconnect()
                with anyio.move_on_after(self.disconnect_grace, shield=True):
                    await finished.wait()
                app_scope.cancel()
                if errors:  # most likely caused by the disconnect itself
                    logger.debug("ASGI application failed after a disconnect", exc_info=errors[0])
                raise
        if errors:
            raise errors[0]  # the server logs it and answers 500, or aborts the response
        if not exchange.response_complete and not exchange.disconnected:
            logger.error(
                "ASGI application returned without %s its response to %s %s",
                "completing" if exchange.response_started else "starting",
                stream.head.method,
                stream.head.path,
            )

    def http_scope(self, head: RequestHead) -> Scope:
        """The ASGI ``http`` scope of a request."""
        root = self.root_path
        return {
            "type": "http",
            "asgi": dict(ASGI_VERSION),
            "http_version": head.http_version,
            "method": head.method,
            "scheme": head.scheme,
            "path": root + unquote(head.path),
            "raw_path": quote(root).encode("ascii") + head.path.encode("latin-1"),
            "query_string": head.query_string,
            "root_path": root,
            "headers": list(head.headers),
            "client": head.client,
            "server": head.server,
            "state": dict(self.state),
            "extensions": {"http.response.trailers": {}},
        }

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the ASGI lifespan protocol in a task from startup to shutdown."""
        if self.lifespan_mode == "off":
            yield
            return
        cycle = _LifespanCycle(self.app, self.state, required=self.lifespan_mode == "on")
        outside: BaseException | None = None
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cycle.run)
                try:
                    await cycle.startup()
                except BaseException:
                    cycle.stop()
                    raise
                try:
                    yield
                finally:
                    with anyio.CancelScope(shield=True):
                        try:
                            await cycle.shutdown()
                        finally:
                            cycle.stop()
        except BaseExceptionGroup as group:
            # The task group wraps what crossed it (the server's own exceptions too);
            # give the caller back the exception itself.
            if len(group.exceptions) != 1:
                raise
            outside = group.exceptions[0]
        if outside is not None:
            raise outside


class _HTTPExchange:
    """``receive``/``send`` of one ASGI ``http`` scope over an HTTPStream."""

    def __init__(self, stream: HTTPStream) -> None:
        self._stream = stream
        self._body_done = False
        self._over = anyio.Event()  # the client left or the response is complete
        #: ``http.response.start`` said ``trailers``: the body's end waits for them.
        self._trailing = False
        self._body_sent = False
        self._trailers: list[tuple[bytes, bytes]] = []
        self.disconnected = False
        self.response_started = False
        self.response_complete = False

    def disconnect(self) -> None:
        self.disconnected = True
        self._over.set()

    async def receive(self) -> Message:
        if not self._body_done and not self.disconnected:
            try:
                data = await self._stream.receive()
            except (ClientDisconnected, RequestBodyError):
                # RequestBodyError: the server has answered (413, 408) and is closing.
                self.disconnect()
            else:
                self._body_done = not data
                return {"type": "http.request", "body": data, "more_body": bool(data)}
        await self._over.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("ASGI: http.response.start sent twice")
            if self.disconnected:
                return  # spec 2.3: sending to a client that left is a no-op
            headers = tuple((bytes(n), bytes(v)) for n, v in message.get("headers", ()))
            self._trailing = bool(message.get("trailers", False))
            try:
                await self._stream.send_response(int(message["status"]), headers)
            except ClientDisconnected:
                self.disconnect()
            self.response_started = True
        elif kind == "http.response.body":
            if not self.response_started:
                raise RuntimeError("ASGI: http.response.body before http.response.start")
            if self.response_complete:
                raise RuntimeError("ASGI: http.response.body after the response completed")
            more = bool(message.get("more_body", False))
            end = not more and not self._trailing
            if not self.disconnected:
                try:
                    await self._stream.send_body(bytes(message.get("body", b"")), end=end)
                except ClientDisconnected:
                    self.disconnect()
            if end:
                self._complete()
            elif not more:
                self._body_sent = True  # the trailers complete the response
        elif kind == "http.response.trailers":
            if not self._trailing or not self._body_sent or self.response_complete:
                raise RuntimeError(
                    "ASGI: http.response.trailers must follow the last body message "
                    "of a response started with trailers=True"
                )
            self._trailers.extend((bytes(n), bytes(v)) for n, v in message.get("headers", ()))
            if not message.get("more_trailers", False):
                if not self.disconnected:
                    try:
                        await self._stream.send_trailers(tuple(self._trailers))
                    except ClientDisconnected:
                        self.disconnect()
                self._complete()
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} on an http scope")

    def _complete(self) -> None:
        # Only now: an app listening for http.disconnect (Starlette's streaming
        # responses) would otherwise cancel this very send.
        self.response_complete = True
        self._over.set()


class _LifespanCycle:
    """One call of the application with a ``lifespan`` scope, startup to shutdown."""

    def __init__(self, app: ASGIApp, state: dict[str, Any], *, required: bool) -> None:
        self._app = app
        self._state = state
        self._required = required
        self._inbox: deque[Message] = deque()
        self._inbox_ready = anyio.Event()
        self._answer: Message | None = None
        self._answered = anyio.Event()
        self._scope = anyio.CancelScope(shield=True)
        self._consumed = 0  # messages the application has received
        self._ended = False
        self._error: Exception | None = None
        self._awaiting: str | None = None  # the message whose answer is awaited
        self.supported = True

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(LIFESPAN_VERSION), "state": self._state}
        try:
            with self._scope:
                await self._app(scope, self._receive, self._send)
        except Exception as exc:
            self._error = exc
            if self._awaiting is None and self._consumed:
                # Between startup and shutdown nobody is waiting to raise it: log it now.
                logger.error("ASGI lifespan call failed after startup", exc_info=exc)
        finally:
            self._ended = True
            self._answered.set()

    def stop(self) -> None:
        self._scope.cancel()

    async def startup(self) -> None:
        answer = await self._exchange("lifespan.startup")
        if answer == "lifespan.startup.complete":
            return
        if answer == "lifespan.startup.failed":
            raise StartupError(self._failure("startup"))
        # The application ended without answering.  Having received the startup message
        # and then raised is a failed startup; raising before that (or returning) means
        # it does not speak the lifespan protocol.
        if self._error is not None and (self._consumed > 0 or self._required):
            raise self._error
        if self._required:
            raise StartupError("the ASGI application does not support the lifespan protocol")
        self.supported = False
        reason = f" ({type(self._error).__name__}: {self._error})" if self._error else ""
        logger.info("ASGI lifespan protocol unsupported by the application%s", reason)

    async def shutdown(self) -> None:
        if not self.supported or self._ended:
            return
        answer = await self._exchange("lifespan.shutdown")
        if answer == "lifespan.shutdown.failed":
            raise RuntimeError(self._failure("shutdown"))
        if answer is None and self._error is not None:
            raise self._error

    def _failure(self, phase: str) -> str:
        assert self._answer is not None
        message = str(self._answer.get("message", "")).strip()
        if "\n" in message:  # a traceback (Starlette sends one): keep it for debugging
            logger.debug("ASGI lifespan.%s.failed:\n%s", phase, message)
            message = message.splitlines()[-1].strip()
        return message or f"the ASGI application reported lifespan.{phase}.failed"

    async def _exchange(self, message_type: str) -> str | None:
        """Send ``message_type`` to the application; its answer's type (None: it ended)."""
        self._answer = None
        if not self._ended:
            self._answered = anyio.Event()
            self._inbox.append({"type": message_type})
            self._inbox_ready.set()
            self._awaiting = message_type
            try:
                await self._answered.wait()
            finally:
                self._awaiting = None
        return None if self._answer is None else str(self._answer["type"])

    async def _receive(self) -> Message:
        while not self._inbox:
            self._inbox_ready = anyio.Event()
            await self._inbox_ready.wait()
        self._consumed += 1
        return self._inbox.popleft()

    async def _send(self, message: Message) -> None:
        expected = {
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        }
        if message["type"] not in expected:
            raise RuntimeError(f"ASGI: unexpected message {message['type']!r} on a lifespan scope")
        self._answer = message
        self._answered.set()


# ----------------------------------------------------------- accepting either kind


def is_asgi_app(obj: object) -> bool:
    """True for an ``async`` callable that takes ``(scope, receive, send)``."""
    if inspect.isclass(obj) or not callable(obj):
        return False
    call = type(obj).__call__  # an instance of a class with an async __call__
    if not (inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(call)):
        return False
    try:
        inspect.signature(obj).bind(None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def as_application(obj: object) -> Application:
    """``obj`` itself if it has ``handle_http``; an :class:`ASGIAdapter` around an ASGI 3
    application; otherwise :class:`TypeError`."""
    if isinstance(obj, Application):
        return obj
    if is_asgi_app(obj):
        return ASGIAdapter(cast(ASGIApp, obj))
    raise TypeError(
        f"{obj!r} is not an application: it has no handle_http method and is not an "
        "ASGI 3 application (async def app(scope, receive, send))"
    )
