"""HTML pages and the static assets they use."""

from pathlib import Path

from httpy import Request, Response, get

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@get("/")
async def homepage(request: Request) -> Response:
    response = Response.html((TEMPLATES / "index.html").read_text(encoding="utf-8"))
    # Announced with Link: rel=preload today; pushed over HTTP/2 once it lands.
    response.push_resources = [("/static/css/style.css", "style"), ("/static/js/app.js", "script")]
    return response


@get("/static/{name:path}")
async def static_file(request: Request) -> Response:
    # Resolve inside STATIC only: "..", absolute paths and symlinks out of it are refused.
    target = (STATIC / request.path_params["name"]).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        return Response.text("Not Found\n", status=404)
    content_type = _TYPES.get(target.suffix, "application/octet-stream")
    return Response(target.read_bytes(), headers={"content-type": content_type})
