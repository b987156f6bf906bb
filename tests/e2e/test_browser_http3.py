"""A real browser over HTTP/3: headless Chromium, forced onto QUIC for the test origin and
trusting the test certificate by its key, loads the example app's page; the page's own
``performance.getEntries()[0].nextHopProtocol`` says ``h3``.

Needs Debian's ``chromium`` (scripts/install-system-deps.sh) and the ``playwright``
package (dev extra); skipped with a reason otherwise.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

pytest.importorskip("aioquic")

from tests.support.h3client import certificate_files, example_server

CHROMIUM = Path("/usr/bin/chromium")


def spki_hash(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what --ignore-certificate-errors-spki-list takes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_chromium_loads_the_page_over_h3(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing (scripts/install-system-deps.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    cert = certificate_files()[0]
    with example_server() as port, sync_api.sync_playwright() as playwright:
        origin = f"127.0.0.1:{port}"
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "profile"),  # fresh: no cached Alt-Svc or sessions
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-quic",
                f"--origin-to-force-quic-on={origin}",
                f"--ignore-certificate-errors-spki-list={spki_hash(cert)}",
            ],
        )
        try:
            page = context.new_page()
            page.goto(f"https://{origin}/", timeout=30_000)
            protocol = page.evaluate("performance.getEntries()[0].nextHopProtocol")
            shown = page.text_content("#protocol")
        finally:
            context.close()
    assert protocol == "h3"
    assert shown == "h3"
