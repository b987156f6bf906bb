"""``--workers N``: shared sockets, restarts, graceful drain, rolling restart, reload.

Real processes, real signals: each test starts ``python -m httpy`` with a supervisor.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.operations_helpers import (
    http_ready,
    httpy_command,
    running,
    spawn,
    stop,
)
from tests.support.servers import free_port

APP = "tests.e2e.operations_app:app"


def worker_pids(url: str, workers: int, attempts: int = 400) -> set[int]:
    """The pids answering on ``url`` (fresh connections, so the kernel spreads them)."""
    seen: set[int] = set()
    for _ in range(attempts):
        seen.add(httpx.get(url + "/pid", headers={"connection": "close"}).json()["pid"])
        if len(seen) == workers:
            break
    return seen


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    if not path.exists():
        pytest.skip("needs /proc/PID/task/PID/children (Linux)")
    return {int(p) for p in path.read_text().split()}


def wait_for_children(pid: int, count: int, exclude: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = children(pid) - exclude
        if len(now) >= count:
            return now
        time.sleep(0.1)
    raise AssertionError(f"supervisor {pid} has children {children(pid)}, wanted {count}")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_workers_share_the_socket_and_survive_kill_9(backend: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "2", "--backend", backend)
    with running(args, http_ready(url + "/")) as supervisor:
        pids = wait_for_children(supervisor.pid, 2)
        # Both workers accept from the same socket.
        assert worker_pids(url, 2) <= pids
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        replacement = wait_for_children(supervisor.pid, 1, exclude=pids)
        # Requests keep being answered while and after the worker is replaced.
        for _ in range(20):
            assert httpx.get(url + "/").text == "ok\n"
        assert victim not in children(supervisor.pid)
        assert len(children(supervisor.pid)) == 2
        output = stop(supervisor, signal.SIGTERM)
    assert f"worker {victim} exited" in output
    assert "received SIGTERM: stopping 2 worker(s)" in output
    assert output.count("httpy stopped") >= 2  # the workers drained and stopped
    assert replacement


def test_sigterm_drains_requests_in_flight(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "2")
    with running(args, http_ready(url + "/")) as supervisor:
        results: list[httpx.Response] = []

        def slow_request() -> None:
            results.append(
                httpx.get(url + "/slow", params={"seconds": 1.5, "marker": marker}, timeout=30)
            )

        thread = threading.Thread(target=slow_request)
        thread.start()
        deadline = time.monotonic() + 30
        while not marker.exists():  # the handler has started
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop(supervisor, signal.SIGTERM)
        thread.join()
    assert results and results[0].status_code == 200
    assert results[0].json()["slept"] is True
    assert results[0].headers["connection"] == "close"  # answered during the drain


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_rolling_restart_drops_no_connection(backend: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "2", "--backend", backend)
    with running(args, http_ready(url + "/")) as supervisor:
        before = wait_for_children(supervisor.pid, 2)
        errors: list[BaseException] = []
        answered: list[int] = []
        done = threading.Event()

        def client_loop() -> None:
            # Fresh connections, as a load balancer opens them, for the whole restart.
            while not done.is_set():
                try:
                    response = httpx.get(url + "/pid", headers={"connection": "close"})
                    answered.append(response.json()["pid"])
                except Exception as exc:
                    errors.append(exc)

        clients = [threading.Thread(target=client_loop) for _ in range(4)]
        for thread in clients:
            thread.start()
        supervisor.send_signal(signal.SIGHUP)
        after = wait_for_children(supervisor.pid, 2, exclude=before)
        # Keep the clients going until the new workers answer and the old ones are gone.
        deadline = time.monotonic() + 30
        while children(supervisor.pid) & before and time.monotonic() < deadline:
            time.sleep(0.1)
        count = len(answered)
        while len(answered) < count + 50:
            time.sleep(0.05)
        done.set()
        for thread in clients:
            thread.join()
        output = stop(supervisor, signal.SIGTERM)
    assert errors == []
    assert set(answered) & before and set(answered) & after  # both generations answered
    assert not children_alive(before)
    assert "SIGHUP: rolling restart of 2 worker(s)" in output


def children_alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.add(pid)
        except ProcessLookupError:
            pass
    return alive


def test_app_that_fails_to_start_exits_non_zero() -> None:
    port = free_port()
    process = spawn(
        httpy_command(APP, "--port", str(port), "--workers", "2"),
        env={"HTTPY_TEST_FAIL_STARTUP": "1"},
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    text = output.decode()
    assert text.count("config file /etc/app.toml is missing") == 1  # once, not per worker
    assert "a worker failed to start: stopping" in text


def test_unimportable_app_exits_non_zero() -> None:
    process = spawn(httpy_command("no_such_module_x:app", "--workers", "2", "--port", "0"))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "cannot import 'no_such_module_x'" in output.decode()


def test_unix_socket_shared_by_workers(tmp_path: Path) -> None:
    path = str(tmp_path / "w.sock")

    def ready() -> bool:
        return os.path.exists(path)  # bound by the supervisor: the workers will accept

    with running(httpy_command(APP, "--uds", path, "--workers", "2"), ready) as supervisor:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
            assert client.get("http://localhost/", timeout=30).text == "ok\n"
        stop(supervisor, signal.SIGINT)
    assert not os.path.exists(path)


RELOAD_APP_V1 = '''
from httpy import App, Request, Response
app = App()

@app.get("/")
async def index(request: Request) -> Response:
    return Response.text("version 1")
'''


def test_reload_serves_the_edited_code(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    source = tmp_path / "reload_app.py"
    source.write_text(RELOAD_APP_V1)
    args = httpy_command("reload_app:app", "--port", str(port), "--reload",
                         "--app-dir", str(tmp_path))
    with running(args, http_ready(url)) as supervisor:
        assert httpx.get(url).text == "version 1"
        # A broken edit leaves the running version serving...
        source.write_text(RELOAD_APP_V1 + "\nthis is not python\n")
        time.sleep(1.5)
        assert httpx.get(url).text == "version 1"
        # ...and the next good edit is served.
        source.write_text(RELOAD_APP_V1.replace("version 1", "version 2"))
        deadline = time.monotonic() + 30
        while httpx.get(url).text != "version 2":
            assert time.monotonic() < deadline, "the edit was not picked up"
            time.sleep(0.2)
        output = stop(supervisor, signal.SIGTERM)
    assert "source changed: reloading" in output


def test_workers_with_reuse_port() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "2", "--reuse-port")
    with running(args, http_ready(url + "/")) as supervisor:
        pids = wait_for_children(supervisor.pid, 2)
        assert worker_pids(url, 2) <= pids
        stop(supervisor, signal.SIGTERM)


def test_supervisor_gone_stops_the_workers() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "1")
    with running(args, http_ready(url + "/")) as supervisor:
        (worker,) = wait_for_children(supervisor.pid, 1)
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 15
        while children_alive({worker}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not children_alive({worker})


def test_tls_and_mutual_tls_through_workers(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1")
    server.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_cert = authority.issue_cert("carol@example.com", common_name="carol")
    context = ssl.create_default_context()
    authority.configure_trust(context)
    client_cert.configure_cert(context)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    args = httpy_command(
        APP, "--bind", f"127.0.0.1:{free_port()}", "--tls-bind", f"127.0.0.1:{port}",
        "--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem"),
        "--ca-certs", str(tmp_path / "ca.pem"), "--require-client-cert", "--workers", "2",
    )
    with running(args, http_ready(url + "/", verify=context)) as supervisor:
        with httpx.Client(verify=context) as client:
            assert client.get(url + "/request").json()["scheme"] == "https"
        bare = ssl.create_default_context()
        authority.configure_trust(bare)
        with httpx.Client(verify=bare) as client, pytest.raises(httpx.TransportError):
            client.get(url + "/")  # no client certificate: refused
        output = stop(supervisor, signal.SIGTERM)
    assert "HTTP/2 and HTTP/1.1 (TLS) on https://127.0.0.1:" in output


def test_shutdown_hooks_run_in_every_worker() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command(APP, "--port", str(port), "--workers", "2")
    env = {"HTTPY_TEST_PRINT_HOOKS": "1"}
    with running(args, http_ready(url + "/"), env=env) as supervisor:
        pids = worker_pids(url, 2)  # both workers answer: both started
        assert len(pids) == 2
        output = stop(supervisor, signal.SIGTERM)
    for pid in pids:
        assert output.count(f"hook: startup in {pid}") == 1
        assert output.count(f"hook: shutdown in {pid}") == 1
