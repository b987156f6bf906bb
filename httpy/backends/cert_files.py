"""Which certificate files an ``ssl.SSLContext`` was loaded from.

HTTP/3's TLS is aioquic's own, not the ``ssl`` module's: it needs the certificate and key
themselves, and an ``SSLContext`` never gives its key back.  The seed's HTTP/3 snippet
builds its context with ``ssl_context.load_cert_chain('cert.pem', 'key.pem')`` and hands
only the context to ``run(..., http3_port=...)``.  So importing httpy wraps
``SSLContext.load_cert_chain`` to remember the arguments of each call (the call itself
is unchanged), and :func:`cert_chain_of` looks them up.
"""

from __future__ import annotations

import os
import ssl
import weakref
from typing import Any

CertChain = tuple[str, str | None, Any]

_chains: weakref.WeakKeyDictionary[ssl.SSLContext, CertChain] = weakref.WeakKeyDictionary()
_original = ssl.SSLContext.load_cert_chain


def _load_cert_chain(
    self: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None
) -> None:
    _original(self, certfile, keyfile, password)
    _chains[self] = (os.fspath(certfile), os.fspath(keyfile) if keyfile else None, password)


def install() -> None:
    """Start recording (idempotent)."""
    if getattr(ssl.SSLContext.load_cert_chain, "__wrapped_by_httpy__", False):
        return
    _load_cert_chain.__wrapped_by_httpy__ = True  # type: ignore[attr-defined]
    ssl.SSLContext.load_cert_chain = _load_cert_chain  # type: ignore[method-assign, assignment]


def cert_chain_of(context: ssl.SSLContext) -> CertChain | None:
    """``(certfile, keyfile, password)`` of the last ``load_cert_chain`` on ``context``."""
    return _chains.get(context)
