"""``App``: routes, middleware and exception handlers, and the default app behind the
module-level decorators (``from httpy import get, post``).

Request flow, for every request including 404/405 answers::

    server -> App.handle_http -> middleware (first added = outermost) -> routing
           -> handler -> exception handlers -> Response -> server

Middleware is ``async def mw(request, handler) -> Response``; calling ``handler(request)``
runs the rest of the chain.  Exceptions a handler raises are turned into responses
*inside* the middleware chain (so a logging middleware sees the 500), by the first of:
a handler registered for this route and exception type, a global handler found along the
exception's MRO, :class:`HTTPException`'s own status, or a logged 500.  Along the MRO,
``HTTPException``'s own status counts as a global handler for ``HTTPException``, so a
handler for ``Exception`` does not turn an ``HTTPException(403)`` into a 500.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from os import PathLike
from typing import Any, TypeVar

from ..core.application import HTTPStream, StreamError
from ..core.headers import Headers
from ..core.routing import AutoOptions, Match, MethodNotAllowed, NotFound, Router
from .asgi import Receive, Scope, Send, serve_asgi
from .body_memory import DEFAULT_BODY_MEMORY_BUDGET, BodyMemoryBudget
from .exceptions import HTTPException
from .lifespan import LifespanHooks, State
from .request import Request
from .response import RedirectResponse, Response, error_response
from .static import StaticFiles, with_trailing_slash
from .websocket import refuse_plain_request, route_websocket, websocket_endpoint

Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, Handler], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Any], Awaitable[Response]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
F = TypeVar("F", bound=Callable[[], Any])

logger = logging.getLogger("httpy.error")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered handler and how to call it."""

    handler: Handler
    stream: bool = False


