# ruff: noqa
# fmt: off
"""Seed: JWT Authentication.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""

from httpy import get  # glue: the snippet uses @get without importing it

# --- BEGIN SEED SNIPPET 3 ---
import jwt
from datetime import datetime, timedelta
from httpy import post, Request, Response, HTTP_401_UNAUTHORIZED

# Secret key for JWT
SECRET_KEY = "your-secret-key"  # Use a secure key in production

# User database (replace with your database)
users = {
    "user1": {"password": "password1", "role": "user"},
    "admin": {"password": "admin123", "role": "admin"}
}

@post("/login")
async def login(request: Request) -> Response:
    data = request.json()
    username = data.get("username")
    password = data.get("password")
    
    if not username or not password:
        return Response.json({"error": "Username and password required"}, status=400)
    
    if username not in users or users[username]["password"] != password:
        return Response.json({"error": "Invalid credentials"}, status=HTTP_401_UNAUTHORIZED)
    
    # Create JWT token
    expiration = datetime.utcnow() + timedelta(hours=24)
    payload = {
        "sub": username,
        "role": users[username]["role"],
        "exp": expiration
    }
    token = jwt.encode(payload, SECRET_KEY, algorithm="HS256")
    
    return Response.json({"token": token, "expires": expiration.isoformat()})

# Helper function to validate token
def validate_token(token):
    try:
        payload = jwt.decode(token, SECRET_KEY, algorithms=["HS256"])
        return payload
    except jwt.ExpiredSignatureError:
        return None
    except jwt.InvalidTokenError:
        return None

# Protected route example
@get("/api/protected")
async def protected_route(request: Request) -> Response:
    auth_header = request.headers.get("Authorization")
    
    if not auth_header or not auth_header.startswith("Bearer "):
        return Response.json({"error": "Unauthorized"}, status=HTTP_401_UNAUTHORIZED)
    
    token = auth_header.replace("Bearer ", "")
    payload = validate_token(token)
    
    if not payload:
        return Response.json({"error": "Invalid token"}, status=HTTP_401_UNAUTHORIZED)
    
    # Access granted
    return Response.json({
        "message": "Protected data",
        "user": payload["sub"],
        "role": payload["role"]
    })

# Role-based authorization
@get("/api/admin")
async def admin_route(request: Request) -> Response:
    auth_header = request.headers.get("Authorization")
    
    if not auth_header or not auth_header.startswith("Bearer "):
        return Response.json({"error": "Unauthorized"}, status=HTTP_401_UNAUTHORIZED)
    
    token = auth_header.replace("Bearer ", "")
    payload = validate_token(token)
    
    if not payload:
        return Response.json({"error": "Invalid token"}, status=HTTP_401_UNAUTHORIZED)
    
    # Check role
    if payload["role"] != "admin":
        return Response.json({"error": "Forbidden"}, status=403)
    
    # Admin access granted
    return Response.json({
        "message": "Admin data",
        "user": payload["sub"]
    })
# --- END SEED SNIPPET 3 ---

