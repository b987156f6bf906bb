# ruff: noqa
# fmt: off
"""Seed: File Uploads and Downloads (uploads go to ./uploads next to this file's copy).

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  Outside them: glue.
"""
# --- BEGIN SEED SNIPPET 4 ---
import os
from httpy import post, get, Request, Response, HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND

# Create upload directory
UPLOAD_DIR = os.path.join(os.path.dirname(__file__), 'uploads')
os.makedirs(UPLOAD_DIR, exist_ok=True)

@post("/upload")
async def upload_file(req: Request) -> Response:
    # Check if the request has multipart form data
    if not req.is_multipart():
        return Response.json({"error": "Multipart form data required"}, status=HTTP_400_BAD_REQUEST)
    
    # Get the uploaded file
    form_data = await req.form()
    if "file" not in form_data:
        return Response.json({"error": "No file uploaded"}, status=HTTP_400_BAD_REQUEST)
    
    file = form_data["file"]
    
    # Save the file
    filename = os.path.basename(file.filename)
    file_path = os.path.join(UPLOAD_DIR, filename)
    
    with open(file_path, "wb") as f:
        f.write(file.file.read())
    
    return Response.json({
        "success": True,
        "filename": filename,
        "size": os.path.getsize(file_path),
        "download_url": f"/download/{filename}"
    })

@get("/download/{filename}")
async def download_file(req: Request) -> Response:
    filename = req.path_params.get('filename', '')
    file_path = os.path.join(UPLOAD_DIR, filename)
    
    if not os.path.exists(file_path):
        return Response.json({"error": "File not found"}, status=HTTP_404_NOT_FOUND)
    
    # Read the file
    with open(file_path, "rb") as f:
        content = f.read()
    
    # Determine content type
    content_type = "application/octet-stream"
    if filename.endswith(".txt"):
        content_type = "text/plain"
    elif filename.endswith(".html") or filename.endswith(".htm"):
        content_type = "text/html"
    elif filename.endswith(".pdf"):
        content_type = "application/pdf"
    # Add more content types as needed
    
    # Create response with appropriate headers
    headers = {
        "Content-Disposition": f"attachment; filename=\"{filename}\"",
        "Content-Type": content_type,
        "Content-Length": str(len(content))
    }
    
    return Response(content, headers=headers)
# --- END SEED SNIPPET 4 ---
