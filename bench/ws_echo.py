"""WebSocket echo round trips over one connection (load-generator side).

    python bench/ws_echo.py --port 8000 --duration 3

Connects to ``ws://127.0.0.1:PORT/ws`` with the websockets library (no compression, so
the number is about the server's framing and scheduling), then sends ``Hello, world!``
and waits for its echo, one message in flight, for ``--duration`` seconds.  Prints one
JSON line: ``{"round_trips": n, "seconds": t, "rps": n / t, "p50_ms": .., "p99_ms": ..}``
or ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

MESSAGE = "Hello, world!"


async def measure(port: int, duration: float) -> dict[str, object]:
    import websockets

    latencies: list[float] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws", compression=None, open_timeout=10
    ) as ws:
        for _ in range(100):  # warm-up
            await ws.send(MESSAGE)
            await ws.recv()
        started = time.perf_counter()
        deadline = started + duration
        now = started
        while now < deadline:
            await ws.send(MESSAGE)
            reply = await ws.recv()
            if reply != MESSAGE:
                return {"error": f"unexpected echo {reply!r:.60}"}
            after = time.perf_counter()
            latencies.append(after - now)
            now = after
        seconds = now - started
    latencies.sort()
    count = len(latencies)
    return {
        "round_trips": count,
        "seconds": seconds,
        "rps": count / seconds if seconds else 0.0,
        "p50_ms": latencies[count // 2] * 1000 if count else None,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    try:
        result = asyncio.run(measure(args.port, args.duration))
    except Exception as exc:  # reported in the table, not a traceback
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
