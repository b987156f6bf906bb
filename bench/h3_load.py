"""HTTP/3 load generator: C QUIC connections, S requests in flight on each, for D seconds.

``python bench/h3_load.py --port 8443 --connections 4 --streams 32 --duration 5``
prints one JSON line: ``{"rps": ..., "p50_ms": ..., "p99_ms": ..., "requests": ...,
"errors": ...}``.  Built on aioquic's asyncio client (the same QUIC stack HTTPy and
Hypercorn serve with); certificates are not verified (a benchmark on loopback).
A response counts once its stream has ended with status 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import time
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


class H3Protocol(QuicConnectionProtocol):
    """One client connection; ``get`` resolves when the response stream ends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self._waiters: dict[int, asyncio.Future[int]] = {}
        self._status: dict[int, int] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                for name, value in h3_event.headers:
                    if name == b":status":
                        self._status[h3_event.stream_id] = int(value)
            if isinstance(h3_event, HeadersReceived | DataReceived) and h3_event.stream_ended:
                waiter = self._waiters.pop(h3_event.stream_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(self._status.pop(h3_event.stream_id, 0))

    async def get(self, authority: bytes, path: bytes) -> int:
        sid = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", path),
        ]
        self.h3.send_headers(sid, headers, end_stream=True)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters[sid] = waiter
        self.transmit()
        return await waiter


async def load(
    host: str, port: int, path: str, connections: int, streams: int, duration: float
) -> dict[str, Any]:
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    configuration.verify_mode = ssl.CERT_NONE
    latencies: list[float] = []
    errors = 0
    authority = f"{host}:{port}".encode()

    async def worker(client: H3Protocol, end: float) -> None:
        nonlocal errors
        while time.perf_counter() < end:
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(client.get(authority, path.encode()), 10)
            except (TimeoutError, ConnectionError):
                errors += 1
                continue
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    async def connection(warmup: float) -> None:
        async with connect(
            host, port, configuration=configuration, create_protocol=H3Protocol
        ) as client:
            assert isinstance(client, H3Protocol)
            for _ in range(20):  # warm-up, not counted
                await client.get(authority, path.encode())
            await asyncio.sleep(max(0.0, warmup - time.perf_counter()))
            end = time.perf_counter() + duration
            await asyncio.gather(*(worker(client, end) for _ in range(streams)))

    # Every connection is up and warm before the measured window opens, together.
    start_at = time.perf_counter() + 2.0
    await asyncio.wait_for(
        asyncio.gather(*(connection(start_at) for _ in range(connections))), duration + 30
    )
    ordered = sorted(latencies)
    return {
        "rps": len(latencies) / duration,
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": statistics.median(ordered) * 1000 if ordered else None,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000 if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    try:
        result = asyncio.run(
            load(args.host, args.port, args.path, args.connections, args.streams, args.duration)
        )
    except (OSError, ConnectionError, TimeoutError) as exc:
        result = {"error": f"HTTP/3 not served: {exc!r}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
