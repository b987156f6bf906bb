"""``request.json()`` on JSON nested deeper than Python's recursion limit: a 400 like any
other invalid JSON, never a 500 with a logged traceback.

Through the test client (the real HTTP/1.1 core, in memory) and once end to end over a
live server, on asyncio and trio.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from httpy import App, Request, Response
from httpy.testing import TestClient
from tests.support.servers import running_server

#: Far beyond the recursion limit (1,000 by default); 200 KB, under max_body_bytes.
DEEP = 100_000


def make_app() -> App:
    app = App()

    @app.post("/json")
    async def parse(request: Request) -> Response:
        value = request.json()
        return Response.json({"type": type(value).__name__})

    return app


@pytest.fixture(params=["asyncio", "trio"])
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    with TestClient(make_app(), backend=str(request.param)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "body",
    [b"[" * DEEP, b'{"a":' * DEEP, b"[" * DEEP + b"]" * DEEP, b'[{"a":' * (DEEP // 2)],
    ids=["open-arrays", "open-objects", "closed-arrays", "mixed"],
)
def test_deeply_nested_json_is_400_without_a_traceback(
    client: TestClient, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="httpy"):
        response = client.post("/json", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nested too deeply" in response.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_nesting_within_the_limit_still_parses(client: TestClient) -> None:
    body = b"[" * 500 + b"]" * 500
    response = client.post("/json", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (200, {"type": "list"})
    # Other invalid JSON keeps its own message.
    response = client.post("/json", content=b"[1,", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.text


@pytest.mark.anyio
async def test_deeply_nested_json_over_a_live_server() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient() as http:
            response = await http.post(f"http://{host}:{port}/json", content=b"[" * DEEP)
            assert response.status_code == 400
            assert "nested too deeply" in response.text
            # The connection and the server carry on.
            response = await http.post(f"http://{host}:{port}/json", content=b"[[]]")
            assert (response.status_code, response.json()) == (200, {"type": "list"})


def test_websocket_message_json_too_deep_is_a_value_error() -> None:
    """``WebSocketMessage.json()`` keeps its contract (ValueError for what is not usable
    JSON) on nesting beyond the recursion limit, so ``except ValueError`` handlers hold."""
    from httpy.framework.websocket import WebSocketMessage

    with pytest.raises(ValueError, match="nested too deeply"):
        WebSocketMessage("text", "[" * DEEP).json()
    assert WebSocketMessage("text", "[[1]]").json() == [[1]]
