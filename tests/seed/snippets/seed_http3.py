# ruff: noqa
# fmt: off
"""Seed: HTTP/3 Configuration.

Between the BEGIN/END markers: verbatim from ../shared/seed/ADVANCED_USAGE.md
(checked by test_seed_snippets.py::test_snippets_are_verbatim).  The snippet serves on
port 443 from the current directory's cert.pem/key.pem: tests/seed/test_seed_http3.py
runs it through tests/seed/snippets/run_seed_http3.py, which moves the ports at run time
(a wrapper around httpy.run) without touching the text below.
"""

# --- BEGIN SEED SNIPPET 8 ---
import asyncio
import ssl
from httpy import run, AIOQUIC_AVAILABLE

# Create SSL context
ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ssl_context.load_cert_chain('cert.pem', 'key.pem')

# Run with HTTP/3 support if available
if AIOQUIC_AVAILABLE:
    # Configure HTTP/3 with custom settings
    http3_config = {
        "max_datagram_size": 1350,
        "quic_max_stream_data": 1024 * 1024,  # 1MB
        "quic_max_data": 5 * 1024 * 1024,     # 5MB
        "quic_max_streams_bidi": 100,
        "quic_max_streams_uni": 100,
        "quic_idle_timeout": 30.0,            # 30 seconds
    }
    
    # Run server with HTTP/3 support
    asyncio.run(run(
        host="0.0.0.0", 
        port=443, 
        ssl_context=ssl_context, 
        http3_port=443,
        http3_config=http3_config
    ))
else:
    # Fallback to HTTP/2 and HTTP/1.1
    asyncio.run(run(host="0.0.0.0", port=443, ssl_context=ssl_context))
# --- END SEED SNIPPET 8 ---
