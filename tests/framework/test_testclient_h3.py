"""``TestClient(app, http_version="3")``: the real HTTP/3 core and driver, in memory."""

from __future__ import annotations

import pytest

pytest.importorskip("aioquic")

from httpy import App, Config, Request, Response
from httpy.framework.response import StreamingResponse
from httpy.testing import AsyncTestClient, TestClient


def make_app() -> App:
    app = App()

    @app.route("/echo", methods=["GET", "POST"])
    async def echo(request: Request) -> Response:
        return Response.json(
            {
                "method": request.method,
                "path": request.path,
                "host": request.headers.get("host"),
                "body": (await request.body()).decode(),
                "http_version": request.http_version,
            }
        )

    @app.get("/page")
    async def page(request: Request) -> Response:
        response = Response.html("<h1>page</h1>")
        response.push_resources = [("/static/a.css", "style")]
        return response

    @app.get("/static/a.css")
    async def css(request: Request) -> Response:
        return Response("h1 {}", headers={"content-type": "text/css"})

    @app.get("/stream")
    async def stream(request: Request) -> Response:
        async def chunks():  # type: ignore[no-untyped-def]
            for i in range(50):
                yield b"%04d" % i * 4096

        return StreamingResponse(chunks())

    @app.get("/trailers")
    async def trailers(request: Request) -> Response:
        return Response(b"body", trailers={"x-digest": "abc"})

    @app.get("/boom")
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    return app


def test_round_trip_over_http3() -> None:
    with TestClient(make_app(), http_version="3") as client:
        response = client.post("/echo", content=b"x" * 100_000, headers={"host": "example"})
        assert response.status_code == 200
        assert response.http_version == "3"
        data = response.json()
        assert data["http_version"] == "3"
        assert data["host"] == "example"
        assert data["body"] == "x" * 100_000


def test_streaming_push_trailers_and_errors() -> None:
    with TestClient(make_app(), http_version="3") as client:
        streamed = client.get("/stream")
        assert streamed.content == b"".join(b"%04d" % i * 4096 for i in range(50))
        page = client.get("/page")
        assert [(p.path, p.content) for p in page.pushed] == [("/static/a.css", b"h1 {}")]
        assert client.get("/trailers").trailers["x-digest"] == "abc"
        assert client.get("/boom").status_code == 500


@pytest.mark.anyio
async def test_async_client_on_both_backends() -> None:
    async with AsyncTestClient(make_app(), Config(access_log=False), http_version="3") as c:
        assert (await c.get("/echo")).json()["method"] == "GET"
