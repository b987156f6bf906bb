"""One app, three HTTP versions: ``python examples/http3_app.py``.

Serves HTTPS on TCP (HTTP/2 and HTTP/1.1 by ALPN) and HTTP/3 on the same port number
over UDP, with a development certificate made in ``certs/`` (clients trust
``certs/ca.pem``).  Responses on TCP carry ``Alt-Svc: h3=":8443"``, so a browser that
trusts the certificate switches to HTTP/3.  The page shows which protocol carried it.

Environment: ``HOST`` (default 127.0.0.1), ``PORT`` (default 8443), ``CERT_DIR``
(default ``certs``).  Try it with curl (``curl --http3 -k https://127.0.0.1:8443/``, if
your curl has HTTP/3) or with the aioquic example client.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import AsyncIterator

import anyio

from httpy import AIOQUIC_AVAILABLE, App, Request, Response, run
from httpy.backends.tls import generate_dev_certificate
from httpy.framework.response import StreamingResponse

app = App()

PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>HTTPy over HTTP/3</title></head>
<body>
  <h1>Hello from HTTPy</h1>
  <p>This page came over <strong id="protocol">?</strong>.</p>
  <script>
    const protocol = performance.getEntries()[0].nextHopProtocol;
    document.getElementById("protocol").textContent = protocol;
    document.title = "protocol: " + protocol;
  </script>
</body>
</html>
"""


@app.get("/")
async def page(request: Request) -> Response:
    return Response.html(PAGE)


@app.get("/hello")
async def hello(request: Request) -> Response:
    return Response.text(f"Hello over HTTP/{request.http_version}!\n")


@app.post("/sha256", stream=True)
async def sha256(request: Request) -> Response:
    """Hash an upload of any size as it streams in (flow control keeps memory flat)."""
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return Response.json({"sha256": digest.hexdigest(), "size": size})


@app.get("/countdown")
async def countdown(request: Request) -> Response:
    """A streamed response, one line every 100 ms."""

    async def lines() -> AsyncIterator[bytes]:
        for n in range(5, 0, -1):
            yield b"%d\n" % n
            await anyio.sleep(0.1)
        yield b"liftoff\n"

    return StreamingResponse(lines(), media_type="text/plain")


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8443"))
    cert, key, ca = generate_dev_certificate(os.environ.get("CERT_DIR", "certs"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    print(f"https://{host}:{port}/ on TCP and UDP (HTTP/3); clients trust {ca}", flush=True)
    if AIOQUIC_AVAILABLE:
        asyncio.run(run(host=host, port=port, ssl_context=context, http3_port=port, app=app))
    else:
        print("aioquic is missing (pip install httpy[http3]): serving TCP only", flush=True)
        asyncio.run(run(host=host, port=port, ssl_context=context, app=app))


if __name__ == "__main__":
    main()
