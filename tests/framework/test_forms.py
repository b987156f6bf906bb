"""Forms, uploads and cookies over real sockets, on asyncio and on trio.

httpx (``files=`` / ``data=``), aiohttp ``FormData`` and ``curl -F`` post multipart bodies
to a real server; urlencoded forms, limits (413), malformed bodies (400), temporary-file
cleanup and request cookies are checked the same way.  The slow test streams a 1 GiB
upload through ``request.form()`` and checks both the SHA-256 and the server's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import anyio
import anyio.to_thread
import httpx
import pytest

from httpy import App, FormData, Request, Response, UploadFile
from httpy.framework import forms
from tests.support.raw import exchange, status_of
from tests.support.servers import running_server, server_thread

BOUNDARY = "httpy-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def _describe(form: FormData) -> list[list[Any]]:
    described: list[list[Any]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = value.file.read()  # synchronous, as the seed does
            described.append(
                [
                    name,
                    {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": value.size,
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "length": len(data),
                    },
                ]
            )
        else:
            described.append([name, value])
    return described


def make_app(uploads: list[UploadFile] | None = None) -> App:
    app = App()
    kept = uploads if uploads is not None else []

    @app.post("/form")
    async def form(request: Request) -> Response:
        parsed = await request.form()
        assert await request.form() is parsed  # parsed once, then kept
        kept.extend(parsed.files())
        return Response.json(_describe(parsed))

    @app.post("/limited")
    async def limited(request: Request) -> Response:
        parsed = await request.form(
            max_parts=3, max_field_bytes=10, max_file_bytes=100, max_header_bytes=300
        )
        return Response.json(_describe(parsed))

    @app.post("/async-read")
    async def async_read(request: Request) -> Response:
        upload = (await request.form())["file"]
        assert isinstance(upload, UploadFile)
        head = await upload.read(5)
        rest = await upload.read()
        await upload.seek(0)
        again = await upload.read()
        return Response.json(
            {"head": head.decode(), "rest": len(rest), "same": again == head + rest}
        )

    @app.post("/json")
    async def json_body(request: Request) -> Response:
        return Response.json(request.json())

    @app.get("/cookies")
    async def cookies(request: Request) -> Response:
        return Response.json(request.cookies)

    return app


def multipart_body(*parts: tuple[str, bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart body from (header block, content) pairs, built by hand."""
    out = b""
    for headers, content in parts:
        out += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def field(name: str, value: bytes) -> tuple[str, bytes]:
    return f'Content-Disposition: form-data; name="{name}"', value


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------ multipart


@pytest.mark.anyio
async def test_httpx_fields_and_files() -> None:
    uploads: list[UploadFile] = []
    big = os.urandom(3 * 1024 * 1024 + 17)  # over the 1 MiB spool: goes to disk
    async with running_server(make_app(uploads)) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/form",
                data={"title": "héllo wörld", "tags": ["a", "b"], "empty": ""},
                files=[
                    ("doc", ("notes.txt", b"line 1\r\nline 2\r\n", "text/plain")),
                    ("doc", ("big.bin", big, "application/octet-stream")),
                    ("empty", ("my file.dat", b"", "application/octet-stream")),
                ],
            )
            assert response.status_code == 200, response.text
            got = response.json()
    assert got == [
        ["title", "héllo wörld"],
        ["tags", "a"],
        ["tags", "b"],
        ["empty", ""],
        [
            "doc",
            {
                "filename": "notes.txt",
                "content_type": "text/plain",
                "size": 16,
                "sha256": sha(b"line 1\r\nline 2\r\n"),
                "length": 16,
            },
        ],
        [
            "doc",
            {
                "filename": "big.bin",
                "content_type": "application/octet-stream",
                "size": len(big),
                "sha256": sha(big),
                "length": len(big),
            },
        ],
        [
            "empty",
            {
                "filename": "my file.dat",
                "content_type": "application/octet-stream",
                "size": 0,
                "sha256": sha(b""),
                "length": 0,
            },
        ],
    ]
    # The request ended: its temporary files are closed (and so deleted).
    with anyio.fail_after(5):
        while not all(upload.closed for upload in uploads):
            await anyio.sleep(0.01)
    assert len(uploads) == 3


