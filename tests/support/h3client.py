"""An HTTP/3 client for tests, built on aioquic, over anyio UDP (asyncio and trio).

``async with h3_connect(host, port) as client: response = await client.get("/")``.
Many requests may run at once on one connection (one task each); ``client.reset(...)``
abandons a request mid-way; the client follows the server's GOAWAY and CONNECTION_CLOSE.

``MemoryLink`` pumps datagrams between a client ``QuicConnection`` and a server
:class:`~httpy.core.http3.HTTP3Connection` with a fake clock, for sans-IO tests.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)

CERTS = Path(__file__).resolve().parent / "certs"


def certificate_files() -> tuple[Path, Path, Path]:
    """``(cert, key, ca)`` for localhost / 127.0.0.1, created once per checkout."""
    from httpy.backends.tls import generate_dev_certificate

    return generate_dev_certificate(CERTS)


def client_configuration(**options: Any) -> QuicConfiguration:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=["h3"], **options)
    configuration.verify_mode = ssl.CERT_REQUIRED
    configuration.load_verify_locations(str(certificate_files()[2]))
    configuration.server_name = "localhost"
    return configuration


@dataclass
class Response:
    """One exchange as the client saw it."""

    stream_id: int
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    ended: bool = False
    reset_code: int | None = None
    pushes: dict[int, bytes] = field(default_factory=dict)  # push id -> :path

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)


class _NoPushH3(H3Connection):
    """A client that never sends MAX_PUSH_ID, so the server may not push (RFC 9114 4.6)."""

    def _init_connection(self) -> None:
        self._max_push_id = None
        super()._init_connection()


class H3Client:
    """One client connection; drive it inside ``h3_connect``."""

    def __init__(
        self,
        socket: anyio.abc.ConnectedUDPSocket,
        configuration: QuicConfiguration,
        allow_push: bool = True,
    ):
        self._socket = socket
        self.quic = QuicConnection(configuration=configuration)
        self.h3 = H3Connection(self.quic) if allow_push else _NoPushH3(self.quic)
        self._responses: dict[int, Response] = {}
        self._push_streams: dict[int, int] = {}  # push id -> response id
        self.pushed: dict[int, Response] = {}  # push id -> pushed response
        self._changed = anyio.Event()
        self.terminated: ConnectionTerminated | None = None
        self.connected = anyio.Event()
        self._send_lock = anyio.Lock()
        self.peer: tuple[str, int] = ("127.0.0.1", 0)
        self._extra_sockets: list[anyio.abc.ConnectedUDPSocket] = []
        #: The stream id of the server's last GOAWAY (aioquic drops GOAWAY's payload).
        self.goaway_id: int | None = None
        self._control: dict[int, bytes] = {}  # server uni stream -> bytes so far

    # -- requests --------------------------------------------------------------------

    async def start(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        """Send a request head (and body); returns its stream id."""
        sid = self.quic.get_next_available_stream_id()
        extra = headers or []
        block = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            *[h for h in extra if h[0].startswith(b":")],  # pseudo-headers come first
            *[h for h in extra if not h[0].startswith(b":")],
        ]
        self._responses[sid] = Response(sid)
        self.h3.send_headers(sid, block, end_stream=end and not body)
        if body:
            self.h3.send_data(sid, body, end_stream=end)
        await self.send_all()
        return sid

    async def start_raw(
        self,
        block: list[tuple[bytes, bytes]],
        body: bytes = b"",
        trailers: list[tuple[bytes, bytes]] | None = None,
        end: bool = True,
    ) -> int:
        """Send ``block`` exactly as given (pseudo-headers included, in that order, not
        validated: for attack tests), then ``body`` and ``trailers``; the stream stays
        open when ``end`` is false.  Returns the stream id."""
        sid = self.quic.get_next_available_stream_id()
        self._responses[sid] = Response(sid)
        self.h3.send_headers(sid, block, end_stream=end and not body and trailers is None)
        if body:
            self.h3.send_data(sid, body, end_stream=end and trailers is None)
        if trailers is not None:
            self.h3.send_headers(sid, trailers, end_stream=True)
        await self.send_all()
        return sid

    async def send_body(self, sid: int, data: bytes, end: bool = False) -> None:
        self.h3.send_data(sid, data, end_stream=end)
        await self.send_all()

    async def reset(self, sid: int, code: int = 0x10C) -> None:
        """Abandon request ``sid`` (H3_REQUEST_CANCELLED)."""
        self.quic.reset_stream(sid, code)
        self.quic.stop_stream(sid, code)
        await self.send_all()

    async def wait(self, sid: int) -> Response:
        """The response on ``sid`` once it ended or was reset."""
        response = self._responses[sid]
        while not (response.ended or response.reset_code is not None):
            if self.terminated is not None:
                raise ConnectionError(f"connection closed: {self.terminated.reason_phrase}")
            await self._wait_change()
        return response

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> Response:
        return await self.wait(await self.start(method, path, headers, body))

    async def get(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
        return await self.request("GET", path, headers)

    async def wait_terminated(self) -> ConnectionTerminated:
        while self.terminated is None:
            await self._wait_change()
        return self.terminated

    def response(self, sid: int) -> Response:
        return self._responses[sid]

    # -- plumbing --------------------------------------------------------------------

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        # Every waiter holds the current event: set it, then start a new one.
        self._changed.set()
        self._changed = anyio.Event()

    async def send_all(self) -> None:
        # One sender at a time: anyio's UDP sockets refuse concurrent sends.
        async with self._send_lock:
            for data, _addr in self.quic.datagrams_to_send(time.monotonic()):
                await self._socket.send(data)

    async def run(self) -> None:
        """Receive, handle timers and send until the connection terminates."""
        while self.terminated is None:
            await self.send_all()
            timer = self.quic.get_timer()
            timeout = max(0.0, timer - time.monotonic()) if timer is not None else 3600
            data: bytes | None = None
            with anyio.move_on_after(timeout):
                try:
                    data = await self._socket.receive()
                except anyio.ClosedResourceError:
                    continue  # rebind() swapped the socket
            if data is None:
                self.quic.handle_timer(time.monotonic())
            else:
                self.quic.receive_datagram(data, self.peer, time.monotonic())
            self._process()
        self._notify()

    async def rebind(self) -> int:
        """Continue on a new UDP socket (a new source port, like a NAT rebinding or a
        network change); returns the new local port."""
        old = self._socket
        self._socket = await anyio.create_connected_udp_socket(*self.peer)
        self._extra_sockets.append(self._socket)
        await old.aclose()
        return int(self._socket.extra(anyio.abc.SocketAttribute.local_address)[1])

    def _process(self) -> None:
        while (event := self.quic.next_event()) is not None:
            self._on_quic(event)
        self._notify()

    def _on_quic(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            return
        if type(event).__name__ == "HandshakeCompleted":
            self.connected.set()
        if isinstance(event, StreamDataReceived) and event.stream_id % 4 == 3:
            self._read_control(event.stream_id, event.data)
        if isinstance(event, StreamReset) and event.stream_id in self._responses:
            self._responses[event.stream_id].reset_code = event.error_code
        for h3_event in self.h3.handle_event(event):
            self._on_h3(h3_event)

    def _read_control(self, stream_id: int, data: bytes) -> None:
        """Watch the server's control stream (type 0x00) for GOAWAY frames (type 0x07)."""
        from aioquic.buffer import Buffer, BufferReadError  # type: ignore[attr-defined]

        data = self._control.get(stream_id, b"") + data
        self._control[stream_id] = data
        if not data or data[0] != 0x00:
            return
        buf = Buffer(data=data[1:])
        try:
            while not buf.eof():
                frame_type, size = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(size)
                if frame_type == 0x07:
                    self.goaway_id = Buffer(data=payload).pull_uint_var()
        except BufferReadError:
            pass  # a frame not complete yet: parsed again with more data

    def _on_h3(self, event: H3Event) -> None:
        if isinstance(event, PushPromiseReceived):
            self._responses[event.stream_id].pushes[event.push_id] = dict(event.headers)[b":path"]
            self.pushed.setdefault(event.push_id, Response(-1))
            return
        if isinstance(event, HeadersReceived | DataReceived) and event.push_id is not None:
            response = self.pushed.setdefault(event.push_id, Response(event.stream_id))
        elif isinstance(event, HeadersReceived | DataReceived):
            found = self._responses.get(event.stream_id)
            if found is None:
                return
            response = found
        else:
            return
        if isinstance(event, HeadersReceived):
            headers = list(event.headers)
            status = int(dict(headers).get(b":status", b"0"))
            if response.status == 0 and 100 <= status < 200:
                response.informational.append(headers)
            elif response.status == 0:
                response.status = status
                response.headers = [h for h in headers if not h[0].startswith(b":")]
            else:
                response.trailers = headers
        else:
            response.body += event.data
        if event.stream_ended:
            response.ended = True


