"""The send-progress rule, decided from ``now`` (no sleeping)."""

from __future__ import annotations

from httpy.core.send_progress import SendProgress


def test_a_peer_that_takes_nothing_fails_at_the_end_of_the_first_interval() -> None:
    progress = SendProgress(waiting=1000, now=0.0, interval=10.0, min_rate=1.0)
    assert progress.deadline == 10.0
    assert progress.keeps_up(1000, 9.99)  # before the deadline: always
    assert not progress.keeps_up(1000, 10.0)


def test_a_peer_that_opens_its_window_a_byte_at_a_time_fails_like_one_that_never_does() -> None:
    progress = SendProgress(waiting=10**6, now=0.0, interval=10.0, min_rate=1024.0)
    waiting = 10**6
    for second in range(1, 10):
        waiting -= 1  # one byte a second
        assert progress.keeps_up(waiting, float(second))
    assert not progress.keeps_up(waiting - 1, 10.0)  # 10 bytes < 10 KiB


def test_a_slow_steady_reader_passes_every_interval() -> None:
    """2 KiB/s against a 1 KiB/s floor: never dropped, however long the wait."""
    waiting = 10**6
    progress = SendProgress(waiting, now=0.0, interval=10.0, min_rate=1024.0)
    now = 0.0
    while waiting > 0:
        now += 10.0
        waiting = max(0, waiting - 20 * 1024)
        assert progress.keeps_up(waiting, now)
        assert progress.deadline == now + 10.0 or waiting == 0


def test_taking_all_that_waited_is_enough_even_below_the_floor() -> None:
    progress = SendProgress(waiting=100, now=0.0, interval=10.0, min_rate=1024.0)
    assert progress.keeps_up(0, 10.0)


def test_less_than_the_floor_fails_even_when_some_bytes_moved() -> None:
    progress = SendProgress(waiting=100_000, now=0.0, interval=10.0, min_rate=1024.0)
    assert not progress.keeps_up(100_000 - 10 * 1024 + 1, 10.0)
    progress = SendProgress(waiting=100_000, now=0.0, interval=10.0, min_rate=1024.0)
    assert progress.keeps_up(100_000 - 10 * 1024, 10.0)


def test_a_zero_floor_asks_for_one_byte_per_interval() -> None:
    progress = SendProgress(waiting=100, now=0.0, interval=5.0, min_rate=0.0)
    assert progress.keeps_up(99, 5.0)
    assert progress.deadline == 10.0
    assert not progress.keeps_up(99, 10.0)
