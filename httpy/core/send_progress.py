"""Is the peer taking our bytes?  The send-progress rule, decided from ``now``.

A writer with response bytes waiting for a peer (behind an HTTP/2 or HTTP/3 flow-control
window, or in a TCP socket's buffer) measures what the peer actually takes, interval by
interval (``send_timeout`` seconds each): in every interval the peer must take at least
``min_send_rate * send_timeout`` bytes, or everything that was waiting when the interval
began if that is less.  Otherwise the writer gives up on it (the stream is reset, the
connection closed).

So a peer that keeps its window shut, or opens it a byte at a time, is dropped at the end
of the first interval, however often it sends WINDOW_UPDATE; a slow but steady reader is
never dropped, however large the response (a single deadline over the whole wait would
drop a 100 KB/s client in the middle of a 16 MB chunk).
"""

from __future__ import annotations


class SendProgress:
    """The progress meter of one wait for a peer to take ``waiting`` bytes.

    The writer calls :meth:`keeps_up` when :attr:`deadline` passes (and may call it
    earlier: before the deadline it is always true).
    """

    __slots__ = ("_floor", "_interval", "_mark", "deadline")

    def __init__(self, waiting: int, now: float, interval: float, min_rate: float) -> None:
        self._interval = interval
        #: Bytes the peer must take per interval (at least one: "any progress at all").
        self._floor = max(1, int(min_rate * interval))
        #: Bytes waiting when the current interval began.
        self._mark = waiting
        #: When the current interval ends (same clock as ``now``).
        self.deadline = now + interval

    def keeps_up(self, waiting: int, now: float) -> bool:
        """True while the peer takes enough: ``waiting`` is what still waits at ``now``.

        At the end of an interval in which it took enough, a new interval begins.
        """
        if waiting <= 0 or now < self.deadline:
            return True
        taken = self._mark - waiting
        if taken < min(self._floor, self._mark):
            return False
        self._mark = waiting
        self.deadline = now + self._interval
        return True