@asynccontextmanager
async def h3_connect(
    host: str,
    port: int,
    *,
    configuration: QuicConfiguration | None = None,
    allow_push: bool = True,
    local_host: str | None = None,
) -> AsyncIterator[H3Client]:
    """Connect over HTTP/3; on exit close the connection (NO_ERROR)."""
    udp = await anyio.create_connected_udp_socket(host, port, local_host=local_host)
    async with udp as sock:
        client = H3Client(sock, configuration or client_configuration(), allow_push)
        client.peer = (host, port)
        client.quic.connect((host, port), time.monotonic())
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.run)
            with anyio.fail_after(10):
                await client.connected.wait()
            try:
                yield client
            finally:
                client.quic.close()
                await client.send_all()
                tasks.cancel_scope.cancel()
                for extra in client._extra_sockets:
                    await extra.aclose()


class MemoryLink:
    """A client QuicConnection + H3Connection wired to a server-side connection object
    in memory, with a fake clock (``now``) the test advances."""

    CLIENT = ("10.0.0.2", 4433)
    SERVER = ("10.0.0.1", 443)

    def __init__(self, make_server: Any, configuration: QuicConfiguration | None = None) -> None:
        self.now = 1000.0
        self.client = QuicConnection(configuration=configuration or client_configuration())
        self.client_h3 = H3Connection(self.client)
        self.client.connect(self.SERVER, self.now)
        first = self.client.datagrams_to_send(self.now)
        self.server = make_server(self.client.original_destination_connection_id)
        self.server_events: list[Any] = []
        self.client_events: list[H3Event] = []
        self.client_quic_events: list[QuicEvent] = []
        for data, _ in first:
            self.server_events += self.server.receive_datagram(data, self.CLIENT, self.now)
        self.pump()

    def pump(self, rounds: int = 100) -> None:
        """Exchange datagrams until both sides are quiet."""
        for _ in range(rounds):
            # The clock moves a little each round: aioquic paces its sending.
            self.now += 0.002
            moved = False
            for data, _ in self.server.datagrams_to_send(self.now):
                moved = True
                self.client.receive_datagram(data, self.SERVER, self.now)
            self.server_events += self.server.next_events()
            while (event := self.client.next_event()) is not None:
                self.client_quic_events.append(event)
                self.client_events += self.client_h3.handle_event(event)
            for data, _ in self.client.datagrams_to_send(self.now):
                moved = True
                self.server_events += self.server.receive_datagram(data, self.CLIENT, self.now)
            if not moved:
                return

    def run_timers(self, duration: float) -> None:
        """Let ``duration`` seconds pass, firing both sides' timers as they come due."""
        end = self.now + duration
        for _ in range(1000):
            timers = [t for t in (self.client.get_timer(), self.server.get_timer()) if t]
            due = min(timers, default=end)
            if due > end:
                break
            self.now = max(self.now, due)
            if (t := self.client.get_timer()) is not None and t <= self.now:
                self.client.handle_timer(self.now)
            if (t := self.server.get_timer()) is not None and t <= self.now:
                self.server_events += self.server.handle_timer(self.now)
            self.pump()
        self.now = max(self.now, end)

    def take_server_events(self) -> list[Any]:
        events, self.server_events = self.server_events, []
        return events

    def take_client_events(self) -> list[H3Event]:
        events, self.client_events = self.client_events, []
        return events


