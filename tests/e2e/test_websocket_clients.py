"""Real WebSocket clients (the websockets library, aiohttp) against HTTPy over HTTP/1.1,
with the server on asyncio and on trio (in a thread; the clients bring asyncio)."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
import websockets

from httpy import App, WebSocketConnection
from httpy.backends.tls import generate_dev_certificate
from tests.support.servers import server_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Recorder:
    """What handlers saw, readable from the test's thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, Any] = {}
        self.changed = threading.Condition(self.lock)

    def put(self, key: str, value: Any) -> None:
        with self.changed:
            self.items[key] = value
            self.changed.notify_all()

    def wait(self, key: str, timeout: float = 10) -> Any:
        with self.changed:
            assert self.changed.wait_for(lambda: key in self.items, timeout), key
            return self.items[key]


def make_app(recorder: Recorder) -> App:
    app = App()
    rooms: dict[str, set[WebSocketConnection]] = {}

    @app.websocket("/echo")
    async def echo(ws: WebSocketConnection) -> None:
        await ws.accept(subprotocol=ws.subprotocols[0] if ws.subprotocols else None)
        async for message in ws:
            if message.is_text:
                await ws.send_text(message.text())
            else:
                await ws.send_bytes(message.bytes())
        recorder.put("echo_close", (ws.close_code, ws.close_reason))

    @app.websocket("/chat/{room}")
    async def chat(ws: WebSocketConnection) -> None:
        room = ws.path_params["room"]
        members = rooms.setdefault(room, set())
        members.add(ws)
        try:
            async for message in ws:
                for member in list(members):
                    await member.send_json({"room": room, **message.json()})
        finally:
            members.discard(ws)
            recorder.put(f"left:{room}:{id(ws)}", True)
            recorder.put(f"members:{room}", len(members))

    @app.websocket("/numbers")
    async def numbers(ws: WebSocketConnection) -> None:
        for i in range(100):
            await ws.send_json({"n": i})
        await ws.close(4000, "all sent")

    @app.websocket("/fail")
    async def fail(ws: WebSocketConnection) -> None:
        await ws.accept()
        raise ValueError("broken handler")

    return app


@pytest.fixture
def server(backend: str) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with server_thread(make_app(recorder), backend, ws_max_message_bytes=1 << 20) as (host, port):
        yield f"ws://{host}:{port}", recorder


# ----------------------------------------------------------------- websockets library


def test_websockets_echo_compression_and_close_codes(server: tuple[str, Recorder]) -> None:
    url, recorder = server

    async def main() -> None:
        async with websockets.connect(url + "/echo", subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            extensions = ws.response.headers.get("sec-websocket-extensions", "")
            assert extensions.startswith("permessage-deflate")
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00" * 100_000)
            assert await ws.recv() == b"\x00" * 100_000
            fragments = ["frag", "men", "ted"]
            await ws.send(iter(fragments))
            assert await ws.recv() == "fragmented"
            await ws.close(4001, "client done")
        assert ws.close_code == 4001  # the server echoed our code

    asyncio.run(main())
    assert recorder.wait("echo_close") == (4001, "client done")


def test_websockets_oversized_message_gets_1009(server: tuple[str, Recorder]) -> None:
    url, _ = server

    async def main() -> None:
        async with websockets.connect(url + "/echo", max_size=None) as ws:
            await ws.send(b"x" * (2 << 20))
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    asyncio.run(main())


def test_websockets_server_close_code_and_handler_error(server: tuple[str, Recorder]) -> None:
    url, _ = server

    async def main() -> None:
        received: list[int] = []
        async with websockets.connect(url + "/numbers") as ws:
            # a close code other than 1000/1001 ends iteration with ConnectionClosedError
            with pytest.raises(websockets.ConnectionClosedError):
                async for message in ws:
                    received.append(json.loads(message)["n"])
        assert received == list(range(100))
        assert (ws.close_code, ws.close_reason) == (4000, "all sent")
        async with websockets.connect(url + "/fail") as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
        assert ws.close_code == 1011

    asyncio.run(main())


def test_websockets_chat_rooms(server: tuple[str, Recorder]) -> None:
    url, recorder = server

    async def main() -> None:
        a1 = await websockets.connect(url + "/chat/a")
        a2 = await websockets.connect(url + "/chat/a")
        a3 = await websockets.connect(url + "/chat/a")
        b1 = await websockets.connect(url + "/chat/b")
        b2 = await websockets.connect(url + "/chat/b")
        try:
            await a1.send(json.dumps({"from": "a1", "text": "hi a"}))
            await b1.send(json.dumps({"from": "b1", "text": "hi b"}))
            for client in (a1, a2, a3):
                assert json.loads(await client.recv()) == {
                    "room": "a",
                    "from": "a1",
                    "text": "hi a",
                }
            for client in (b1, b2):
                assert json.loads(await client.recv()) == {
                    "room": "b",
                    "from": "b1",
                    "text": "hi b",
                }
            # a3 leaves: the room forgets it, and the others still chat
            await a3.close()
            assert recorder.wait("members:a") == 2
            await a2.send(json.dumps({"from": "a2", "text": "still here"}))
            for client in (a1, a2):
                message = json.loads(await client.recv())
                assert message == {"room": "a", "from": "a2", "text": "still here"}
            # room b got nothing from room a: its next message is its own
            await b2.send(json.dumps({"from": "b2", "text": "only b"}))
            for client in (b1, b2):
                assert json.loads(await client.recv())["from"] == "b2"
        finally:
            for client in (a1, a2, a3, b1, b2):
                await client.close()

    asyncio.run(main())


# ----------------------------------------------------------------- aiohttp


def test_aiohttp_echo_compression_and_close(server: tuple[str, Recorder]) -> None:
    url, recorder = server

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url + "/echo", compress=15) as ws:
                assert ws.compress == 15  # permessage-deflate negotiated
                await ws.send_str("aiohttp text " * 100)
                assert await ws.receive_str() == "aiohttp text " * 100
                await ws.send_bytes(b"\x01\x02")
                assert await ws.receive_bytes() == b"\x01\x02"
                await ws.send_json({"k": [1, 2]})
                assert await ws.receive_json() == {"k": [1, 2]}
                await ws.close(code=4002, message=b"aiohttp bye")
            assert ws.close_code == 4002

    asyncio.run(main())
    assert recorder.wait("echo_close") == (4002, "aiohttp bye")