@pytest.mark.anyio
async def test_form_data_is_a_read_only_multidict() -> None:
    app = App()

    @app.post("/")
    async def handler(request: Request) -> Response:
        form = await request.form()
        file = form["f"]
        assert isinstance(file, UploadFile)
        return Response.json(
            {
                "a": form["a"],
                "get": form.get("a"),
                "missing": form.get("zz", "default"),
                "all": form.getlist("a"),
                "in": ["a" in form, "f" in form, "zz" in form],
                "keys": list(form),
                "len": len(form),
                "file": [file.filename, file.headers.get("x-extra"), repr(file)],
                "no-file-chosen": repr(form["nothing"]),
            }
        )

    body = multipart_body(
        field("a", b"1"),
        ('Content-Disposition: form-data; name="f"; filename="x"\r\nX-Extra: yes', b"abc"),
        field("a", b"2"),
        ('Content-Disposition: form-data; name="nothing"; filename=""', b""),
    )
    async with running_server(app) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post("/", content=body, headers={"content-type": MULTIPART})
    assert response.json() == {
        "a": "1",
        "get": "1",
        "missing": "default",
        "all": ["1", "2"],
        "in": [True, True, False],
        "keys": ["a", "f", "nothing"],
        "len": 3,
        "file": ["x", "yes", "UploadFile(filename='x', content_type=None, size=3)"],
        "no-file-chosen": "UploadFile(filename='', content_type=None, size=0)",
    }


@pytest.mark.anyio
async def test_upload_async_read_and_seek() -> None:
    data = b"hello" + os.urandom(2 * 1024 * 1024)
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post("/async-read", files={"file": ("a", data)})
    assert response.json() == {"head": "hello", "rest": len(data) - 5, "same": True}


@pytest.mark.anyio
async def test_chunked_multipart_upload() -> None:
    body = multipart_body(
        field("a", b"x" * 100_000),
        ('Content-Disposition: form-data; name="f"; filename="f.bin"', b"y" * 300_000),
    )

    async def pieces() -> Any:
        for i in range(0, len(body), 7_777):
            yield body[i : i + 7_777]

    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/form", content=pieces(), headers={"content-type": MULTIPART}
            )
    assert response.status_code == 200
    got = response.json()
    assert got[0] == ["a", "x" * 100_000]
    assert got[1][1]["sha256"] == sha(b"y" * 300_000)


@pytest.fixture(params=["asyncio", "trio"])
def server_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_aiohttp_form_data(server_backend: str) -> None:
    payload = os.urandom(200_000)

    async def main(url: str) -> Any:
        form = aiohttp.FormData()
        form.add_field("name", "value ünïcode")
        form.add_field("upload", payload, filename="data.bin", content_type="image/png")
        form.add_field("upload", b"second", filename="s.txt", content_type="text/plain")
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=form) as response:
                assert response.status == 200, await response.text()
                return await response.json()

    with server_thread(make_app(), server_backend) as (host, port):
        got = asyncio.run(main(f"http://{host}:{port}/form"))
    assert got[0] == ["name", "value ünïcode"]
    assert got[1] == [
        "upload",
        {
            "filename": "data.bin",
            "content_type": "image/png",
            "size": len(payload),
            "sha256": sha(payload),
            "length": len(payload),
        },
    ]
    assert got[2][1]["filename"] == "s.txt"
    assert got[2][1]["sha256"] == sha(b"second")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_dash_f(server_backend: str, tmp_path: Path) -> None:
    payload = os.urandom(1_500_000)
    path = tmp_path / "photo.jpg"
    path.write_bytes(payload)
    with server_thread(make_app(), server_backend) as (host, port):
        result = subprocess.run(
            [
                "curl", "-s", "--max-time", "20",
                "-F", "caption=sunset",
                "-F", f"photo=@{path};type=image/jpeg",
                "-F", "note=<-",  # a field's content read from stdin
                f"http://{host}:{port}/form",
            ],
            input=b"from stdin",
            capture_output=True,
            check=True,
        )  # fmt: skip
    got = json.loads(result.stdout)
    assert got == [
        ["caption", "sunset"],
        [
            "photo",
            {
                "filename": "photo.jpg",
                "content_type": "image/jpeg",
                "size": len(payload),
                "sha256": sha(payload),
                "length": len(payload),
            },
        ],
        ["note", "from stdin"],
    ]


