"""End-to-end fixtures: the real server in a thread, on each backend, for real clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.hello.app import app as hello_app
from tests.support.servers import server_thread


@pytest.fixture(params=["asyncio", "trio"])
def server_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hello_server(server_backend: str) -> Iterator[str]:
    """Base URL of the hello example app, served on ``server_backend``."""
    with server_thread(hello_app, server_backend) as (host, port):
        yield f"http://{host}:{port}"
