"""Running behind proxies: the proxy-headers hook and the PROXY protocol reader.

The parsing is pure and lives in :mod:`httpy.core.proxy_headers` and
:mod:`httpy.core.proxy_protocol`; this module connects it to the server's connections.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import partial

import anyio

from ..core.application import RequestHead
from ..core.config import Config
from ..core.proxy_headers import TrustedProxies, apply_proxy_headers
from ..core.proxy_protocol import (
    V1_MAX_LENGTH,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
    proxy_header_length,
)

HeadHook = Callable[[RequestHead], RequestHead]


def proxy_headers_hook(config: Config) -> HeadHook | None:
    """The ``ConnectionContext.head_hook`` applying proxy headers, or None when no peer
    is trusted (``forwarded_allow_ips`` empty): then requests pay nothing for it."""
    trusted = TrustedProxies(config.forwarded_allow_ips)
    if not trusted.enabled:
        return None
    return partial(_apply, trusted=trusted)


def _apply(head: RequestHead, *, trusted: TrustedProxies) -> RequestHead:
    return apply_proxy_headers(head, trusted)


def chain(first: HeadHook, then: HeadHook | None) -> HeadHook:
    """``first``, then ``then`` (when there is one)."""
    if then is None:
        return first

    def both(head: RequestHead) -> RequestHead:
        return then(first(head))

    return both


async def read_proxy_header(sock: socket.socket, time_limit: float) -> ProxyHeader:
    """Consume exactly the PROXY protocol header from the (non-blocking) ``sock``.

    Reads no byte past the header, so TLS or HTTP then starts on a clean socket.  Raises
    :class:`ProxyProtocolError` (malformed, or the peer closed), or ``TimeoutError``
    after ``time_limit`` seconds.
    """
    data = b""
    with anyio.fail_after(time_limit):
        while True:
            length = proxy_header_length(data)
            if length is not None and len(data) >= length:
                return parse_proxy_header(data)
            await anyio.wait_readable(sock)
            if length is None:
                # Length unknown: peek, and take what is surely header (up to the end
                # of a v1 line once it shows, everything before it otherwise).
                try:
                    peeked = sock.recv(V1_MAX_LENGTH + 232, socket.MSG_PEEK)
                except BlockingIOError:
                    continue
                if not peeked:
                    raise ProxyProtocolError("connection closed before the PROXY header")
                total = proxy_header_length(data + peeked)
                want = len(peeked) if total is None else min(len(peeked), total - len(data))
            else:
                want = length - len(data)
            try:
                chunk = sock.recv(want)
            except BlockingIOError:
                continue
            if not chunk:
                raise ProxyProtocolError("connection closed before the PROXY header")
            data += chunk