def test_seed_upload_handler(server_backend: str, tmp_path: Path) -> None:
    """The "File Uploads and Downloads" handler of the seed, as written there."""
    app = App()

    @app.post("/upload")
    async def upload_file(req: Request) -> Response:
        if not req.is_multipart():
            return Response.json({"error": "Multipart form data required"}, status=400)
        form_data = await req.form()
        if "file" not in form_data:
            return Response.json({"error": "No file uploaded"}, status=400)
        file = form_data["file"]
        assert isinstance(file, UploadFile)
        filename = os.path.basename(file.filename)
        file_path = os.path.join(tmp_path, filename)
        with open(file_path, "wb") as f:  # noqa: ASYNC230 (the seed's own code)
            f.write(file.file.read())
        return Response.json(
            {"success": True, "filename": filename, "size": os.path.getsize(file_path)}  # noqa: ASYNC240
        )

    with server_thread(app, server_backend) as (host, port):
        with httpx.Client(base_url=f"http://{host}:{port}") as client:
            ok = client.post("/upload", files={"file": ("report.txt", b"quarterly")})
            missing = client.post("/upload", files={"other": ("x", b"")})
            not_multipart = client.post("/upload", content=b"raw")
    assert ok.json() == {"success": True, "filename": "report.txt", "size": 9}
    assert (tmp_path / "report.txt").read_bytes() == b"quarterly"
    assert missing.status_code == 400
    assert not_multipart.json() == {"error": "Multipart form data required"}


# ----------------------------------------------------------------------- urlencoded


