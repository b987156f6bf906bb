"""The same driver on asyncio's own loop and on uvloop, whose callback order differs:
keep-alive back to back, and the switches to HTTP/2 (prior knowledge after a preface
split across reads, ``Upgrade: h2c`` after keep-alive requests) on one connection.
(The rest of the suite runs on asyncio and trio.)
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import anyio
import h2.config
import h2.connection
import h2.events
import pytest
from anyio.from_thread import start_blocking_portal

from httpy import App, Request, Response, serve
from tests.support.servers import make_config

uvloop = pytest.importorskip("uvloop")


def make_app() -> App:
    app = App()

    @app.get("/")
    async def hello(request: Request) -> Response:
        return Response.text(f"hello over HTTP/{request.http_version}")

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body())

    return app


@contextmanager
def server_on(loop_factory: object, **options: object) -> Iterator[tuple[str, int]]:
    """Serve the app from a thread running an asyncio loop made by ``loop_factory``."""
    config = make_config(**options)
    with start_blocking_portal(
        backend="asyncio", backend_options={"loop_factory": loop_factory}
    ) as portal:
        stop = portal.call(anyio.Event)
        future, addresses = portal.start_task(
            partial(serve, make_app(), config, shutdown_trigger=stop.wait)
        )
        try:
            yield addresses[0]
        finally:
            portal.call(stop.set)
            future.result(timeout=60)


def keep_alive_round_trips(address: tuple[str, int], count: int) -> list[bytes]:
    with socket.create_connection(address, timeout=5) as sock:
        answers = []
        for _ in range(count):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not data.endswith(b"HTTP/1.1"):
                data += sock.recv(4096)
            answers.append(data)
        return answers


@pytest.mark.parametrize(
    "loop_factory",
    [asyncio.new_event_loop, uvloop.new_event_loop],
    ids=["asyncio", "uvloop"],
)
def test_keep_alive_requests_back_to_back(loop_factory: object) -> None:
    """Regression: on uvloop the next request could arrive before the previous task's
    done-callback ran, and was left waiting until the keep-alive timeout."""
    with server_on(loop_factory) as address:
        answers = keep_alive_round_trips(address, 50)
    assert len(answers) == 50
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)


def h2_get(sock: socket.socket, conn: h2.connection.H2Connection, stream_id: int) -> bytes:
    conn.send_headers(
        stream_id,
        [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")],
        end_stream=True,
    )
    sock.sendall(conn.data_to_send())
    body = b""
    while True:
        data = sock.recv(65536)
        assert data, "connection closed"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            if isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                return body
        sock.sendall(conn.data_to_send())


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_prior_knowledge_after_a_split_preface_is_handed_to_http2(loop_factory: object) -> None:
    with server_on(loop_factory) as address, socket.create_connection(address, timeout=5) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        preface = conn.data_to_send()
        sock.sendall(preface[:10])  # the driver must wait for the rest before deciding
        sock.sendall(preface[10:])
        assert h2_get(sock, conn, 1) == b"hello over HTTP/2"
        assert h2_get(sock, conn, 3) == b"hello over HTTP/2"


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_h2c_upgrade_after_keep_alive_requests(loop_factory: object) -> None:
    """Two plain requests, then an Upgrade: h2c request on the same connection: the
    HTTP/1.1 driver answers 101 and the HTTP/2 driver carries on."""
    with server_on(loop_factory) as address, socket.create_connection(address, timeout=5) as sock:
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not data.endswith(b"HTTP/1.1"):
                data += sock.recv(4096)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        settings = conn.initiate_upgrade_connection()
        sock.sendall(
            b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        sock.sendall(conn.data_to_send())
        body = b""
        events = conn.receive_data(rest) if rest else []
        while not any(isinstance(e, h2.events.StreamEnded) for e in events):
            for event in events:
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
            sock.sendall(conn.data_to_send())
            events = conn.receive_data(sock.recv(65536))
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                body += event.data
        assert body == b"hello over HTTP/2"
