"""The Redis broadcast backend: PUBLISH / SUBSCRIBE over a small RESP client of our own.

Why not the ``redis`` package: its asyncio client is built on asyncio streams and does
not run under trio, and HTTPy apps run on both.  Pub/sub needs four commands (AUTH,
SELECT, PUBLISH, SUBSCRIBE) and the RESP2 reply grammar (five reply types), about a
hundred lines over anyio's sockets, which run on both.

Connections:

* publishing shares one connection per :class:`RedisBackend` (opened on first use,
  commands serialised by a lock; reopened once if Redis went away);
* each subscription has its own connection, read in the subscriber's own task: no
  background task, so nothing to start or stop with the app, and a subscription ends
  cleanly when its ``async with`` does.  This costs a Redis connection per subscriber
  (Redis allows 10 000 clients by default); Redis itself drops a subscriber that
  falls too far behind (``client-output-buffer-limit pubsub``), which ends its
  iteration with :class:`~httpy.broadcast.memory.SubscriptionLost`, as does any lost
  connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Union
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from .memory import SubscriptionLost

#: The longest reply line (status, error, length prefixes) and bulk string we accept.
MAX_LINE = 64 * 1024
MAX_BULK = 64 * 1024 * 1024

Reply = Union[bytes, int, None, list["Reply"]]  # noqa: UP007 - a recursive alias


class RedisError(Exception):
    """Redis answered with an error, or the connection failed."""


class RedisConnection:
    """One RESP2 connection: send commands, read replies."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)

    @classmethod
    async def open(cls, url: str) -> RedisConnection:
        """Connect to ``redis://[:password@]host[:port][/db]``; AUTH and SELECT as asked."""
        parts = urlsplit(url)
        try:
            stream = await anyio.connect_tcp(parts.hostname or "localhost", parts.port or 6379)
        except OSError as exc:
            raise RedisError(f"cannot connect to {url}: {exc}") from exc
        connection = cls(stream)
        try:
            if parts.password:
                auth = [unquote(parts.password)]
                if parts.username:
                    auth.insert(0, unquote(parts.username))
                await connection.command("AUTH", *auth)
            database = parts.path.lstrip("/")
            if database and database != "0":
                await connection.command("SELECT", database)
        except BaseException:
            await connection.aclose()
            raise
        return connection

    async def command(self, *args: str | bytes) -> Reply:
        await self.send(*args)
        return await self.read_reply()

    async def send(self, *args: str | bytes) -> None:
        encoded = [a.encode() if isinstance(a, str) else a for a in args]
        out = [b"*%d\r\n" % len(encoded)]
        for arg in encoded:
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        try:
            await self._stream.send(b"".join(out))
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            raise RedisError(f"lost the connection to Redis: {exc!r}") from exc

    async def read_reply(self) -> Reply:
        try:
            return await self._read()
        except (
            OSError,
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.DelimiterNotFound,
        ) as exc:
            raise RedisError(f"lost the connection to Redis: {exc!r}") from exc

    async def _read(self) -> Reply:
        line = await self._reader.receive_until(b"\r\n", MAX_LINE)
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            if length > MAX_BULK:
                raise RedisError(f"bulk reply of {length} bytes is over our limit")
            data = await self._reader.receive_exactly(length + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            return [await self._read() for _ in range(count)]
        raise RedisError(f"not a RESP reply: {line[:40]!r}")

    async def aclose(self) -> None:
        await self._stream.aclose()


class RedisBackend:
    """Channels shared by every process connected to one Redis server."""

    def __init__(self, url: str, max_buffer: int) -> None:
        self.url = url
        self._publisher: RedisConnection | None = None
        self._lock = anyio.Lock()

    async def publish(self, channel: str, message: str) -> None:
        async with self._lock:
            for attempt in (1, 2):
                if self._publisher is None:
                    self._publisher = await RedisConnection.open(self.url)
                try:
                    await self._publisher.command("PUBLISH", channel, message)
                    return
                except RedisError:
                    stale, self._publisher = self._publisher, None
                    await stale.aclose()
                    if attempt == 2:
                        raise

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[str]]:
        connection = await RedisConnection.open(self.url)
        try:
            reply = await connection.command("SUBSCRIBE", channel)
            if not (isinstance(reply, list) and reply and reply[0] == b"subscribe"):
                raise RedisError(f"unexpected reply to SUBSCRIBE: {reply!r}")
            yield _Messages(connection, channel)
        finally:
            with anyio.CancelScope(shield=True):
                await connection.aclose()

    async def aclose(self) -> None:
        async with self._lock:
            if self._publisher is not None:
                await self._publisher.aclose()
                self._publisher = None


class _Messages:
    """A subscription's messages, read from its connection by the subscriber's task.

    A class, not an async generator: the subscriber may stop iterating at any point,
    and an abandoned generator is only cleaned up by the garbage collector.
    """

    def __init__(self, connection: RedisConnection, channel: str) -> None:
        self._connection = connection
        self._channel = channel

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                reply = await self._connection.read_reply()
            except RedisError as exc:
                raise SubscriptionLost(f"subscription to {self._channel!r} ended: {exc}") from exc
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                data = reply[2]
                if isinstance(data, bytes):
                    return data.decode("utf-8", "replace")
