"""The soak test's traffic: HTTP/1.1, HTTP/2 (h2c) and WebSocket clients, concurrently.

Each client is an asyncio task that loops until the deadline, one checked exchange at a
time, against :mod:`bench.apps.soak_app`:

- ``h1`` keep-alive: httpx (HTTP/1.1 only), a mix of ``GET /``, ``GET /json``, ``POST
  /echo`` (0-64 KiB), a chunked ``POST /upload``, a streamed ``GET /stream`` and a 404,
  on one connection that is replaced every few hundred requests;
- ``h1`` new connection per request: raw sockets, ``Connection: close``;
- ``h1`` disconnects on purpose: mid-response (a 64 MiB stream, read 64 KiB then RST),
  mid-request-body, mid-head, and without reading the response at all;
- ``h2``: httpx with ``http2=True, http1=False`` (h2c with prior knowledge), the same mix
  as h1 in batches of concurrent streams on one connection;
- ``h2`` cancels on purpose: the ``h2`` library directly: a long stream reset with
  RST_STREAM(CANCEL) mid-response, then a normal request on the same connection, then
  GOAWAY; or the socket dropped mid-response;
- ``ws``: the websockets library, with and without permessage-deflate: open, echo 1-20
  text/binary messages (up to 32 KiB), close; some sessions drop the TCP connection
  without a close handshake instead, right after sending a message.

A disconnect the client makes on purpose counts as ``aborted``; anything unexpected (an
exception, a wrong status or body, a timeout) counts as an error of its protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
from websockets.asyncio.client import connect as ws_connect

#: Seconds one exchange (request, or WebSocket session) may take before it is an error.
OP_TIMEOUT = 30.0
#: What ``GET /json`` answers (same object as :data:`bench.apps.soak_app.JSON_BODY`).
JSON_BODY = {"message": "Hello, world!", "id": 1, "ok": True}
#: The response the mid-response disconnects leave: 4096 chunks of 16 KiB (64 MiB).
LONG_STREAM = "/stream?chunks=4096&size=16384"
#: Bytes of the long stream a client reads before it leaves.
READ_BEFORE_LEAVING = 65536
#: Distinct error messages kept per protocol (the error count is always complete).
KEPT_ERRORS = 10


class Mismatch(Exception):
    """The server answered, but not what the request should have produced."""


@dataclass
class ProtocolStats:
    """Counters of one protocol (``h1``, ``h2`` or ``ws``)."""

    #: Connections opened (WebSocket: sessions).
    connections: int = 0
    #: Exchanges checked correct: HTTP requests, or WebSocket messages echoed.
    requests: int = 0
    #: Disconnects (or stream resets) the client made on purpose.
    aborted: int = 0
    #: Unexpected failures: exceptions, wrong answers, timeouts.
    errors: int = 0
    #: Message -> how many times, for the first :data:`KEPT_ERRORS` distinct messages.
    error_messages: dict[str, int] = field(default_factory=dict)

    def error(self, what: str, exc: BaseException) -> None:
        """Count one unexpected failure and its message."""
        self.errors += 1
        message = f"{what}: {type(exc).__name__}: {exc}"[:300]
        if message in self.error_messages or len(self.error_messages) < KEPT_ERRORS:
            self.error_messages[message] = self.error_messages.get(message, 0) + 1


@dataclass(frozen=True)
class Mix:
    """How many concurrent clients of each kind run (a few dozen in all by default)."""

    h1_keepalive: int = 8
    h1_new_connection: int = 4
    h1_abort: int = 2
    h2: int = 4
    h2_streams: int = 8
    h2_cancel: int = 2
    ws: int = 8

    @property
    def clients(self) -> int:
        """Concurrent client connections in all (HTTP/2: connections, not streams)."""
        return (
            self.h1_keepalive
            + self.h1_new_connection
            + self.h1_abort
            + self.h2
            + self.h2_cancel
            + self.ws
        )


class Traffic:
    """Runs the mix against ``127.0.0.1:port`` until ``deadline`` (``time.monotonic``)."""

    def __init__(self, port: int, mix: Mix, seed: int = 1) -> None:
        self.port = port
        self.mix = mix
        self.seed = seed
        self.base_url = f"http://127.0.0.1:{port}"
        self.stats = {name: ProtocolStats() for name in ("h1", "h2", "ws")}
        self.deadline = 0.0

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def run(self, deadline: float) -> None:
        """All clients, concurrently, until the deadline; each finishes its exchange."""
        self.deadline = deadline
        kinds: list[tuple[int, Callable[[random.Random], Awaitable[None]]]] = [
            (self.mix.h1_keepalive, self._h1_keepalive),
            (self.mix.h1_new_connection, self._h1_new_connections),
            (self.mix.h1_abort, self._h1_aborts),
            (self.mix.h2, self._h2_client),
            (self.mix.h2_cancel, self._h2_cancels),
            (self.mix.ws, self._ws_sessions),
        ]
        tasks = []
        for kind, (count, worker) in enumerate(kinds):
            for i in range(count):
                rng = random.Random(self.seed * 1000 + kind * 100 + i)
                tasks.append(asyncio.ensure_future(worker(rng)))
        await asyncio.gather(*tasks)

    async def _checked(self, proto: str, what: str, exchange: Awaitable[None]) -> bool:
        """Await one exchange under :data:`OP_TIMEOUT`; count it as done or as an error."""
        try:
            await asyncio.wait_for(exchange, OP_TIMEOUT)
        except Exception as exc:  # every failure is counted and reported, none is fatal
            self.stats[proto].error(what, exc)
            return False
        return True

    # -- HTTP/1.1 and HTTP/2 through httpx ------------------------------------------------

    async def _h1_keepalive(self, rng: random.Random) -> None:
        while self.running():
            async with _httpx_client(self.base_url, http2=False) as client:
                self.stats["h1"].connections += 1
                for _ in range(rng.randint(100, 400)):
                    if not self.running():
                        break
                    if await self._checked("h1", "keep-alive", _mixed_request(client, rng)):
                        self.stats["h1"].requests += 1

    async def _h2_client(self, rng: random.Random) -> None:
        while self.running():
            async with _httpx_client(self.base_url, http2=True) as client:
                self.stats["h2"].connections += 1
                for _ in range(rng.randint(20, 60)):
                    if not self.running():
                        break
                    batch = [
                        self._checked("h2", "stream", _mixed_request(client, rng))
                        for _ in range(self.mix.h2_streams)
                    ]
                    self.stats["h2"].requests += sum(await asyncio.gather(*batch))

    # -- HTTP/1.1 over raw sockets ----------------------------------------------------------

    async def _h1_new_connections(self, rng: random.Random) -> None:
        while self.running():
            if await self._checked("h1", "new connection", self._h1_one_shot(rng)):
                self.stats["h1"].requests += 1

    async def _h1_one_shot(self, rng: random.Random) -> None:
        body = rng.randbytes(rng.randint(1, 16384)) if rng.random() < 0.5 else b""
        if body:
            head = b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n" % len(body)
        else:
            head = b"GET /json HTTP/1.1\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.stats["h1"].connections += 1
        try:
            writer.write(head + b"Host: soak\r\nConnection: close\r\n\r\n" + body)
            response = await reader.read()  # the server closes after the response
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        status_line, _, rest = response.partition(b"\r\n")
        if not status_line.startswith(b"HTTP/1.1 200 "):
            raise Mismatch(f"status line {status_line[:60]!r}")
        received = rest.partition(b"\r\n\r\n")[2]
        if (received != body) if body else (json.loads(received) != JSON_BODY):
            raise Mismatch(f"a body of {len(received)} bytes that is not the expected one")

    async def _h1_aborts(self, rng: random.Random) -> None:
        variants = (self._h1_leave_mid_response, self._h1_leave_mid_body, self._h1_leave_mid_head)
        while self.running():
            variant = rng.choice(variants)
            if await self._checked("h1", variant.__name__, variant(rng)):
                self.stats["h1"].aborted += 1

    async def _h1_open(self, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.stats["h1"].connections += 1
        writer.write(request)
        await writer.drain()
        return reader, writer

    async def _h1_leave_mid_response(self, rng: random.Random) -> None:
        """Request 64 MiB, read the first 64 KiB (or, sometimes, nothing), reset."""
        reader, writer = await self._h1_open(
            b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % LONG_STREAM.encode()
        )
        try:
            if rng.random() < 0.25:
                await asyncio.sleep(0.05)  # leave without reading a byte
                return
            received = b""
            while len(received) < READ_BEFORE_LEAVING:
                chunk = await reader.read(65536)
                if not chunk:
                    raise Mismatch(f"closed after {len(received)} bytes of a 64 MiB stream")
                received += chunk
            if not received.startswith(b"HTTP/1.1 200 "):
                raise Mismatch(f"status line {received[:40]!r}")
        finally:
            writer.transport.abort()  # RST: the server is still sending

    async def _h1_leave_mid_body(self, rng: random.Random) -> None:
        """Announce a 1 MB body, send part of it, reset."""
        head = b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000000\r\n\r\n"
        _, writer = await self._h1_open(head + rng.randbytes(rng.randint(0, 65536)))
        await asyncio.sleep(0.01)
        writer.transport.abort()

    async def _h1_leave_mid_head(self, rng: random.Random) -> None:
        """Send part of a request head, reset."""
        _, writer = await self._h1_open(
            b"GET /json HTTP/1.1\r\nHost: soak\r\nX-Padding: " + b"p" * rng.randint(0, 2000)
        )
        await asyncio.sleep(0.01)
        writer.transport.abort()

    # -- HTTP/2 over raw sockets with the h2 library ----------------------------------------

    async def _h2_cancels(self, rng: random.Random) -> None:
        while self.running():
            reset = rng.random() < 0.7
            if await self._checked("h2", "cancel", self._h2_cancel(reset)):
                self.stats["h2"].aborted += 1
                self.stats["h2"].requests += 1 if reset else 0

    async def _h2_cancel(self, reset: bool) -> None:
        """A long stream left mid-response: RST_STREAM then ``GET /`` and GOAWAY, or RST."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.stats["h2"].connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        # A large connection window: DATA still in flight on the reset stream must not
        # leave the later request without room.
        conn.increment_flow_control_window(2**30)
        try:
            long_id = self._h2_get(conn, LONG_STREAM)
            writer.write(conn.data_to_send())
            received = 0
            while received < READ_BEFORE_LEAVING:
                for event in await _h2_events(conn, reader):
                    if isinstance(event, h2.events.DataReceived) and event.stream_id == long_id:
                        received += len(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, long_id)
                    elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                        raise Mismatch(f"{event} before the client left")
                writer.write(conn.data_to_send())  # the acknowledgements, at once
            if not reset:
                return  # the finally clause drops the connection mid-response
            conn.reset_stream(long_id, h2.errors.ErrorCodes.CANCEL)
            short_id = self._h2_get(conn, "/")
            writer.write(conn.data_to_send())
            body, status, ended = b"", b"", False
            while not ended:
                for event in await _h2_events(conn, reader):
                    if getattr(event, "stream_id", None) != short_id:
                        continue  # frames of the reset stream that were already in flight
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers).get(b":status", b"")
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, short_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                    elif isinstance(event, h2.events.StreamReset):
                        raise Mismatch(f"GET / after a reset was itself reset: {event}")
                writer.write(conn.data_to_send())
            if status != b"200" or body != b"Hello, world!":
                raise Mismatch(f"GET / after a reset answered {status!r} {body[:40]!r}")
            conn.close_connection()
            writer.write(conn.data_to_send())
            await writer.drain()
        finally:
            writer.transport.abort()

    def _h2_get(self, conn: h2.connection.H2Connection, path: str) -> int:
        stream_id: int = conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "soak")]
        conn.send_headers(stream_id, headers, end_stream=True)
        return stream_id

    # -- WebSocket ------------------------------------------------------------------------

    async def _ws_sessions(self, rng: random.Random) -> None:
        while self.running():
            leave = rng.random() < 0.2
            if await self._checked("ws", "session", self._ws_session(rng, leave)) and leave:
                self.stats["ws"].aborted += 1

    async def _ws_session(self, rng: random.Random, leave: bool) -> None:
        compression = "deflate" if rng.random() < 0.5 else None
        url = f"ws://127.0.0.1:{self.port}/ws"
        async with ws_connect(url, compression=compression, proxy=None, max_size=2**20) as ws:
            self.stats["ws"].connections += 1
            for _ in range(rng.randint(1, 20)):
                message: str | bytes
                if rng.random() < 0.5:
                    message = "".join(
                        rng.choices("abcdefghij \u00e9\u4e2d", k=rng.randint(1, 8192))
                    )
                else:
                    message = rng.randbytes(rng.randint(1, 32768))
                await ws.send(message)
                if await ws.recv() != message:
                    raise Mismatch("the echo differs from the message")
                self.stats["ws"].requests += 1
            if leave:
                await ws.send(rng.randbytes(32768))  # and leave while it is being echoed
                ws.transport.abort()