class App:
    """An application: register routes with the decorators, serve it with ``run``."""

    def __init__(
        self, *, debug: bool = False, body_memory_budget: int = DEFAULT_BODY_MEMORY_BUDGET
    ) -> None:
        self.debug = debug
        #: Request bodies this app holds in memory at once (see ``framework.body_memory``).
        self.body_memory = BodyMemoryBudget(body_memory_budget)
        self.router: Router[Endpoint] = Router()
        #: WebSocket routes (``@app.websocket``), matched for upgrade requests.
        self.websocket_router: Router[Endpoint] = Router()
        self._has_websockets = False
        self._middleware: list[Middleware] = []
        self._exception_handlers: dict[type[BaseException], ExceptionHandler] = {}
        self._route_exception_handlers: dict[str, dict[type[BaseException], ExceptionHandler]] = {}
        self._chain: Handler = self._route_request
        #: Application-wide values, e.g. set by startup hooks: ``app.state.db = ...``.
        self.state = State()
        self._hooks = LifespanHooks()

    # -- registration --------------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), *, stream: bool = False
    ) -> Callable[[H], H]:
        """Register the decorated ``async def handler(request) -> Response``.

        ``stream=True`` leaves the body unread so the handler can iterate
        ``request.stream()``.  The function is returned unchanged, so it can still be
        called directly in unit tests.
        """
        method_list = [m.upper() for m in methods]

        def register(handler: H) -> H:
            self.router.add(path, method_list, Endpoint(handler, stream))
            return handler

        return register

    def get(self, path: str, *, stream: bool = False) -> Callable[[H], H]:
        return self.route(path, ("GET",), stream=stream)

    def post(self, path: str, *, stream: bool = False) -> Callable[[H], H]:
        return self.route(path, ("POST",), stream=stream)

    def put(self, path: str, *, stream: bool = False) -> Callable[[H], H]:
        return self.route(path, ("PUT",), stream=stream)

    def patch(self, path: str, *, stream: bool = False) -> Callable[[H], H]:
        return self.route(path, ("PATCH",), stream=stream)

    def delete(self, path: str, *, stream: bool = False) -> Callable[[H], H]:
        return self.route(path, ("DELETE",), stream=stream)

    def websocket(self, path: str) -> Callable[[H], H]:
        """Register the decorated ``async def handler(ws: WebSocketConnection)`` for
        WebSocket handshakes on ``path`` (``{param}`` templates as for HTTP routes);
        see :mod:`httpy.framework.websocket`."""

        def register(handler: H) -> H:
            self.websocket_router.add(path, ["GET"], Endpoint(websocket_endpoint(handler)))
            self._has_websockets = True
            return handler

        return register

    def mount_static(
        self, prefix: str, directory: str | PathLike[str], **options: Any
    ) -> StaticFiles:
        """Serve the files under ``directory`` at ``prefix/...`` (GET and HEAD).

        ``options`` go to :class:`~httpy.framework.static.StaticFiles` (``index``,
        ``follow_symlinks``, ``allow_hidden``).  ``prefix`` itself redirects to
        ``prefix/``.  Returns the ``StaticFiles`` handler.
        """
        static = StaticFiles(directory, **options)
        prefix = prefix.rstrip("/")
        self.router.add(prefix + "/{path:path}", ["GET"], Endpoint(static))
        if prefix:

            async def add_slash(request: Request) -> Response:
                return RedirectResponse(with_trailing_slash(request), status=301)

            self.router.add(prefix, ["GET"], Endpoint(add_slash))
        return static

    def add_middleware(self, middleware: Middleware) -> None:
        """Add ``middleware``; the first added runs first (outermost)."""
        self._middleware.append(middleware)
        chain: Handler = self._route_request
        for mw in reversed(self._middleware):
            chain = _bind(mw, chain)
        self._chain = chain

    def add_exception_handler(
        self, exc_type: type[BaseException], handler: ExceptionHandler
    ) -> None:
        """Answer exceptions of ``exc_type`` (and subclasses) with ``handler``."""
        self._exception_handlers[exc_type] = handler

    def add_exception_handler_for_route(
        self, path: str, exc_type: type[BaseException], handler: ExceptionHandler
    ) -> None:
        """Like :meth:`add_exception_handler`, for the route registered as ``path`` only;
        it takes precedence over global handlers there."""
        self._route_exception_handlers.setdefault(path, {})[exc_type] = handler

    # -- lifespan (see httpy.framework.lifespan) ------------------------------------

    def on_startup(self, hook: F) -> F:
        """Run ``hook()`` (``async def`` or plain) before the server accepts requests;
        hooks run in registration order, and one that raises stops the startup."""
        return self._hooks.on_startup(hook)

    def on_shutdown(self, hook: F) -> F:
        """Run ``hook()`` after the last request; hooks run in reverse registration
        order, every one even if another failed."""
        return self._hooks.on_shutdown(hook)

    async def startup(self) -> None:
        """Run the startup hooks (the server and the test clients call this)."""
        await self._hooks.startup()

    async def shutdown(self) -> None:
        """Run the shutdown hooks (the server and the test clients call this)."""
        await self._hooks.shutdown()

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Startup on entry, shutdown on exit: the server's lifespan protocol
        (:class:`httpy.core.application.LifespanApplication`)."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()  # shielded from cancellation inside

    # -- serving -------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point, so any ASGI server runs the app (``uvicorn module:app``);
        see :mod:`httpy.framework.asgi`."""
        await serve_asgi(self, scope, receive, send)

    async def handle_http(self, stream: HTTPStream) -> None:
        """The server's entry point (see :class:`httpy.core.application.Application`)."""
        head = stream.head
        request = Request(
            head.method,
            head.path,
            Headers(raw=head.headers),
            query_string=head.query_string,
            http_version=head.http_version,
            scheme=head.scheme,
            client=head.client,
            stream=stream,
            client_cert=head.client_cert,
            body_budget=self.body_memory,
        )
        match = self.router.match(request.method, request.raw_path)
        if self._has_websockets:
            websocket = route_websocket(
                self.websocket_router, _REFUSE_WEBSOCKET, stream, request.raw_path, match
            )
            match = websocket if websocket is not None else match
        request.route_match = match
        # Read the body before the handler runs: the seed calls request.json()
        # synchronously.  Limits and timeouts are enforced by the server; the bodies held
        # at once, by the app's budget.  Multipart bodies (uploads) are left to
        # ``await request.form()``, which streams them.
        body_first = (
            head.body_expected
            and isinstance(match, Match)
            and not match.endpoint.stream
            and request.content_type != "multipart/form-data"
        )
        try:
            response = await self._answer(request, body_first)
            if response.push_resources and response.status < 300:
                await announce_resources(stream, response)
            await response.write(stream)
        finally:
            await request.close()  # uploaded files' temporary storage

    async def _answer(self, request: Request, body_first: bool) -> Response:
        if body_first:
            try:
                await request.body()
            except HTTPException as exc:  # over the body memory budget: 503 (or 413)
                return await self._handle_exception(request, exc)
        return await self.dispatch(request)

    async def dispatch(self, request: Request) -> Response:
        """Run ``request`` through middleware, routing and handlers; never raises an
        ordinary exception (it becomes a response)."""
        try:
            response = await self._chain(request)
        except Exception as exc:
            return await self._handle_exception(request, exc)
        if not isinstance(response, Response):
            error = TypeError(
                f"handler for {request.method} {request.path} returned "
                f"{type(response).__name__}, not a Response"
            )
            return await self._handle_exception(request, error)
        return response

    async def _route_request(self, request: Request) -> Response:
        match = request.route_match
        if match is None:  # a Request built by hand (tests) or rewritten by middleware
            match = self.router.match(request.method, request.raw_path)
        if isinstance(match, Match):
            request.path_params = match.params
            endpoint: Endpoint = match.endpoint
            try:
                return await endpoint.handler(request)
            except Exception as exc:
                return await self._handle_exception(request, exc, match.route.path)
        if isinstance(match, AutoOptions):
            return Response(b"", status=204, headers={"allow": match.allow_header()})
        accept = request.headers.get("accept", "")
        if isinstance(match, MethodNotAllowed):
            return error_response(
                405, "Method Not Allowed", {"allow": match.allow_header()}, accept
            )
        assert isinstance(match, NotFound)
        return error_response(404, "Not Found", None, accept)

    async def _handle_exception(
        self, request: Request, exc: Exception, route_path: str | None = None
    ) -> Response:
        if isinstance(exc, StreamError):
            # The body could not be read (the server has answered 413/408/400) or the
            # client is gone: there is no one to answer, so no 500 either.
            raise exc
        handler = self._find_handler(exc, route_path)
        if handler is not None:
            try:
                return await handler(request, exc)
            except Exception:
                logger.exception("exception handler for %s failed", type(exc).__name__)
                return self._server_error(request, exc)
        if isinstance(exc, HTTPException):
            return error_response(
                exc.status, exc.detail, exc.headers, request.headers.get("accept", "")
            )
        logger.error(
            "unhandled %s in %s %s (client %s, request id %s)",
            type(exc).__name__,
            request.method,
            request.path,
            _peer(request.client),
            request.request_id or "-",
            exc_info=exc,
        )
        return self._server_error(request, exc)

    def _find_handler(self, exc: Exception, route_path: str | None) -> ExceptionHandler | None:
        route_handlers = self._route_exception_handlers.get(route_path or "")
        if route_handlers:
            for cls in type(exc).__mro__:
                if cls in route_handlers:
                    return route_handlers[cls]
        for cls in type(exc).__mro__:
            if cls in self._exception_handlers:
                return self._exception_handlers[cls]
            if cls is HTTPException:
                # HTTPException's own status acts as the global handler registered for
                # HTTPException: a handler for Exception must not turn a 403 into a 500.
                return None
        return None

    def _server_error(self, request: Request, exc: Exception) -> Response:
        detail = "Internal Server Error"
        if self.debug:
            detail += "\n" + "".join(traceback.format_exception(exc))
        return error_response(500, detail, None, request.headers.get("accept", ""))


