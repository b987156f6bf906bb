"""The HTTP/3 listener: one anyio UDP socket per bind, many QUIC connections on it.

It reads datagrams and routes each by its destination connection ID to the connection's
:class:`~httpy.backends.http3_driver.HTTP3Driver` (a table from connection ID to driver,
kept current as connections issue and retire IDs, so clients that change IDs or migrate
keep being served).  A datagram for no known connection is answered the way RFC 9000
says:

* a long header with a version we don't speak: Version Negotiation (6.1), only for
  datagrams of at least 1200 bytes (no amplification) and never for a VN packet;
* an Initial of at least 1200 bytes: a new connection, after a Retry round trip when
  ``Config.quic_retry`` is on, or while at least ``Config.quic_retry_threshold``
  connections are half-open (address validation, 8.1.2: a flood of Initials from
  spoofed addresses then creates no state);
* a short header: a Stateless Reset (10.3), smaller than what triggered it, with the
  token derived from the connection ID by an HMAC under a per-listener secret, the same
  function the connections use to announce their tokens;
* anything else is dropped.

anyio's UDP sockets work on asyncio and trio alike.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import time

import anyio
import anyio.abc
from aioquic.buffer import Buffer  # type: ignore[attr-defined]  # re-exported, no __all__
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import NetworkAddress
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.retry import QuicRetryTokenHandler

from ..core.config import Config, parse_bind
from ..core.http2_checks import TokenBucket
from ..core.http3 import HTTP3Connection
from .cert_files import cert_chain_of
from .clients import ClientEntry
from .connection import ConnectionContext
from .http3_driver import HTTP3Driver
from .logs import error_log

#: Smallest datagram that may open a connection (RFC 9000 14.1).
MIN_INITIAL_SIZE = 1200
#: A stateless reset is at least this long (RFC 9000 10.3).
MIN_RESET_SIZE = 21
#: Stateless answers (Version Negotiation, Stateless Reset) allowed in a burst, and per
#: second after it.
STATELESS_BURST = 100
STATELESS_RATE = 100.0
#: The same for Retry, on its own budget: a Retry is a tenth of the Initial it answers (no
#: amplification), and while Retry is on, every new client needs one; sharing the budget
#: above, an Initial flood spent it and a real client's Initial went unanswered (its
#: retransmissions back off: 6-16 s before it got in).
RETRY_BURST = 2000
RETRY_RATE = 5000.0
_CID_LENGTH = 8


def quic_configuration(
    config: Config, certfile: str, keyfile: str | None, password: str | bytes | None = None
) -> QuicConfiguration:
    """The server-side QUIC settings from ``config`` and the TLS certificate."""
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=["h3"],
        max_datagram_size=config.max_datagram_size,
        max_stream_data=config.quic_max_stream_data,
        max_data=config.quic_max_data,
        idle_timeout=config.quic_idle_timeout,
        connection_id_length=_CID_LENGTH,
    )
    configuration.load_cert_chain(certfile, keyfile, password)
    return configuration


class QuicListener:
    """Serves HTTP/3 on one UDP socket until :meth:`begin_shutdown` and the drain."""

    def __init__(
        self,
        socket: anyio.abc.UDPSocket,
        context: ConnectionContext,
        configuration: QuicConfiguration,
    ) -> None:
        self._socket = socket
        self._context = context
        self._config = context.config
        self._configuration = configuration
        self._routes: dict[bytes, HTTP3Driver] = {}
        self._drivers: set[HTTP3Driver] = set()
        self._send_lock = anyio.Lock()
        self._secret = os.urandom(32)
        # Made once: tokens it issued must validate after a flood subsides, too.
        self._retry = QuicRetryTokenHandler()
        #: Connections created and perhaps still in their handshake (pruned when counted).
        self._half_open: set[HTTP3Driver] = set()
        #: Initial packets answered with a Retry because too many connections were half-open.
        self.retries_for_load = 0
        self._closing = False
        #: Answers to packets for no connection (VN, Retry, Stateless Reset) per second:
        #: a flood of junk must not become a flood of our packets or tasks.
        self._stateless = TokenBucket(STATELESS_BURST, STATELESS_RATE)
        self._retry_answers = TokenBucket(RETRY_BURST, RETRY_RATE)
        self._all_closed = anyio.Event()
        self._all_closed.set()
        #: Initial packets dropped because ``max_connections`` were open.
        self.refused_initials = 0
        local = socket.extra(anyio.abc.SocketAttribute.local_address)
        self.address = (str(local[0]), int(local[1]))

    @classmethod
    async def open(
        cls, bind: str, context: ConnectionContext, configuration: QuicConfiguration
    ) -> QuicListener:
        host, port = parse_bind(bind)
        # With reuse_port (--workers): every worker binds the port and the kernel spreads
        # clients by address, so a connection's datagrams keep reaching one worker.
        socket = await anyio.create_udp_socket(
            local_host=host, local_port=port, reuse_port=context.config.reuse_port
        )
        return cls(socket, context, configuration)

    @property
    def connection_count(self) -> int:
        return len(self._drivers)

    # -- serving -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Receive datagrams until cancelled; runs every connection in its own task."""
        try:
            async with anyio.create_task_group() as connections:
                while True:
                    try:
                        data, addr = await self._socket.receive()
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return
                    except OSError as exc:  # ICMP errors surface here on some systems
                        error_log.debug("UDP receive error: %s", exc)
                        continue
                    self._datagram(data, addr, connections)
        finally:
            with anyio.CancelScope(shield=True):
                await self._socket.aclose()

    async def close(self) -> None:
        """Close the socket (a listener whose :meth:`serve` never ran)."""
        await self._socket.aclose()

    def begin_shutdown(self) -> None:
        """Refuse new connections; GOAWAY on each open one, CONNECTION_CLOSE when done."""
        self._closing = True
        for driver in list(self._drivers):
            driver.begin_shutdown()

    async def wait_closed(self) -> None:
        """Return once every connection has ended (after :meth:`begin_shutdown`)."""
        await self._all_closed.wait()

    # -- routing (used by the drivers) ---------------------------------------------------

    def route(self, cid: bytes, driver: HTTP3Driver) -> None:
        self._routes[cid] = driver

    def unroute(self, cid: bytes) -> None:
        self._routes.pop(cid, None)

    async def send_datagrams(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None:
        # anyio's UDP sockets allow one sender at a time.
        async with self._send_lock:
            for data, addr in datagrams:
                try:
                    await self._socket.sendto(data, str(addr[0]), int(addr[1]))
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return
                except OSError as exc:
                    error_log.debug("UDP send to %s failed: %s", addr, exc)

    def reset_token(self, cid: bytes) -> bytes:
        """The stateless reset token of ``cid`` (RFC 9000 10.3.2: derived, not stored)."""
        return hmac.new(self._secret, cid, hashlib.sha256).digest()[:16]

    # -- internals -----------------------------------------------------------------------

    def _datagram(
        self, data: bytes, addr: NetworkAddress, connections: anyio.abc.TaskGroup
    ) -> None:
        if data and data[0] & 0x80:
            invariant = _long_header_invariants(data)
            if invariant is None:
                return
            version, dcid, scid = invariant
            if version and version not in self._configuration.supported_versions:
                # Only the version-independent fields (RFC 8999) can be read.
                if len(data) >= MIN_INITIAL_SIZE and dcid not in self._routes:
                    packet = encode_quic_version_negotiation(
                        source_cid=dcid,
                        destination_cid=scid,
                        supported_versions=self._configuration.supported_versions,
                    )
                    self._answer(packet, addr, connections)
                return
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=_CID_LENGTH)
        except ValueError:
            return  # not QUIC, or a packet too broken to route
        driver = self._routes.get(header.destination_cid)
        if driver is not None:
            driver.datagram_received(data, addr)
            return
        if header.packet_type == QuicPacketType.ONE_RTT:
            self._stateless_reset(header.destination_cid, len(data), addr, connections)
            return
        if header.packet_type == QuicPacketType.VERSION_NEGOTIATION:
            return  # never answered: two servers would answer each other forever
        if (
            header.packet_type != QuicPacketType.INITIAL
            or header.version is None
            or len(data) < MIN_INITIAL_SIZE
            or self._closing
        ):
            return
        original_dcid = header.destination_cid
        retry_scid: bytes | None = None
        now = anyio.current_time()
        if header.token:
            try:
                original_dcid = self._retry.validate_token(
                    address=addr,
                    destination_cid=header.destination_cid,
                    token=header.token,
                    now=now,
                )
                retry_scid = header.destination_cid
            except ValueError:
                if self._retry_required():
                    return  # forged or expired token: no state, no answer
                # Not ours, or expired, and no Retry needed: as a client without a
                # token (RFC 9000 8.1.3).
        elif self._retry_required():
            if not self._config.quic_retry:
                self.retries_for_load += 1
            source_cid = os.urandom(_CID_LENGTH)
            packet = encode_quic_retry(
                version=header.version,
                source_cid=source_cid,
                destination_cid=header.source_cid,
                original_destination_cid=header.destination_cid,
                retry_token=self._retry.create_token(
                    address=addr,
                    original_destination_connection_id=header.destination_cid,
                    retry_source_connection_id=source_cid,
                    now=now,
                ),
            )
            self._answer(packet, addr, connections, self._retry_answers)
            return
        if len(self._drivers) >= self._config.max_connections:
            # At capacity: no state, no answer (as a full TCP backlog).  The client
            # retransmits its Initial with backoff: served once a connection ends, or
            # its handshake times out.
            self.refused_initials += 1
            return
        client = (str(addr[0]), int(addr[1]))
        context = self._context.for_connection(client, self.address)
        clients = self._context.clients
        entry: ClientEntry | None = None
        if clients is not None and self._config.max_connections_per_client is not None:
            entry = clients.connect(client, now)
            if entry is None:
                self.refused_initials += 1  # max_connections_per_client: as at capacity
                return
        conn = HTTP3Connection(
            self._config,
            self._configuration,
            original_destination_connection_id=original_dcid,
            retry_source_connection_id=retry_scid,
            reset_token=self.reset_token,
            flood_budgets=context.flood_budgets(now),
        )
        driver = HTTP3Driver(conn, self, context)
        # Until the client switches to our connection IDs it uses the one it chose.
        self.route(header.destination_cid, driver)
        self._drivers.add(driver)
        self._half_open.add(driver)
        self._all_closed = anyio.Event()
        connections.start_soon(self._run, driver, header.destination_cid, (data, addr), entry)

    async def _run(
        self,
        driver: HTTP3Driver,
        initial_cid: bytes,
        first: tuple[bytes, NetworkAddress],
        entry: ClientEntry | None,
    ) -> None:
        try:
            if self._closing:
                driver.begin_shutdown()
            await driver.run(first)
        finally:
            if entry is not None and self._context.clients is not None:
                self._context.clients.disconnect(entry, anyio.current_time())
            self.unroute(initial_cid)
            self._drivers.discard(driver)
            self._half_open.discard(driver)
            if not self._drivers:
                self._all_closed.set()

    def _retry_required(self) -> bool:
        """Whether a new client must pass a Retry first: always with ``quic_retry``, else
        while at least ``quic_retry_threshold`` connections are half-open."""
        if self._config.quic_retry:
            return True
        threshold = self._config.quic_retry_threshold
        if len(self._half_open) < threshold:
            return False
        # Pruned only at the threshold: one pass over about that many drivers, and the
        # set stays near the threshold (connections that completed leave it here).
        self._half_open = {d for d in self._half_open if not d.handshake_complete}
        return len(self._half_open) >= threshold

    def _answer(
        self,
        packet: bytes,
        addr: NetworkAddress,
        connections: anyio.abc.TaskGroup,
        budget: TokenBucket | None = None,
    ) -> None:
        """Send a stateless answer, within the listener's budget for them (``budget``:
        another than the one for Version Negotiation and Stateless Reset)."""
        if (budget or self._stateless).take(time.monotonic()):
            connections.start_soon(self.send_datagrams, [(packet, addr)])

    def _stateless_reset(
        self,
        cid: bytes,
        size: int,
        addr: NetworkAddress,
        connections: anyio.abc.TaskGroup,
    ) -> None:
        # Smaller than the packet that triggered it, so two endpoints can't loop
        # (RFC 9000 10.3.3); too small a trigger gets no answer.
        length = min(size - 1, 43)
        if length < MIN_RESET_SIZE:
            return
        unpredictable = bytearray(os.urandom(length - 16))
        unpredictable[0] = 0x40 | (unpredictable[0] & 0x3F)  # short header, fixed bit
        packet = bytes(unpredictable) + self.reset_token(cid)
        self._answer(packet, addr, connections)


