"""Bearer-token authentication for the protected API routes (the seed's auth middleware,
applied to /api/protected and /api/admin so the public users API stays open)."""

from routes.api import validate_token

from httpy import HTTP_401_UNAUTHORIZED, Request, Response, add_middleware

PROTECTED = ("/api/protected", "/api/admin")


async def auth_middleware(request: Request, handler):
    if not request.path.startswith(PROTECTED):
        return await handler(request)
    auth_header = request.headers.get("Authorization")
    if not auth_header or not auth_header.startswith("Bearer "):
        return Response.json({"error": "Unauthorized"}, status=HTTP_401_UNAUTHORIZED)
    payload = validate_token(auth_header.removeprefix("Bearer "))
    if payload is None:
        return Response.json({"error": "Invalid token"}, status=HTTP_401_UNAUTHORIZED)
    request.state.user = payload
    return await handler(request)


add_middleware(auth_middleware)
