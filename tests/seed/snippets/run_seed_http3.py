"""Run the seed's HTTP/3 snippet (seed_http3.py) unchanged, with its ports moved.

Usage: ``python run_seed_http3.py TCP_PORT UDP_PORT [--without-aioquic]`` from a directory
holding cert.pem and key.pem.  The snippet calls ``run(host="0.0.0.0", port=443, ...,
http3_port=443)``; binding 443 needs privileges and would collide between tests, so
``httpy.run`` is wrapped before the snippet imports it: the wrapper serves on 127.0.0.1
and the given ports and passes every other argument through untouched.
``--without-aioquic`` makes the snippet see ``AIOQUIC_AVAILABLE = False`` (its fallback).
A ``/`` route is added to the default app so there is something to fetch.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import httpy
from httpy import Request, Response, get

tcp_port, udp_port = int(sys.argv[1]), int(sys.argv[2])
_run = httpy.run


async def run_on_test_ports(*args: Any, **kwargs: Any) -> None:
    kwargs.update(host="127.0.0.1", port=tcp_port)
    if kwargs.get("http3_port") is not None:
        kwargs["http3_port"] = udp_port
    print(f"run(http3_config={kwargs.get('http3_config')!r})", flush=True)
    await _run(*args, **kwargs)


httpy.run = run_on_test_ports  # type: ignore[assignment]
if "--without-aioquic" in sys.argv:
    httpy.AIOQUIC_AVAILABLE = False  # type: ignore[misc]


@get("/")
async def index(request: Request) -> Response:
    return Response.text(f"hello over HTTP/{request.http_version}")


runpy.run_path(str(Path(__file__).with_name("seed_http3.py")), run_name="__main__")
