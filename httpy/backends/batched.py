"""What the server's own connection streams add to an anyio byte stream: batched writes.

Both loops' TCP streams (:class:`~httpy.backends.asyncio_transport.AsyncioSocketStream`,
:class:`~httpy.backends.trio_transport.TrioSocketStream`) hold a write until the end of
the event loop's pass (asyncio) or scheduler batch (trio), then make the writes of every
connection together.  Sent one by one, between handlers, each response woke a client
that had gone back to sleep, and that wake-up is charged to the server's ``send``: on
the loopback benchmark the batch was worth +15 % (asyncio) and +25 % (trio) requests/s.

:func:`~httpy.backends.send.send_nowait` and :func:`~httpy.backends.transport.close_stream`
use this interface; everything else sees a plain :class:`anyio.abc.ByteStream`.
"""

from __future__ import annotations

from abc import abstractmethod

import anyio.abc


class BatchedStream(anyio.abc.ByteStream):
    """A connection stream whose writes leave at the end of the loop's pass."""

    @abstractmethod
    def write(self, item: bytes) -> bool:
        """Queue ``item`` (in order after earlier writes) without waiting.  False when
        the writer should :meth:`drain` before writing more (too much is queued, or the
        peer is not reading).  Raises the stream's error when the peer is gone."""

    @property
    @abstractmethod
    def unsent_bytes(self) -> int:
        """Bytes written that the kernel has not taken yet (what the peer has not read
        once the socket buffer is full): the send-progress rule measures its fall."""

    @abstractmethod
    async def drain(self, max_wait: float | None = None) -> None:
        """Write what is queued now and wait until the stream takes more, at most
        ``max_wait`` seconds (then :class:`TimeoutError`)."""

    @abstractmethod
    def close(self) -> None:
        """Close without waiting: what was written still goes out first."""
