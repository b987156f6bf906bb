"""Writing a whole buffer to a client connection, within a time limit, cheaply.

Every driver writes through :func:`send_all`.  Its contract: all of ``data`` is handed
to the connection, or :class:`TimeoutError` is raised when the peer has not taken it
within ``max_wait`` seconds, or the stream's own error (``BrokenResourceError``,
``ClosedResourceError``, ``OSError``) when the peer is gone.  With ``atomic=True`` a
cancellation of the caller never leaves part of ``data`` written (a half-written frame
would corrupt the connection for every other stream on it).

Why not simply ``with CancelScope(shield=True), fail_after(max_wait)``: those two scopes
cost about as much as serialising the response (6-9 us each, measured on asyncio and
trio), and nearly every write completes at once.  So:

* our TCP streams (:class:`~httpy.backends.batched.BatchedStream`, on asyncio and on
  trio) queue all of ``data`` before they ever wait, and apply ``max_wait`` themselves:
  no scope at all;
* anything else (TLS, memory streams in tests) goes through one scope that both shields
  and times out.

:func:`send_nowait` is the part of that which needs no ``await``: a driver calls it first
and awaits :func:`finish_send` only when something is left (a write that completes at
once then costs no coroutine at all).

The caller must make writes to one connection one at a time (the drivers hold a lock or
have a single writer), as with any byte stream.
"""

from __future__ import annotations

import anyio
import anyio.abc

from .batched import BatchedStream


async def send_all(
    stream: anyio.abc.ByteStream, data: bytes, max_wait: float, *, atomic: bool = False
) -> None:
    """Write all of ``data`` to ``stream`` (see the module docstring for the contract)."""
    rest = send_nowait(stream, data)
    if rest is not None:
        await finish_send(stream, data, rest, max_wait, atomic=atomic)


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
    stream: anyio.abc.ByteStream, data: bytes, rest: bytes, max_wait: float, *, atomic: bool
) -> None:
    """Write ``rest``, what :func:`send_nowait` left of ``data``, within ``max_wait``."""
    if isinstance(stream, BatchedStream):
        await stream.drain(max_wait)
        return
    # Part of it is on the wire: the rest must follow, whatever the caller's fate.
    atomic = atomic or len(rest) < len(data)
    with anyio.CancelScope(shield=atomic, deadline=anyio.current_time() + max_wait) as scope:
        await stream.send(rest)
    if scope.cancelled_caught:
        raise TimeoutError(f"the peer did not read for {max_wait} s")