def free_tcp_and_udp_port() -> int:
    """A port number free on 127.0.0.1 for both TCP and UDP a moment ago."""
    import socket

    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both TCP and UDP")


@contextmanager
def example_server(*command: str) -> Iterator[int]:
    """Run ``command`` (default: ``python examples/http3_app.py``) with ``PORT`` set to a
    port free on TCP and UDP and the test certificate; yields the port once HTTPS answers.
    Stops it with SIGTERM and checks it exits cleanly."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    root = Path(__file__).resolve().parents[2]
    port = free_tcp_and_udp_port()
    ca = certificate_files()[2]
    argv = [a.replace("{port}", str(port)) for a in command] or [
        sys.executable,
        str(root / "examples" / "http3_app.py"),
    ]
    env = {**os.environ, "PYTHONPATH": str(root), "PORT": str(port), "CERT_DIR": str(CERTS)}
    process = subprocess.Popen(
        argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    trust = ssl.create_default_context(cafile=str(ca))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{port}/hello", verify=trust, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read() if process.stdout else ""
                    raise AssertionError(f"server did not start:\n{out}") from None
                time.sleep(0.1)
        yield port
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=40)
        assert process.returncode == 0, out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


class H3WebSocket:
    """A WebSocket over one extended CONNECT stream (RFC 9220) of an :class:`H3Client`:
    wsproto's frame layer over the stream's DATA."""

    def __init__(self, client: H3Client, stream_id: int) -> None:
        from wsproto.connection import Connection, ConnectionType

        self.client = client
        self.stream_id = stream_id
        self.ws = Connection(ConnectionType.CLIENT)
        self._offset = 0
        self._messages: list[Any] = []
        self._parts: list[Any] = []

    @property
    def response(self) -> Response:
        return self.client.response(self.stream_id)

    async def send(self, data: str | bytes) -> None:
        from wsproto.events import BytesMessage, TextMessage

        event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
        await self.client.send_body(self.stream_id, self.ws.send(event))

    async def close(self, code: int = 1000) -> None:
        from wsproto.events import CloseConnection

        await self.client.send_body(self.stream_id, self.ws.send(CloseConnection(code)))

    async def recv(self) -> Any:
        """The next message (``str`` or ``bytes``), or wsproto's ``CloseConnection``."""
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        while not self._messages:
            response = self.response
            fresh = response.body[self._offset :]
            self._offset = len(response.body)
            if fresh:
                self.ws.receive_data(fresh)
                for event in self.ws.events():
                    if isinstance(event, TextMessage | BytesMessage):
                        self._parts.append(event.data)
                        if event.message_finished:
                            text = isinstance(event, TextMessage)
                            parts = self._parts
                            self._messages.append("".join(parts) if text else b"".join(parts))
                            self._parts = []
                    elif isinstance(event, Ping):
                        await self.client.send_body(self.stream_id, self.ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        self._messages.append(event)
                continue
            if response.ended or response.reset_code is not None:
                raise ConnectionError("the WebSocket stream ended")
            await self.client._wait_change()
        return self._messages.pop(0)


async def open_websocket(
    client: H3Client, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> H3WebSocket:
    """Extended CONNECT ``:protocol websocket`` to ``path``; returns once answered."""
    sid = await client.start(
        "CONNECT",
        path,
        [(b":protocol", b"websocket"), (b"sec-websocket-version", b"13"), *(headers or [])],
        end=False,
    )
    response = client.response(sid)
    while response.status == 0 and not response.ended and response.reset_code is None:
        await client._wait_change()
    return H3WebSocket(client, sid)
