"""Publish/subscribe between tasks, processes and machines: rooms, chats, live updates.

::

    from httpy.broadcast import Broadcast

    broadcast = Broadcast()                            # one process (the default)
    broadcast = Broadcast("redis://localhost:6379")    # every process using that Redis

    await broadcast.publish("room:lobby", "hello")

    async with broadcast.subscribe("room:lobby") as messages:
        async for message in messages:                 # str, in publication order
            ...

A subscription receives the messages published on its channel after ``subscribe()``
has been entered (with Redis: once Redis has confirmed the subscription), and nothing
from before.  The memory backend reaches subscribers in this process only; the Redis
backend (pub/sub) reaches every subscriber of every process connected to that server,
so a chat room works across ``--workers`` and across machines.  Delivery is at most
once, as with Redis pub/sub: a subscriber that falls ``max_buffer`` messages behind is
dropped (its iteration raises :class:`SubscriberTooSlow`) rather than slowing the
publishers or growing memory without bound; a Redis subscription whose connection
breaks raises :class:`SubscriptionLost` (subscribe again to carry on).

Both backends run on asyncio and trio (see :mod:`httpy.broadcast.redis` for why the
Redis client is our own).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from urllib.parse import urlsplit

from .memory import BroadcastError, MemoryBackend, SubscriberTooSlow, SubscriptionLost

__all__ = [
    "Broadcast",
    "BroadcastBackend",
    "BroadcastError",
    "SubscriberTooSlow",
    "SubscriptionLost",
]

#: Messages a subscriber may fall behind before it is dropped.
DEFAULT_MAX_BUFFER = 1000


class BroadcastBackend(Protocol):
    """What :class:`Broadcast` delegates to."""

    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]: ...

    async def aclose(self) -> None: ...


class Broadcast:
    """Channels of ``str`` messages, on the backend that ``url`` names.

    ``url``: ``memory://`` (default) or ``redis://[:password@]host[:port][/db]``.
    """

    def __init__(self, url: str = "memory://", *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        scheme = urlsplit(url).scheme
        self.url = url
        self._backend: BroadcastBackend
        if scheme == "memory":
            self._backend = MemoryBackend(max_buffer)
        elif scheme == "redis":
            from .redis import RedisBackend

            self._backend = RedisBackend(url, max_buffer)
        else:
            raise ValueError(f"unknown broadcast backend {url!r}: use memory:// or redis://")

    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every current subscriber of ``channel``."""
        await self._backend.publish(channel, message)

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """``async with broadcast.subscribe(channel) as messages: async for m in messages``.

        Subscribed once the ``async with`` body starts; unsubscribed when it ends.
        """
        return self._backend.subscribe(channel)

    async def aclose(self) -> None:
        """Release the backend's connections (Redis); subscriptions end on their own."""
        await self._backend.aclose()

    def __repr__(self) -> str:
        return f"Broadcast({self.url!r})"
