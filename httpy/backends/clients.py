"""What one server process knows of each client across its connections.

A client is an IP address: the TCP (or QUIC) peer, or the address a PROXY protocol
header gives.  For each, :class:`ClientTable` keeps

* **flood budgets** (HTTP/2 and HTTP/3 resets and control frames) shared by all of the
  client's connections: before, each connection had its own, so a client that
  reconnected after GOAWAY ENHANCE_YOUR_CALM started over with a full budget (rapid reset
  from 8 reconnecting connections pushed a neighbour's p99 past a second).  Always on;
  except for peers in ``forwarded_allow_ips`` (a proxy carries many clients: its
  connections keep a budget each);
* **open connections**, for ``max_connections_per_client`` (off by default): a client's
  connection beyond it is closed at once, with a log line;
* **request rate**, for ``client_request_rate`` (off by default): a token bucket of
  ``client_request_burst`` requests refilled at that rate; a request beyond it is answered
  429 with ``Retry-After``.  Keyed by the request's client after proxy headers, so behind
  a trusted proxy each real client has its own bucket.

The table is bounded: an entry is dropped, oldest first, once no connection of its client
is open and its budgets have refilled; when the table passes twice ``max_connections``
entries, the oldest entries without open connections go.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

from ..core.config import Config
from ..core.http2_checks import FloodBudgets, TokenBucket
from ..core.proxy_headers import TrustedProxies

Address = tuple[str, int]


@dataclass(eq=False)
class ClientEntry:
    """One client's state (see the module docstring)."""

    host: str
    budgets: FloodBudgets
    connections: int = 0
    requests: TokenBucket | None = None
    #: False for an entry made for one connection only (a trusted proxy, a Unix peer).
    shared: bool = field(default=True)


class ClientTable:
    """The clients of one server process (see the module docstring).  Not thread-safe:
    one event loop uses it."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._trusted = TrustedProxies(config.forwarded_allow_ips)
        self._entries: OrderedDict[str, ClientEntry] = OrderedDict()
        self._limit = max(1024, 2 * config.max_connections)

    def __len__(self) -> int:
        return len(self._entries)

    def flood_budgets(self, client: Address | None, now: float) -> FloodBudgets | None:
        """The flood budgets an HTTP/2 or HTTP/3 connection from ``client`` spends: its
        client's, shared; None (one of its own) for a trusted proxy or a Unix peer.
        Asked when such a connection starts: HTTP/1.1 connections cost nothing here."""
        if client is None or self._trusted.trusts_peer(client):
            return None
        return self._entry(client[0], now).budgets

    def connect(self, client: Address | None, now: float) -> ClientEntry | None:
        """A connection from ``client`` opens: its entry, or None when the client has
        ``max_connections_per_client`` open already (close this one).  Pair with
        :meth:`disconnect`.  Only needed with ``max_connections_per_client`` set."""
        if client is None or self._trusted.trusts_peer(client):
            # A Unix-socket peer, or a proxy: many clients behind one address.
            entry = ClientEntry(client[0] if client else "", FloodBudgets(self._config))
            entry.shared = False
        else:
            entry = self._entry(client[0], now)
            cap = self._config.max_connections_per_client
            if cap is not None and entry.connections >= cap:
                return None
        entry.connections += 1
        return entry

    def disconnect(self, entry: ClientEntry, now: float) -> None:
        entry.connections -= 1
        if entry.shared and not entry.connections and self._idle(entry, now):
            self._entries.pop(entry.host, None)

    def allow_request(self, client: Address | None, now: float) -> bool:
        """Whether a request from ``client`` is within ``client_request_rate`` (always,
        when that is off or the client is unknown)."""
        rate = self._config.client_request_rate
        if rate is None or client is None:
            return True
        entry = self._entry(client[0], now)
        if entry.requests is None:
            entry.requests = TokenBucket(self._config.client_request_burst, rate)
        if entry.requests.take(now):
            return True
        entry.requests.give(1)  # a refused request costs nothing: no debt to pay off
        return False

    def retry_after(self) -> int:
        """Seconds a client over its request rate should wait: one token's refill."""
        rate = self._config.client_request_rate or 1.0
        return max(1, math.ceil(1 / rate))

    # -- internals ----------------------------------------------------------------------

    def _entry(self, host: str, now: float) -> ClientEntry:
        entry = self._entries.get(host)
        if entry is None:
            if len(self._entries) >= self._limit:
                self._evict(now)  # before the new entry goes in: it is not a candidate
            entry = ClientEntry(host, FloodBudgets(self._config))
            self._entries[host] = entry
        else:
            self._entries.move_to_end(host)
        return entry

    def _idle(self, entry: ClientEntry, now: float) -> bool:
        """Nothing left to remember: budgets whole again, no request bucket spent."""
        return entry.budgets.full(now) and (entry.requests is None or entry.requests.full(now))

    def _evict(self, now: float) -> None:
        """Over the limit: drop entries without open connections, oldest first, down to
        three quarters of it in one pass (so a flood of new addresses costs O(1) each),
        those whose budgets refilled first."""
        target = self._limit * 3 // 4
        for host in [
            h for h, e in self._entries.items() if not e.connections and self._idle(e, now)
        ]:
            if len(self._entries) <= target:
                return
            del self._entries[host]
        for host in [h for h, e in self._entries.items() if not e.connections]:
            if len(self._entries) <= target:
                return
            del self._entries[host]
        # What is left has a connection open each: bounded by max_connections.
