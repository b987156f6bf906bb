"""Test clients that run the real application through the real HTTP/1.1 core and
connection driver, in memory: no sockets, no ports.

Async tests::

    async with AsyncTestClient(app) as client:
        response = await client.get("/users/1")

Sync tests (a private event loop runs in a thread; ``backend="trio"`` works too)::

    with TestClient(app) as client:
        assert client.get("/").status_code == 200
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import anyio
import h11
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ..backends.connection import ConnectionContext
from ..backends.http1_driver import HTTP1Driver
from ..backends.http2_driver import HTTP2Driver
from ..backends.memory import MemoryByteStream, memory_stream_pair
from ..core.application import Application, LifespanApplication
from ..core.config import Config
from ..core.headers import Headers
from .asgi import ASGIApp, as_application
from .testing_common import SERVER_NAME, OutgoingRequest, RawResponse
from .testing_h2 import exchange_h2
from .testing_ws import (
    SyncWebSocketTestSession,
    WebSocketTestSession,
    sync_websocket_connect,
    websocket_connect,
)

_TEST_CLIENT = ("testclient", 50000)
_TEST_SERVER = (SERVER_NAME, 80)


class TestResponse:
    """A response as the test client received it."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        content: bytes,
        version: str,
        *,
        path: str | None = None,
        pushed: list[TestResponse] | None = None,
        trailers: Headers | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.http_version = version
        #: The request path of a pushed response (None for the response to the request).
        self.path = path
        #: Responses the server pushed with this one (HTTP/2 test client only).
        self.pushed: list[TestResponse] = pushed if pushed is not None else []
        #: Trailer fields after the body (HTTP/2; HTTP/1.1 when the request had
        #: ``TE: trailers``).
        self.trailers = trailers if trailers is not None else Headers()

    @property
    def status(self) -> int:
        return self.status_code

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


R = TypeVar("R", covariant=True)


