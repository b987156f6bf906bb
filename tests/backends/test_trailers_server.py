"""Trailers over real sockets, on asyncio and trio: HTTP/2 (an h2 client) and HTTP/1.1
chunked (raw bytes, parsed back with h11)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import h2.events
import h11
import pytest

from httpy import App, Request, Response
from httpy.framework.response import StreamingResponse
from tests.support.h2peer import SocketPeer, request_headers

pytestmark = pytest.mark.anyio


def make_app() -> App:
    app = App()

    @app.post("/sum", stream=True)
    async def total(request: Request) -> Response:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)

        async def body() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"x" * 50_000  # more than the default 64 KiB window in all
            response.trailers["x-request-size"] = str(size)
            response.trailers["x-client-sig"] = (await request.trailers()).get("x-sig", "-")

        response = StreamingResponse(body(), headers={"trailer": "x-request-size, x-client-sig"})
        return response

    return app


async def test_http2_trailers_both_ways() -> None:
    from tests.support.servers import running_server

    async with running_server(make_app()) as address, SocketPeer.connect(address) as peer:
        sid = peer.conn.get_next_available_stream_id()
        peer.conn.send_headers(sid, request_headers("POST", "/sum", scheme="http"))
        peer.conn.send_data(sid, b"a" * 1000)
        peer.conn.send_headers(sid, [(b"x-sig", b"abc")], end_stream=True)
        await peer.flush()
        await peer.until(lambda _: peer.stream_ended(sid))
        response = peer.response(sid)
        assert response.status == 200 and len(response.body) == 200_000
        trailers = [e for e in peer.events if isinstance(e, h2.events.TrailersReceived)]
        assert [dict(t.headers) for t in trailers] == [
            {b"x-request-size": b"1000", b"x-client-sig": b"abc"}
        ]


async def test_http1_chunked_trailers_both_ways() -> None:
    from tests.support.servers import running_server

    request = (
        b"POST /sum HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 1000 + b"\r\n0\r\nX-Sig: abc\r\n\r\n"
    )
    async with running_server(make_app()) as address:
        async with await anyio.connect_tcp(*address) as stream:
            await stream.send(request)
            client = h11.Connection(h11.CLIENT)
            client.send(h11.Request(method="POST", target="/sum", headers=[("host", "a")]))
            body, trailers = b"", None
            with anyio.fail_after(10):
                while trailers is None:
                    event = client.next_event()
                    if event is h11.NEED_DATA:
                        try:
                            client.receive_data(await stream.receive())
                        except anyio.EndOfStream:
                            client.receive_data(b"")
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        trailers = dict(event.headers)
    assert len(body) == 200_000
    assert trailers == {b"x-request-size": b"1000", b"x-client-sig": b"abc"}
