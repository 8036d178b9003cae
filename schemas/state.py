"""The core's whole state as data: checkpoints, the sync endpoint and the state hash use it.

The state hash is SHA-256 of this struct's MessagePack encoding with deterministic ordering,
so two cores agree on the hash exactly when they agree on every field below.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from schemas.base import Message
from schemas.enums import OrderState, RiskFlag
from schemas.envelope import Payload
from schemas.intents import PlaceOrder
from schemas.types import (
    Amount,
    CurrencyCode,
    Id,
    InstrumentId,
    Price,
    SeqId,
    StrategyId,
    TimeNs,
    VenueId,
)

__all__ = [
    "CashSnapshot",
    "CoreSnapshot",
    "IdempotencyEntry",
    "OrderSnapshot",
    "PositionSnapshot",
    "ProducerSnapshot",
    "StrategyRiskSnapshot",
    "TradeIdEntry",
]


class OrderSnapshot(Message, frozen=True):
    intent: PlaceOrder  # as placed; the terms below may differ after a replace
    venue: VenueId
    quantity: int
    price: Price | None
    state: OrderState
    pending_from: OrderState | None
    accepted: bool  # the venue has had it working (an ack, or a fill that proves one)
    filled_quantity: int
    filled_notional: int  # sum of price * quantity over fills, in price-unit x size-unit
    venue_order_id: Id | None
    replace_quantity: int | None
    replace_price: Price | None
    created_seq_id: SeqId
    updated_seq_id: SeqId
    reserve_price: Annotated[
        Price | None,
        Meta(description="Price the no-margin cash check holds this order at, fixed when placed"),
    ] = None


class PositionSnapshot(Message, frozen=True):
    instrument: InstrumentId
    quantity: int  # signed: long > 0, short < 0
    cost: Amount  # signed cost basis of the open quantity, in the quote currency's unit
    realized_pnl: Amount
    fill_quantity_net: int  # sum of signed fill quantities: the position conservation ledger


class CashSnapshot(Message, frozen=True):
    currency: CurrencyCode
    balance: Amount
    initial: Amount
    adjustments: Amount
    bought: Amount
    sold: Amount
    fees: Amount


class ProducerSnapshot(Message, frozen=True):
    producer_id: Id
    last_seq: int


class IdempotencyEntry(Message, frozen=True):
    key: Id
    payload: Payload


class TradeIdEntry(Message, frozen=True):
    venue: VenueId
    trade_id: Id


class StrategyRiskSnapshot(Message, frozen=True):
    strategy_id: StrategyId
    flags: list[RiskFlag]
    recent_order_times_ns: list[int]


class CoreSnapshot(Message, frozen=True):
    """Everything the core knows at `seq_id`. Lists are in a canonical order (sorted by key)."""

    seq_id: SeqId
    event_time_ns: TimeNs
    config_hash: str
    halted: bool
    orders: list[OrderSnapshot]
    positions: list[PositionSnapshot]
    cash: list[CashSnapshot]
    last_prices: dict[InstrumentId, Price]
    producers: list[ProducerSnapshot]
    idempotency: list[IdempotencyEntry]
    trade_ids: list[TradeIdEntry]
    strategies: list[StrategyRiskSnapshot]
