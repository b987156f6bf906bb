"""Writing a whole buffer to a client connection, within a time limit, cheaply.

Every driver writes through :func:`send_all`.  Its contract: all of ``data`` is handed
to the connection, or :class:`TimeoutError` is raised when the peer does not take it fast
enough (the send-progress rule of :mod:`httpy.core.send_progress`: ``min_send_rate``
measured every ``send_timeout``), or the stream's own error (``BrokenResourceError``,
``ClosedResourceError``, ``OSError``) when the peer is gone.  With ``atomic=True`` a
cancellation of the caller never leaves part of ``data`` written (a half-written frame
would corrupt the connection for every other stream on it).

Why not simply ``with CancelScope(shield=True), fail_after(max_wait)``: those two scopes
cost about as much as serialising the response (6-9 us each, measured on asyncio and
trio), and nearly every write completes at once.  So:

* our TCP streams (:class:`~httpy.backends.batched.BatchedStream`, on asyncio and on
  trio) queue all of ``data`` before they ever wait, and time their waits themselves:
  no scope at all;
* anything else (TLS, memory streams in tests) goes through one scope that both shields
  and times out.  Its progress inside one ``send`` is invisible, so there the rule is
  simpler: the whole write within ``send_timeout``.

:func:`send_nowait` is the part of that which needs no ``await``: a driver calls it first
and awaits :func:`finish_send` only when something is left (a write that completes at
once then costs no coroutine at all).

The caller must make writes to one connection one at a time (the drivers hold a lock or
have a single writer), as with any byte stream.
"""

from __future__ import annotations

import anyio
import anyio.abc

from ..core.config import Config
from ..core.send_progress import SendProgress
from .batched import BatchedStream


async def send_all(
    stream: anyio.abc.ByteStream, data: bytes, config: Config, *, atomic: bool = False
) -> None:
    """Write all of ``data`` to ``stream`` (see the module docstring for the contract)."""
    rest = send_nowait(stream, data)
    if rest is not None:
        await finish_send(stream, data, rest, config, atomic=atomic)


def send_nowait(stream: anyio.abc.ByteStream, data: bytes) -> bytes | None:
    """Hand ``stream`` what it takes of ``data`` without waiting.

    None: all of it is written and the stream wants no wait.  Otherwise the bytes still
    to write with :func:`finish_send`: ``data`` itself when nothing was written, a tail
    of it, or ``b""`` when all is written but the stream asks its writer to wait until
    its buffer drains.  Raises the stream's error when the peer is gone.
    """
    if isinstance(stream, BatchedStream):
        return None if stream.write(data) else b""
    return data


async def finish_send(
    stream: anyio.abc.ByteStream, data: bytes, rest: bytes, config: Config, *, atomic: bool
) -> None:
    """Write ``rest``, what :func:`send_nowait` left of ``data``, while the peer keeps
    up with the send-progress rule."""
    if isinstance(stream, BatchedStream):
        await drain(stream, config)
        return
    # Part of it is on the wire: the rest must follow, whatever the caller's fate.
    atomic = atomic or len(rest) < len(data)
    timeout = config.send_timeout
    with anyio.CancelScope(shield=atomic, deadline=anyio.current_time() + timeout) as scope:
        await stream.send(rest)
    if scope.cancelled_caught:
        raise TimeoutError(f"the peer did not read for {timeout:g} s")


async def drain(stream: BatchedStream, config: Config) -> None:
    """Wait until ``stream`` takes more writes; :class:`TimeoutError` when its peer
    takes less than the send-progress rule asks in a ``send_timeout`` interval."""
    now = anyio.current_time()
    progress = SendProgress(stream.unsent_bytes, now, config.send_timeout, config.min_send_rate)
    while True:
        try:
            await stream.drain(progress.deadline - now)
            return
        except TimeoutError:
            now = anyio.current_time()
            if not progress.keeps_up(stream.unsent_bytes, now):
                raise TimeoutError(
                    f"the peer took less than {config.min_send_rate:g} B/s "
                    f"for {config.send_timeout:g} s"
                ) from None
