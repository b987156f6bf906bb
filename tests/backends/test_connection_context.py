"""ConnectionContext.for_connection: one connection's context keeps every server-wide
field (it is built field by field, for speed: a field added later must be passed on)."""

from __future__ import annotations

from dataclasses import fields

from httpy import App
from httpy.backends.connection import ConnectionContext
from httpy.core.config import Config


def test_for_connection_keeps_every_other_field() -> None:
    context = ConnectionContext.create(App(), Config(request_id=True), scheme="https")
    one = context.for_connection(("203.0.113.7", 4711), ("127.0.0.1", 8443))
    assert (one.client, one.server) == (("203.0.113.7", 4711), ("127.0.0.1", 8443))
    for field in fields(ConnectionContext):
        if field.name not in ("client", "server"):
            assert getattr(one, field.name) is getattr(context, field.name), field.name
