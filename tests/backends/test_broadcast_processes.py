"""The chat room across processes: clients on different server processes (one on
asyncio, one on trio; and two workers of one --workers server) talk through Redis."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.backends.broadcast_support import redis_server
from tests.e2e.operations_helpers import httpy_command, running, stop
from tests.support.servers import free_port

APP = "examples.broadcast_chat.app:app"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def ready(port: int) -> bool:
    # Any HTTP answer (404 here) means the server is up.
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 404


def join(stack: ExitStack, port: int, room: str) -> tuple[ClientConnection, str]:
    """Connect, read the welcome and our own "joined"; the serving process' pid."""
    ws = stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws/chat/{room}", open_timeout=10))
    welcome = str(ws.recv(timeout=10))
    assert welcome.startswith(f"Welcome to chat room: {room}")
    assert json.loads(ws.recv(timeout=10)) == {"sender": "system", "message": "joined"}
    return ws, welcome.rsplit(" ", 1)[1].rstrip(")")


def converse(first: ClientConnection, second: ClientConnection) -> None:
    # The first client sees the second one join, through Redis.
    assert json.loads(first.recv(timeout=10)) == {"sender": "system", "message": "joined"}
    first.send(json.dumps({"sender": "ann", "message": "hello from one process"}))
    expected = {"sender": "ann", "message": "hello from one process", "timestamp": ""}
    assert json.loads(second.recv(timeout=10)) == expected
    assert json.loads(first.recv(timeout=10)) == expected  # the sender's own copy
    second.send(json.dumps({"sender": "bob", "message": "and back"}))
    assert json.loads(first.recv(timeout=10))["message"] == "and back"
    assert json.loads(second.recv(timeout=10))["message"] == "and back"


def test_chat_across_two_server_processes(redis_url: str) -> None:
    env = {"BROADCAST_URL": redis_url}
    port_a, port_b = free_port(), free_port()
    with running(httpy_command(APP, "--port", str(port_a), "--backend", "asyncio"),
                 lambda: ready(port_a), env=env) as server_a:
        with running(httpy_command(APP, "--port", str(port_b), "--backend", "trio"),
                     lambda: ready(port_b), env=env) as server_b:
            with ExitStack() as stack:
                first, pid_a = join(stack, port_a, "lobby")
                second, pid_b = join(stack, port_b, "lobby")
                assert pid_a != pid_b
                converse(first, second)
                # Another room hears nothing of it.
                elsewhere, _ = join(stack, port_b, "kitchen")
                first.send(json.dumps({"sender": "ann", "message": "lobby only"}))
                assert json.loads(second.recv(timeout=10))["message"] == "lobby only"
                assert json.loads(first.recv(timeout=10))["message"] == "lobby only"
                with pytest.raises(TimeoutError):
                    elsewhere.recv(timeout=0.5)
            stop(server_b, signal.SIGTERM)
        stop(server_a, signal.SIGTERM)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_chat_across_workers(redis_url: str, backend: str) -> None:
    port = free_port()
    args = httpy_command(APP, "--port", str(port), "--workers", "2", "--backend", backend)
    with running(args, lambda: ready(port), env={"BROADCAST_URL": redis_url}) as supervisor:
        with ExitStack() as stack:
            first, pid_first = join(stack, port, "lobby")
            # Connect until the kernel hands a connection to the other worker.
            same_worker = 0
            for _ in range(200):
                with ExitStack() as attempt:
                    second, pid_second = join(attempt, port, "lobby")
                    if pid_second != pid_first:
                        stack.enter_context(attempt.pop_all())
                        break
                    same_worker += 1
            else:
                pytest.fail("every connection went to the same worker")
            # The "joined" notices of the connections that landed on the first worker.
            for _ in range(same_worker):
                assert json.loads(first.recv(timeout=10))["message"] == "joined"
            converse(first, second)
        stop(supervisor, signal.SIGTERM)
