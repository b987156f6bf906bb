"""httpy.core.multipart: bytes in, part events out; limits and malformed input."""

from __future__ import annotations

import pytest

from httpy.core.multipart import (
    MultipartError,
    MultipartLimits,
    MultipartReader,
    PartData,
    PartEnded,
    PartEvent,
    PartStarted,
    parse_content_type,
)

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"


def body(*parts: tuple[bytes, bytes], boundary: bytes = BOUNDARY) -> bytes:
    out = b""
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def disposition(name: str, filename: str | None = None) -> bytes:
    value = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        value += f'; filename="{filename}"'
    return value.encode()


def parse(data: bytes, *, split: int | None = None, **limits: int | None) -> list[PartEvent]:
    reader = MultipartReader(BOUNDARY, MultipartLimits(**limits))  # type: ignore[arg-type]
    events: list[PartEvent] = []
    step = split or len(data) or 1
    for i in range(0, len(data), step):
        events += reader.feed(data[i : i + step])
    return events + reader.finish()


def merged(events: list[PartEvent]) -> list[PartEvent]:
    out: list[PartEvent] = []
    for event in events:
        if isinstance(event, PartData) and out and isinstance(out[-1], PartData):
            out[-1] = PartData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def error_of(data: bytes, **limits: int | None) -> MultipartError:
    with pytest.raises(MultipartError) as info:
        parse(data, **limits)
    return info.value


SAMPLE = body(
    (disposition("title"), b"Hello"),
    (disposition("upload", "a.txt") + b"\r\nContent-Type: text/plain", b"line\r\n--not-a-boundary"),
    (disposition("empty"), b""),
)


def test_fields_and_files() -> None:
    assert parse(SAMPLE) == [
        PartStarted("title", None, None, ((b"content-disposition", b'form-data; name="title"'),)),
        PartData(b"Hello"),
        PartEnded(),
        PartStarted(
            "upload",
            "a.txt",
            "text/plain",
            (
                (b"content-disposition", b'form-data; name="upload"; filename="a.txt"'),
                (b"content-type", b"text/plain"),
            ),
        ),
        PartData(b"line\r\n--not-a-boundary"),
        PartEnded(),
        PartStarted("empty", None, None, ((b"content-disposition", b'form-data; name="empty"'),)),
        PartEnded(),
    ]


@pytest.mark.parametrize("split", [1, 2, 3, 7, 40, 41])
def test_events_do_not_depend_on_chunking(split: int) -> None:
    assert merged(parse(SAMPLE, split=split)) == parse(SAMPLE)


def test_one_part_data_event_per_feed() -> None:
    events = parse(SAMPLE)
    assert sum(isinstance(e, PartData) for e in events) == 2


def test_preamble_newlines_and_epilogue_are_ignored() -> None:
    events = parse(b"\r\n" + SAMPLE + b"epilogue, ignored")
    assert events == parse(SAMPLE)


def test_empty_form() -> None:
    assert parse(b"--" + BOUNDARY + b"--\r\n") == []


def test_utf8_names_and_quoted_filename() -> None:
    headers = 'Content-Disposition: form-data; name="naïve"; filename="a \\"q\\" ü.txt"'
    [started, *_] = parse(body((headers.encode(), b"x")))
    assert isinstance(started, PartStarted)
    assert (started.name, started.filename) == ("naïve", 'a "q" ü.txt')


def test_header_names_are_case_insensitive() -> None:
    headers = b"content-DISPOSITION:form-data;name=plain;FILENAME=f.bin\r\nCONTENT-TYPE: a/b"
    [started, *_] = parse(body((headers, b"x")))
    assert started == PartStarted(
        "plain",
        "f.bin",
        "a/b",
        (
            (b"content-disposition", b"form-data;name=plain;FILENAME=f.bin"),
            (b"content-type", b"a/b"),
        ),
    )


# ---------------------------------------------------------------------------- limits


def test_max_parts() -> None:
    data = body(*((disposition(f"f{i}"), b"v") for i in range(5)))
    assert len(parse(data, max_parts=5)) == 15
    error = error_of(data, max_parts=4)
    assert (error.status, error.reason) == (413, "more than 4 multipart parts")


def test_max_field_bytes_applies_to_fields_only() -> None:
    data = body((disposition("a"), b"x" * 11), (disposition("f", "n"), b"y" * 1000))
    error = error_of(data, max_field_bytes=10)
    assert (error.status, error.reason) == (413, "form field over 10 bytes")
    assert len(parse(data, max_field_bytes=11)) == 6


