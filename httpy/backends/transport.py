"""The byte stream under an accepted TCP connection: the one place that picks one per
event loop.

Every driver reads and writes an :class:`anyio.abc.ByteStream`.  On asyncio that is
:class:`~httpy.backends.asyncio_transport.AsyncioSocketStream` (a protocol-callback
transport that only buffers bytes and resolves futures, measured cheaper than anyio's
own asyncio stream); on every other loop, anyio's socket stream.  TLS, when the listener
has it, is layered on top by :func:`~httpy.backends.tls.tls_handshake`.
"""

from __future__ import annotations

import socket

import anyio.abc
import sniffio

from .asyncio_transport import AsyncioSocketStream


async def open_socket_stream(sock: socket.socket) -> anyio.abc.ByteStream:
    """A byte stream over the connected, non-blocking ``sock`` (which it then owns)."""
    if sniffio.current_async_library() == "asyncio":
        return await AsyncioSocketStream.from_socket(sock)
    return await anyio.abc.SocketStream.from_socket(sock)
