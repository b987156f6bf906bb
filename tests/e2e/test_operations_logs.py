"""Logs: access log formats, X-Request-ID, request context in the error log, and the
rate limit per class of bad request."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from httpy.backends.logs import RateLimitedLog
from tests.e2e.operations_app import app
from tests.support.servers import running_server

CLF = re.compile(
    r'^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
    r'"GET /request\?x=1 HTTP/1\.1" 200 \d+$'
)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "httpy.access"]


@pytest.mark.anyio
async def test_common_log_format_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpy.access")
    async with running_server(app, access_log=True) as (host, port):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{host}:{port}/request?x=1")
            await client.get(f"http://{host}:{port}/nowhere", headers={"user-agent": "ua/1"})
    first, second = access_lines(caplog)
    assert CLF.match(first), first
    assert '"GET /nowhere HTTP/1.1" 404 ' in second


@pytest.mark.anyio
async def test_combined_format(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpy.access")
    async with running_server(app, access_log=True, access_log_format="combined") as (h, p):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://{h}:{p}/", headers={"user-agent": 'evil" "forged',
                                                          "referer": "https://a.example/"})
    (line,) = access_lines(caplog)
    # A quote in a header cannot forge another field of the line.
    assert line.endswith('"https://a.example/" "evil\\x22 \\x22forged"'), line


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
async def test_json_lines_with_request_id(
    caplog: pytest.LogCaptureFixture, http2: bool
) -> None:
    caplog.set_level(logging.INFO, logger="httpy.access")
    options = {"access_log": True, "access_log_format": "json", "request_id": True}
    async with running_server(app, **options) as (host, port):
        async with httpx.AsyncClient(http1=not http2, http2=http2) as client:
            given = await client.get(f"http://{host}:{port}/request?x=1",
                                     headers={"x-request-id": "trace-42"})
            generated = await client.get(f"http://{host}:{port}/request")
            invalid = await client.get(f"http://{host}:{port}/request",
                                       headers={"x-request-id": "has space"})
    assert given.headers["x-request-id"] == "trace-42"
    assert given.json()["request_id"] == "trace-42"
    new_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    assert generated.json()["request_id"] == new_id
    assert invalid.headers["x-request-id"] != "has space"
    records = [json.loads(line) for line in access_lines(caplog)]
    assert [r["request_id"] for r in records] == [
        "trace-42", new_id, invalid.headers["x-request-id"]
    ]
    first = records[0]
    assert first["method"] == "GET"
    assert first["path"] == "/request"
    assert first["query"] == "x=1"
    assert first["status"] == 200
    assert first["http_version"] == ("2" if http2 else "1.1")
    assert first["client"].startswith("127.0.0.1:")
    assert first["bytes"] > 0
    assert first["duration_ms"] >= 0


@pytest.mark.anyio
async def test_no_request_id_unless_asked() -> None:
    async with running_server(app) as (host, port):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{host}:{port}/request")
    assert "x-request-id" not in response.headers
    assert response.json()["request_id"] is None


@pytest.mark.anyio
async def test_error_log_carries_the_request_context(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="httpy.error")
    async with running_server(app, request_id=True) as (host, port):
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"http://{host}:{port}/boom", headers={"x-request-id": "req-7"}
            )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-7"
    (record,) = [r for r in caplog.records if "unhandled RuntimeError" in r.getMessage()]
    message = record.getMessage()
    assert "GET /boom" in message
    assert "client 127.0.0.1:" in message
    assert "request id req-7" in message
    assert record.exc_info is not None


def test_bad_request_lines_rate_limited_per_class(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("httpy.test.ratelimit")
    caplog.set_level(logging.WARNING, logger="httpy.test.ratelimit")
    log = RateLimitedLog(logger, rate=3)
    for i in range(20):
        log.warning("bad request from %s: %d %s", f"10.0.0.{i}", 400, "malformed")
    log.warning("TLS handshake with %s failed: %s", "10.0.0.1", "timeout")
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("bad request") for m in messages) == 3
    # A flood of one class does not silence another.
    assert "TLS handshake with 10.0.0.1 failed: timeout" in messages
