"""Side-by-side benchmark harness: HTTPy against other Python ASGI servers (``make bench``)."""
