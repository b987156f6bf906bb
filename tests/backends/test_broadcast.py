"""httpy.broadcast in one process: the memory backend, and the Redis backend against a
real redis-server, on asyncio and trio."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from httpy.broadcast import Broadcast, SubscriberTooSlow, SubscriptionLost
from httpy.broadcast.redis import RedisConnection, RedisError
from tests.backends.broadcast_support import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "redis"])
def broadcast_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.mark.anyio
async def test_subscribers_get_messages_in_order(broadcast_url: str) -> None:
    broadcast = Broadcast(broadcast_url)
    received: dict[str, list[str]] = {"a": [], "b": []}
    try:
        async with broadcast.subscribe("room") as first, broadcast.subscribe("room") as second:
            async with broadcast.subscribe("other") as elsewhere:
                for i in range(5):
                    await broadcast.publish("room", f"m{i}")
                await broadcast.publish("other", "x")
                with anyio.fail_after(10):
                    for name, messages in (("a", first), ("b", second)):
                        async for message in messages:
                            received[name].append(message)
                            if len(received[name]) == 5:
                                break
                    assert await anext(aiter(elsewhere)) == "x"
    finally:
        await broadcast.aclose()
    assert received["a"] == received["b"] == [f"m{i}" for i in range(5)]


@pytest.mark.anyio
async def test_no_messages_from_before_subscribing_or_after_leaving(broadcast_url: str) -> None:
    broadcast = Broadcast(broadcast_url)
    try:
        await broadcast.publish("news", "too early")
        async with broadcast.subscribe("news") as messages:
            await broadcast.publish("news", "fresh")
            with anyio.fail_after(10):
                assert await anext(aiter(messages)) == "fresh"
        await broadcast.publish("news", "nobody listens")  # no error without subscribers
    finally:
        await broadcast.aclose()


@pytest.mark.anyio
async def test_unicode_and_large_messages(broadcast_url: str) -> None:
    broadcast = Broadcast(broadcast_url)
    big = "ü€" * 200_000
    try:
        async with broadcast.subscribe("ch") as messages:
            await broadcast.publish("ch", big)
            await broadcast.publish("ch", "")
            with anyio.fail_after(10):
                iterator = aiter(messages)
                assert await anext(iterator) == big
                assert await anext(iterator) == ""
    finally:
        await broadcast.aclose()


@pytest.mark.anyio
async def test_slow_memory_subscriber_is_dropped_not_waited_for() -> None:
    broadcast = Broadcast(max_buffer=3)
    async with broadcast.subscribe("ch") as slow:
        for i in range(10):
            await broadcast.publish("ch", str(i))  # never blocks the publisher
        with pytest.raises(SubscriberTooSlow):
            await anext(aiter(slow))


@pytest.mark.anyio
async def test_redis_errors(redis_url: str) -> None:
    connection = await RedisConnection.open(redis_url)
    try:
        with pytest.raises(RedisError, match="unknown command"):
            await connection.command("NOSUCHCOMMAND")
        assert await connection.command("PING") == b"PONG"
    finally:
        await connection.aclose()
    with pytest.raises(RedisError, match="cannot connect"):
        await RedisConnection.open("redis://127.0.0.1:1")


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="memory:// or redis://"):
        Broadcast("kafka://x")


@pytest.mark.anyio
async def test_lost_redis_connection_ends_the_subscription(redis_url: str) -> None:
    broadcast = Broadcast(redis_url)
    admin = await RedisConnection.open(redis_url)
    try:
        async with broadcast.subscribe("doomed") as messages:
            # Redis drops every pub/sub client (as on a restart or an overflow).
            await admin.command("CLIENT", "KILL", "TYPE", "pubsub")
            with anyio.fail_after(10), pytest.raises(SubscriptionLost):
                await anext(aiter(messages))
        # Publishing still works (the publisher connection is separate and reopened).
        await broadcast.publish("doomed", "after")
    finally:
        await admin.aclose()
        await broadcast.aclose()
