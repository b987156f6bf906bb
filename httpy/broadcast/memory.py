"""The in-process broadcast backend, and the bounded per-subscriber queue both use."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class BroadcastError(Exception):
    """A subscription ended abnormally: its iteration raises a subclass of this."""


class SubscriberTooSlow(BroadcastError):
    """This subscriber fell too far behind and was dropped (messages were lost)."""


class SubscriptionLost(BroadcastError):
    """The backend connection carrying the subscription broke (Redis restarted, the
    network failed, or Redis dropped a subscriber over its output buffer limit)."""


class Subscription:
    """One subscriber's queue: bounded, and failing (not blocking) when it overflows.

    Publishers never wait for subscribers: a full queue marks the subscription as
    overflowed, and the subscriber's next read raises :class:`SubscriberTooSlow`.
    """

    def __init__(self, channel: str, max_buffer: int) -> None:
        self.channel = channel
        self._max = max_buffer
        self._queue: deque[str] = deque()
        self._ready = anyio.Event()
        self._overflowed = False
        self._closed = False

    def put(self, message: str) -> None:
        if self._closed or self._overflowed:
            return
        if len(self._queue) >= self._max:
            self._overflowed = True
            self._queue.clear()
        else:
            self._queue.append(message)
        self._ready.set()

    def close(self) -> None:
        """End the iteration (after what is queued)."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while True:
            if self._overflowed:
                raise SubscriberTooSlow(
                    f"subscriber of {self.channel!r} fell {self._max} messages behind"
                )
            if self._queue:
                return self._queue.popleft()
            if self._closed:
                raise StopAsyncIteration
            self._ready = anyio.Event()
            await self._ready.wait()


class MemoryBackend:
    """Channels within one process (one event loop)."""

    def __init__(self, max_buffer: int) -> None:
        self._max_buffer = max_buffer
        self._channels: defaultdict[str, set[Subscription]] = defaultdict(set)

    async def publish(self, channel: str, message: str) -> None:
        for subscription in list(self._channels.get(channel, ())):
            subscription.put(message)
        await anyio.lowlevel.checkpoint()

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        subscription = Subscription(channel, self._max_buffer)
        self._channels[channel].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._channels.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._channels[channel]
            subscription.close()

    async def aclose(self) -> None:
        for subscribers in self._channels.values():
            for subscription in subscribers:
                subscription.close()
