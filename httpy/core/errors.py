"""Exceptions raised by the core when its *caller* (the backend) misuses it.

Bad input from the peer never raises: it becomes a :class:`~httpy.core.events.ProtocolError`
event.  These exceptions are for programming errors on our side of the wire, such as
sending a body before a response head.
"""

from __future__ import annotations


class LocalProtocolError(Exception):
    """The caller asked the connection to do something the protocol forbids."""


class StreamClosedError(LocalProtocolError):
    """The stream (or connection) a command names is already closed."""
