"""The server's loggers, the access log line, and the rate limit on bad-request lines.

``httpy.error`` carries server problems and bad requests; ``httpy.access`` one line per
response.  Both are ordinary :mod:`logging` loggers: configure them as usual.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from datetime import UTC, datetime

from ..core.application import RequestHead

error_log = logging.getLogger("httpy.error")
access_log = logging.getLogger("httpy.access")


class RateLimitedLog:
    """At most ``rate`` lines per second per class of bad request; the lines dropped are
    counted and reported.

    Bad requests are the peer's fault and can be sent in floods: logging each with a
    traceback would let a client fill the disk.  One short line each, rate-limited.  The
    class is the message template (``"bad request from %s: %d %s"``, ``"TLS handshake
    with %s failed: %s"``…): each has its own budget, so a flood of one kind (failed
    handshakes) cannot hide another (malformed requests).
    """

    def __init__(self, logger: logging.Logger, rate: float) -> None:
        self._logger = logger
        self._rate = rate
        self._buckets: dict[str, list[float]] = {}  # template -> [allowance, last, dropped]

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        bucket = self._buckets.get(message)
        if bucket is None:
            bucket = self._buckets[message] = [self._rate, now, 0]
        allowance = min(self._rate, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if allowance < 1.0:
            bucket[0] = allowance
            bucket[2] += 1
            return
        bucket[0] = allowance - 1.0
        if bucket[2]:
            self._logger.warning(
                "%d similar lines suppressed (%s)", bucket[2], message.split(" %", 1)[0]
            )
            bucket[2] = 0
        self._logger.warning(message, *args)


ACCESS_LOG_FORMATS = ("common", "combined", "json")


class AccessLine:
    """Formats one access-log line: Common Log Format (the default), ``combined`` (CLF
    plus referer and user agent, as nginx and Apache write it), or ``json`` (one object
    per line: time, client, method, path, query, http_version, status, bytes,
    duration_ms, request_id, host, user_agent, referer).

    CLF's timestamp is formatted at most once per second.
    """

    def __init__(self, style: str = "common") -> None:
        if style not in ACCESS_LOG_FORMATS:
            raise ValueError(f"access log format {style!r}: use one of {ACCESS_LOG_FORMATS}")
        self.style = style
        self._second = -1
        self._stamp = ""

    def format(
        self,
        client: tuple[str, int] | None,
        head: RequestHead,
        status: int,
        bytes_sent: int,
        duration: float,
    ) -> str:
        query = head.query_string.decode("latin-1")
        target = head.path + ("?" + query if query else "")
        if self.style == "json":
            return self._json(client, head, target, status, bytes_sent, duration)
        host = client[0] if client is not None else "-"
        line = (
            f'{host} - - [{self._clf_time()}] "{head.method} {_printable(target)} '
            f'HTTP/{head.http_version}" {status} {bytes_sent or "-"}'
        )
        if self.style == "combined":
            referer = _header(head, b"referer") or "-"
            agent = _header(head, b"user-agent") or "-"
            line += f' "{_printable(referer)}" "{_printable(agent)}"'
        return line

    def _json(
        self,
        client: tuple[str, int] | None,
        head: RequestHead,
        target: str,
        status: int,
        bytes_sent: int,
        duration: float,
    ) -> str:
        path, _, query = target.partition("?")
        return json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "client": f"{client[0]}:{client[1]}" if client is not None else None,
                "method": head.method,
                "path": path,
                "query": query,
                "http_version": head.http_version,
                "status": status,
                "bytes": bytes_sent,
                "duration_ms": round(duration * 1000, 3),
                "request_id": _header(head, b"x-request-id"),
                "host": _header(head, b"host"),
                "user_agent": _header(head, b"user-agent"),
                "referer": _header(head, b"referer"),
            },
            separators=(",", ":"),
        )

    def _clf_time(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))
        return self._stamp


_ACCESS_LINES = {style: AccessLine(style) for style in ACCESS_LOG_FORMATS}


def access_line(style: str) -> AccessLine:
    """The shared formatter for ``style`` (``Config.access_log_format``)."""
    return _ACCESS_LINES[style]


def _header(head: RequestHead, name: bytes) -> str | None:
    for key, value in head.headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _printable(text: str) -> str:
    # A request target or header value must not forge a second log line.
    if text.isprintable() and '"' not in text:
        return text
    return "".join(c if c.isprintable() and c != '"' else f"\\x{ord(c):02x}" for c in text)


class HTTPDate:
    """The ``Date`` header value, formatted at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode("ascii")
        return self._value
