"""The app behind the 1 GiB download test: ``GET /big`` serves ``$HTTPY_BIGFILE``.

Run in a subprocess (``python -m httpy tests.framework.bigfile_app:app``) so that the
test can watch the server's resident memory apart from the client's.
"""

from __future__ import annotations

import os

from httpy import App, FileResponse, Request, Response

app = App()


@app.get("/big")
async def big(request: Request) -> Response:
    return FileResponse(os.environ["HTTPY_BIGFILE"])
