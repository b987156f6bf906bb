"""Binds beyond host:port: unix domain sockets, inherited descriptors, systemd sockets."""

from __future__ import annotations

import os
import signal
import socket
import stat
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from httpy import App, Config, Request, Response, serve
from tests.e2e.operations_helpers import httpy_command, running, stop
from tests.support.servers import running_server

app = App()


@app.get("/who")
async def who(request: Request) -> Response:
    return Response.json({"client": request.client, "scheme": request.scheme})


@pytest.mark.anyio
async def test_unix_domain_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "httpy.sock")
    async with running_server(app, binds=("127.0.0.1:0", f"unix:{path}")) as (host, port):
        transport = httpx.AsyncHTTPTransport(uds=path)
        async with httpx.AsyncClient(transport=transport) as client:
            over_unix = await client.get("http://localhost/who")
        async with httpx.AsyncClient() as client:
            over_tcp = await client.get(f"http://{host}:{port}/who")
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    # No peer address on a unix socket; the same app answers over TCP with one.
    assert over_unix.json() == {"client": None, "scheme": "http"}
    assert over_tcp.json()["client"][0] == "127.0.0.1"
    assert not await anyio.Path(path).exists()  # the server removed its socket file


@pytest.mark.anyio
async def test_stale_unix_socket_file_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # the file stays behind, as after a crash
    async with running_server(app, binds=("127.0.0.1:0", f"unix:{path}")):
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=path)) as client:
            assert (await client.get("http://localhost/who")).status_code == 200


@pytest.mark.anyio
async def test_inherited_descriptor_in_process() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    async with running_server(app, binds=(f"fd:{sock.detach()}",)):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/who")
    assert response.status_code == 200


def _bound_socket() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock, int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_descriptor_passed_to_child_process(backend: str) -> None:
    sock, port = _bound_socket()
    with sock:
        args = httpy_command(
            "examples.hello.app:app", "--fd", str(sock.fileno()), "--backend", backend
        )
        url = f"http://127.0.0.1:{port}/users/7"
        with running(args, lambda: httpx.get(url, timeout=2).status_code == 200,
                     pass_fds=(sock.fileno(),)) as process:
            assert httpx.get(url).json() == {"id": 7}
            output = stop(process, signal.SIGTERM)
    assert f"http://127.0.0.1:{port}" in output


SYSTEMD_EXEC = """
import os, sys
# What systemd does for socket activation: the socket on descriptor 3, LISTEN_FDS, and
# LISTEN_PID naming the process that execs the service.
os.dup2({fd}, 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-m", "httpy", "examples.hello.app:app"])
"""


def test_systemd_socket_activation() -> None:
    sock, port = _bound_socket()
    with sock:
        args = [sys.executable, "-c", SYSTEMD_EXEC.format(fd=sock.fileno())]
        url = f"http://127.0.0.1:{port}/users/3"
        with running(args, lambda: httpx.get(url, timeout=2).status_code == 200,
                     pass_fds=(sock.fileno(),)) as process:
            assert httpx.get(url).json() == {"id": 3}
            output = stop(process, signal.SIGINT)
    # The default 127.0.0.1:8000 was not bound: systemd's socket replaced it.
    assert ":8000" not in output


def test_uds_option_on_the_command_line(tmp_path: Path) -> None:
    path = str(tmp_path / "cli.sock")
    transport = httpx.HTTPTransport(uds=path)

    def ready() -> bool:
        # A raw probe first: httpcore leaks the socket of a failed unix connect.
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(path)
        return True

    with running(httpy_command("examples.hello.app:app", "--uds", path), ready) as process:
        with httpx.Client(transport=transport) as client:
            assert client.get("http://localhost/users/1").json() == {"id": 1}
        stop(process, signal.SIGTERM)
    assert not os.path.exists(path)


@pytest.mark.anyio
async def test_failed_bind_closes_what_was_opened(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "first.sock"
        config = Config(binds=(f"unix:{path}", f"127.0.0.1:{port}"), access_log=False)
        with pytest.raises(OSError):
            await serve(app, config)
        assert not path.exists()  # the unix socket opened first was closed and removed
