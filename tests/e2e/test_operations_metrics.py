"""Health check and Prometheus metrics: off by default, counting when on."""

from __future__ import annotations

import re
import signal

import anyio
import httpx
import pytest

from httpy import Config
from httpy.backends.metrics import OperationsApp
from tests.e2e.operations_app import app
from tests.e2e.operations_helpers import http_ready, httpy_command, running, stop
from tests.support.servers import free_port, running_server


def sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in:\n{text}"
    return float(match.group(1))


@pytest.mark.anyio
async def test_off_by_default() -> None:
    async with running_server(app) as (host, port):
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://{host}:{port}/healthz")).status_code == 404
            assert (await client.get(f"http://{host}:{port}/metrics")).status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_metrics_count_requests_status_classes_and_bytes(http2: bool) -> None:
    options = {"health_path": "/healthz", "metrics_path": "/metrics"}
    async with running_server(app, **options) as (host, port):
        base = f"http://{host}:{port}"
        async with httpx.AsyncClient(http1=not http2, http2=http2) as client:
            health = await client.get(base + "/healthz")
            for _ in range(3):
                await client.get(base + "/")
            await client.get(base + "/missing")
            await client.get(base + "/boom")
            await client.request("PURGE", base + "/")
            metrics = await client.get(base + "/metrics")
    assert health.status_code == 200
    assert health.text == "ok\n"
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert sample(text, "httpy_requests_total", '{method="GET",status="2xx"}') == 3
    assert sample(text, "httpy_requests_total", '{method="GET",status="4xx"}') == 1
    assert sample(text, "httpy_requests_total", '{method="GET",status="5xx"}') == 1
    assert sample(text, "httpy_requests_total", '{method="other",status="4xx"}') == 1
    assert sample(text, "httpy_active_connections") == 1  # this client's connection
    assert sample(text, "httpy_active_requests") == 0
    assert sample(text, "httpy_response_body_bytes_total") >= 3 * len(b"ok\n")
    assert "/healthz" not in text  # the endpoints are not counted
    assert "# TYPE httpy_requests_total counter" in text


@pytest.mark.anyio
async def test_request_body_bytes_and_active_requests() -> None:
    async with running_server(app, metrics_path="/metrics") as (host, port):
        base = f"http://{host}:{port}"
        async with httpx.AsyncClient() as client, anyio.create_task_group() as tasks:
            tasks.start_soon(client.get, base + "/slow?seconds=2")
            with anyio.fail_after(10):
                while True:
                    text = (await client.get(base + "/metrics")).text
                    if sample(text, "httpy_active_requests") == 1:
                        break
                    await anyio.sleep(0.05)
            assert sample(text, "httpy_active_connections") == 2
            await client.post(base + "/nowhere", content=b"x" * 1000)
            text = (await client.get(base + "/metrics")).text
            tasks.cancel_scope.cancel()
    # A 404 route doesn't read the body; bytes_in counts what the app read.
    assert sample(text, "httpy_request_body_bytes_total") in (0, 1000)


@pytest.mark.anyio
async def test_health_answers_503_once_draining() -> None:
    # The server's own flag, seen through the endpoint (here flipped by the test).
    draining = False
    wrapped = OperationsApp(app, Config(health_path="/healthz"), None, lambda: draining)
    async with running_server(wrapped) as (host, port):
        async with httpx.AsyncClient() as client:
            before = await client.get(f"http://{host}:{port}/healthz")
            draining = True
            during = await client.get(f"http://{host}:{port}/healthz")
            head = await client.head(f"http://{host}:{port}/healthz")
    assert (before.status_code, before.text) == (200, "ok\n")
    assert (during.status_code, during.text) == (503, "draining\n")
    assert head.status_code == 503
    assert head.content == b""


def test_command_line_options() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = httpy_command("tests.e2e.operations_app:app", "--port", str(port),
                         "--health-path", "/healthz", "--metrics-path", "/metrics")
    with running(args, http_ready(url + "/healthz")) as process:
        httpx.get(url + "/")
        text = httpx.get(url + "/metrics").text
        stop(process, signal.SIGTERM)
    assert sample(text, "httpy_requests_total", '{method="GET",status="2xx"}') == 1
