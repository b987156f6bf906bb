"""The application h2spec is run against (tests/e2e/test_h2spec.py), written the seed's
way.  h2spec sends GET and POST requests to ``/``."""

from httpy import App, Request, Response

app = App()


@app.get("/")
async def index(request: Request) -> Response:
    return Response.text("Hello from HTTPy")


@app.post("/")
async def submit(request: Request) -> Response:
    return Response.text("Received")