def test_aiohttp_chat_and_server_close(server: tuple[str, Recorder]) -> None:
    url, _ = server

    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            async with (
                session.ws_connect(url + "/chat/x") as x1,
                session.ws_connect(url + "/chat/x") as x2,
                session.ws_connect(url + "/chat/y") as y1,
            ):
                await x2.send_json({"from": "x2"})
                assert await x1.receive_json() == {"room": "x", "from": "x2"}
                assert await x2.receive_json() == {"room": "x", "from": "x2"}
                await y1.send_json({"from": "y1"})
                assert await y1.receive_json() == {"room": "y", "from": "y1"}
            async with session.ws_connect(url + "/numbers") as ws:
                received = [message.json()["n"] async for message in ws]
                assert received == list(range(100))
            assert ws.close_code == 4000

    asyncio.run(main())


def test_websockets_over_tls(backend: str, tmp_path: Path) -> None:
    """wss:// : TLS, ALPN settles on HTTP/1.1, then the upgrade."""
    cert, key, ca = generate_dev_certificate(tmp_path)
    recorder = Recorder()
    options = {
        "binds": (),
        "tls_binds": ("127.0.0.1:0",),
        "certfile": str(cert),
        "keyfile": str(key),
    }
    with server_thread(make_app(recorder), backend, **options) as (_host, port):
        context = ssl.create_default_context(cafile=str(ca))

        async def main() -> None:
            async with websockets.connect(
                f"wss://localhost:{port}/echo", ssl=context, subprotocols=["tls.v1"]
            ) as ws:
                await ws.send("secure hello")
                assert await ws.recv() == "secure hello"

        asyncio.run(main())
    assert recorder.wait("echo_close")[0] == 1000


# ----------------------------------------------------------------- under an ASGI server


@contextmanager
def uvicorn_thread(app: App, ws: str) -> Iterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws=ws, lifespan="off", log_level="warning",
        access_log=False, loop="asyncio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("ws_impl", ["websockets-sansio", "wsproto"])
def test_httpy_websocket_routes_under_uvicorn(ws_impl: str) -> None:
    recorder = Recorder()
    app = make_app(recorder)

    async def deny(request: Any, handler: Any) -> Any:
        if request.headers.get("x-deny"):
            from httpy import Response

            return Response.json({"error": "Unauthorized"}, status=401)
        return await handler(request)

    app.add_middleware(deny)

    async def main(url: str) -> None:
        async with websockets.connect(url + "/echo", subprotocols=["asgi.v1"]) as ws:
            assert ws.subprotocol == "asgi.v1"
            await ws.send("through uvicorn")
            assert await ws.recv() == "through uvicorn"
            await ws.send(b"\x01")
            assert await ws.recv() == b"\x01"
            await ws.close(4003, "bye")
        received: list[int] = []
        async with websockets.connect(url + "/numbers") as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                async for message in ws:
                    received.append(json.loads(message)["n"])
        assert received == list(range(100)) and ws.close_code == 4000
        async with websockets.connect(url + "/fail") as ws:
            with pytest.raises(websockets.ConnectionClosedError):
                await ws.recv()
        assert ws.close_code == 1011
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(url + "/echo", additional_headers={"x-deny": "1"}):
                pass
        assert info.value.response.status_code in (401, 403)

    with uvicorn_thread(app, ws_impl) as url:
        asyncio.run(main(url))
    assert recorder.wait("echo_close") == (4003, "bye")


# ----------------------------------------------------------------- ASGI apps on HTTPy


def starlette_ws_app(recorder: Recorder) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def echo(websocket: WebSocket) -> None:
        if websocket.headers.get("x-deny"):
            await websocket.send_denial_response(PlainTextResponse("denied", status_code=401))
            return
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="star.v1" if "star.v1" in offered else None)
        try:
            while True:
                text = await websocket.receive_text()
                if text == "close":
                    await websocket.close(4010, "asked to")
                    return
                await websocket.send_text(f"starlette: {text}")
        except WebSocketDisconnect as exc:
            recorder.put("starlette_close", exc.code)

    return Starlette(routes=[WebSocketRoute("/ws", echo)])


def test_starlette_websockets_on_httpy(backend: str) -> None:
    recorder = Recorder()
    with server_thread(starlette_ws_app(recorder), backend) as (host, port):
        url = f"ws://{host}:{port}/ws"

        async def main() -> None:
            async with websockets.connect(url, subprotocols=["star.v1"]) as ws:
                assert ws.subprotocol == "star.v1"
                await ws.send("hi")
                assert await ws.recv() == "starlette: hi"
                await ws.close(4020, "client leaves")
            async with websockets.connect(url) as ws:
                await ws.send("close")
                with pytest.raises(websockets.ConnectionClosedError):
                    await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4010, "asked to")
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(url, additional_headers={"x-deny": "1"}):
                    pass
            assert info.value.response.status_code == 401
            assert info.value.response.body == b"denied"

        asyncio.run(main())
    assert recorder.wait("starlette_close") == 4020
