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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..core.application import HTTPStream
from ..core.headers import Headers
from ..core.routing import AutoOptions, Match, MethodNotAllowed, NotFound, Router
from .exceptions import HTTPException
from .request import Request
from .response import Response, error_response

Handler = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, Handler], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Any], Awaitable[Response]]
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])

logger = logging.getLogger("httpy.error")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A registered handler and how to call it."""

    handler: Handler
    stream: bool = False


class App:
    """An application: register routes with the decorators, serve it with ``run``."""

    def __init__(self, *, debug: bool = False) -> None:
        self.debug = debug
        self.router: Router[Endpoint] = Router()
        self._middleware: list[Middleware] = []
        self._exception_handlers: dict[type[BaseException], ExceptionHandler] = {}
        self._route_exception_handlers: dict[str, dict[type[BaseException], ExceptionHandler]] = {}
        self._chain: Handler = self._route_request

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

    # -- serving -------------------------------------------------------------------

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
        )
        match = self.router.match(request.method, request.raw_path)
        request.route_match = match
        if isinstance(match, Match) and not match.endpoint.stream:
            # Read the body before the handler runs: the seed calls request.json()
            # synchronously.  Limits and timeouts are enforced by the server.
            await request.body()
        response = await self.dispatch(request)
        await response.write(stream)

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
            "unhandled %s in %s %s",
            type(exc).__name__,
            request.method,
            request.path,
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


def _bind(middleware: Middleware, next_handler: Handler) -> Handler:
    async def call(request: Request) -> Response:
        return await middleware(request, next_handler)

    return call


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
