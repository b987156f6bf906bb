"""The server's loggers, the access log line, and the rate limit on bad-request lines.

``httpy.error`` carries server problems and bad requests; ``httpy.access`` one line per
response.  Both are ordinary :mod:`logging` loggers: configure them as usual.
"""

from __future__ import annotations

import email.utils
import logging
import time

error_log = logging.getLogger("httpy.error")
access_log = logging.getLogger("httpy.access")


class RateLimitedLog:
    """At most ``rate`` lines per second; the lines dropped are counted and reported.

    Bad requests are the peer's fault and can be sent in floods: logging each with a
    traceback would let a client fill the disk.  One short line each, rate-limited.
    """

    def __init__(self, logger: logging.Logger, rate: float) -> None:
        self._logger = logger
        self._rate = rate
        self._allowance = rate
        self._last = time.monotonic()
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
        self._last = now
        if self._allowance < 1.0:
            self._suppressed += 1
            return
        self._allowance -= 1.0
        if self._suppressed:
            self._logger.warning("%d similar bad-request lines suppressed", self._suppressed)
            self._suppressed = 0
        self._logger.warning(message, *args)


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