def test_max_file_bytes() -> None:
    data = body((disposition("f", "n"), b"y" * 101))
    error = error_of(data, max_file_bytes=100)
    assert (error.status, error.reason) == (413, "uploaded file over 100 bytes")
    assert len(parse(data, max_file_bytes=101)) == 3
    # also when the data arrives byte by byte
    with pytest.raises(MultipartError):
        parse(data, split=1, max_file_bytes=100)


@pytest.mark.parametrize("split", [None, 1, 5])
def test_max_header_bytes(split: int | None) -> None:
    headers = disposition("a") + b"\r\nX-Pad: " + b"p" * 200
    assert len(parse(body((headers, b"")), split=split, max_header_bytes=300)) == 2
    error = error_of(body((headers + b"p" * 100, b"")), max_header_bytes=300)
    assert error.status == 413
    assert "multipart part headers" in error.reason
    # many small headers add up too
    many = disposition("a") + b"".join(b"\r\nX-%d: %s" % (i, b"v" * 20) for i in range(20))
    assert error_of(body((many, b"")), max_header_bytes=300).status == 413


def test_too_many_part_headers() -> None:
    headers = disposition("a") + b"".join(b"\r\nX-%d: v" % i for i in range(40))
    assert error_of(body((headers, b""))).status == 413


# ------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (SAMPLE[:-4], "multipart body ended inside a part"),
        (b"--" + BOUNDARY, "multipart body ended before the closing boundary"),
        (SAMPLE[:-20], "multipart body ended inside a part"),
        (SAMPLE[:30], "truncated body"),
        (b"", "truncated body"),
        (b"not multipart", "malformed multipart body"),
        (SAMPLE.replace(b"\r\n", b"\n"), "malformed multipart body"),
        (body((b"Content-Type: text/plain", b"x")), "without a Content-Disposition"),
        (body((b"Content-Disposition: form-data", b"x")), "has no name"),
        (body((b'Content-Disposition: inline; name="a"', b"x")), "not 'form-data'"),
        (body((disposition("a") + b"\r\nBad Name: x", b"x")), "malformed multipart body"),
        (body((disposition("a") + b"\r\n: x", b"x")), "malformed multipart body"),
        (body((disposition("a") + b"\r\nNoColon", b"x")), "malformed multipart body"),
        (b"--" + BOUNDARY + b"X\r\n", "malformed multipart body"),
    ],
)
def test_malformed_is_400(data: bytes, reason: str) -> None:
    error = error_of(data)
    assert error.status == 400
    assert reason in error.reason


@pytest.mark.parametrize("boundary", [b"", b"a" * 201, b"bad\r\nboundary", b"trailing ", b"\xff"])
def test_invalid_boundary(boundary: bytes) -> None:
    with pytest.raises(MultipartError) as info:
        MultipartReader(boundary)
    assert info.value.status == 400


def test_errors_are_sticky() -> None:
    reader = MultipartReader(BOUNDARY)
    with pytest.raises(MultipartError) as first:
        reader.feed(b"garbage")
    with pytest.raises(MultipartError) as again:
        reader.feed(SAMPLE)
    assert again.value is first.value
    with pytest.raises(MultipartError):
        reader.finish()


def test_ended() -> None:
    reader = MultipartReader(BOUNDARY)
    reader.feed(SAMPLE[:-5])
    assert not reader.ended
    reader.feed(SAMPLE[-5:])
    assert reader.ended
    assert reader.feed(b"more epilogue") == []
    assert reader.finish() == []


# ----------------------------------------------------------------- parse_content_type


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ("", {})),
        ("text/plain", ("text/plain", {})),
        (" Multipart/Form-Data ; Boundary=abc", ("multipart/form-data", {"boundary": "abc"})),
        ('multipart/form-data; boundary="a;b c"', ("multipart/form-data", {"boundary": "a;b c"})),
        (
            'form-data; name="a\\"b\\\\c\\d"; filename=x.txt',
            ("form-data", {"name": 'a"b\\c\\d', "filename": "x.txt"}),
        ),
        ("a/b; x=1; x=2", ("a/b", {"x": "1"})),
        ("a/b; flag; y = 2 ;", ("a/b", {"y": "2"})),
        ("a/b; filename*=UTF-8''x%20y; filename=plain", ("a/b", {"filename": "plain"})),
        ('a/b; q="unterminated', ("a/b", {"q": "unterminated"})),
        ('a/b; q="v" trailing; r=1', ("a/b", {"q": "v", "r": "1"})),
        ("a/b; =novalue", ("a/b", {})),
    ],
)
def test_parse_content_type(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(value) == expected
