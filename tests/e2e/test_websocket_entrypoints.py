"""WebSocket control frames and protocol errors against a server started the way users
start it: ``asyncio.run(run(...))`` and ``trio.run(partial(run, ...))`` in a subprocess.

Regression: on asyncio a client ping, a client close, a bad close code, an unmasked frame
or an oversized message used to drop the TCP connection without a close frame
(``NoEventLoopError``: the transport callback started a task).  anyio's pytest plugin
hid it, because it runs the server inside ``anyio.run``; a subprocess does not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from wsproto.events import CloseConnection, Ping

from tests.support.servers import free_port
from tests.support.wsclient import masked_frame, ws_connect

ROOT = Path(__file__).resolve().parents[2]

APP = """
from httpy import App, WebSocketConnection

app = App()

@app.websocket("/echo")
async def echo(ws: WebSocketConnection) -> None:
    while True:
        msg = await ws.receive()
        if msg.is_close:
            break
        if msg.is_text:
            await ws.send_text(msg.text())
        else:
            await ws.send_bytes(msg.bytes())
"""

MAINS = {
    "asyncio.run": "import asyncio\nasyncio.run(run(app=app, port={port}, {options}))\n",
    "trio.run": (
        "import trio\nfrom functools import partial\n"
        "trio.run(partial(run, app=app, port={port}, {options}))\n"
    ),
}


@pytest.fixture(scope="module", params=sorted(MAINS))
def ws_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int, list[str]]]:
    """The echo app under one entry point; yields (host, port, log lines so far)."""
    port = free_port()
    source = (
        APP
        + "from httpy import run\n"
        + MAINS[request.param].format(port=port, options="ws_max_message_bytes=4096")
    )
    process = subprocess.Popen(
        [sys.executable, "-c", source],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 20
    import socket

    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                out = process.communicate()[0].decode(errors="replace")
                pytest.fail(f"server did not start:\n{out}")
            time.sleep(0.05)
    try:
        yield "127.0.0.1", port, []
    finally:
        process.terminate()
        out = process.communicate(timeout=20)[0].decode(errors="replace")
        assert process.returncode == 0, out
        # The symptom of the old bug: a failure inside a loop callback.
        assert "Fatal error" not in out, out
        assert "Traceback" not in out, out


pytestmark = pytest.mark.anyio


async def test_ping_is_answered_and_connection_stays(
    ws_server: tuple[str, int, list[str]], anyio_backend: str
) -> None:
    host, port, _ = ws_server
    async with ws_connect(host, port, "/echo") as client:
        for n in range(3):
            await client.sock.send(client.ws.send(Ping(f"p{n}".encode())))
            await client.send(f"m{n}")
            with anyio.fail_after(5):
                assert await client.recv() == f"m{n}"
        assert client.pongs == [b"p0", b"p1", b"p2"]


async def test_client_close_is_answered(
    ws_server: tuple[str, int, list[str]], anyio_backend: str
) -> None:
    host, port, _ = ws_server
    async with ws_connect(host, port, "/echo") as client:
        await client.send("hello")
        with anyio.fail_after(5):
            assert await client.recv() == "hello"
            await client.close(1000, "bye")
            answer = await client.recv()
        assert isinstance(answer, CloseConnection)
        assert answer.code == 1000


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        # close code 999 is not allowed on the wire (RFC 6455 7.4.1)
        (masked_frame(0x8, (999).to_bytes(2, "big")), 1002),
        # an unmasked client frame
        (bytes([0x81, 0x02]) + b"hi", 1002),
        # a message over ws_max_message_bytes (4096 here)
        (masked_frame(0x2, b"x" * 5000), 1009),
    ],
    ids=["bad-close-code", "unmasked", "oversized"],
)
async def test_bad_input_gets_a_close_frame(
    ws_server: tuple[str, int, list[str]], anyio_backend: str, frame: bytes, code: int
) -> None:
    host, port, _ = ws_server
    async with ws_connect(host, port, "/echo") as client:
        await client.send_raw(frame)
        with anyio.fail_after(5):
            answer = await client.recv()
        assert isinstance(answer, CloseConnection), answer
        assert answer.code == code
