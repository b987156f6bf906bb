"""A raw-socket HTTP/1.1 client for tests that need exact bytes on the wire."""

from __future__ import annotations

import anyio
import anyio.abc


async def read_until_closed(stream: anyio.abc.ByteStream, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks: list[bytes] = []
    with anyio.fail_after(timeout):
        while True:
            try:
                chunks.append(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return b"".join(chunks)


async def exchange(address: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and return all bytes until the server closes."""
    async with await anyio.connect_tcp(*address) as stream:
        await stream.send(data)
        return await read_until_closed(stream, timeout)


async def read_response(stream: anyio.abc.ByteStream, timeout: float = 10.0) -> bytes:
    """One complete response with a Content-Length body (keep-alive tests)."""
    buffer = b""
    with anyio.fail_after(timeout):
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive()
        head, _, body = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            body += await stream.receive()
    return head + b"\r\n\r\n" + body


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
