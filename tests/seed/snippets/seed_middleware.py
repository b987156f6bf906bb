# ruff: noqa
# fmt: off
"""Seed: Authentication Middleware + Logging Middleware.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""

def validate_token(token):  # glue: "Implement your token validation"
    return token == "good-token"

# --- BEGIN SEED SNIPPET 1 ---
from httpy import Request, Response, HTTP_401_UNAUTHORIZED

# Define a middleware function
async def auth_middleware(request: Request, handler):
    # Check for authentication token
    auth_header = request.headers.get("Authorization")
    
    # Skip authentication for public routes
    if request.path.startswith("/public") or request.path == "/login":
        return await handler(request)
    
    # Validate token
    if not auth_header or not auth_header.startswith("Bearer "):
        return Response.json(
            {"error": "Unauthorized"}, 
            status=HTTP_401_UNAUTHORIZED
        )
    
    token = auth_header.replace("Bearer ", "")
    if not validate_token(token):  # Implement your token validation
        return Response.json(
            {"error": "Invalid token"}, 
            status=HTTP_401_UNAUTHORIZED
        )
    
    # Token is valid, proceed with the request
    return await handler(request)

# Register middleware
from httpy import add_middleware
add_middleware(auth_middleware)
# --- END SEED SNIPPET 1 ---

# --- BEGIN SEED SNIPPET 2 ---
import time
import logging

# Configure logging
logging.basicConfig(
    level=logging.INFO,
    format='%(asctime)s - %(name)s - %(levelname)s - %(message)s'
)
logger = logging.getLogger("httpy")

async def logging_middleware(request: Request, handler):
    start_time = time.time()
    
    # Log request
    logger.info(f"Request: {request.method} {request.path}")
    
    # Process request
    response = await handler(request)
    
    # Log response
    duration = time.time() - start_time
    logger.info(f"Response: {response.status} - {duration:.4f}s")
    
    return response

# Register middleware
from httpy import add_middleware
add_middleware(logging_middleware)
# --- END SEED SNIPPET 2 ---


# glue: routes to exercise the middleware
from httpy import get, post


@get("/public/info")
async def public_info(request):
    return Response.json({"public": True})


@post("/login")
async def login(request):
    return Response.json({"token": "good-token"})


@get("/private")
async def private(request):
    return Response.json({"private": True})