def _httpx_client(base_url: str, *, http2: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        http1=not http2,
        http2=http2,
        timeout=OP_TIMEOUT,
        trust_env=False,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def _mixed_request(client: httpx.AsyncClient, rng: random.Random) -> None:
    """One request of a weighted mix, with its answer checked."""
    roll = rng.random()
    if roll < 0.25:
        response = await client.get("/")
        _expect(response, 200, response.content == b"Hello, world!")
    elif roll < 0.45:
        response = await client.get("/json")
        _expect(response, 200, response.json() == JSON_BODY)
    elif roll < 0.65:
        body = rng.randbytes(rng.randint(0, 65536))
        response = await client.post("/echo", content=body)
        _expect(response, 200, response.content == body)
    elif roll < 0.75:
        sizes = [rng.randint(1, 16384) for _ in range(rng.randint(1, 16))]

        async def chunks() -> AsyncIterator[bytes]:
            for size in sizes:
                yield b"u" * size

        response = await client.post("/upload", content=chunks())
        _expect(response, 200, response.json() == {"bytes": sum(sizes)})
    elif roll < 0.95:
        count, size = rng.randint(1, 64), rng.randint(1, 16384)
        async with client.stream("GET", f"/stream?chunks={count}&size={size}") as response:
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
        _expect(response, 200, received == count * size)
    else:
        response = await client.get("/missing")
        _expect(response, 404, True)


def _expect(response: httpx.Response, status: int, body_ok: bool) -> None:
    if response.status_code != status or not body_ok:
        raise Mismatch(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.content[:40]!r}"
        )


async def _h2_events(
    conn: h2.connection.H2Connection, reader: asyncio.StreamReader
) -> list[h2.events.Event]:
    """Read once from the socket and feed the bytes to ``conn`` (the caller sends what
    ``conn`` has to say once it has handled the events)."""
    data = await reader.read(65536)
    if not data:
        raise Mismatch("the server closed the HTTP/2 connection")
    events: list[h2.events.Event] = conn.receive_data(data)
    return events
