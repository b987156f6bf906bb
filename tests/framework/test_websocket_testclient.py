"""WebSockets through the test clients (in memory, the real drivers)."""

from __future__ import annotations

import pytest

from httpy import App, Request, Response, WebSocketConnection
from httpy.framework.testing_ws import WebSocketRejected
from httpy.framework.websocket import WebSocketDisconnect
from httpy.testing import AsyncTestClient, TestClient


def make_app() -> App:
    app = App()

    @app.websocket("/ws/{name}")
    async def hello(ws: WebSocketConnection) -> None:
        await ws.accept(subprotocol="v1" if "v1" in ws.subprotocols else None)
        await ws.send_text(f"hello {ws.path_params['name']}")
        data = await ws.receive_json()
        await ws.send_json({"got": data, "q": ws.query.get("q")})
        await ws.send_bytes(await ws.receive_bytes())
        await ws.close(4001, "done")

    @app.websocket("/strict")
    async def strict(ws: WebSocketConnection) -> None:
        # The handler's receive_text / receive_bytes refuse the other type.
        for receive in (ws.receive_text, ws.receive_bytes):
            try:
                await receive()
            except TypeError as exc:
                await ws.send_text(str(exc))

    async def guard(request: Request, handler: object) -> Response:
        if request.headers.get("x-deny"):
            return Response.text("no", status=403)
        return await handler(request)  # type: ignore[operator]

    app.add_middleware(guard)
    return app


@pytest.mark.anyio
async def test_async_test_client_websocket() -> None:
    async with AsyncTestClient(make_app()) as client:
        async with client.websocket_connect("/ws/amy?q=1", subprotocols=["v1"]) as ws:
            assert ws.subprotocol == "v1"
            assert await ws.receive_text() == "hello amy"
            await ws.send_json([1, 2])
            assert await ws.receive_json() == {"got": [1, 2], "q": "1"}
            await ws.send_bytes(b"\x00\x01")
            assert await ws.receive_bytes() == b"\x00\x01"
            message = await ws.receive()
            assert message.is_close and message.code == 4001 and message.reason == "done"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_test_client_websocket_and_refusal(backend: str) -> None:
    with TestClient(make_app(), backend=backend) as client:
        with client.websocket_connect("/ws/bob", compression=True) as ws:
            assert ws.receive_text() == "hello bob"
            ws.send_json({"k": "v"})
            assert ws.receive_json() == {"got": {"k": "v"}, "q": None}
            ws.send_bytes(b"x" * 10_000)
            assert ws.receive_bytes() == b"x" * 10_000
            assert ws.receive().code == 4001
        with pytest.raises(WebSocketRejected) as info:
            with client.websocket_connect("/ws/eve", headers={"x-deny": "1"}):
                pass
        assert info.value.status == 403 and info.value.body == b"no"
        assert client.get("/ws/bob").status_code == 426


@pytest.mark.anyio
async def test_handler_receive_of_the_wrong_type_raises_type_error() -> None:
    async with AsyncTestClient(make_app()) as client:
        async with client.websocket_connect("/strict") as ws:
            await ws.send_bytes(b"\x00")
            assert await ws.receive_text() == "expected a text message, got a binary one"
            await ws.send_text("t")
            # The test client's session converts a message of the other type instead.
            assert await ws.receive_bytes() == b"expected a binary message, got a text one"
            with pytest.raises(WebSocketDisconnect) as info:
                await ws.receive_json()
            assert info.value.code == 1000
