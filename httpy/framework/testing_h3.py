"""The HTTP/3 half of the test client: an aioquic *client* connection wired to the real
HTTP/3 core and driver through in-memory datagrams, so ``TestClient(app,
http_version="3")`` runs what the UDP listener runs, without a socket.

QUIC always encrypts: the server side uses a throw-away self-signed certificate made in
memory (once per process), which the client does not verify.  One request per
connection; the client allows server push and waits for pushed responses to complete.
"""

from __future__ import annotations

import datetime
import functools
import time
from typing import Any

import anyio
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.events import ConnectionTerminated, StreamReset
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..backends.connection import ConnectionContext
from ..backends.http3_driver import HTTP3Driver
from ..core.http3 import HTTP3Connection
from .testing_common import SERVER_NAME, OutgoingRequest, RawResponse

_CLIENT = ("10.0.0.2", 50000)
_SERVER = ("10.0.0.1", 443)


@functools.cache
def _certificate() -> tuple[Any, Any]:
    """A self-signed certificate for :data:`SERVER_NAME` and its key (made once)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class _MemoryRouter:
    """The listener's part for one in-memory connection: datagrams go to the client."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[bytes](1024)

    async def send_datagrams(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None:
        for data, _addr in datagrams:
            await self.send.send(data)

    def route(self, cid: bytes, driver: HTTP3Driver) -> None:
        pass  # one connection: nothing to route

    def unroute(self, cid: bytes) -> None:
        pass


async def exchange_h3(
    context: ConnectionContext, request: OutgoingRequest
) -> tuple[RawResponse, list[RawResponse]]:
    """Send one request over a new in-memory HTTP/3 connection; return its response and
    the pushed ones."""
    cert, key = _certificate()
    server_configuration = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    server_configuration.certificate, server_configuration.private_key = cert, key
    client = QuicConnection(
        configuration=QuicConfiguration(
            is_client=True, alpn_protocols=["h3"], verify_mode=0, server_name=SERVER_NAME
        )
    )
    h3 = H3Connection(client)
    client.connect(_SERVER, time.monotonic())
    conn = HTTP3Connection(
        context.config,
        server_configuration,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    router = _MemoryRouter()
    driver = HTTP3Driver(conn, router, context.for_connection(_CLIENT, _SERVER))
    _send_request(h3, request)
    responses = {0: RawResponse(0)}
    pushed: dict[int, RawResponse] = {}
    first, *rest = client.datagrams_to_send(time.monotonic())
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(driver.run, (first[0], _CLIENT))
        for data, _ in rest:
            driver.datagram_received(data, _CLIENT)
        while not (responses[0].ended and all(p.ended for p in pushed.values())):
            timer = client.get_timer()
            delay = 5.0 if timer is None else max(0.0, timer - time.monotonic())
            with anyio.move_on_after(delay):
                data = await router.receive.receive()
                client.receive_datagram(data, _SERVER, time.monotonic())
            if (timer := client.get_timer()) is not None and timer <= time.monotonic():
                client.handle_timer(time.monotonic())
            while (event := client.next_event()) is not None:
                if isinstance(event, ConnectionTerminated):
                    responses[0].ended = True
                    break
                if isinstance(event, StreamReset) and event.stream_id == 0:
                    responses[0].ended = True
                for h3_event in h3.handle_event(event):
                    _apply(h3_event, responses[0], pushed)
            for data, _ in client.datagrams_to_send(time.monotonic()):
                driver.datagram_received(data, _CLIENT)
        tasks.cancel_scope.cancel()
    router.send.close()
    router.receive.close()
    return responses[0], list(pushed.values())


def _send_request(h3: H3Connection, request: OutgoingRequest) -> None:
    trailers = request.trailer_block()
    h3.send_headers(0, request.header_block(b"https"), end_stream=not request.body and not trailers)
    if request.body:
        h3.send_data(0, request.body, end_stream=not trailers)
    if trailers:
        h3.send_headers(0, trailers, end_stream=True)


def _apply(event: H3Event, response: RawResponse, pushed: dict[int, RawResponse]) -> None:
    if isinstance(event, PushPromiseReceived):
        path = dict(event.headers).get(b":path", b"").decode("latin-1")
        pushed.setdefault(event.push_id, RawResponse(-1)).path = path
        return
    if not isinstance(event, HeadersReceived | DataReceived):
        return
    target = (
        response if event.push_id is None else pushed.setdefault(event.push_id, RawResponse(-1))
    )
    if isinstance(event, HeadersReceived):
        fields = [(bytes(n), bytes(v)) for n, v in event.headers]
        status = next((int(v) for n, v in fields if n == b":status"), 0)
        if target.status == 0 and status >= 200:
            target.status = status
            target.headers = [(n, v) for n, v in fields if not n.startswith(b":")]
        elif target.status:
            target.trailers.extend(fields)
    else:
        target.body += event.data
    if event.stream_ended:
        target.ended = True
