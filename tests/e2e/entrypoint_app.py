"""The app tests/e2e/test_entrypoints.py serves through every entry point: a GET, a POST
echo and a WebSocket echo written the seed's way.  The WebSocket handler prints the close
code the client sent (``ws-closed <code>``), so the test sees the server's side of the
closing handshake in the process output."""

from httpy import App, Request, Response, WebSocketConnection

app = App()


@app.get("/")
async def hello(request: Request) -> Response:
    return Response.text("Hello, world!\n")


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), headers={"content-type": "application/octet-stream"})


@app.websocket("/ws")
async def ws_echo(ws: WebSocketConnection) -> None:
    while True:
        msg = await ws.receive()
        if msg.is_close:
            print(f"ws-closed {msg.code}", flush=True)
            break
        if msg.is_text:
            await ws.send_text(msg.text())
        else:
            await ws.send_bytes(msg.bytes())
