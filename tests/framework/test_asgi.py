"""Lifespan hooks and ASGI both ways, without sockets.

* ``App`` hooks, ``App.state``, the test clients' lifespan, and ``serve()``'s startup and
  shutdown (``StartupError``, logged shutdown failures, shutdown on cancellation);
* an HTTPy ``App`` driven as an ASGI 3 application (httpx's ``ASGITransport`` and
  hand-written ``receive``/``send``);
* ``ASGIAdapter``: a Starlette app and raw ASGI apps behind HTTPy's connection driver.

Every async test runs on asyncio and on trio.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

import httpy
from httpy import App, ASGIAdapter, Request, Response, StartupError, StreamingResponse
from httpy.cli import load_app
from httpy.framework.asgi import Message, Receive, Scope, Send, as_application, is_asgi_app
from httpy.testing import AsyncTestClient, TestClient
from tests.e2e import starlette_app
from tests.support.servers import free_port, make_config

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------- App lifespan


def recording_app(events: list[str]) -> App:
    app = App()

    @app.on_startup
    async def first() -> None:
        events.append("startup 1")
        app.state.ready = True

    @app.on_startup
    def second() -> None:
        events.append("startup 2")

    @app.on_shutdown
    async def close_first() -> None:
        events.append("shutdown 1")

    @app.on_shutdown
    def close_second() -> None:
        events.append("shutdown 2")

    @app.get("/ready")
    async def ready(request: Request) -> Response:
        return Response.json({"ready": app.state.ready})

    return app


async def test_hooks_run_in_order_and_shutdown_in_reverse() -> None:
    events: list[str] = []
    app = recording_app(events)
    await app.startup()
    assert events == ["startup 1", "startup 2"]
    await app.shutdown()
    assert events == ["startup 1", "startup 2", "shutdown 2", "shutdown 1"]


async def test_decorators_return_the_function_unchanged() -> None:
    app = App()

    def hook() -> None:
        pass

    assert app.on_startup(hook) is hook
    assert app.on_shutdown(hook) is hook


async def test_first_failing_startup_hook_stops_the_startup() -> None:
    events: list[str] = []
    app = App()

    @app.on_startup
    def broken() -> None:
        raise RuntimeError("no database")

    @app.on_startup
    def never() -> None:
        events.append("never")

    with pytest.raises(RuntimeError, match="no database"):
        await app.startup()
    assert events == []


async def test_every_shutdown_hook_runs_even_when_some_fail() -> None:
    events: list[str] = []
    app = App()

    @app.on_shutdown
    def last() -> None:
        events.append("last")

    @app.on_shutdown
    async def broken() -> None:
        raise RuntimeError("flush failed")

    with pytest.raises(RuntimeError, match="flush failed"):
        await app.shutdown()
    assert events == ["last"]

    @app.on_shutdown
    def also_broken() -> None:
        raise ValueError("second failure")

    with pytest.raises(ExceptionGroup) as info:
        await app.shutdown()
    assert {type(e) for e in info.value.exceptions} == {RuntimeError, ValueError}
    assert events == ["last", "last"]


async def test_state_is_an_attribute_namespace() -> None:
    app = App()
    app.state.db = "connection"
    assert app.state.db == "connection"
    assert vars(app.state) == {"db": "connection"}
    with pytest.raises(AttributeError, match="'cache'"):
        _ = app.state.cache


def test_module_level_hooks_register_on_the_default_app() -> None:
    assert httpy.on_startup.__self__ is httpy.default_app  # type: ignore[attr-defined]
    assert httpy.on_shutdown.__self__ is httpy.default_app  # type: ignore[attr-defined]


async def test_async_test_client_runs_the_lifespan() -> None:
    events: list[str] = []
    async with AsyncTestClient(recording_app(events)) as client:
        assert events == ["startup 1", "startup 2"]
        assert (await client.get("/ready")).json() == {"ready": True}
    assert events[2:] == ["shutdown 2", "shutdown 1"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_test_client_runs_the_lifespan(backend: str) -> None:
    events: list[str] = []
    with TestClient(recording_app(events), backend=backend) as client:
        assert client.get("/ready").json() == {"ready": True}
        assert events == ["startup 1", "startup 2"]
    assert events[2:] == ["shutdown 2", "shutdown 1"]


def test_sync_test_client_reports_a_failing_startup() -> None:
    app = App()

    @app.on_startup
    def broken() -> None:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="no database"), TestClient(app):
        pass


# --------------------------------------------------------------------- serve() lifespan


async def test_serve_starts_the_app_before_listening_and_stops_it_after() -> None:
    events: list[str] = []
    app = recording_app(events)
    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        (host, port), *_ = await tasks.start(
            partial(httpy.serve, app, make_config(), shutdown_trigger=stop.wait)
        )
        assert events == ["startup 1", "startup 2"]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/ready")
        assert response.json() == {"ready": True}
        assert events == ["startup 1", "startup 2"]
        stop.set()
    assert events[2:] == ["shutdown 2", "shutdown 1"]


async def test_failed_startup_raises_startup_error_and_opens_no_listener(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.on_startup
    async def broken() -> None:
        raise RuntimeError("database unreachable")

    shutdowns: list[str] = []
    app.on_shutdown(lambda: shutdowns.append("shutdown"))
    port = free_port()
    caplog.set_level(logging.INFO, logger="httpy")
    with pytest.raises(StartupError) as info:
        await httpy.serve(app, make_config(binds=(f"127.0.0.1:{port}",)))
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value) == "application startup failed: RuntimeError: database unreachable"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "application startup failed: RuntimeError: database unreachable"
    ]
    assert errors[0].name == "httpy.error"
    assert not any("serving" in r.getMessage() for r in caplog.records)
    assert shutdowns == []  # startup never completed
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # nobody listened on it


async def test_failed_shutdown_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.on_shutdown
    def broken() -> None:
        raise RuntimeError("flush failed")

    stop = anyio.Event()
    stop.set()
    await httpy.serve(app, make_config(), shutdown_trigger=stop.wait)
    failures = [r for r in caplog.records if r.getMessage() == "application shutdown failed"]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "flush failed" in str(failures[0].exc_info[1])


async def test_shutdown_runs_when_serve_is_cancelled() -> None:
    events: list[str] = []
    app = App()

    @app.on_shutdown
    async def close() -> None:
        await anyio.sleep(0.01)  # shielded: the cancellation does not cut it short
        events.append("shutdown")

    async with anyio.create_task_group() as tasks:
        await tasks.start(partial(httpy.serve, app, make_config()))
        tasks.cancel_scope.cancel()
    assert events == ["shutdown"]


async def test_an_app_without_lifespan_is_served_as_before() -> None:
    class Bare:
        async def handle_http(self, stream: Any) -> None:
            await stream.send_response(204, ())
            await stream.send_body(b"", end=True)

    stop = anyio.Event()
    async with anyio.create_task_group() as tasks:
        (host, port), *_ = await tasks.start(
            partial(httpy.serve, Bare(), make_config(), shutdown_trigger=stop.wait)
        )
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://{host}:{port}/")).status_code == 204
        stop.set()


# --------------------------------------------------------------------- App as ASGI app


def asgi_demo_app() -> App:
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(request: Request) -> Response:
        return Response.json(
            {"id": request.path_params["item_id"], "q": request.query.get("q")},
            headers={"x-scheme": request.scheme},
        )

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response.json({"got": request.json()}, status=201)

    @app.get("/numbers")
    async def numbers(request: Request) -> Response:
        async def generate() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{i}\n".encode()

        return StreamingResponse(generate(), media_type="text/plain")

    async def tag(request: Request, handler: Callable[[Request], Any]) -> Response:
        response: Response = await handler(request)
        response.headers["x-middleware"] = "ran"
        return response

    app.add_middleware(tag)
    return app


async def test_app_is_an_asgi_application_for_httpx() -> None:
    transport = httpx.ASGITransport(app=asgi_demo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/items/7?q=x")
        assert response.status_code == 200
        assert response.json() == {"id": 7, "q": "x"}
        assert response.headers["x-middleware"] == "ran"
        response = await client.post("/echo", json={"a": [1, 2]})
        assert (response.status_code, response.json()) == (201, {"got": {"a": [1, 2]}})
        response = await client.get("/missing")
        assert response.status_code == 404
        assert response.headers["x-middleware"] == "ran"
        response = await client.get("/numbers")
        assert response.text == "0\n1\n2\n"


class FakeASGIServer:
    """Hand-written ``receive``/``send``: a scripted list of incoming messages."""

    def __init__(self, incoming: list[Message], *, then_block: bool = True) -> None:
        self.incoming = list(incoming)
        self.sent: list[Message] = []
        self.then_block = then_block
        self.disconnect = anyio.Event()

    async def receive(self) -> Message:
        if self.incoming:
            return self.incoming.pop(0)
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


def http_scope(path: str, method: str = "GET", **extra: Any) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"example.com")],
        "client": ("10.0.0.1", 5000),
        "server": ("10.0.0.2", 443),
    }
    scope.update(extra)
    return scope


async def test_app_streams_a_response_as_several_body_messages() -> None:
    server = FakeASGIServer([{"type": "http.request", "body": b"", "more_body": False}])
    await asgi_demo_app()(http_scope("/numbers"), server.receive, server.send)
    start, *bodies = server.sent
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert b"".join(m["body"] for m in bodies) == b"0\n1\n2\n"
    assert [m["more_body"] for m in bodies][-1] is False
    assert len(bodies) >= 3


async def test_app_reads_a_body_sent_in_pieces_and_honours_root_path() -> None:
    server = FakeASGIServer(
        [
            {"type": "http.request", "body": b'{"a"', "more_body": True},
            {"type": "http.request", "body": b"", "more_body": True},
            {"type": "http.request", "body": b": 1}", "more_body": False},
        ]
    )
    scope = http_scope("/api/echo", "POST", root_path="/api", raw_path=b"/api/echo")
    await asgi_demo_app()(scope, server.receive, server.send)
    assert server.sent[0]["status"] == 201
    assert json.loads(server.sent[1]["body"]) == {"got": {"a": 1}}
    scope = http_scope("/api/items/3", root_path="/api")
    del scope["raw_path"]
    server = FakeASGIServer([{"type": "http.request"}])
    await asgi_demo_app()(scope, server.receive, server.send)
    assert server.sent[0]["status"] == 200
    assert (b"x-scheme", b"https") in server.sent[0]["headers"]


async def test_disconnect_while_streaming_cancels_the_handler() -> None:
    app = App()
    closed = anyio.Event()

    @app.get("/forever")
    async def forever(request: Request) -> Response:
        async def generate() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n"
                    await anyio.sleep(0.01)
            finally:
                closed.set()

        return StreamingResponse(generate())

    server = FakeASGIServer([{"type": "http.request", "body": b"", "more_body": False}])
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app, http_scope("/forever"), server.receive, server.send)
            while len(server.sent) < 3:
                await anyio.sleep(0.01)
            server.disconnect.set()
        await closed.wait()
    assert server.sent[-1].get("more_body", True) is True  # never completed


async def test_an_error_while_streaming_reaches_the_asgi_server_unwrapped() -> None:
    app = App()

    @app.get("/broken")
    async def broken(request: Request) -> Response:
        async def generate() -> AsyncIterator[bytes]:
            yield b"first"
            raise RuntimeError("generator failed")

        return StreamingResponse(generate())

    server = FakeASGIServer([{"type": "http.request"}])
    with pytest.raises(RuntimeError, match="generator failed"):
        await app(http_scope("/broken"), server.receive, server.send)
    assert server.sent[0]["type"] == "http.response.start"


async def test_disconnect_while_reading_the_body_sends_nothing() -> None:
    app = App()
    called: list[bool] = []

    @app.post("/upload")
    async def upload(request: Request) -> Response:
        called.append(True)
        return Response.text("ok")

    server = FakeASGIServer(
        [{"type": "http.request", "body": b"part", "more_body": True}, {"type": "http.disconnect"}]
    )
    await app(http_scope("/upload", "POST"), server.receive, server.send)
    assert server.sent == []
    assert called == []


async def test_app_lifespan_scope_runs_the_hooks() -> None:
    events: list[str] = []
    server = FakeASGIServer([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    await recording_app(events)({"type": "lifespan"}, server.receive, server.send)
    assert [m["type"] for m in server.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert events == ["startup 1", "startup 2", "shutdown 2", "shutdown 1"]


async def test_app_lifespan_startup_failure_is_reported_to_the_server() -> None:
    app = App()

    @app.on_startup
    def broken() -> None:
        raise RuntimeError("no database")

    server = FakeASGIServer([{"type": "lifespan.startup"}])
    await app({"type": "lifespan"}, server.receive, server.send)
    assert [m["type"] for m in server.sent] == ["lifespan.startup.failed"]
    assert "RuntimeError: no database" in server.sent[0]["message"]


async def test_app_lifespan_shutdown_failure_is_reported_to_the_server() -> None:
    app = App()
    app.on_shutdown(lambda: 1 / 0)
    server = FakeASGIServer([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    await app({"type": "lifespan"}, server.receive, server.send)
    assert [m["type"] for m in server.sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.failed",
    ]
    assert "ZeroDivisionError" in server.sent[1]["message"]


async def test_app_without_the_websocket_route_refuses_the_handshake() -> None:
    # The 404 becomes a close before accept: the ASGI server answers 403.  (WebSocket
    # routes under ASGI servers: tests/e2e/test_websocket_clients.py.)
    server = FakeASGIServer([{"type": "websocket.connect"}])
    scope = {"type": "websocket", "path": "/ws", "headers": []}
    await App()(scope, server.receive, server.send)
    assert server.sent == [{"type": "websocket.close", "code": 1000}]


async def test_app_rejects_unknown_scope_types() -> None:
    server = FakeASGIServer([])
    with pytest.raises(ValueError, match="unsupported ASGI scope type"):
        await App()({"type": "telepathy"}, server.receive, server.send)


# --------------------------------------------------------------------- ASGIAdapter


async def test_starlette_app_through_the_adapter_in_memory() -> None:
    async with AsyncTestClient(starlette_app.app) as client:
        assert (await client.get("/")).text == "hello from starlette\n"
        response = await client.get("/items/12?q=z")
        assert response.json() == {"id": 12, "q": "z", "path": "/items/12"}
        response = await client.post("/echo", json={"x": 1})
        assert response.status_code == 201
        assert response.json() == {"received": {"x": 1}, "content_type": "application/json"}
        response = await client.get("/numbers?n=3")
        assert response.text == "line 0\nline 1\nline 2\n"
        assert response.headers.get("transfer-encoding") == "chunked"
        assert (await client.get("/state")).json() == {"started": True}
        assert (await client.get("/nope")).status_code == 404


def capturing_app(seen: list[tuple[Scope, list[Message]]]) -> Callable[..., Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    scope["state"]["pool"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
        await send({"type": "http.response.body", "body": b"done"})
        messages.append(await receive())  # after the response: http.disconnect
        seen.append((scope, messages))

    return app


async def test_adapter_builds_the_scope_and_maps_receive() -> None:
    seen: list[tuple[Scope, list[Message]]] = []
    adapter = ASGIAdapter(capturing_app(seen), root_path="/mount")
    async with AsyncTestClient(adapter) as client:
        response = await client.request(
            "POST", "/caf%C3%A9/x%2Fy?q=1&r=%20", content=b"hello", headers={"X-Thing": "1"}
        )
    assert (response.status_code, response.content) == (200, b"done")
    assert response.headers.get("a") == "b"
    scope, messages = seen[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/mount/café/x/y"
    assert scope["raw_path"] == b"/mount/caf%C3%A9/x%2Fy"
    assert scope["query_string"] == b"q=1&r=%20"
    assert scope["root_path"] == "/mount"
    assert (b"x-thing", b"1") in scope["headers"]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in scope["headers"])
    assert scope["client"] == ("testclient", 50000)
    assert scope["server"] == ("testserver", 80)
    assert scope["state"] == {"pool": "ready"}
    assert scope["state"] is not adapter.state  # a copy per request
    assert b"".join(m.get("body", b"") for m in messages[:-1]) == b"hello"
    assert messages[-2]["more_body"] is False
    assert messages[-1] == {"type": "http.disconnect"}


def raw_app(script: Callable[[Send], Any]) -> Callable[..., Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")  # does not speak lifespan
        await script(send)

    return app


async def test_adapter_answers_500_when_the_app_raises_before_responding(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(send: Send) -> None:
        raise RuntimeError("kaboom")

    async with AsyncTestClient(raw_app(script)) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert any("kaboom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_adapter_answers_500_when_the_app_returns_without_responding(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(send: Send) -> None:
        pass

    async with AsyncTestClient(raw_app(script)) as client:
        assert (await client.get("/")).status_code == 500
    assert any("without starting its response" in r.getMessage() for r in caplog.records)


async def test_adapter_rejects_messages_out_of_order() -> None:
    async def script(send: Send) -> None:
        await send({"type": "http.response.body", "body": b"no start"})

    async with AsyncTestClient(raw_app(script)) as client:
        assert (await client.get("/")).status_code == 500


async def test_adapter_lifespan_unsupported_app_is_served_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(send: Send) -> None:
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    caplog.set_level(logging.INFO, logger="httpy")
    async with AsyncTestClient(raw_app(script)) as client:
        assert (await client.get("/")).status_code == 204
    assert any("lifespan protocol unsupported" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="http only"):  # lifespan="on": a failed startup
        async with ASGIAdapter(raw_app(script), lifespan="on").lifespan():
            pass

    async def returns_at_once(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    with pytest.raises(StartupError, match="does not support the lifespan"):
        async with ASGIAdapter(returns_at_once, lifespan="on").lifespan():
            pass
    async with ASGIAdapter(returns_at_once).lifespan():
        pass
    async with ASGIAdapter(raw_app(script), lifespan="off").lifespan():
        pass


async def test_adapter_lifespan_failures() -> None:
    async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "lifespan.startup.failed",
                "message": "Traceback (most recent call last):\n  ...\nOSError: no pool",
            }
        )

    with pytest.raises(StartupError, match=r"^OSError: no pool$"):
        async with ASGIAdapter(failing_startup).lifespan():
            pass

    async def raising_startup(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise KeyError("config")

    with pytest.raises(KeyError, match="config"):
        async with ASGIAdapter(raising_startup).lifespan():
            pass

    async def failing_shutdown(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "could not flush"})

    with pytest.raises(RuntimeError, match="could not flush"):
        async with ASGIAdapter(failing_shutdown).lifespan():
            pass


async def test_adapter_lifespan_passes_exceptions_of_the_body_through_unwrapped() -> None:
    adapter = ASGIAdapter(starlette_app.app)
    with pytest.raises(OSError, match="address in use"):
        async with adapter.lifespan():
            raise OSError("address in use")


async def test_starlette_startup_failure_stops_serve() -> None:
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise ConnectionError("redis down")
        yield

    with pytest.raises(StartupError, match="ConnectionError: redis down") as info:
        await httpy.serve(Starlette(lifespan=lifespan), make_config())
    assert str(info.value) == "application startup failed: ConnectionError: redis down"


# --------------------------------------------------------------------- accepting both


def test_is_asgi_app() -> None:
    async def function(scope: Scope, receive: Receive, send: Send) -> None: ...

    async def two_args(scope: Scope, receive: Receive) -> None: ...

    def sync(scope: Scope, receive: Receive, send: Send) -> None: ...

    class Instance:
        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    assert is_asgi_app(function)
    assert is_asgi_app(Instance())
    assert is_asgi_app(starlette_app.app)
    assert is_asgi_app(App())
    assert not is_asgi_app(Instance)
    assert not is_asgi_app(two_args)
    assert not is_asgi_app(sync)
    assert not is_asgi_app("app")


def test_as_application_keeps_native_apps_and_wraps_asgi_ones() -> None:
    app = App()
    assert as_application(app) is app
    adapter = as_application(starlette_app.app)
    assert isinstance(adapter, ASGIAdapter)
    assert adapter.app is starlette_app.app
    with pytest.raises(TypeError, match="not an application"):
        as_application(object())


def test_cli_load_app_wraps_asgi_apps() -> None:
    loaded = load_app("tests.e2e.starlette_app:app")
    assert isinstance(loaded, ASGIAdapter)
    assert loaded.app is starlette_app.app
    with pytest.raises(SystemExit, match="not an application"):
        load_app("tests.e2e.starlette_app:DISCONNECTS")
