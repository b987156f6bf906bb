"""The seed's "Unit Testing Routes" snippet, run as a test."""

# ruff: noqa: I001, W293
# The code below is copied VERBATIM from the "Unit Testing Routes" section of
# /work/shared/seed/ADVANCED_USAGE.md (trailing whitespace included): it must run unchanged.
# fmt: off
import pytest
from httpy import Request, Response, get

# Route to test
@get("/api/users/{id}")
async def get_user(req: Request) -> Response:
    user_id = req.path_params['id']
    # Simulate database lookup
    if user_id == "1":
        return Response.json({"id": 1, "name": "Test User"})
    return Response.json({"error": "User not found"}, status=404)

# Test function
@pytest.mark.asyncio
async def test_get_user():
    # Create mock request
    request = Request(
        method="GET",
        path="/api/users/1",
        headers={},
        body=b"",
        path_params={"id": "1"}
    )
    
    # Call the route handler
    response = await get_user(request)
    
    # Assert response
    assert response.status == 200
    assert response.json_body() == {"id": 1, "name": "Test User"}
    
    # Test not found case
    request.path_params = {"id": "999"}
    response = await get_user(request)
    assert response.status == 404
# fmt: on


# Not from the seed: the same route, served by the default app through the real server core.
def test_get_user_through_the_server() -> None:
    from httpy import default_app
    from httpy.testing import TestClient

    with TestClient(default_app) as client:
        found = client.get("/api/users/1")
        missing = client.get("/api/users/999")
    assert (found.status_code, found.json()) == (200, {"id": 1, "name": "Test User"})
    assert (missing.status_code, missing.json()) == (404, {"error": "User not found"})