class _Methods(Generic[R]):
    """``get``, ``head``, ``options``, ``post``, ``put``, ``patch`` and ``delete`` for
    both clients, over the client's ``request(method, path, **kwargs)``, which returns
    ``R``: a response, or for the async client a coroutine that returns one."""

    __test__ = False  # not a pytest test class

    def request(self, *args: Any, **kwargs: Any) -> R:
        # Each client spells out its own signature (this one only types the methods).
        raise NotImplementedError

    def get(self, path: str, **kwargs: Any) -> R:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> R:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> R:
        return self.request("OPTIONS", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> R:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> R:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> R:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> R:
        return self.request("DELETE", path, **kwargs)


class AsyncTestClient(_Methods[Coroutine[Any, Any, TestResponse]]):
    """Sends each request over a fresh in-memory HTTP/1.1 connection to ``app``.

    ``app`` may be an ASGI 3 application too.  ``async with`` runs the app's startup
    hooks on entry and its shutdown hooks on exit (its lifespan), as a server would.

    ``http_version="2"`` speaks HTTP/2 instead (h2c with prior knowledge, through the
    real HTTP/2 core and driver); the client allows server push, and pushed responses
    are in ``response.pushed`` (each with its ``path``).  ``http_version="3"`` speaks
    HTTP/3 through the real HTTP/3 core and driver over in-memory datagrams (needs the
    ``http3`` extra; see :mod:`httpy.framework.testing_h3`).
    """

    def __init__(
        self,
        app: Application | ASGIApp,
        config: Config | None = None,
        *,
        http_version: str = "1.1",
    ) -> None:
        if http_version not in ("1.1", "2", "3"):
            raise ValueError(f"http_version must be '1.1', '2' or '3', not {http_version!r}")
        self._context = ConnectionContext.create(
            as_application(app), config or Config(access_log=False)
        )
        self._http_version = http_version
        self._lifespan: AbstractAsyncContextManager[None] | None = None

    async def __aenter__(self) -> AsyncTestClient:
        app = self._context.app
        if isinstance(app, LifespanApplication):
            lifespan = app.lifespan()
            await lifespan.__aenter__()
            self._lifespan = lifespan
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.__aexit__(None, None, None)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        trailers: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """Send one request.  ``trailers`` follow the body (on HTTP/1.1 the body is then
        sent chunked)."""
        outgoing = _outgoing_request(
            method,
            path,
            headers,
            content,
            json,
            params,
            trailers,
            chunked=self._http_version == "1.1",
        )
        if self._http_version == "3":
            from .testing_h3 import exchange_h3  # aioquic is optional

            return _received(*await exchange_h3(self._context, outgoing), "3")
        client_end, server_end = memory_stream_pair()
        driver_class = HTTP2Driver if self._http_version == "2" else HTTP1Driver
        driver = driver_class(server_end, self._context.for_connection(_TEST_CLIENT, _TEST_SERVER))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(driver.run)
            try:
                if self._http_version == "2":
                    response = _received(*await exchange_h2(client_end, outgoing), "2")
                else:
                    response = await _exchange_h1(client_end, outgoing)
            finally:
                await client_end.aclose()
        return response

    def websocket_connect(
        self, path: str, **options: Any
    ) -> AbstractAsyncContextManager[WebSocketTestSession]:
        """``async with client.websocket_connect(path) as ws``: a WebSocket to the app
        (HTTP/1.1 upgrade); options ``headers``, ``subprotocols``, ``compression``.  See
        :mod:`httpy.framework.testing_ws`."""
        return websocket_connect(self._context, path, **options)


class TestClient(_Methods[TestResponse]):
    """The synchronous face of :class:`AsyncTestClient` (``with`` runs the lifespan)."""

    def __init__(
        self,
        app: Application | ASGIApp,
        config: Config | None = None,
        *,
        backend: str = "asyncio",
        http_version: str = "1.1",
    ) -> None:
        self._client = AsyncTestClient(app, config, http_version=http_version)
        self._backend = backend
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._lifespan_done: Future[None] | None = None
        self._lifespan_stop: anyio.Event | None = None

    def __enter__(self) -> TestClient:
        self._portal_cm = start_blocking_portal(backend=self._backend)
        self._portal = self._portal_cm.__enter__()
        try:
            # One task holds the lifespan open from startup to shutdown.
            self._lifespan_stop = self._portal.call(anyio.Event)
            self._lifespan_done, _ = self._portal.start_task(
                self._hold_lifespan, self._lifespan_stop
            )
        except BaseException as exc:
            self._portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            self._portal = self._portal_cm = None
            raise
        return self

    async def _hold_lifespan(
        self, stop: anyio.Event, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        async with self._client:
            task_status.started()
            await stop.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._portal is not None and self._lifespan_stop is not None:
                self._portal.call(self._lifespan_stop.set)
            if self._lifespan_done is not None:
                self._lifespan_done.result()
        finally:
            self._lifespan_done = self._lifespan_stop = None
            if self._portal_cm is not None:
                self._portal_cm.__exit__(exc_type, exc, tb)
            self._portal = self._portal_cm = None

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        async def call() -> TestResponse:
            return await self._client.request(method, path, **kwargs)

        if self._portal is not None:
            return self._portal.call(call)
        with start_blocking_portal(backend=self._backend) as portal:
            return portal.call(call)

    @contextmanager
    def websocket_connect(self, path: str, **options: Any) -> Iterator[SyncWebSocketTestSession]:
        """``with client.websocket_connect(path) as ws``: like the async client's."""
        context = self._client._context
        if self._portal is not None:
            with sync_websocket_connect(self._portal, context, path, **options) as ws:
                yield ws
            return
        with (
            start_blocking_portal(backend=self._backend) as portal,
            sync_websocket_connect(portal, context, path, **options) as ws,
        ):
            yield ws


def _outgoing_request(
    method: str,
    path: str,
    headers: Mapping[str, str] | None,
    content: bytes | str | None,
    json: Any,
    params: Mapping[str, str] | None,
    trailers: Mapping[str, str] | None,
    *,
    chunked: bool,
) -> OutgoingRequest:
    """The request in HTTP/1.1 terms; ``chunked``: a body with trailers is sent chunked
    (HTTP/1.1 has no other way to send trailers)."""
    header_list = [(k.lower(), v) for k, v in (headers or {}).items()]
    names = {k for k, _ in header_list}
    if json is not None:
        body = jsonlib.dumps(json).encode()
        if "content-type" not in names:
            header_list.append(("content-type", "application/json"))
    elif isinstance(content, str):
        body = content.encode()
    else:
        body = content or b""
    if "host" not in names:
        header_list.insert(0, ("host", SERVER_NAME))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        header_list.append(("content-length", str(len(body))))
    trailer_list = tuple((k.lower(), v) for k, v in (trailers or {}).items())
    if trailer_list and chunked:
        header_list = [(k, v) for k, v in header_list if k != "content-length"]
        header_list.append(("transfer-encoding", "chunked"))
    # Like httpx: characters that may not appear in a request target are encoded.
    target = quote(path, safe="/?&=%:@!$'()*+,;~-._")
    if params:
        target += ("&" if "?" in target else "?") + urlencode(params)
    return OutgoingRequest(method, target, tuple(header_list), body, trailer_list)


async def _exchange_h1(stream: MemoryByteStream, request: OutgoingRequest) -> TestResponse:
    conn = h11.Connection(h11.CLIENT)
    head = h11.Request(method=request.method, target=request.target, headers=[*request.headers])
    data = conn.send(head) or b""
    if request.body:
        data += conn.send(h11.Data(data=request.body)) or b""
    data += conn.send(h11.EndOfMessage(headers=[*request.trailers])) or b""
    await stream.send(data)
    status, response_headers, version = 0, Headers(), "1.1"
    chunks: list[bytes] = []
    response_trailers = Headers()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(await stream.receive())
            except anyio.EndOfStream:
                conn.receive_data(b"")
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
            response_headers = Headers(raw=tuple((bytes(n), bytes(v)) for n, v in event.headers))
            version = bytes(event.http_version).decode()
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            response_trailers = Headers(raw=tuple((bytes(n), bytes(v)) for n, v in event.headers))
            break
        elif isinstance(event, h11.ConnectionClosed):
            break
    return TestResponse(
        status, response_headers, b"".join(chunks), version, trailers=response_trailers
    )


def _received(response: RawResponse, pushed: list[RawResponse], version: str) -> TestResponse:
    """An HTTP/2 or HTTP/3 response as received, with the ones pushed with it."""

    def convert(raw: RawResponse) -> TestResponse:
        return TestResponse(
            raw.status,
            Headers(raw=tuple(raw.headers)),
            bytes(raw.body),
            version,
            path=raw.path,
            trailers=Headers(raw=tuple(raw.trailers)),
        )

    result = convert(response)
    result.pushed = [convert(p) for p in pushed]
    return result
