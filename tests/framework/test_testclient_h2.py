"""``TestClient(app, http_version="2")``: the real HTTP/2 core and driver, in memory."""

from __future__ import annotations

import anyio
import pytest

from httpy import App, Config, Request, Response
from httpy.framework.response import StreamingResponse
from httpy.testing import AsyncTestClient, TestClient, TestResponse


def make_app(log: list[str] | None = None) -> App:
    app = App()
    events = log if log is not None else []

    @app.route("/echo", methods=["GET", "POST", "PUT"])
    async def echo(request: Request) -> Response:
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "query": request.query.multi_items(),
                "host": request.headers.get("host"),
                "x-token": request.headers.get("x-token"),
                "body": (await request.body()).decode(),
                "http_version": request.http_version,
            }
        )

    @app.get("/page")
    async def page(request: Request) -> Response:
        response = Response.html("<h1>page</h1>")
        response.push_resources = [("/static/a.css", "style"), ("/static/b.js", "script")]
        return response

    @app.get("/static/a.css")
    async def css(request: Request) -> Response:
        events.append("css")
        return Response("h1 {}", headers={"content-type": "text/css"})

    @app.get("/static/b.js")
    async def js(request: Request) -> Response:
        return Response("let b;", headers={"content-type": "text/javascript"})

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(50):
                yield b"%04d" % i * 4096

        return StreamingResponse(chunks())

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    return app


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_get_over_http2(backend: str) -> None:
    with TestClient(make_app(), backend=backend, http_version="2") as client:
        response = client.get("/echo", params={"q": "1"}, headers={"X-Token": "t"})
    assert isinstance(response, TestResponse)
    assert (response.status_code, response.http_version) == (200, "2")
    assert response.json() == {
        "method": "GET",
        "path": "/echo",
        "query": [["q", "1"]],
        "host": "testserver",
        "x-token": "t",
        "body": "",
        "http_version": "2",
    }
    assert response.headers["content-type"] == "application/json"
    assert response.headers["server"] == "httpy"
    assert ":status" not in response.headers
    assert response.pushed == [] and response.path is None


def test_post_json_and_large_body(backend: str) -> None:
    client = TestClient(make_app(), backend=backend, http_version="2")
    assert client.post("/echo", json={"a": 1}).json()["body"] == '{"a": 1}'
    big = "x" * 3_000_000  # beyond the stream and connection windows: flow control runs
    response = client.put("/echo", content=big)
    assert response.status_code == 200 and response.json()["body"] == big


def test_connection_specific_headers_are_not_sent(backend: str) -> None:
    client = TestClient(make_app(), backend=backend, http_version="2")
    response = client.get("/echo", headers={"Connection": "keep-alive", "Keep-Alive": "5"})
    assert response.status_code == 200


def test_streaming_response_and_errors(backend: str) -> None:
    client = TestClient(make_app(), backend=backend, http_version="2")
    response = client.get("/stream")
    assert response.content == b"".join(b"%04d" % i * 4096 for i in range(50))
    assert client.get("/boom").status_code == 500
    assert client.get("/missing").status_code == 404
    assert client.head("/echo").content == b""


def test_pushed_responses(backend: str) -> None:
    log: list[str] = []
    client = TestClient(make_app(log), backend=backend, http_version="2")
    response = client.get("/page")
    assert response.status_code == 200 and response.text == "<h1>page</h1>"
    assert [p.path for p in response.pushed] == ["/static/a.css", "/static/b.js"]
    css, js = response.pushed
    assert (css.status_code, css.text, css.headers["content-type"]) == (200, "h1 {}", "text/css")
    assert (js.status_code, js.text, js.http_version) == (200, "let b;", "2")
    assert log == ["css"]
    assert response.headers.getlist("link") == [
        "</static/a.css>; rel=preload; as=style",
        "</static/b.js>; rel=preload; as=script",
    ]


def test_http1_client_gets_no_pushes(backend: str) -> None:
    client = TestClient(make_app(), backend=backend)
    response = client.get("/page")
    assert response.http_version == "1.1" and response.pushed == []


def test_body_limit_applies(backend: str) -> None:
    config = Config(max_body_bytes=100, access_log=False)
    client = TestClient(make_app(), config, backend=backend, http_version="2")
    assert client.post("/echo", content="x" * 1000).status_code == 413


def test_invalid_http_version() -> None:
    with pytest.raises(ValueError, match="http_version"):
        TestClient(make_app(), http_version="1.0")


@pytest.mark.anyio
async def test_async_client_over_http2() -> None:
    async with AsyncTestClient(make_app(), http_version="2") as client:
        responses: list[TestResponse] = []

        async def fetch(i: int) -> None:
            responses.append(await client.get(f"/echo?i={i}"))

        async with anyio.create_task_group() as tasks:
            for i in range(10):
                tasks.start_soon(fetch, i)
        page = await client.get("/page")
    assert sorted(r.json()["query"][0][1] for r in responses) == [str(i) for i in range(10)]
    assert {r.http_version for r in responses} == {"2"}
    assert [p.path for p in page.pushed] == ["/static/a.css", "/static/b.js"]
