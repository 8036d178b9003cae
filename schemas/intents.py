"""Intents: the only things a strategy can say. The core validates each before acting on it."""

from __future__ import annotations

from schemas.base import Message
from schemas.enums import OrderType, RiskFlag, Side, TimeInForce
from schemas.types import ClientOrderId, Id, InstrumentId, Price, Quantity, StrategyId, Text, TimeNs

__all__ = ["CancelOrder", "Intent", "NoOp", "PlaceOrder", "ReplaceOrder", "SetRiskFlag"]


class PlaceOrder(Message, frozen=True):
    """Ask for a new order. `client_order_id` is unique per strategy and is the idempotency key:
    a repeat with the same content is a no-op, a repeat with different content is refused."""

    strategy_id: StrategyId
    client_order_id: ClientOrderId
    instrument: InstrumentId
    side: Side
    order_type: OrderType
    quantity: Quantity
    price: Price | None = None  # limit price (limit, stop_limit)
    stop_price: Price | None = None  # trigger (stop, stop_limit)
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: TimeNs | None = None  # required for GTD
    reduce_only: bool = False
    post_only: bool = False
    # Linked orders (added after v1). A child waits at the venue until its parent has filled,
    # then works; children of one parent, and members of one OCO group, cancel each other on a fill.
    parent_client_order_id: ClientOrderId | None = None
    oco_group: Id | None = None


class CancelOrder(Message, frozen=True):
    """Ask to cancel a working order of this strategy."""

    strategy_id: StrategyId
    client_order_id: ClientOrderId


class ReplaceOrder(Message, frozen=True):
    """Ask to change a working order's total quantity and/or limit price in place."""

    strategy_id: StrategyId
    client_order_id: ClientOrderId
    quantity: Quantity | None = None
    price: Price | None = None


class SetRiskFlag(Message, frozen=True):
    """Set or clear a risk flag for this strategy (HALT is the strategy's kill switch)."""

    strategy_id: StrategyId
    flag: RiskFlag
    enabled: bool
    reason: Text = ""


class NoOp(Message, frozen=True):
    """Say nothing; lockstep hosts send it so the sequencer knows the strategy has answered."""

    strategy_id: StrategyId


Intent = PlaceOrder | CancelOrder | ReplaceOrder | SetRiskFlag | NoOp
