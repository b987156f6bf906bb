"""Tests for httpy.framework.app: routing, middleware, exception handling and bodies,
run through the real HTTP/1.1 core with the in-memory test client, on asyncio and trio."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest

import httpy
from httpy import (
    App,
    Config,
    HTTPException,
    Request,
    Response,
    default_app,
)
from httpy.framework.app import Handler, Middleware
from httpy.testing import TestClient

BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def client(app: App, backend: str) -> Iterator[TestClient]:
    with TestClient(app, backend=backend) as test_client:
        yield test_client


# ----------------------------------------------------------------- route decorators


def test_method_decorators_register_each_method(app: App, client: TestClient) -> None:
    @app.get("/items")
    async def list_items(request: Request) -> Response:
        return Response.text("get")

    @app.post("/items")
    async def create_item(request: Request) -> Response:
        return Response.text("post", status=201)

    @app.put("/items/{id}")
    async def put_item(request: Request) -> Response:
        return Response.text(f"put {request.path_params['id']}")

    @app.patch("/items/{id}")
    async def patch_item(request: Request) -> Response:
        return Response.text(f"patch {request.path_params['id']}")

    @app.delete("/items/{id}")
    async def delete_item(request: Request) -> Response:
        return Response(b"", status=204)

    response = client.get("/items")
    assert (response.status_code, response.text) == (200, "get")
    response = client.post("/items")
    assert (response.status_code, response.text) == (201, "post")
    response = client.put("/items/7")
    assert (response.status_code, response.text) == (200, "put 7")
    response = client.patch("/items/8")
    assert (response.status_code, response.text) == (200, "patch 8")
    response = client.delete("/items/9")
    assert (response.status_code, response.content) == (204, b"")


def test_decorator_returns_the_function_unchanged(app: App) -> None:
    async def handler(request: Request) -> Response:
        return Response.text("x")

    assert app.get("/x")(handler) is handler


def test_route_with_several_methods(app: App, client: TestClient) -> None:
    @app.route("/multi", methods=["GET", "post", "PUT"])
    async def multi(request: Request) -> Response:
        return Response.text(request.method)

    assert client.get("/multi").text == "GET"
    assert client.post("/multi").text == "POST"
    assert client.put("/multi").text == "PUT"
    response = client.delete("/multi")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST, PUT"


def test_route_defaults_to_get(app: App, client: TestClient) -> None:
    @app.route("/default")
    async def default(request: Request) -> Response:
        return Response.text("ok")

    assert client.get("/default").text == "ok"
    assert client.post("/default").status_code == 405


def test_int_converter_gives_an_int(app: App, client: TestClient) -> None:
    seen: list[object] = []

    @app.get("/users/{id:int}")
    async def user(request: Request) -> Response:
        seen.append(request.path_params["id"])
        return Response.json({"id": request.path_params["id"]})

    response = client.get("/users/42")
    assert response.status_code == 200
    assert response.json() == {"id": 42}
    assert seen == [42]
    assert type(seen[0]) is int
    # Not digits: no route.
    assert client.get("/users/abc").status_code == 404


def test_str_parameter_is_decoded_str(app: App, client: TestClient) -> None:
    @app.get("/hello/{name}")
    async def hello(request: Request) -> Response:
        return Response.json({"name": request.path_params["name"]})

    assert client.get("/hello/caf%C3%A9").json() == {"name": "café"}


def test_path_converter_takes_the_rest(app: App, client: TestClient) -> None:
    @app.get("/files/{rest:path}")
    async def files(request: Request) -> Response:
        return Response.json({"rest": request.path_params["rest"]})

    assert client.get("/files/a/b/c.txt").json() == {"rest": "a/b/c.txt"}
    assert client.get("/files/").json() == {"rest": ""}


def test_unknown_path_is_404(app: App, client: TestClient) -> None:
    @app.get("/exists")
    async def exists(request: Request) -> Response:
        return Response.text("yes")

    response = client.get("/nope")
    assert response.status_code == 404
    assert response.text == "Not Found\n"
    assert response.headers["content-type"].startswith("text/plain")

    response = client.get("/nope", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_wrong_method_is_405_with_allow(app: App, client: TestClient) -> None:
    @app.get("/thing")
    async def get_thing(request: Request) -> Response:
        return Response.text("thing")

    @app.delete("/thing")
    async def delete_thing(request: Request) -> Response:
        return Response.text("deleted")

    response = client.post("/thing")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert response.text == "Method Not Allowed\n"


def test_head_on_get_route_returns_headers_without_body(app: App, client: TestClient) -> None:
    calls: list[str] = []

    @app.get("/page")
    async def page(request: Request) -> Response:
        calls.append(request.method)
        return Response.html("<p>hello</p>", headers={"x-custom": "1"})

    get_response = client.get("/page")
    head_response = client.head("/page")
    assert head_response.status_code == 200
    assert head_response.content == b""
    assert head_response.headers["x-custom"] == "1"
    assert head_response.headers["content-type"] == "text/html; charset=utf-8"
    assert head_response.headers["content-length"] == str(len(get_response.content))
    assert get_response.content == b"<p>hello</p>"
    assert calls == ["GET", "HEAD"]


def test_automatic_options_is_204_with_allow(app: App, client: TestClient) -> None:
    @app.get("/res")
    async def get_res(request: Request) -> Response:
        return Response.text("res")

    @app.post("/res")
    async def post_res(request: Request) -> Response:
        return Response.text("res")

    response = client.options("/res")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert response.content == b""
    # OPTIONS on an unknown path is still a 404.
    assert client.options("/missing").status_code == 404


def test_query_params_get_and_getlist(app: App, client: TestClient) -> None:
    @app.get("/search")
    async def search(request: Request) -> Response:
        return Response.json(
            {
                "q": request.query.get("q"),
                "missing": request.query.get("missing"),
                "default": request.query.get("missing", "dflt"),
                "tags": request.query.getlist("tag"),
                "empty": request.query.get("empty"),
                "none": request.query.getlist("none"),
            }
        )

    response = client.get("/search?q=hello%20world&tag=a&tag=b&empty=")
    assert response.json() == {
        "q": "hello world",
        "missing": None,
        "default": "dflt",
        "tags": ["a", "b"],
        "empty": "",
        "none": [],
    }


# ----------------------------------------------------------------- module-level decorators

# Registered once, at import, on the default app, under paths no other test uses.
_PREFIX = "/_test_framework_app"


@httpy.get(f"{_PREFIX}/get")
async def _module_get(request: Request) -> Response:
    return Response.text("module get")


@httpy.post(f"{_PREFIX}/post")
async def _module_post(request: Request) -> Response:
    return Response.json({"got": request.json()})


@httpy.put(f"{_PREFIX}/put/{{id:int}}")
async def _module_put(request: Request) -> Response:
    return Response.json({"id": request.path_params["id"]})


@httpy.patch(f"{_PREFIX}/patch")
async def _module_patch(request: Request) -> Response:
    return Response.text("module patch")


@httpy.delete(f"{_PREFIX}/delete")
async def _module_delete(request: Request) -> Response:
    return Response(b"", status=204)


@httpy.route(f"{_PREFIX}/route", methods=["GET", "POST"])
async def _module_route(request: Request) -> Response:
    return Response.text(f"module {request.method}")


class _ModuleRouteError(Exception):
    pass


@httpy.get(f"{_PREFIX}/route-error")
async def _module_route_error(request: Request) -> Response:
    raise _ModuleRouteError("boom")


async def _module_route_error_handler(request: Request, exc: _ModuleRouteError) -> Response:
    return Response.text(f"handled {exc}", status=418)


httpy.add_exception_handler_for_route(
    f"{_PREFIX}/route-error", _ModuleRouteError, _module_route_error_handler
)


def test_module_level_decorators_register_on_default_app(backend: str) -> None:
    with TestClient(default_app, backend=backend) as client:
        assert client.get(f"{_PREFIX}/get").text == "module get"
        assert client.post(f"{_PREFIX}/post", json={"a": 1}).json() == {"got": {"a": 1}}
        assert client.put(f"{_PREFIX}/put/5").json() == {"id": 5}
        assert client.patch(f"{_PREFIX}/patch").text == "module patch"
        assert client.delete(f"{_PREFIX}/delete").status_code == 204
        assert client.get(f"{_PREFIX}/route").text == "module GET"
        assert client.post(f"{_PREFIX}/route").text == "module POST"
        assert client.delete(f"{_PREFIX}/route").status_code == 405
        response = client.get(f"{_PREFIX}/route-error")
        assert (response.status_code, response.text) == (418, "handled boom")


def test_module_level_functions_are_bound_to_default_app() -> None:
    assert httpy.add_middleware == default_app.add_middleware
    assert httpy.add_exception_handler == default_app.add_exception_handler
    assert httpy.add_exception_handler_for_route == default_app.add_exception_handler_for_route
    paths = {route.path for route in default_app.router.routes}
    assert f"{_PREFIX}/get" in paths
    assert f"{_PREFIX}/put/{{id:int}}" in paths


# ----------------------------------------------------------------- middleware


def test_middleware_order_first_added_is_outermost(app: App, client: TestClient) -> None:
    order: list[str] = []

    def recorder(name: str) -> Middleware:
        async def middleware(request: Request, handler: Handler) -> Response:
            order.append(f"{name} before")
            response = await handler(request)
            order.append(f"{name} after")
            response.headers.append("x-trace", name)
            return response

        return middleware

    app.add_middleware(recorder("first"))
    app.add_middleware(recorder("second"))
    app.add_middleware(recorder("third"))

    @app.get("/")
    async def index(request: Request) -> Response:
        order.append("handler")
        return Response.text("index")

    response = client.get("/")
    assert response.text == "index"
    assert order == [
        "first before",
        "second before",
        "third before",
        "handler",
        "third after",
        "second after",
        "first after",
    ]
    # The innermost middleware touched the response first.
    assert response.headers.getlist("x-trace") == ["third", "second", "first"]


def test_middleware_can_short_circuit(app: App, client: TestClient) -> None:
    handled: list[str] = []

    async def auth(request: Request, handler: Handler) -> Response:
        if request.headers.get("authorization") != "Bearer secret":
            return Response.json(
                {"error": "unauthorized"},
                status=httpy.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    app.add_middleware(auth)

    @app.get("/private")
    async def private(request: Request) -> Response:
        handled.append(request.path)
        return Response.text("secret data")

    response = client.get("/private")
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert response.headers["www-authenticate"] == "Bearer"
    assert handled == []

    response = client.get("/private", headers={"Authorization": "Bearer secret"})
    assert response.status_code == 200
    assert response.text == "secret data"
    assert handled == ["/private"]


def test_middleware_sees_404_and_405_responses(app: App, client: TestClient) -> None:
    seen: list[tuple[str, str, int]] = []

    async def logger_mw(request: Request, handler: Handler) -> Response:
        response = await handler(request)
        seen.append((request.method, request.path, response.status))
        return response

    app.add_middleware(logger_mw)

    @app.get("/known")
    async def known(request: Request) -> Response:
        return Response.text("known")

    assert client.get("/unknown").status_code == 404
    assert client.post("/known").status_code == 405
    assert client.get("/known").status_code == 200
    assert seen == [("GET", "/unknown", 404), ("POST", "/known", 405), ("GET", "/known", 200)]


def test_middleware_sees_500_from_handler(app: App, client: TestClient) -> None:
    seen: list[int] = []

    async def observe(request: Request, handler: Handler) -> Response:
        response = await handler(request)
        seen.append(response.status)
        return response

    app.add_middleware(observe)

    @app.get("/fail")
    async def fail(request: Request) -> Response:
        raise RuntimeError("handler bug")

    assert client.get("/fail").status_code == 500
    assert seen == [500]


def test_middleware_raising_http_exception(app: App, client: TestClient) -> None:
    async def deny(request: Request, handler: Handler) -> Response:
        raise HTTPException(429, "slow down", headers={"Retry-After": "3"})

    app.add_middleware(deny)

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("index")

    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json() == {"error": "slow down"}


# ----------------------------------------------------------------- exceptions


class BaseAppError(Exception):
    pass


class ChildAppError(BaseAppError):
    pass


class GrandChildAppError(ChildAppError):
    pass


def test_global_exception_handler_found_along_mro(app: App, client: TestClient) -> None:
    async def on_base(request: Request, exc: BaseAppError) -> Response:
        return Response.json({"handler": "base", "type": type(exc).__name__}, status=409)

    async def on_child(request: Request, exc: ChildAppError) -> Response:
        return Response.json({"handler": "child", "type": type(exc).__name__}, status=422)

    app.add_exception_handler(BaseAppError, on_base)
    app.add_exception_handler(ChildAppError, on_child)

    @app.get("/raise/{kind}")
    async def raiser(request: Request) -> Response:
        kind = request.path_params["kind"]
        exc_type = {"base": BaseAppError, "child": ChildAppError, "grand": GrandChildAppError}
        raise exc_type[kind]("x")

    response = client.get("/raise/base")
    assert (response.status_code, response.json()) == (
        409,
        {"handler": "base", "type": "BaseAppError"},
    )
    response = client.get("/raise/child")
    assert (response.status_code, response.json()) == (
        422,
        {"handler": "child", "type": "ChildAppError"},
    )
    # No handler for GrandChildAppError itself: the nearest class in the MRO wins.
    response = client.get("/raise/grand")
    assert (response.status_code, response.json()) == (
        422,
        {"handler": "child", "type": "GrandChildAppError"},
    )


def test_exception_handler_for_base_exception_class(app: App, client: TestClient) -> None:
    async def on_any(request: Request, exc: Exception) -> Response:
        return Response.text(f"caught {type(exc).__name__}", status=503)

    app.add_exception_handler(Exception, on_any)

    @app.get("/")
    async def index(request: Request) -> Response:
        raise KeyError("k")

    response = client.get("/")
    assert (response.status_code, response.text) == (503, "caught KeyError")


def test_exception_handler_for_exception_keeps_http_exception_statuses(
    app: App, client: TestClient
) -> None:
    # The seed registers add_exception_handler(Exception, ...) answering 500: that must
    # not turn HTTPException (raised by the app or by request.json()) into a 500.
    async def on_any(request: Request, exc: Exception) -> Response:
        return Response.json({"error": str(exc)}, status=500)

    app.add_exception_handler(Exception, on_any)

    @app.post("/json")
    async def parse(request: Request) -> Response:
        return Response.json(request.json())

    @app.get("/forbidden")
    async def forbidden(request: Request) -> Response:
        raise HTTPException(403, "nope", headers={"X-Why": "because"})

    @app.get("/crash")
    async def crash(request: Request) -> Response:
        raise RuntimeError("boom")

    response = client.post("/json", content=b"{bad", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    response = client.get("/forbidden", headers={"Accept": "application/json"})
    assert (response.status_code, response.json()) == (403, {"error": "nope"})
    assert response.headers["x-why"] == "because"
    response = client.get("/crash")
    assert (response.status_code, response.json()) == (500, {"error": "boom"})


def test_exception_handler_registered_for_http_exception(app: App, client: TestClient) -> None:
    class TeapotError(HTTPException):
        pass

    async def on_http(request: Request, exc: HTTPException) -> Response:
        return Response.text(f"custom {exc.status} {exc.detail}", status=exc.status)

    async def on_teapot(request: Request, exc: TeapotError) -> Response:
        return Response.text("teapot", status=418)

    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(TeapotError, on_teapot)

    @app.get("/gone")
    async def gone(request: Request) -> Response:
        raise HTTPException(410, "gone away")

    @app.get("/teapot")
    async def teapot(request: Request) -> Response:
        raise TeapotError(500)

    response = client.get("/gone")
    assert (response.status_code, response.text) == (410, "custom 410 gone away")
    response = client.get("/teapot")
    assert (response.status_code, response.text) == (418, "teapot")


def test_exception_handler_can_format_the_current_traceback(app: App, client: TestClient) -> None:
    # The seed's global handler calls traceback.format_exc() inside the handler.
    async def on_error(request: Request, exc: Exception) -> Response:
        return Response.text(traceback.format_exc(), status=500)

    app.add_exception_handler(LookupError, on_error)

    @app.get("/tb")
    async def tb(request: Request) -> Response:
        raise IndexError("deep problem")

    response = client.get("/tb")
    assert response.status_code == 500
    assert "Traceback (most recent call last)" in response.text
    assert "IndexError: deep problem" in response.text


def test_exception_raised_in_middleware_uses_global_handlers(app: App, client: TestClient) -> None:
    async def broken(request: Request, handler: Handler) -> Response:
        raise BaseAppError("from middleware")

    async def on_base(request: Request, exc: BaseAppError) -> Response:
        return Response.text(f"handled {exc}", status=502)

    app.add_middleware(broken)
    app.add_exception_handler(BaseAppError, on_base)

    @app.get("/")
    async def index(request: Request) -> Response:
        return Response.text("unreachable")

    response = client.get("/")
    assert (response.status_code, response.text) == (502, "handled from middleware")


def test_route_exception_handler_takes_precedence_on_its_route_only(
    app: App, client: TestClient
) -> None:
    async def global_handler(request: Request, exc: ValueError) -> Response:
        return Response.text("global", status=400)

    async def route_handler(request: Request, exc: ValueError) -> Response:
        return Response.text("route", status=422)

    app.add_exception_handler(ValueError, global_handler)
    app.add_exception_handler_for_route("/special/{id:int}", ValueError, route_handler)

    @app.get("/special/{id:int}")
    async def special(request: Request) -> Response:
        raise ValueError("special")

    @app.get("/ordinary")
    async def ordinary(request: Request) -> Response:
        raise ValueError("ordinary")

    response = client.get("/special/3")
    assert (response.status_code, response.text) == (422, "route")
    response = client.get("/ordinary")
    assert (response.status_code, response.text) == (400, "global")


def test_route_exception_handler_ignores_other_exception_types(
    app: App, client: TestClient
) -> None:
    async def route_handler(request: Request, exc: ValueError) -> Response:
        return Response.text("route", status=422)

    app.add_exception_handler_for_route("/r", ValueError, route_handler)

    @app.get("/r")
    async def r(request: Request) -> Response:
        raise KeyError("not a ValueError")

    assert client.get("/r").status_code == 500


def test_failing_exception_handler_gives_plain_500_and_server_keeps_serving(
    app: App, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_handler(request: Request, exc: BaseAppError) -> Response:
        raise RuntimeError("the handler is broken too")

    app.add_exception_handler(BaseAppError, broken_handler)

    @app.get("/bad")
    async def bad(request: Request) -> Response:
        raise BaseAppError("first")

    @app.get("/good")
    async def good(request: Request) -> Response:
        return Response.text("fine")

    with caplog.at_level(logging.ERROR, logger="httpy"):
        response = client.get("/bad")
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert "broken too" not in response.text
    assert any("exception handler" in r.getMessage() for r in caplog.records)

    response = client.get("/good")
    assert (response.status_code, response.text) == (200, "fine")


def test_http_exception_status_headers_and_body(app: App, client: TestClient) -> None:
    @app.get("/forbidden")
    async def forbidden(request: Request) -> Response:
        raise HTTPException(403, "nope", headers={"X-Reason": "policy"})

    response = client.get("/forbidden", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.headers["x-reason"] == "policy"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "nope"}

    response = client.get("/forbidden")
    assert response.status_code == 403
    assert response.headers["x-reason"] == "policy"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "nope\n"

    response = client.get("/forbidden", headers={"Accept": "text/html"})
    assert response.text == "nope\n"


def test_http_exception_default_detail() -> None:
    exc = HTTPException(404)
    assert exc.status == 404
    assert exc.detail == "Not Found"
    assert exc.headers == {}
    assert HTTPException(599).detail == "Error"


def test_handler_runtime_error_is_500_and_client_keeps_working(
    app: App, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/crash")
    async def crash(request: Request) -> Response:
        raise RuntimeError("secret internals")

    @app.get("/ok")
    async def ok(request: Request) -> Response:
        return Response.text("ok")

    with caplog.at_level(logging.ERROR, logger="httpy"):
        response = client.get("/crash")
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert "secret internals" not in response.text
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)

    response = client.get("/crash", headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error"}

    response = client.get("/ok")
    assert (response.status_code, response.text) == (200, "ok")


def test_debug_app_includes_traceback(backend: str) -> None:
    app = App(debug=True)

    @app.get("/crash")
    async def crash(request: Request) -> Response:
        raise RuntimeError("visible in debug")

    with TestClient(app, backend=backend) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    assert "RuntimeError: visible in debug" in response.text


# ----------------------------------------------------------------- request bodies


def test_invalid_json_body_is_400_with_clear_message(app: App, client: TestClient) -> None:
    @app.post("/json")
    async def parse(request: Request) -> Response:
        return Response.json({"got": request.json()})

    response = client.post(
        "/json",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("request body is not valid JSON")

    response = client.post("/json", content=b"\xff\xfe", headers={"Accept": "text/plain"})
    assert response.status_code == 400
    assert "not valid JSON" in response.text

    response = client.post("/json", json={"a": [1, 2, {"b": None}]})
    assert response.status_code == 200
    assert response.json() == {"got": {"a": [1, 2, {"b": None}]}}


def test_post_body_echo_exact_bytes_1mb(app: App, client: TestClient) -> None:
    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(body, headers={"content-type": "application/octet-stream"})

    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value
    assert len(payload) == 1024 * 1024
    response = client.post("/echo", content=payload)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(payload))
    assert response.content == payload

    # An empty body too.
    response = client.post("/echo", content=b"")
    assert (response.status_code, response.content) == (200, b"")


def test_stream_route_reads_chunks(app: App, client: TestClient) -> None:
    chunk_sizes: list[int] = []

    @app.post("/upload", stream=True)
    async def upload(request: Request) -> Response:
        total = 0
        digest = 0
        async for chunk in request.stream():
            assert chunk  # never an empty chunk
            chunk_sizes.append(len(chunk))
            total += len(chunk)
            digest = (digest + sum(chunk)) % 65521
        return Response.json({"total": total, "digest": digest})

    payload = b"abcdefghij" * 50_000  # 500 kB: more than one read from the connection
    response = client.post("/upload", content=payload)
    assert response.status_code == 200
    assert response.json() == {"total": len(payload), "digest": sum(payload) % 65521}
    assert sum(chunk_sizes) == len(payload)
    assert len(chunk_sizes) > 1  # delivered as it arrived, not buffered into one piece


def test_stream_route_can_read_whole_body_then_json(app: App, client: TestClient) -> None:
    @app.post("/stream-json", stream=True)
    async def stream_json(request: Request) -> Response:
        await request.body()
        return Response.json(request.json())

    assert client.post("/stream-json", json=[1, 2, 3]).json() == [1, 2, 3]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "stream"])
def test_body_over_max_body_bytes_is_413(backend: str, chunked: bool, stream: bool) -> None:
    app = App()
    calls: list[int] = []

    @app.post("/upload", stream=stream)
    async def upload(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        calls.append(size)
        return Response.text(f"{size}")

    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    with TestClient(app, Config(max_body_bytes=1000), backend=backend) as client:
        response = client.post("/upload", content=b"x" * 1001, headers=headers)
        assert response.status_code == 413
        assert calls == []
        # At the limit is fine, on a fresh connection.
        response = client.post("/upload", content=b"x" * 1000, headers=headers)
        assert (response.status_code, response.text) == (200, "1000")
        assert calls == [1000]
