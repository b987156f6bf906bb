"""HTTPy: an async web framework and server in one package, on asyncio and trio.

This module re-exports the public API and nothing else.
"""

from .backends.server import serve
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
    patch,
    post,
    put,
    route,
)
from .framework.exceptions import HTTPException
from .framework.request import QueryParams, Request
from .framework.response import Response
from .framework.runner import AIOQUIC_AVAILABLE, run
from .framework.status import *  # noqa: F403  (the HTTP_xxx_NAME constants)

__version__ = "0.1.0"

__all__ = [
    "AIOQUIC_AVAILABLE",
    "App",
    "Config",
    "HTTPException",
    "Headers",
    "MutableHeaders",
    "QueryParams",
    "Request",
    "Response",
    "add_exception_handler",
    "add_exception_handler_for_route",
    "add_middleware",
    "default_app",
    "delete",
    "get",
    "patch",
    "post",
    "put",
    "route",
    "run",
    "serve",
    *(name for name in dir(_status) if name.startswith("HTTP_")),
]
