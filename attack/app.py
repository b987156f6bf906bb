"""The application ``make attack`` serves: what a typical app exposes to attackers.

Handlers are written the seed's way; nothing here defends itself: what holds is the
server's defaults.
"""

from __future__ import annotations

from httpy import App, Request, Response, WebSocketConnection

app = App()


@app.get("/")
async def index(request: Request) -> Response:
    return Response.text("ok")


@app.post("/echo")
async def echo(request: Request) -> Response:
    """Reads the whole body, sends it back: the handler holds what it read."""
    return Response(await request.body())


@app.post("/upload")
async def upload(request: Request) -> Response:
    form = await request.form()
    return Response.json({"fields": len(form)})


@app.websocket("/ws")
async def ws_echo(ws: WebSocketConnection) -> None:
    while True:
        message = await ws.receive()
        if message.is_close:
            break
        if message.is_text:
            await ws.send_text(message.text())
        else:
            await ws.send_bytes(message.bytes())
