"""The command line's Config options: each is declared once, in ``httpy.cli.CONFIG_FLAGS``.

* Every flag the command line had keeps its name.
* Every ``ConfigFlag`` round-trips: a non-default value on the command line becomes that
  value in the ``Config``; no flags give ``Config()``'s defaults.
* ``--help`` shows every group, and each Config flag sits in its group.
* The fixed choices (``FIELD_CHOICES``) are the CLI's choices and Config's validation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from httpy.cli import CONFIG_FLAGS, ConfigFlag, build_parser, config_options
from httpy.core.config import FIELD_CHOICES, Config

#: Every option string of the command line (besides -h/--help): renaming one breaks users.
FLAGS = {
    "--host", "--port", "--bind", "--uds", "--fd",
    "--workers", "--reuse-port", "--reload", "--reload-dir",
    "--tls-bind", "--certfile", "--keyfile", "--dev-cert", "--ca-certs", "--ssl-cert-reqs",
    "--require-client-cert", "--ssl-ciphers", "--ssl-min-version", "--tls-handshake-timeout",
    "--http3-port", "--http3-bind", "--quic-idle-timeout", "--quic-retry",
    "--quic-retry-threshold",
    "--backend", "--loop", "--app-dir", "--http1-parser",
    "--forwarded-allow-ips", "--proxy-protocol",
    "--health-path", "--metrics-path",
    "--max-connections", "--max-body-bytes", "--max-header-bytes", "--max-header-count",
    "--max-request-line-bytes", "--header-timeout", "--keepalive-timeout", "--body-timeout",
    "--send-timeout",
    "--min-send-rate",
    "--ws-message-timeout",
    "--max-connections-per-client",
    "--client-request-rate",
    "--client-request-burst", "--drain-timeout",
    "--ws-max-message-bytes", "--ws-ping-interval", "--ws-ping-timeout", "--ws-close-timeout",
    "--no-ws-compression",
    "--log-level", "--no-access-log", "--access-log-format", "--request-id",
    "--debug",
}  # fmt: skip

GROUPS = (
    "processes",
    "TLS (HTTPS, HTTP/2 by ALPN)",
    "HTTP/3 (QUIC over UDP; needs the TLS certificate)",
    "behind a proxy or load balancer",
    "health and metrics (off by default)",
    "limits and timeouts",
    "WebSockets",
    "logging",
)


def config_from(*argv: str) -> Config:
    """The Config that the Config flags among ``argv`` describe (as ``main`` builds it)."""
    return Config(**config_options(build_parser().parse_args(["app", *argv])))


def sample(flag: ConfigFlag) -> tuple[list[str], Any]:
    """Command-line arguments setting ``flag`` to a value other than the default, and
    the Config value they should give (``--ssl-cert-reqs`` also needs ``--ca-certs``)."""
    default = flag.default
    if flag.kind is bool:
        return [flag.option], not default
    if flag.kind is tuple and flag.repeat:
        return [flag.option, "a:1", flag.option, "[::1]:2"], ("a:1", "[::1]:2")
    if flag.kind is tuple:
        return [flag.option, " 10.0.0.1, ,10.0.0.0/8 "], ("10.0.0.1", "10.0.0.0/8")
    if flag.field in FIELD_CHOICES:
        choice = FIELD_CHOICES[flag.field][-1]
        assert choice != default
        needs = ["--ca-certs", "ca.pem"] if flag.field == "verify_client" else []
        return [flag.option, choice, *needs], choice
    if flag.kind in (int, float) and default is None:  # off by default
        return [flag.option, "7"], 7
    if flag.kind is int:
        assert isinstance(default, int)
        return [flag.option, str(default * 2)], default * 2
    if flag.kind is float:
        assert isinstance(default, float)
        return [flag.option, str(default + 1.5)], default + 1.5
    assert flag.kind is str and default is None, flag
    return [flag.option, "/sample"], "/sample"


def test_every_flag_keeps_its_name() -> None:
    assert set(build_parser()._option_string_actions) - {"-h", "--help"} == FLAGS


def test_config_flags_are_config_fields_declared_once() -> None:
    fields = [flag.field for flag in CONFIG_FLAGS]
    assert len(fields) == len(set(fields))
    assert set(fields) <= {field.name for field in dataclasses.fields(Config)}
    assert {flag.option for flag in CONFIG_FLAGS} <= FLAGS


@pytest.mark.parametrize("flag", CONFIG_FLAGS, ids=lambda flag: flag.option)
def test_every_config_flag_round_trips(flag: ConfigFlag) -> None:
    argv, expected = sample(flag)
    config = config_from(*argv)
    assert getattr(config, flag.field) == expected
    # ... and sets nothing else.
    needed = {"ca_certs": None} if flag.field == "verify_client" else {}
    assert dataclasses.replace(config, **{flag.field: flag.default}, **needed) == Config()


def test_no_flags_give_the_config_defaults() -> None:
    assert config_from() == Config()


def test_parser_defaults_are_the_config_defaults() -> None:
    args = build_parser().parse_args(["app"])
    assert args.keepalive_timeout == Config().keepalive_timeout == 75.0
    assert args.ssl_cert_reqs == "none"
    assert args.forwarded_allow_ips == "127.0.0.1,::1,unix:"
    assert args.no_access_log is False and args.no_ws_compression is False
    assert args.tls_bind is None


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["--ws-ping-interval", "0"], "ws_ping_interval", None),
        (["--ws-ping-timeout", "0"], "ws_ping_timeout", 0.0),
        (["--forwarded-allow-ips", ""], "forwarded_allow_ips", ()),
        (["--forwarded-allow-ips", "*"], "forwarded_allow_ips", ("*",)),
        (["--no-access-log"], "access_log", False),
        (["--no-ws-compression"], "ws_compression", False),
        (["--ssl-cert-reqs", "optional", "--ca-certs", "ca.pem"], "verify_client", "optional"),
        (["--max-body-bytes", "0"], "max_body_bytes", 0),
    ],
)
def test_flag_conversions(argv: list[str], field: str, expected: object) -> None:
    assert getattr(config_from(*argv), field) == expected


@pytest.mark.parametrize("flag", [f for f in CONFIG_FLAGS if f.field in FIELD_CHOICES])
def test_choices_come_from_config(flag: ConfigFlag, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["app", flag.option, "nonsense"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match=rf"^Config\.{flag.field} must be '"):
        Config(**{flag.field: "nonsense"})


def test_bad_number_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["app", "--keepalive-timeout", "soon"])
    assert exit_info.value.code == 2
    assert "invalid float value" in capsys.readouterr().err


def test_help_lists_each_group_with_its_flags() -> None:
    parser = build_parser()
    text = parser.format_help()
    for title in GROUPS:
        assert f"\n{title}:\n" in text, title
    for option in FLAGS:
        assert option in text, option
    where = {
        option: group.title or ""
        for group in parser._action_groups
        for action in group._group_actions
        for option in action.option_strings
    }
    for flag in CONFIG_FLAGS:
        assert where[flag.option] == (flag.group or "options"), flag.option
    # Options show their metavar or choices, help text and default.
    words = " ".join(text.split())
    assert "--keepalive-timeout KEEPALIVE_TIMEOUT idle seconds between keep-alive" in words
    assert "keep-alive requests (default: 75.0)" in words
    assert "--forwarded-allow-ips LIST comma-separated" in words
    assert "--ssl-min-version {TLSv1.2,TLSv1.3} oldest TLS version accepted" in words
    assert "--no-access-log don't write the httpy.access log (default: False)" in words
