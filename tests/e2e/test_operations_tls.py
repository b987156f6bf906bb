"""TLS options end to end: mutual TLS (the certificate on the request), minimum version,
ciphers.  Certificates come from trustme; the client is httpx (HTTP/1.1 and HTTP/2)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from httpy import App, Request, Response
from tests.support.servers import running_server

trustme = pytest.importorskip("trustme")

app = App()


@app.get("/whoami")
async def whoami(request: Request) -> Response:
    cert = request.client_cert
    if cert is None:
        return Response.json({"cert": None, "scheme": request.scheme})
    subject = {key: value for rdn in cert["subject"] for key, value in rdn}
    return Response.json(
        {"cert": subject, "san": [list(x) for x in cert.get("subjectAltName", ())],
         "scheme": request.scheme}
    )


@dataclass
class PKI:
    server_cert: str
    server_key: str
    ca: str
    client: Any  # trustme.LeafCert issued by the CA
    stranger: Any  # a certificate from another CA
    authority: Any


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    server.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = authority.issue_cert("alice@example.com", common_name="alice")
    stranger = trustme.CA().issue_cert("mallory@example.com", common_name="mallory")
    return PKI(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"),
               str(tmp_path / "ca.pem"), client, stranger, authority)


def client_context(pki: PKI, cert: Any | None = None, **versions: Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    pki.authority.configure_trust(context)
    if cert is not None:
        cert.configure_cert(context)
    for name, value in versions.items():
        setattr(context, name, value)
    return context


def tls_options(pki: PKI, **options: Any) -> dict[str, Any]:
    return {"binds": (), "tls_binds": ("127.0.0.1:0",), "certfile": pki.server_cert,
            "keyfile": pki.server_key, **options}


@pytest.mark.anyio
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
async def test_mutual_tls_puts_the_client_certificate_on_the_request(
    pki: PKI, http2: bool
) -> None:
    options = tls_options(pki, ca_certs=pki.ca, verify_client="required")
    async with running_server(app, **options) as (host, port):
        context = client_context(pki, pki.client)
        async with httpx.AsyncClient(verify=context, http2=http2) as client:
            response = await client.get(f"https://{host}:{port}/whoami")
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    body = response.json()
    assert body["cert"]["commonName"] == "alice"
    assert ["email", "alice@example.com"] in body["san"]
    assert body["scheme"] == "https"


@pytest.mark.anyio
async def test_required_client_certificate_refuses_clients_without_one(pki: PKI) -> None:
    options = tls_options(pki, ca_certs=pki.ca, verify_client="required")
    async with running_server(app, **options) as (host, port):
        for cert in (None, pki.stranger):  # none, and one from a CA we don't trust
            async with httpx.AsyncClient(verify=client_context(pki, cert)) as client:
                with pytest.raises(httpx.TransportError):
                    await client.get(f"https://{host}:{port}/whoami")
        # The server is still fine for a client with a good certificate.
        async with httpx.AsyncClient(verify=client_context(pki, pki.client)) as client:
            assert (await client.get(f"https://{host}:{port}/whoami")).status_code == 200


@pytest.mark.anyio
async def test_optional_client_certificate(pki: PKI) -> None:
    options = tls_options(pki, ca_certs=pki.ca, verify_client="optional")
    async with running_server(app, **options) as (host, port):
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            anonymous = (await client.get(f"https://{host}:{port}/whoami")).json()
        async with httpx.AsyncClient(verify=client_context(pki, pki.client)) as client:
            alice = (await client.get(f"https://{host}:{port}/whoami")).json()
    assert anonymous["cert"] is None
    assert alice["cert"]["commonName"] == "alice"


@pytest.mark.anyio
async def test_no_client_certificate_requested_by_default(pki: PKI) -> None:
    async with running_server(app, **tls_options(pki)) as (host, port):
        # A client offering a certificate nobody asked for: not on the request.
        async with httpx.AsyncClient(verify=client_context(pki, pki.client)) as client:
            assert (await client.get(f"https://{host}:{port}/whoami")).json()["cert"] is None


@pytest.mark.anyio
async def test_minimum_tls_version(pki: PKI) -> None:
    async with running_server(app, **tls_options(pki, ssl_min_version="TLSv1.3")) as (
        host,
        port,
    ):
        old = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        async with httpx.AsyncClient(verify=old) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"https://{host}:{port}/whoami")
        async with httpx.AsyncClient(verify=client_context(pki)) as client:
            response = await client.get(f"https://{host}:{port}/whoami")
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            assert ssl_object.version() == "TLSv1.3"


@pytest.mark.anyio
async def test_cipher_list(pki: PKI) -> None:
    chosen = "ECDHE-ECDSA-AES128-GCM-SHA256"  # trustme's keys are ECDSA
    options = tls_options(pki, ssl_ciphers=chosen)
    async with running_server(app, **options) as (host, port):
        tls12 = client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)
        async with httpx.AsyncClient(verify=tls12) as client:
            response = await client.get(f"https://{host}:{port}/whoami")
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
    assert ssl_object.cipher()[0] == chosen


def test_bad_tls_options_are_refused() -> None:
    from httpy import Config

    with pytest.raises(ValueError, match="needs ca_certs"):
        Config(verify_client="required")
    with pytest.raises(ValueError, match="verify_client"):
        Config(verify_client="sometimes", ca_certs="x.pem")
    with pytest.raises(ValueError, match="ssl_min_version"):
        Config(ssl_min_version="TLSv1.0")
