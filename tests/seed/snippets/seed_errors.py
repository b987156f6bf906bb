# ruff: noqa
# fmt: off
"""Seed: Global Exception Handler + route-specific handler.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""

import os  # glue: the snippet reads os.environ without importing os


class DatabaseError(Exception):  # glue: the snippet's DatabaseError
    pass

# --- BEGIN SEED SNIPPET 9 ---
import traceback
import logging
from httpy import Request, Response, add_exception_handler, HTTP_500_INTERNAL_SERVER_ERROR

# Configure logging
logging.basicConfig(
    level=logging.INFO,
    format='%(asctime)s - %(name)s - %(levelname)s - %(message)s',
    filename='app.log'
)
logger = logging.getLogger("httpy")

# Define global exception handler
async def global_exception_handler(request: Request, exc: Exception) -> Response:
    # Log the exception
    logger.error(f"Unhandled exception: {exc}")
    logger.error(traceback.format_exc())
    
    # In development, return detailed error
    if os.environ.get("ENV") == "development":
        return Response.json({
            "error": str(exc),
            "type": exc.__class__.__name__,
            "traceback": traceback.format_exc()
        }, status=HTTP_500_INTERNAL_SERVER_ERROR)
    
    # In production, return generic error
    return Response.json({
        "error": "Internal Server Error"
    }, status=HTTP_500_INTERNAL_SERVER_ERROR)

# Register the exception handler
add_exception_handler(Exception, global_exception_handler)

# Route-specific exception handler
from httpy import add_exception_handler_for_route

async def database_error_handler(request: Request, exc: DatabaseError) -> Response:
    logger.error(f"Database error: {exc}")
    return Response.json({
        "error": "Database error occurred",
        "details": str(exc)
    }, status=503)  # Service Unavailable

# Register for specific route and exception type
add_exception_handler_for_route("/api/users", DatabaseError, database_error_handler)
# --- END SEED SNIPPET 9 ---


# glue: routes that raise
from httpy import get


@get("/api/users")
async def users(request):
    raise DatabaseError("connection refused")


@get("/api/boom")
async def boom(request):
    raise ValueError("boom")
