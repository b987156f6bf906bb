"""The smallest HTTPy app: ``python examples/hello/app.py`` (or ``make run``)."""

import asyncio

from httpy import App, Request, Response, run

app = App()


@app.get("/")
async def hello(request: Request) -> Response:
    return Response.text("Hello, world!\n")


@app.get("/json")
async def hello_json(request: Request) -> Response:
    return Response.json({"message": "Hello, world!"})


@app.get("/users/{user_id:int}")
async def user(request: Request) -> Response:
    return Response.json({"id": request.path_params["user_id"]})


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), headers={"content-type": "application/octet-stream"})


if __name__ == "__main__":
    asyncio.run(run(host="127.0.0.1", port=8000, app=app))
