"""The server's table of clients (``httpy.backends.clients``), clock given by the test."""

from __future__ import annotations

from httpy.backends.clients import ClientTable
from httpy.core.config import Config

ATTACKER = ("203.0.113.7", 40000)
PROXY = ("127.0.0.1", 50000)  # in the default forwarded_allow_ips


def test_connections_of_one_client_share_its_flood_budgets() -> None:
    table = ClientTable(Config())
    first = table.connect(ATTACKER, 0.0)
    second = table.connect(("203.0.113.7", 40001), 0.0)
    assert first is not None and second is not None
    assert first.budgets is second.budgets
    other = table.connect(("203.0.113.8", 40000), 0.0)
    assert other is not None and other.budgets is not first.budgets


def test_flood_budgets_are_the_clients_except_for_a_proxy_or_a_unix_peer() -> None:
    """What an HTTP/2 or HTTP/3 connection asks for when it starts (HTTP/1.1 connections
    never do): its client's budgets, the same for every connection of that client; None
    (one of its own) behind a trusted proxy or on a Unix socket."""
    table = ClientTable(Config())
    first = table.flood_budgets(ATTACKER, 0.0)
    assert first is not None and table.flood_budgets(("203.0.113.7", 1), 0.0) is first
    assert table.flood_budgets(("203.0.113.8", 1), 0.0) is not first
    assert table.flood_budgets(PROXY, 0.0) is None
    assert table.flood_budgets(None, 0.0) is None


def test_a_trusted_proxy_and_a_unix_peer_get_a_budget_per_connection() -> None:
    """Many clients behind one proxy address must not share one client's budget."""
    table = ClientTable(Config(max_connections_per_client=1))
    first, second = table.connect(PROXY, 0.0), table.connect(PROXY, 0.0)
    assert first is not None and second is not None  # and no per-client cap
    assert first.budgets is not second.budgets
    unix = [table.connect(None, 0.0), table.connect(None, 0.0)]
    assert all(entry is not None for entry in unix)
    assert len(table) == 0


def test_max_connections_per_client_refuses_the_one_over_and_frees_on_disconnect() -> None:
    table = ClientTable(Config(max_connections_per_client=2))
    held = [table.connect(ATTACKER, 0.0), table.connect(ATTACKER, 0.0)]
    assert all(entry is not None for entry in held)
    assert table.connect(ATTACKER, 0.0) is None
    assert table.connect(("198.51.100.1", 1), 0.0) is not None  # others unaffected
    entry = held[0]
    assert entry is not None
    table.disconnect(entry, 1.0)
    assert table.connect(ATTACKER, 1.0) is not None


def test_a_spent_budget_outlives_the_connection_and_refills() -> None:
    config = Config(h2_max_reset_streams=10, h2_reset_rate=5)
    table = ClientTable(config)
    entry = table.connect(ATTACKER, 0.0)
    assert entry is not None
    for _ in range(11):
        entry.budgets.resets.take(0.0)
    table.disconnect(entry, 0.0)
    again = table.connect(ATTACKER, 1.0)
    assert again is not None and again.budgets is entry.budgets  # remembered
    table.disconnect(again, 10.0)  # refilled by then (5/s): nothing left to remember
    assert len(table) == 0


def test_the_table_stays_bounded_under_a_flood_of_addresses() -> None:
    config = Config(max_connections=100)
    table = ClientTable(config)
    for i in range(20_000):
        entry = table.connect((f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 1), 0.0)
        assert entry is not None
        entry.budgets.resets.take(0.0, 150)  # spent: would be remembered
        table.disconnect(entry, 0.0)
    assert len(table) <= 1024


def test_request_rate_is_a_bucket_per_client() -> None:
    table = ClientTable(Config(client_request_rate=10, client_request_burst=5))
    assert [table.allow_request(ATTACKER, 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert table.allow_request(("198.51.100.1", 1), 0.0)
    assert table.allow_request(ATTACKER, 0.1)  # one token back after 1/10 s
    assert table.retry_after() == 1


def test_request_rate_off_allows_everything() -> None:
    table = ClientTable(Config())
    assert all(table.allow_request(ATTACKER, 0.0) for _ in range(1000))
    assert len(table) == 0
