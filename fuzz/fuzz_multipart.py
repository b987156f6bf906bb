"""Property tests for httpy.core.multipart (the multipart/form-data reader).

1. Robustness: arbitrary bytes, and mutations of valid bodies, fed with a fixed boundary
   in arbitrary chunks never raise anything but ``MultipartError`` (status 400 or 413),
   and events come in a consistent order (PartStarted, PartData*, PartEnded).
2. Chunk-split invariance: the events (consecutive data joined) and the verdict (which
   error status, if any) are the same whether the body comes whole or in pieces.
3. Differential against the stdlib ``email`` parser: for generated valid bodies, the part
   names, filenames, content types and contents we report equal what
   ``email.parser.BytesParser(policy=email.policy.HTTP)`` finds, and what was generated.
4. Limits: a generated body is refused with 413 exactly when it breaks one of the
   generated limits.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass

from hypothesis import assume, given
from hypothesis import strategies as st

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

BOUNDARY = b"----httpyFuzzBoundary42"

# ------------------------------------------------------------------------ generation

# RFC 2046 5.1.1 bchars (a space is allowed too, but not last).
BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(alphabet=BCHARS, min_size=1, max_size=70).map(str.encode)
# Printable ASCII without the quote and backslash that quoted-string escapes.
param_text = st.text(alphabet=[chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\'])
content_types = st.sampled_from(
    [None, "text/plain", "application/octet-stream", "image/png", "text/plain; charset=utf-8"]
)
contents = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", b"x", b"\x00"])).map(b"".join),
)


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    content: bytes

    def head(self) -> bytes:
        value = f'form-data; name="{self.name}"'
        if self.filename is not None:
            value += f'; filename="{self.filename}"'
        lines = [f"Content-Disposition: {value}"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        return "\r\n".join(lines).encode()

    def header_bytes(self) -> int:
        """What the reader counts against max_header_bytes: name + value + 4 per field."""
        total = 0
        for line in self.head().split(b"\r\n"):
            name, _, value = line.partition(b": ")
            total += len(name) + len(value) + 4
        return total


parts = st.builds(
    Part,
    name=param_text,
    filename=st.none() | param_text,
    content_type=content_types,
    content=contents,
)


def encode(items: list[Part], boundary: bytes = BOUNDARY) -> bytes:
    out = b""
    for part in items:
        out += b"--" + boundary + b"\r\n" + part.head() + b"\r\n\r\n" + part.content + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


@st.composite
def valid_bodies(draw: st.DrawFn, boundary: bytes = BOUNDARY) -> tuple[list[Part], bytes]:
    items = draw(st.lists(parts, max_size=6))
    # The delimiter must not occur inside a part (RFC 2046: the sender picks a boundary
    # that does not); neither parser could tell it from a real one.
    assume(all(b"--" + boundary not in part.content for part in items))
    return items, encode(items, boundary)


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    pieces, last = [], 0
    for cut in [*cuts, len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return pieces


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b'"', b":", b";", b" "])
            | st.binary(min_size=1, max_size=4)
        )
        if action == "insert":
            out[pos:pos] = chunk
        elif action == "delete":
            del out[pos : pos + len(chunk)]
        else:
            out[pos : pos + len(chunk)] = chunk
    return bytes(out)


# ----------------------------------------------------------------------- the runner


@dataclass
class Outcome:
    events: list[PartEvent]
    status: int | None  # MultipartError status, None when the body parsed


def run(pieces: list[bytes], limits: MultipartLimits | None = None) -> Outcome:
    reader = MultipartReader(BOUNDARY, limits)
    events: list[PartEvent] = []
    try:
        for piece in pieces:
            events += reader.feed(piece)
        events += reader.finish()
    except MultipartError as exc:
        assert exc.status in (400, 413), exc
        assert exc.reason
        return Outcome(joined(events), exc.status)
    return Outcome(joined(events), None)


def joined(events: list[PartEvent]) -> list[PartEvent]:
    out: list[PartEvent] = []
    for event in events:
        if isinstance(event, PartData) and out and isinstance(out[-1], PartData):
            out[-1] = PartData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


def check_order(events: list[PartEvent], complete: bool) -> None:
    in_part = False
    for event in events:
        if isinstance(event, PartStarted):
            assert not in_part
            in_part = True
        elif isinstance(event, PartData):
            assert in_part and event.data
        else:
            assert isinstance(event, PartEnded) and in_part
            in_part = False
    if complete:
        assert not in_part


def extract(events: list[PartEvent]) -> list[Part]:
    found: list[Part] = []
    current: PartStarted | None = None
    data = b""
    for event in events:
        if isinstance(event, PartStarted):
            current, data = event, b""
        elif isinstance(event, PartData):
            data += event.data
        elif current is not None:
            found.append(Part(current.name, current.filename, current.content_type, data))
    return found


# ----------------------------------------------------------------- 1. never raises


@given(st.data(), st.binary(max_size=2000))
def test_arbitrary_bytes_only_raise_multipart_error(data: st.DataObject, body: bytes) -> None:
    if data.draw(st.booleans()):
        body = b"--" + BOUNDARY + b"\r\n" + body  # get past the first boundary
    outcome = run(data.draw(splits(body)))
    check_order(outcome.events, complete=outcome.status is None)


@given(st.data(), valid_bodies())
def test_mutated_bodies_only_raise_multipart_error(
    data: st.DataObject, generated: tuple[list[Part], bytes]
) -> None:
    body = data.draw(mutated(generated[1]))
    outcome = run(data.draw(splits(body)))
    check_order(outcome.events, complete=outcome.status is None)


# ------------------------------------------------------------- 2. split invariance


@given(st.data(), valid_bodies())
def test_valid_bodies_parse_the_same_whatever_the_split(
    data: st.DataObject, generated: tuple[list[Part], bytes]
) -> None:
    _, body = generated
    whole = run([body])
    assert whole.status is None
    assert run(data.draw(splits(body))) == whole
    assert run([body[i : i + 1] for i in range(len(body))]) == whole


@given(st.data(), valid_bodies())
def test_verdict_on_mutated_bodies_does_not_depend_on_the_split(
    data: st.DataObject, generated: tuple[list[Part], bytes]
) -> None:
    body = data.draw(mutated(generated[1]))
    whole = run([body])
    split = run(data.draw(splits(body)))
    assert split.status == whole.status
    if whole.status is None:
        assert split.events == whole.events


# ----------------------------------------------------- 3. differential against email


def email_parts(body: bytes, boundary: bytes) -> list[Part]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b'Content-Type: multipart/form-data; boundary="' + boundary + b'"\r\n\r\n' + body
    )
    assert message.is_multipart()
    found: list[Part] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str)
        # (get_filename() would strip surrounding spaces; the raw parameter keeps them.)
        filename = part.get_param("filename", header="content-disposition")
        assert filename is None or isinstance(filename, str)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        content_type = None
        if "content-type" in part:  # email normalises the value: compare type and charset
            content_type = f"{part.get_content_type()} {part.get_content_charset()}"
        found.append(Part(name, filename, content_type, payload))
    return found


def comparable(items: list[Part]) -> list[Part]:
    """``items`` with each Content-Type reduced to what ``email_parts`` reports."""
    out = []
    for part in items:
        content_type = part.content_type
        if content_type is not None:
            media_type, params = parse_content_type(content_type)
            content_type = f"{media_type} {params.get('charset')}"
        out.append(Part(part.name, part.filename, content_type, part.content))
    return out


@given(st.data(), boundaries)
def test_same_parts_as_the_email_package(data: st.DataObject, boundary: bytes) -> None:
    assume(not boundary.endswith(b" "))
    generated, body = data.draw(valid_bodies(boundary))
    reader = MultipartReader(boundary)
    events = reader.feed(body) + reader.finish()
    ours = extract(events)
    assert ours == generated
    if generated:  # the email package needs at least one part to call it multipart
        assert email_parts(body, boundary) == comparable(ours)


# ------------------------------------------------------------------------ 4. limits


@given(
    valid_bodies(),
    st.integers(0, 7),
    st.integers(0, 300),
    st.none() | st.integers(0, 300),
    st.integers(40, 400),
)
def test_413_exactly_when_a_limit_is_broken(
    generated: tuple[list[Part], bytes],
    max_parts: int,
    max_field_bytes: int,
    max_file_bytes: int | None,
    max_header_bytes: int,
) -> None:
    items, body = generated
    limits = MultipartLimits(max_parts, max_field_bytes, max_file_bytes, max_header_bytes)
    broken = len(items) > max_parts or any(
        part.header_bytes() > max_header_bytes
        or (part.filename is None and len(part.content) > max_field_bytes)
        or (
            part.filename is not None
            and max_file_bytes is not None
            and len(part.content) > max_file_bytes
        )
        for part in items
    )
    outcome = run([body], limits)
    assert outcome.status == (413 if broken else None)
    if not broken:
        assert extract(outcome.events) == items
