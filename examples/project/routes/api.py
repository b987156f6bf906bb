"""JSON API: users CRUD, JWT login, protected and admin routes, error handlers."""

import logging
import os
import traceback
from datetime import UTC, datetime, timedelta

import jwt
from services.user_service import DatabaseError, users

from httpy import (
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_500_INTERNAL_SERVER_ERROR,
    Request,
    Response,
    add_exception_handler,
    add_exception_handler_for_route,
    get,
    post,
)

logger = logging.getLogger("httpy.example")

SECRET_KEY = os.environ.get("JWT_SECRET", "development-secret-change-me")

# Demo accounts (use a real user store and hashed passwords in production).
ACCOUNTS = {
    "user1": {"password": "password1", "role": "user"},
    "admin": {"password": "admin123", "role": "admin"},
}


@get("/api/users")
async def list_users(request: Request) -> Response:
    return Response.json([user.to_dict() for user in users.list()])


@post("/api/users")
async def create_user(request: Request) -> Response:
    data = request.json()
    if not isinstance(data, dict) or not data.get("name"):
        return Response.json({"error": "name is required"}, status=400)
    user = users.create(str(data["name"]), str(data.get("email", "")))
    return Response.json(user.to_dict(), status=201)


@get("/api/users/{user_id:int}")
async def get_user(request: Request) -> Response:
    user = users.get(request.path_params["user_id"])
    if user is None:
        return Response.json({"error": "User not found"}, status=HTTP_404_NOT_FOUND)
    return Response.json(user.to_dict())


@post("/login")
async def login(request: Request) -> Response:
    data = request.json() or {}
    username, password = data.get("username"), data.get("password")
    if not username or not password:
        return Response.json({"error": "Username and password required"}, status=400)
    account = ACCOUNTS.get(username)
    if account is None or account["password"] != password:
        return Response.json({"error": "Invalid credentials"}, status=HTTP_401_UNAUTHORIZED)
    expiration = datetime.now(UTC) + timedelta(hours=24)
    payload = {"sub": username, "role": account["role"], "exp": expiration}
    token = jwt.encode(payload, SECRET_KEY, algorithm="HS256")
    return Response.json({"token": token, "expires": expiration.isoformat()})


def validate_token(token: str) -> dict | None:
    try:
        return jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return None


@get("/api/protected")
async def protected_route(request: Request) -> Response:
    payload = request.state.user  # set by the auth middleware
    return Response.json(
        {"message": "Protected data", "user": payload["sub"], "role": payload["role"]}
    )


@get("/api/admin")
async def admin_route(request: Request) -> Response:
    payload = request.state.user
    if payload["role"] != "admin":
        return Response.json({"error": "Forbidden"}, status=403)
    return Response.json({"message": "Admin data", "user": payload["sub"]})


async def global_exception_handler(request: Request, exc: Exception) -> Response:
    logger.error("Unhandled exception: %s\n%s", exc, traceback.format_exc())
    if os.environ.get("ENV") == "development":
        return Response.json(
            {
                "error": str(exc),
                "type": exc.__class__.__name__,
                "traceback": traceback.format_exc(),
            },
            status=HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return Response.json({"error": "Internal Server Error"}, status=HTTP_500_INTERNAL_SERVER_ERROR)


async def database_error_handler(request: Request, exc: DatabaseError) -> Response:
    logger.error("Database error: %s", exc)
    return Response.json({"error": "Database error occurred", "details": str(exc)}, status=503)


add_exception_handler(Exception, global_exception_handler)
add_exception_handler_for_route("/api/users", DatabaseError, database_error_handler)
