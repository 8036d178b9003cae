"""`Book`: all mutable trading state of one core, and its canonical snapshot.

One object so that snapshot, restore and hashing cannot forget a field: every attribute is
listed in `__slots__` and appears in `to_snapshot`/`from_snapshot`.
"""

from __future__ import annotations

import hashlib
from collections import deque

import msgspec

from schemas.enums import RiskFlag
from schemas.envelope import Payload
from schemas.state import (
    CoreSnapshot,
    IdempotencyEntry,
    ProducerSnapshot,
    StrategyRiskSnapshot,
    TradeIdEntry,
)
from services.sequencer.core.order_machine import TERMINAL_STATES
from services.sequencer.core.orders import Order
from services.sequencer.core.portfolio import Cash, Portfolio, Position

__all__ = ["Book", "StrategyRisk", "state_hash_of"]

_CANONICAL = msgspec.msgpack.Encoder(order="deterministic")


def state_hash_of(snapshot: CoreSnapshot) -> str:
    """SHA-256 of the canonical encoding: equal hashes mean equal state, field for field."""
    return hashlib.sha256(_CANONICAL.encode(snapshot)).hexdigest()


class StrategyRisk:
    __slots__ = ("flags", "open_orders", "recent_order_times_ns")

    def __init__(self) -> None:
        self.flags: set[RiskFlag] = set()
        self.recent_order_times_ns: deque[int] = deque()
        self.open_orders = 0  # derived from orders; rebuilt on restore, not snapshotted


class Book:
    """The state the core folds envelopes into."""

    __slots__ = (
        "event_time_ns",
        "halted",
        "idempotency",
        "last_prices",
        "open_orders",
        "order_fill_net",
        "orders",
        "portfolio",
        "producers",
        "seq_id",
        "strategies",
        "trade_ids",
    )

    def __init__(self, portfolio: Portfolio) -> None:
        self.seq_id = 0
        self.event_time_ns = 0
        self.halted = False
        self.orders: dict[str, Order] = {}
        self.open_orders: dict[str, Order] = {}  # non-terminal orders, insertion (= seq) order
        self.portfolio = portfolio
        self.last_prices: dict[str, int] = {}
        self.producers: dict[str, int] = {}
        # Bounded FIFO maps (dict insertion order is the eviction order: deterministic).
        self.idempotency: dict[str, Payload] = {}
        self.trade_ids: dict[tuple[str, str], None] = {}
        self.strategies: dict[str, StrategyRisk] = {}
        # instrument -> signed fill quantity summed through orders: checked against positions
        self.order_fill_net: dict[str, int] = {}

    def strategy(self, strategy_id: str) -> StrategyRisk:
        risk = self.strategies.get(strategy_id)
        if risk is None:
            risk = self.strategies[strategy_id] = StrategyRisk()
        return risk

    def to_snapshot(self, config_hash: str) -> CoreSnapshot:
        return CoreSnapshot(
            seq_id=self.seq_id,
            event_time_ns=self.event_time_ns,
            config_hash=config_hash,
            halted=self.halted,
            orders=[self.orders[k].to_snapshot() for k in sorted(self.orders)],
            positions=[self.portfolio.positions[k].to_snapshot() for k in sorted(self.portfolio.positions)],
            cash=[self.portfolio.cash[k].to_snapshot() for k in sorted(self.portfolio.cash)],
            last_prices=dict(sorted(self.last_prices.items())),
            producers=[ProducerSnapshot(producer_id=k, last_seq=v) for k, v in sorted(self.producers.items())],
            # FIFO order is state (it decides eviction), so these two keep insertion order.
            idempotency=[IdempotencyEntry(key=k, payload=v) for k, v in self.idempotency.items()],
            trade_ids=[TradeIdEntry(venue=v, trade_id=t) for v, t in self.trade_ids],
            strategies=[
                StrategyRiskSnapshot(
                    strategy_id=k,
                    flags=sorted(s.flags),
                    recent_order_times_ns=list(s.recent_order_times_ns),
                )
                for k, s in sorted(self.strategies.items())
            ],
        )

    def restore(self, snap: CoreSnapshot) -> None:
        """Replace all state with the snapshot's."""
        self.seq_id = snap.seq_id
        self.event_time_ns = snap.event_time_ns
        self.halted = snap.halted
        self.orders = {}
        self.open_orders = {}
        for o in sorted(snap.orders, key=lambda o: o.created_seq_id):
            order = Order.from_snapshot(o)
            self.orders[order.client_order_id] = order
            if order.state not in TERMINAL_STATES:
                self.open_orders[order.client_order_id] = order
        self.portfolio.positions = {p.instrument: Position.from_snapshot(p) for p in snap.positions}
        self.portfolio.cash = {c.currency: Cash.from_snapshot(c) for c in snap.cash}
        self.last_prices = dict(snap.last_prices)
        self.producers = {p.producer_id: p.last_seq for p in snap.producers}
        self.idempotency = {e.key: e.payload for e in snap.idempotency}
        self.trade_ids = {(e.venue, e.trade_id): None for e in snap.trade_ids}
        self.strategies = {}
        for s in snap.strategies:
            risk = self.strategy(s.strategy_id)
            risk.flags = set(s.flags)
            risk.recent_order_times_ns = deque(s.recent_order_times_ns)
        for order in self.open_orders.values():
            self.strategy(order.strategy_id).open_orders += 1
        self.order_fill_net = {}
        for order in self.orders.values():
            signed = order.filled_quantity if order.is_buy else -order.filled_quantity
            if signed:
                self.order_fill_net[order.instrument] = self.order_fill_net.get(order.instrument, 0) + signed