async def open_quic_listeners(
    config: Config, context: ConnectionContext, ssl_context: ssl.SSLContext | None
) -> list[QuicListener]:
    """Bind a UDP socket for each of ``config.http3_binds``.

    The certificate is ``config.certfile``/``keyfile``, else the files ``ssl_context``
    was loaded from (see :mod:`.cert_files`).
    """
    chain = (config.certfile, config.keyfile, None) if config.certfile else None
    if chain is None and ssl_context is not None:
        chain = cert_chain_of(ssl_context)
    if chain is None or not chain[0]:
        raise ValueError(
            "HTTP/3 needs the TLS certificate files: set certfile/keyfile, or load the "
            "ssl_context with load_cert_chain(certfile, keyfile)"
        )
    configuration = quic_configuration(config, str(chain[0]), chain[1], chain[2])
    listeners: list[QuicListener] = []
    try:
        for bind in config.http3_binds:
            listener = await QuicListener.open(bind, context, configuration)
            listeners.append(listener)
            host, port = listener.address
            shown = f"[{host}]" if ":" in host else host
            error_log.info("httpy serving HTTP/3 on https://%s:%d (UDP)", shown, port)
    except BaseException:
        for listener in listeners:
            await listener.close()
        raise
    return listeners


def _long_header_invariants(data: bytes) -> tuple[int, bytes, bytes] | None:
    """Version, destination and source connection IDs of a long-header packet: the
    fields every QUIC version keeps in place (RFC 8999 5.1); None if truncated."""
    if len(data) < 7:
        return None
    version = int.from_bytes(data[1:5], "big")
    dcid_end = 6 + data[5]
    if len(data) < dcid_end + 1:
        return None
    scid_end = dcid_end + 1 + data[dcid_end]
    if len(data) < scid_end or data[5] > 20 or data[dcid_end] > 20:
        return None
    return version, data[6:dcid_end], data[dcid_end + 1 : scid_end]