@pytest.mark.anyio
async def test_urlencoded_form() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/form", data={"q": "a b&c=d", "multi": ["1", "2"], "blank": "", "é": "ü"}
            )
            raw = await client.post(
                "/form",
                content=b"x=1&x=2&flag&y=%E2%82%AC+sign",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            empty = await client.post("/form")
    assert response.json() == [
        ["q", "a b&c=d"],
        ["multi", "1"],
        ["multi", "2"],
        ["blank", ""],
        ["é", "ü"],
    ]
    assert raw.json() == [["x", "1"], ["x", "2"], ["flag", ""], ["y", "€ sign"]]
    assert empty.json() == []


# --------------------------------------------------------------------------- limits


LIMIT_CASES = {
    "too-many-parts": (
        multipart_body(*(field(f"f{i}", b"v") for i in range(4))),
        413,
        "more than 3 multipart parts",
    ),
    "field-too-big": (multipart_body(field("a", b"x" * 11)), 413, "form field over 10 bytes"),
    "file-too-big": (
        multipart_body(('Content-Disposition: form-data; name="f"; filename="a"', b"x" * 101)),
        413,
        "uploaded file over 100 bytes",
    ),
    "part-headers-too-big": (
        multipart_body((f'Content-Disposition: form-data; name="a"\r\nX-Pad: {"p" * 300}', b"")),
        413,
        "multipart part headers",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", LIMIT_CASES)
async def test_multipart_limits(case: str) -> None:
    body, status, message = LIMIT_CASES[case]
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/limited", content=body, headers={"content-type": MULTIPART}
            )
            # within the limits the same route works
            fine = await client.post("/limited", data={"a": "1"}, files={"f": ("n", b"ok")})
    assert response.status_code == status
    assert message in response.text
    assert fine.status_code == 200, fine.text


@pytest.mark.anyio
async def test_urlencoded_limits() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            many = await client.post("/limited", data={f"k{i}": "v" for i in range(4)})
            big = await client.post("/limited", data={"k": "v" * 11})
            fine = await client.post("/limited", data={"k": "v" * 10, "j": "1"})
    assert many.status_code == 413
    assert "more than 3 form fields" in many.text
    assert big.status_code == 413
    assert "form field over 10 bytes" in big.text
    assert fine.json() == [["k", "v" * 10], ["j", "1"]]


@pytest.mark.anyio
async def test_body_over_server_limit_while_streaming_the_form(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """form() streams the body, so the server's max_body_bytes strikes inside the handler:
    the client gets the server's 413, and no 500 is logged."""
    content = multipart_body(field("a", b"x" * 150_000))
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece)
        for piece in (content[i : i + 10_000] for i in range(0, len(content), 10_000))
    )
    request = (
        b"POST /form HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        + f"Content-Type: {MULTIPART}\r\n\r\n".encode()
        + chunked
        + b"0\r\n\r\n"
    )
    async with running_server(make_app(), max_body_bytes=100_000) as address:
        response = await exchange(address, request)
    assert status_of(response) == 413
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.anyio
async def test_default_field_limit_is_one_mib() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            # Bytes, not httpx's multipart generator: the server answers 413 before the
            # body ends, and an unfinished generator is a ResourceWarning when collected.
            headers = {"content-type": MULTIPART}
            over_body = multipart_body(field("a", b"x" * (1024 * 1024 + 1)))
            over = await client.post("/form", content=over_body, headers=headers)
            at_body = multipart_body(field("a", b"x" * (1024 * 1024)))
            at = await client.post("/form", content=at_body, headers=headers)
    assert over.status_code == 413
    assert "form field over 1048576 bytes" in over.text
    assert at.status_code == 200


# ------------------------------------------------------------------------ malformed

MALFORMED = {
    "no-boundary": ("multipart/form-data", multipart_body(field("a", b"1")), "without a boundary"),
    "wrong-boundary": (
        "multipart/form-data; boundary=other",
        multipart_body(field("a", b"1")),
        "malformed multipart body",
    ),
    "truncated": (MULTIPART, multipart_body(field("a", b"1"))[:-12], "truncated"),
    "empty-body": (MULTIPART, b"", "truncated"),
    "garbage": (MULTIPART, b"\x00\x01garbage\r\n\r\n", "malformed multipart body"),
    "no-disposition": (
        MULTIPART,
        multipart_body(("Content-Type: text/plain", b"x")),
        "without a Content-Disposition",
    ),
    "no-name": (
        MULTIPART,
        multipart_body(('Content-Disposition: form-data; filename="a"', b"x")),
        "has no name",
    ),
    "not-form-data": (
        MULTIPART,
        multipart_body(('Content-Disposition: attachment; name="a"', b"x")),
        "not 'form-data'",
    ),
    "bad-header-line": (
        MULTIPART,
        multipart_body(('Content-Disposition: form-data; name="a"\r\nBad Header: x', b"x")),
        "malformed multipart body",
    ),
    "lf-only": (
        MULTIPART,
        multipart_body(field("a", b"1")).replace(b"\r\n", b"\n"),
        "malformed multipart body",
    ),
}


@pytest.mark.anyio
@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_multipart_is_400(case: str) -> None:
    content_type, body, message = MALFORMED[case]
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/form", content=body, headers={"content-type": content_type}
            )
            after = await client.post("/form", data={"ok": "1"})  # the server still serves
    assert response.status_code == 400
    assert message in response.text
    assert after.json() == [["ok", "1"]]


