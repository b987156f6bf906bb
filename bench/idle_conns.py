"""Open N idle HTTP/1.1 keep-alive connections to a server and hold them (load-generator side).

Run by the harness on the load generator's CPU::

    python bench/idle_conns.py --port 8000 --count 10000

Each connection sends one ``GET /`` and reads the complete response, so the server holds
it as an idle keep-alive connection (not as a half-open socket waiting for a request
head).  When all are open the script prints one JSON line ``{"opened": n, "failed": m,
...}`` and waits for a line on standard input (or end of input); then it checks how many
connections the server still holds open, prints a second JSON line and closes them all.
Only the standard library is used, so any Python 3.11 runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (up to the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_response(reader: asyncio.StreamReader) -> None:
    """Read one HTTP/1.1 response with a Content-Length body (all the benchmark app sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"unexpected response {head[:40]!r}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)


async def open_one(
    host: str, port: int, gate: asyncio.Semaphore, limit_s: float, deadline: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | str:
    """Connect, make one request and return the idle connection (or why it failed).

    Each connection gets ``limit_s`` seconds, and none goes on past the loop time
    ``deadline``, so a server that stops accepting cannot stall the whole run.
    """
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout_at(deadline), gate:
            async with asyncio.timeout(limit_s):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(REQUEST)
                await writer.drain()
                await read_response(reader)
    except (OSError, EOFError, TimeoutError, ConnectionError, ValueError) as exc:
        if writer is not None:
            writer.close()
        return type(exc).__name__
    return reader, writer


async def main_async(args: argparse.Namespace) -> int:
    """Open the connections, report, wait for the go-ahead, re-check and close."""
    limit = raise_nofile(args.count + 256)
    if limit < args.count + 64:
        print(json.dumps({"error": f"RLIMIT_NOFILE is {limit}, too low for {args.count}"}))
        return 2
    gate = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()
    deadline = asyncio.get_running_loop().time() + args.deadline
    results = await asyncio.gather(
        *(open_one(args.host, args.port, gate, args.timeout, deadline) for _ in range(args.count))
    )
    conns = [c for c in results if not isinstance(c, str)]
    errors: dict[str, int] = {}
    for result in results:
        if isinstance(result, str):
            errors[result] = errors.get(result, 0) + 1
    print(
        json.dumps(
            {
                "opened": len(conns),
                "failed": args.count - len(conns),
                "errors": errors,
                "seconds": round(time.monotonic() - started, 3),
                "nofile": limit,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    # The loop kept running while we waited: a connection the server closed meanwhile has
    # seen EOF or an error by now.
    await asyncio.sleep(0.05)
    still_open = sum(1 for r, _ in conns if not r.at_eof() and r.exception() is None)
    print(json.dumps({"still_open": still_open}), flush=True)
    for _, writer in conns:
        writer.close()
    return 0


def main() -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=256, help="connects in flight")
    parser.add_argument("--timeout", type=float, default=10.0, help="per connection")
    parser.add_argument("--deadline", type=float, default=60.0, help="for opening them all")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
