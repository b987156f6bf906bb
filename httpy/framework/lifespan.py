"""Startup and shutdown hooks, and ``App.state``.

::

    @on_startup
    async def connect() -> None:
        app.state.db = await open_database()

    @on_shutdown
    async def disconnect() -> None:
        await app.state.db.close()

Hooks take no arguments and may be ``async def`` or plain functions.  Startup hooks run
in registration order before the server opens its listeners; the first that raises stops
the startup (the server exits with the cause, and no shutdown hook runs).  Shutdown hooks
run in reverse registration order after the last request, each one even when an earlier
one failed.  The same hooks run under HTTPy's server, under any ASGI server (the ASGI
``lifespan`` scope), and inside ``async with AsyncTestClient(app)`` / ``with TestClient(app)``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, TypeVar

import anyio

Hook = Callable[[], Awaitable[object] | object]
F = TypeVar("F", bound=Callable[[], Any])

logger = logging.getLogger("httpy.error")


class State(SimpleNamespace):
    """A plain attribute namespace for application-wide values: ``app.state.db = ...``.

    Typically filled by startup hooks and read by handlers.  Reading an attribute that was
    never set raises :class:`AttributeError` naming it.
    """

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"app.state has no attribute {name!r} (set it first, e.g. in an on_startup hook)"
        )


class LifespanHooks:
    """The startup and shutdown hooks of one application."""

    def __init__(self) -> None:
        self.startup_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []

    def on_startup(self, hook: F) -> F:
        self.startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: F) -> F:
        self.shutdown_hooks.append(hook)
        return hook

    async def startup(self) -> None:
        """Run the startup hooks in registration order; the first failure propagates."""
        for hook in self.startup_hooks:
            await _call(hook)

    async def shutdown(self) -> None:
        """Run every shutdown hook, last registered first, shielded from cancellation.

        A failing hook does not stop the others; afterwards the failure is raised (an
        :class:`ExceptionGroup` when several failed) for the caller to log.
        """
        errors: list[Exception] = []
        with anyio.CancelScope(shield=True):
            for hook in reversed(self.shutdown_hooks):
                try:
                    await _call(hook)
                except Exception as exc:
                    errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("several shutdown hooks failed", errors)


async def _call(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result
