"""``run(http3_port=..., http3_config=...)``: the seed's keys, and clear errors."""

from __future__ import annotations

import ssl

import pytest

import httpy.framework.runner as runner
from httpy.core.config import HTTP3_CONFIG_KEYS, Config

SEED_CONFIG = {
    "max_datagram_size": 1350,
    "quic_max_stream_data": 1024 * 1024,
    "quic_max_data": 5 * 1024 * 1024,
    "quic_max_streams_bidi": 100,
    "quic_max_streams_uni": 100,
    "quic_idle_timeout": 30.0,
}


def context() -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)


def test_seed_keys_become_config_fields() -> None:
    assert set(SEED_CONFIG) == set(HTTP3_CONFIG_KEYS)
    options = runner.http3_options("0.0.0.0", 443, SEED_CONFIG, context(), {})
    config = Config().with_options(**options)
    assert config.http3_binds == ("0.0.0.0:443",)
    assert config.max_datagram_size == 1350
    assert config.quic_max_data == 5 * 1024 * 1024
    assert config.quic_idle_timeout == 30.0
    v6 = runner.http3_options("::", 8443, None, context(), {})
    assert v6 == {"http3_binds": ("[::]:8443",)}


def test_unknown_key_is_named() -> None:
    with pytest.raises(ValueError, match="'quic_max_sreams_bidi'"):
        runner.http3_options("127.0.0.1", 443, {"quic_max_sreams_bidi": 1}, context(), {})


def test_bad_values_are_refused() -> None:
    options = runner.http3_options("127.0.0.1", 443, {"max_datagram_size": 100}, context(), {})
    with pytest.raises(ValueError, match="max_datagram_size"):
        Config().with_options(**options)


def test_needs_tls_and_a_port() -> None:
    with pytest.raises(ValueError, match="TLS"):
        runner.http3_options("127.0.0.1", 443, None, None, {})
    with pytest.raises(ValueError, match="http3_port"):
        runner.http3_options("127.0.0.1", None, {"quic_idle_timeout": 5.0}, context(), {})


def test_without_aioquic_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "AIOQUIC_AVAILABLE", False)
    with pytest.raises(RuntimeError, match=r"pip install httpy\[http3\]"):
        runner.http3_options("127.0.0.1", 443, None, context(), {})
