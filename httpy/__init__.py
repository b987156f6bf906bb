"""HTTPy: an async web framework and server in one package, on asyncio and trio.

This module re-exports the public API and nothing else.
"""

from .core.application import StartupError
from .core.config import Config
from .core.headers import Headers, MutableHeaders
from .framework import status as _status
from .framework.app import (
    App,
    add_exception_handler,
    add_exception_handler_for_route,
    add_middleware,
    default_app,
    delete,
    get,
    on_shutdown,
    on_startup,
    patch,
    post,
    put,
    route,
    websocket,
)
from .framework.asgi import ASGIAdapter
from .framework.exceptions import HTTPException
from .framework.files import FileResponse
from .framework.forms import FormData, UploadFile
from .framework.request import QueryParams, Request
from .framework.response import (
    EventSourceResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .framework.runner import AIOQUIC_AVAILABLE, run, serve
from .framework.static import StaticFiles
from .framework.status import *  # noqa: F403  (the HTTP_xxx_NAME constants)
from .framework.websocket import WebSocketConnection, WebSocketDisconnect, WebSocketMessage

__version__ = "0.1.0"

__all__ = [
    "AIOQUIC_AVAILABLE",
    "ASGIAdapter",
    "App",
    "Config",
    "EventSourceResponse",
    "FileResponse",
    "FormData",
    "HTTPException",
    "Headers",
    "MutableHeaders",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "StartupError",
    "StaticFiles",
    "StreamingResponse",
    "UploadFile",
    "WebSocketConnection",
    "WebSocketDisconnect",
    "WebSocketMessage",
    "add_exception_handler",
    "add_exception_handler_for_route",
    "add_middleware",
    "default_app",
    "delete",
    "get",
    "on_shutdown",
    "on_startup",
    "patch",
    "post",
    "put",
    "route",
    "run",
    "serve",
    "websocket",
    *(name for name in dir(_status) if name.startswith("HTTP_")),
]
