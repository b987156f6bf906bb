# ruff: noqa
# fmt: off
"""Seed: HTTP/2 Server Push.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""

# --- BEGIN SEED SNIPPET 7 ---
from httpy import get, Request, Response

@get("/")
async def homepage(req: Request) -> Response:
    # Create the main response
    response = Response.html("""
    <!DOCTYPE html>
    <html>
    <head>
        <title>HTTP/2 Server Push Example</title>
        <link rel="stylesheet" href="/static/style.css">
        <script src="/static/app.js" defer></script>
    </head>
    <body>
        <h1>HTTP/2 Server Push Example</h1>
        <div id="content">Loading...</div>
    </body>
    </html>
    """)
    
    # Add server push headers for CSS and JS
    response.push_resources = [
        ("/static/style.css", "style"),
        ("/static/app.js", "script")
    ]
    
    return response
# --- END SEED SNIPPET 7 ---


# glue: the two resources the page announces, so pushed (and preloaded) requests find them
@get("/static/style.css")
async def style(req: Request) -> Response:
    return Response("h1 { color: green; }\n", headers={"content-type": "text/css"})


@get("/static/app.js")
async def script(req: Request) -> Response:
    return Response(
        "document.getElementById('content').textContent = 'Loaded';\n",
        headers={"content-type": "text/javascript"},
    )
