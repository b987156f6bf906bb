"""``from httpy.testing import TestClient``: see :mod:`httpy.framework.testing`."""

from .framework.testing import AsyncTestClient, TestClient, TestResponse

__all__ = ["AsyncTestClient", "TestClient", "TestResponse"]