async def announce_resources(stream: HTTPStream, response: Response) -> None:
    """Push ``response.push_resources`` where the client allows it (HTTP/2); otherwise
    send them as ``103 Early Hints`` so the client can preload them (the final response
    carries the same ``Link`` headers either way)."""
    pushed = [await stream.push(path) for path, _kind in response.push_resources]
    if not all(pushed):
        links = tuple(
            (b"link", f"<{path}>; rel=preload; as={kind}".encode("latin-1"))
            for (path, kind), done in zip(response.push_resources, pushed, strict=True)
            if not done
        )
        await stream.send_informational(103, links)


def _bind(middleware: Middleware, next_handler: Handler) -> Handler:
    async def call(request: Request) -> Response:
        return await middleware(request, next_handler)

    return call


_REFUSE_WEBSOCKET = Endpoint(refuse_plain_request)

#: The application behind the module-level decorators.
default_app = App()
get = default_app.get
post = default_app.post
put = default_app.put
patch = default_app.patch
delete = default_app.delete
route = default_app.route
add_middleware = default_app.add_middleware
add_exception_handler = default_app.add_exception_handler
add_exception_handler_for_route = default_app.add_exception_handler_for_route
on_startup = default_app.on_startup
on_shutdown = default_app.on_shutdown
websocket = default_app.websocket


def _peer(client: tuple[str, int] | None) -> str:
    if client is None:
        return "-"
    return f"[{client[0]}]:{client[1]}" if ":" in client[0] else f"{client[0]}:{client[1]}"
