"""Tests for httpy.testing: the sync TestClient (asyncio and trio) and AsyncTestClient."""

from __future__ import annotations

import anyio
import pytest
import sniffio

from httpy import App, Config, Request, Response
from httpy.testing import AsyncTestClient, TestClient, TestResponse


def make_app() -> App:
    app = App()

    @app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def echo(request: Request) -> Response:
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query.multi_items(),
                "headers": {
                    name: request.headers.get(name)
                    for name in ("host", "content-type", "x-token", "content-length")
                },
                "body": (await request.body()).decode("utf-8"),
                "http_version": request.http_version,
            }
        )

    @app.post("/sum")
    async def total(request: Request) -> Response:
        return Response.json({"sum": sum(request.json()["numbers"])})

    @app.get("/users/{id:int}")
    async def user(request: Request) -> Response:
        return Response.json({"id": request.path_params["id"]}, headers={"X-User": "yes"})

    @app.get("/backend")
    async def which_backend(request: Request) -> Response:
        return Response.text(sniffio.current_async_library())

    return app


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------- sync TestClient


def test_sync_client_without_with(backend: str) -> None:
    client = TestClient(make_app(), backend=backend)
    response = client.get("/users/5")
    assert isinstance(response, TestResponse)
    assert response.status_code == 200
    assert response.status == 200
    assert response.json() == {"id": 5}
    assert response.headers["X-USER"] == "yes"
    assert response.http_version == "1.1"
    # Another request: a fresh portal each time, still works.
    assert client.get("/users/6").json() == {"id": 6}
    assert client.get("/backend").text == backend


def test_sync_client_with_context_manager(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        assert client.get("/backend").text == backend
        for n in range(5):
            assert client.get(f"/users/{n}").json() == {"id": n}
        assert client.get("/missing").status_code == 404
    # Usable again after the block: it falls back to a portal per request.
    assert client.get("/users/9").json() == {"id": 9}


def test_sync_client_all_methods(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(client, method)("/echo")
            assert response.json()["method"] == method.upper()
        head = client.head("/echo")
        assert (head.status_code, head.content) == (200, b"")
        options = client.options("/echo")
        assert options.status_code == 204
        assert options.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
        assert client.request("GET", "/users/1").json() == {"id": 1}


def test_sync_client_json_argument(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        response = client.post("/sum", json={"numbers": [1, 2, 3.5]})
        assert response.status_code == 200
        assert response.json() == {"sum": 6.5}

        echoed = client.post("/echo", json={"a": "é"}).json()
        assert echoed["headers"]["content-type"] == "application/json"
        assert echoed["body"] == '{"a": "\\u00e9"}'
        assert echoed["headers"]["content-length"] == str(len(echoed["body"]))

        # An explicit Content-Type is kept.
        echoed = client.post(
            "/echo", json=[1], headers={"Content-Type": "application/vnd.x+json"}
        ).json()
        assert echoed["headers"]["content-type"] == "application/vnd.x+json"


def test_sync_client_params_argument(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        echoed = client.get("/echo", params={"q": "a b&c", "page": "2"}).json()
        assert echoed["query"] == [["q", "a b&c"], ["page", "2"]]
        assert echoed["path"] == "/echo"

        # Added to a query already in the path.
        echoed = client.get("/echo?x=1", params={"y": "2"}).json()
        assert echoed["query"] == [["x", "1"], ["y", "2"]]


def test_sync_client_headers_and_content(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        echoed = client.put("/echo", content="text body ✓", headers={"X-Token": "t1"}).json()
        assert echoed["body"] == "text body ✓"
        assert echoed["headers"]["x-token"] == "t1"
        assert echoed["headers"]["host"] == "testserver"
        assert echoed["headers"]["content-length"] == str(len("text body ✓".encode()))

        echoed = client.patch("/echo", content=b"raw", headers={"Host": "example.org"}).json()
        assert echoed["body"] == "raw"
        assert echoed["headers"]["host"] == "example.org"

        echoed = client.get("/echo").json()
        assert echoed["body"] == ""
        assert echoed["headers"]["content-length"] is None


def test_sync_client_response_has_server_headers(backend: str) -> None:
    response = TestClient(make_app(), backend=backend).get("/users/1")
    assert response.headers["server"] == "httpy"
    assert "date" in response.headers
    assert response.headers["content-length"] == str(len(response.content))
    assert response.text == '{"id":1}'
    assert repr(response) == "<TestResponse 200>"


def test_sync_client_with_config(backend: str) -> None:
    config = Config(server_header="", access_log=False, max_body_bytes=10)
    with TestClient(make_app(), config, backend=backend) as client:
        response = client.post("/echo", content=b"0123456789")
        assert response.status_code == 200
        assert "server" not in response.headers
        assert client.post("/echo", content=b"0123456789A").status_code == 413


def test_test_classes_are_not_collected() -> None:
    assert TestClient.__test__ is False
    assert AsyncTestClient.__test__ is False
    assert TestResponse.__test__ is False


# ----------------------------------------------------------------- AsyncTestClient


@pytest.mark.anyio
async def test_async_client(anyio_backend: str) -> None:
    async with AsyncTestClient(make_app()) as client:
        response = await client.get("/users/7")
        assert response.status_code == 200
        assert response.json() == {"id": 7}
        assert (await client.get("/backend")).text == anyio_backend
        assert (await client.post("/sum", json={"numbers": [4, 5]})).json() == {"sum": 9}
        echoed = (await client.get("/echo", params={"k": "v"})).json()
        assert echoed["query"] == [["k", "v"]]
        for method in ("put", "patch", "delete"):
            echoed = (await getattr(client, method)("/echo", content=b"x")).json()
            assert (echoed["method"], echoed["body"]) == (method.upper(), "x")
        head = await client.head("/users/7")
        assert (head.status_code, head.content) == (200, b"")
        assert (await client.options("/users/7")).status_code == 204
        assert (await client.request("DELETE", "/users/7")).status_code == 405


@pytest.mark.anyio
async def test_async_client_without_context_manager(anyio_backend: str) -> None:
    client = AsyncTestClient(make_app())
    assert (await client.get("/users/1")).json() == {"id": 1}


@pytest.mark.anyio
async def test_async_client_concurrent_requests(anyio_backend: str) -> None:
    app = App()
    arrived = 0
    all_arrived = anyio.Event()

    @app.get("/wait/{n:int}")
    async def wait(request: Request) -> Response:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_arrived.set()
        # Only returns once all three requests are in flight at the same time.
        await all_arrived.wait()
        return Response.json({"n": request.path_params["n"]})

    results: dict[int, object] = {}
    async with AsyncTestClient(app) as client:

        async def fetch(n: int) -> None:
            results[n] = (await client.get(f"/wait/{n}")).json()

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tasks:
                for n in range(3):
                    tasks.start_soon(fetch, n)
    assert results == {0: {"n": 0}, 1: {"n": 1}, 2: {"n": 2}}


@pytest.mark.asyncio
async def test_async_client_under_pytest_asyncio() -> None:
    async with AsyncTestClient(make_app()) as client:
        response = await client.get("/backend")
    assert response.text == "asyncio"