@pytest.mark.anyio
async def test_json_on_multipart_and_form_on_json() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            # (bytes, not files=: httpx's multipart generator would outlive the early answer)
            as_json = await client.post(
                "/json",
                content=multipart_body(field("f", b"{}")),
                headers={"content-type": MULTIPART},
            )
            as_form = await client.post("/form", json={"a": 1})
    assert as_json.status_code == 400
    assert "use await request.form()" in as_json.text
    assert as_form.status_code == 415
    assert "application/json" in as_form.text


@pytest.mark.anyio
async def test_upload_files_closed_when_handler_fails() -> None:
    uploads: list[UploadFile] = []
    app = App()

    @app.post("/")
    async def handler(request: Request) -> Response:
        uploads.extend((await request.form()).files())
        raise RuntimeError("after reading the form")

    async with running_server(app) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post("/", files={"f": ("a", os.urandom(2 * 1024 * 1024))})
    assert response.status_code == 500
    assert len(uploads) == 1
    with anyio.fail_after(5):
        while not uploads[0].closed:
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_upload_files_closed_when_client_disconnects_mid_upload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[UploadFile] = []
    outcome: list[str] = []

    class RecordingUploadFile(UploadFile):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(forms, "UploadFile", RecordingUploadFile)
    app = App()

    @app.post("/")
    async def handler(request: Request) -> Response:
        try:
            await request.form()
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        return Response.text("complete?")

    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"; filename="big"\r\n\r\n'
    ).encode()
    async with running_server(app) as (host, port):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n"
                + f"Content-Type: {MULTIPART}\r\n\r\n".encode()
                + head
            )
            for _ in range(48):  # 3 MiB: past the in-memory spool, onto disk
                await stream.send(b"z" * 65536)
            with anyio.fail_after(5):
                while not created or created[0].size < 2 * 1024 * 1024:
                    await anyio.sleep(0.01)
        # the client is gone
        with anyio.fail_after(5):
            while not outcome or not all(upload.closed for upload in created):
                await anyio.sleep(0.01)
    assert len(created) == 1
    assert outcome[0] in ("ClientDisconnected", "CancelledError", "Cancelled")


# -------------------------------------------------------------------------- cookies


@pytest.mark.anyio
async def test_request_cookies() -> None:
    async with running_server(make_app()) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.get(
                "/cookies",
                headers=[
                    ("cookie", 'session=abc123; theme="dark" ; bad; =x;  lang = en'),
                    ("cookie", "session=second; extra=1"),
                ],
            )
            none = await client.get("/cookies")
    assert response.json() == {"session": "abc123", "theme": "dark", "lang": "en", "extra": "1"}
    assert none.json() == {}


# ---------------------------------------------------------------------- 1 GiB upload


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class _RSSSampler:
    """Samples this process's resident memory in a thread; ``peak`` is the maximum."""

    def __init__(self, interval: float = 0.02) -> None:
        self.peak = _rss_bytes()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _RSSSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _sha256_of(file: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := file.read(1024 * 1024):
        digest.update(block)
    return digest.hexdigest()


GIB = 1024**3


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_gib_upload_streams_through_form_with_bounded_memory(server_backend: str) -> None:
    app = App()

    @app.post("/hash")
    async def hash_upload(request: Request) -> Response:
        upload = (await request.form())["file"]
        assert isinstance(upload, UploadFile)
        on_disk = bool(getattr(upload.file, "_rolled", False))
        digest = await anyio.to_thread.run_sync(_sha256_of, upload.file)
        return Response.json({"sha256": digest, "size": upload.size, "on_disk": on_disk})

    block = os.urandom(1024 * 1024)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    client_digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        # 1 GiB made of distinct 1 MiB blocks, never held at once by the client.
        yield head
        for i in range(GIB // len(block)):
            chunk = i.to_bytes(8, "big") + block[8:]
            client_digest.update(chunk)
            yield chunk
        yield tail

    length = len(head) + GIB + len(tail)
    with server_thread(app, server_backend, max_body_bytes=2 * GIB) as (host, port):
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=120) as client:
            warm = client.post("/hash", files={"file": ("w", b"warm-up" * 1000)})
            assert warm.status_code == 200
            baseline = _rss_bytes()
            started = time.monotonic()
            with _RSSSampler() as sampler:
                response = client.post(
                    "/hash",
                    content=body(),
                    headers={"content-type": MULTIPART, "content-length": str(length)},
                )
            elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sha256": client_digest.hexdigest(),
        "size": GIB,
        "on_disk": True,
    }
    growth = sampler.peak - baseline
    print(
        f"\n1 GiB upload on {server_backend}: {elapsed:.1f} s, "
        f"RSS growth {growth / 1024**2:.1f} MiB (peak {sampler.peak / 1024**2:.1f} MiB)"
    )
    assert growth < 100 * 1024**2, f"server memory grew by {growth / 1024**2:.1f} MiB"


