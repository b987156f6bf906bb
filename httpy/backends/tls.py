"""TLS for the TCP listeners: contexts with ALPN (h2, http/1.1), the handshake with a
timeout, and a development certificate for local HTTPS and HTTP/3.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.tls import TLSAttribute, TLSStream

from ..core.application import RequestHead
from ..core.config import Config

#: Offered in this order: HTTP/2 when the client speaks it, else HTTP/1.1.
ALPN_PROTOCOLS = ("h2", "http/1.1")


def server_ssl_context(
    certfile: str | Path,
    keyfile: str | Path | None = None,
    *,
    ca_certs: str | Path | None = None,
    verify_client: str = "none",
    ciphers: str | None = None,
    min_version: str = "TLSv1.2",
) -> ssl.SSLContext:
    """A server context: TLS 1.2 minimum, the default secure ciphers, ALPN h2 + http/1.1.

    ``verify_client`` (``"none"``, ``"optional"``, ``"required"``) asks clients for a
    certificate signed by a CA in ``ca_certs`` (mutual TLS); ``ciphers`` is an OpenSSL
    cipher string (TLS 1.2; TLS 1.3 suites are not configurable this way);
    ``min_version`` is ``"TLSv1.2"`` or ``"TLSv1.3"``.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion[min_version.replace(".", "_")]
    context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    if ca_certs:
        context.load_verify_locations(cafile=str(ca_certs))
    context.verify_mode = _VERIFY_MODES[verify_client]
    if ciphers:
        context.set_ciphers(ciphers)
    enable_alpn(context)
    return context


def config_ssl_context(config: Config) -> ssl.SSLContext:
    """:func:`server_ssl_context` with ``config``'s certificate and TLS options."""
    assert config.certfile is not None
    return server_ssl_context(
        config.certfile,
        config.keyfile,
        ca_certs=config.ca_certs,
        verify_client=config.verify_client,
        ciphers=config.ssl_ciphers,
        min_version=config.ssl_min_version,
    )


_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}


def client_cert_hook(cert: Mapping[str, Any]) -> Callable[[RequestHead], RequestHead]:
    """A ``ConnectionContext.head_hook`` giving every request of the connection ``cert``."""

    def hook(head: RequestHead) -> RequestHead:
        return replace(head, client_cert=cert)

    return hook


def peer_certificate(stream: anyio.abc.ByteStream) -> dict[str, Any] | None:
    """The client's verified certificate on a TLS stream (``getpeercert()`` form)."""
    cert = stream.extra(TLSAttribute.peer_certificate, None)
    return dict(cert) if cert else None


def enable_alpn(context: ssl.SSLContext) -> None:
    """Offer h2 and http/1.1 on a context the application built itself (the seed's
    ``ssl.create_default_context(...)`` + ``load_cert_chain``)."""
    context.set_alpn_protocols(list(ALPN_PROTOCOLS))


async def tls_handshake(
    stream: anyio.abc.ByteStream, context: ssl.SSLContext, handshake_timeout: float
) -> tuple[TLSStream, str | None]:
    """Server-side handshake within ``handshake_timeout``; returns the stream and ALPN choice.

    Raises TimeoutError or an ssl/anyio error when the client fails the handshake.
    """
    with anyio.fail_after(handshake_timeout):
        tls = await TLSStream.wrap(
            stream, server_side=True, ssl_context=context, standard_compatible=False
        )
    return tls, tls.extra(TLSAttribute.alpn_protocol, None)


async def half_close(stream: anyio.abc.ByteStream) -> None:
    """Stop sending on ``stream`` but keep reading: a FIN on TCP; over TLS a close_notify
    alert, TLS's own end of data (RFC 8446 6.1), since anyio's ``TLSStream`` has no
    ``send_eof``.  A client waiting for the connection to close after a GOAWAY sees
    its end at once, as over cleartext.

    The alert is queued in the TLS object here and written by the stream's next
    ``receive()`` (anyio writes what is queued before it waits for input); the stream
    still decrypts what the client sends meanwhile (TLS 1.2 and 1.3 alike)."""
    ssl_object = stream.extra(TLSAttribute.ssl_object, None)
    if ssl_object is None:
        with contextlib.suppress(NotImplementedError):  # a stream that cannot half-close
            await stream.send_eof()
        return
    # SSLWantReadError is the usual outcome: the alert is queued, the client's own
    # close_notify has not come (we do not wait for it).
    with contextlib.suppress(ssl.SSLError):
        ssl_object.unwrap()


def generate_dev_certificate(directory: str | Path) -> tuple[Path, Path, Path]:
    """Create (or reuse) a local CA and a certificate for localhost / 127.0.0.1 / ::1.

    Returns ``(cert, key, ca)`` paths: serve with cert + key, let clients trust ``ca``.
    For development only; needs the ``trustme`` package (in the ``dev`` extra).
    """
    directory = Path(directory)
    cert, key, ca = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    if cert.exists() and key.exists() and ca.exists():
        return cert, key, ca
    try:
        import trustme
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "generating a development certificate needs trustme: pip install 'httpy[dev]'"
        ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA()
    issued = authority.issue_cert("localhost", "127.0.0.1", "::1")
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    authority.cert_pem.write_to_path(str(ca))
    return cert, key, ca
