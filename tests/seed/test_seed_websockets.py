"""The seed's WebSocket snippets (chat room, data stream), unchanged, in a server process
on each backend, driven by the websockets library."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import pytest
import websockets

from tests.seed.test_seed_snippets import backend, snippet_server

__all__ = ["backend"]  # the asyncio/trio fixture

pytestmark = pytest.mark.timeout(60)


def _stop(process: object) -> str:
    import subprocess

    assert isinstance(process, subprocess.Popen)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    return str(out)


async def _recv(ws: websockets.ClientConnection) -> str:
    message = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(message, str)
    return message


async def _chat(url: str) -> None:
    async with websockets.connect(url + "/ws/chat/r1") as alice:
        assert await _recv(alice) == "Welcome to chat room: r1"
        async with websockets.connect(url + "/ws/chat/r1") as bob:
            assert await _recv(bob) == "Welcome to chat room: r1"
            assert await _recv(alice) == "User joined the room"
            async with websockets.connect(url + "/ws/chat/r2") as carol:
                assert await _recv(carol) == "Welcome to chat room: r2"
                note = {"sender": "alice", "message": "hi r1", "timestamp": "t1"}
                await alice.send(json.dumps(note))
                assert json.loads(await _recv(alice)) == note
                assert json.loads(await _recv(bob)) == note
                # carol's next message is her own: nothing from r1 reached r2
                await carol.send(json.dumps({"message": "hi r2"}))
                assert json.loads(await _recv(carol)) == {
                    "sender": "Anonymous",
                    "message": "hi r2",
                    "timestamp": "",
                }
        # bob has left (closing handshake done); give his handler a moment to run its
        # finally, which removes him from the room
        await asyncio.sleep(0.2)
        await alice.send(json.dumps({"sender": "alice", "message": "alone"}))
        assert json.loads(await _recv(alice))["message"] == "alone"
        async with websockets.connect(url + "/ws/chat/r1") as dave:
            assert await _recv(dave) == "Welcome to chat room: r1"
            assert await _recv(alice) == "User joined the room"


def test_chat_room_snippet(tmp_path: Path, backend: str) -> None:
    with snippet_server("seed_websockets", tmp_path, backend) as (base, process):
        asyncio.run(_chat(base.replace("http://", "ws://")))
        output = _stop(process)
    assert "WebSocket error" not in output


async def _data_stream(url: str, messages: int) -> int | None:
    async with websockets.connect(url + "/ws/data-stream") as ws:
        assert await _recv(ws) == "Starting data stream..."
        for _ in range(messages):
            data = json.loads(await _recv(ws))
            assert set(data) == {"timestamp", "value", "status"}
            assert 0 <= data["value"] <= 100
            assert data["status"] in ("normal", "warning", "critical")
        if messages == 0:
            # trio: the snippet's asyncio.sleep fails after the first data message;
            # the snippet catches it and closes the connection normally
            json.loads(await _recv(ws))
            with pytest.raises(websockets.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


def test_data_stream_snippet(tmp_path: Path, backend: str) -> None:
    with snippet_server("seed_websockets", tmp_path, backend) as (base, process):
        url = base.replace("http://", "ws://")
        code = asyncio.run(_data_stream(url, 3 if backend == "asyncio" else 0))
        output = _stop(process)
    assert code == 1000
    assert "Traceback" not in output
    if backend == "trio":
        # The snippet paces itself with asyncio.sleep, which needs an asyncio loop: on
        # trio it raises, and the snippet's own handler reports it.
        assert "Data stream error: no running event loop" in output


def test_example_app_holds_the_snippets_verbatim() -> None:
    seed = Path(__file__).resolve().parents[2].parent / "shared" / "seed" / "ADVANCED_USAGE.md"
    if not seed.exists():
        pytest.skip(f"seed not found at {seed}")
    blocks = re.findall(r"```python\n(.*?)```", seed.read_text(), re.S)
    examples = Path(__file__).resolve().parents[2] / "examples" / "websockets"
    for name, index in (("chat.py", 5), ("data_stream.py", 6)):
        text = (examples / name).read_text()
        body = re.search(
            rf"# --- BEGIN SEED SNIPPET {index} ---\n(.*?)# --- END SEED SNIPPET {index} ---",
            text,
            re.S,
        )
        assert body is not None and body.group(1) == blocks[index], name


async def _chat_h2(host: str, port: int) -> None:
    from tests.support.h2ws import h2_connect

    async with h2_connect(host, port) as c1, h2_connect(host, port) as c2:
        async with h2_connect(host, port) as c3:
            alice = await c1.open("/ws/chat/r1")
            assert alice.status == 200
            assert await alice.recv() == "Welcome to chat room: r1"
            bob = await c2.open("/ws/chat/r1")
            assert await bob.recv() == "Welcome to chat room: r1"
            assert await alice.recv() == "User joined the room"
            carol = await c3.open("/ws/chat/r2")
            assert await carol.recv() == "Welcome to chat room: r2"
            note = {"sender": "alice", "message": "over h2", "timestamp": "t"}
            await alice.send(json.dumps(note))
            assert json.loads(str(await alice.recv())) == note
            assert json.loads(str(await bob.recv())) == note
            await carol.send(json.dumps({"sender": "carol", "message": "r2 only"}))
            assert json.loads(str(await carol.recv()))["sender"] == "carol"
            await bob.close()
            await bob.wait_ended()


def test_chat_room_snippet_over_http2(tmp_path: Path, backend: str) -> None:
    import anyio

    with snippet_server("seed_websockets", tmp_path, backend) as (base, process):
        host, port = base.removeprefix("http://").split(":")
        anyio.run(_chat_h2, host, int(port))
        output = _stop(process)
    assert "WebSocket error" not in output


async def _data_stream_h2(host: str, port: int, messages: int) -> None:
    from tests.support.h2ws import h2_connect

    async with h2_connect(host, port) as client:
        ws = await client.open("/ws/data-stream")
        assert await ws.recv() == "Starting data stream..."
        for _ in range(messages):
            data = json.loads(str(await ws.recv()))
            assert set(data) == {"timestamp", "value", "status"}
        await ws.close()
        await ws.wait_ended()


def test_data_stream_snippet_over_http2(tmp_path: Path, backend: str) -> None:
    import anyio

    with snippet_server("seed_websockets", tmp_path, backend) as (base, process):
        host, port = base.removeprefix("http://").split(":")
        anyio.run(_data_stream_h2, host, int(port), 2 if backend == "asyncio" else 0)
        output = _stop(process)
    assert "Traceback" not in output