@pytest.mark.anyio
async def test_uploads_of_one_form_share_a_memory_budget() -> None:
    """Each upload may stay in memory up to 1 MiB, but the files of one form keep at
    most FORM_MEMORY_BUDGET in memory together: past it, the file being received goes
    to disk at once (600 parts of 1 MB held ~580 MiB before).  Contents are intact."""
    parts = [os.urandom(16) * 56_250 for _ in range(20)]  # 20 files of 900,000 bytes
    body = multipart_body(
        *(
            (f'Content-Disposition: form-data; name="f{i}"; filename="f{i}.bin"', data)
            for i, data in enumerate(parts)
        )
    )
    seen: dict[str, Any] = {}
    app = App()

    @app.post("/many")
    async def many(request: Request) -> Response:
        form = await request.form()
        files = form.files()
        in_memory = [u for u in files if not getattr(u.file, "_rolled", True)]
        seen["in_memory_bytes"] = sum(u.size for u in in_memory)
        seen["on_disk"] = len(files) - len(in_memory)
        seen["sha"] = [sha(await u.read()) for u in files]
        return Response.text("ok")

    async with running_server(app, max_body_bytes=64 * 1024 * 1024) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/many", content=body, headers={"content-type": MULTIPART}, timeout=60
            )
    assert response.status_code == 200
    assert seen["in_memory_bytes"] <= forms.FORM_MEMORY_BUDGET
    assert seen["on_disk"] >= 20 - forms.FORM_MEMORY_BUDGET // 900_000
    assert seen["sha"] == [sha(data) for data in parts]


@pytest.mark.anyio
async def test_a_file_that_moves_to_disk_by_itself_gives_its_memory_share_back() -> None:
    """Files over the 1 MiB spool size go to disk on their own; what they held in memory
    until then is given back to the form's budget, so small files after them still stay
    in memory."""
    big = [os.urandom(16) * 93_750 for _ in range(6)]  # 1.5 MB each: past 1 MiB
    small = [os.urandom(16) * 18_750 for _ in range(3)]  # 300 KB each
    body = multipart_body(
        *(
            (f'Content-Disposition: form-data; name="f{i}"; filename="f{i}.bin"', data)
            for i, data in enumerate(big + small)
        )
    )
    seen: dict[str, Any] = {}
    app = App()

    @app.post("/mixed")
    async def mixed(request: Request) -> Response:
        files = (await request.form()).files()
        seen["rolled"] = [bool(getattr(u.file, "_rolled", True)) for u in files]
        seen["sha"] = [sha(await u.read()) for u in files]
        return Response.text("ok")

    async with running_server(app, max_body_bytes=64 * 1024 * 1024) as (host, port):
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            response = await client.post(
                "/mixed", content=body, headers={"content-type": MULTIPART}, timeout=60
            )
    assert response.status_code == 200
    assert seen["rolled"] == [True] * 6 + [False] * 3
    assert seen["sha"] == [sha(data) for data in big + small]
