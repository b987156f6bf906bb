"""Uploads (multipart, streamed to disk) and downloads, as in the seed's scenario."""

import os
from pathlib import Path

from httpy import HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND, Request, Response, get, post

UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", Path(__file__).resolve().parent.parent / "uploads"))
UPLOAD_DIR.mkdir(parents=True, exist_ok=True)


@post("/upload")
async def upload_file(request: Request) -> Response:
    if not request.is_multipart():
        return Response.json({"error": "Multipart form data required"}, status=HTTP_400_BAD_REQUEST)
    form = await request.form()
    if "file" not in form:
        return Response.json({"error": "No file uploaded"}, status=HTTP_400_BAD_REQUEST)
    upload = form["file"]
    name = os.path.basename(upload.filename or "upload.bin")
    target = UPLOAD_DIR / name
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 16):
            out.write(chunk)
    return Response.json(
        {
            "success": True,
            "filename": name,
            "size": target.stat().st_size,
            "download_url": f"/download/{name}",
        }
    )


@get("/download/{filename}")
async def download_file(request: Request) -> Response:
    name = os.path.basename(request.path_params["filename"])
    target = UPLOAD_DIR / name
    if not target.is_file():
        return Response.json({"error": "File not found"}, status=HTTP_404_NOT_FOUND)
    # Streams from disk with ETag/Range support; never reads the whole file into memory.
    return Response.file(target, filename=name)
