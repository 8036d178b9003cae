"""What a strategy is told: market data in display units, its orders' updates, and time.

Events are built from the core's inputs and outputs by the host (the in-process backtest, or the
strategy host process): the same core output gives the same event on either path. Prices and
sizes are floats in display units (a BTC price of 42000.5, a size of 0.25) for the strategy's
convenience; the exact integers stay in the core.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BarClosed",
    "Event",
    "IntentRefused",
    "OrderFilled",
    "OrderUpdated",
    "QuoteChanged",
    "TimeSliceClosed",
    "TradePrinted",
]


class BarClosed(msgspec.Struct, frozen=True, gc=False):
    """An OHLCV bar of `instrument` closed at `time_ns` (it opened at time_ns - interval_ns)."""

    instrument: str
    time_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval_ns: int


class TradePrinted(msgspec.Struct, frozen=True, gc=False):
    """A public trade on `instrument`."""

    instrument: str
    time_ns: int
    price: float
    quantity: float
    aggressor: str | None = None


class QuoteChanged(msgspec.Struct, frozen=True, gc=False):
    """The top of the book of `instrument` changed."""

    instrument: str
    time_ns: int
    bid: float
    bid_size: float
    ask: float
    ask_size: float


class OrderUpdated(msgspec.Struct, frozen=True, gc=False):
    """One of the strategy's orders moved through the order state machine."""

    time_ns: int
    client_order_id: str
    instrument: str
    event: str  # the OrderEvent value: submit, accept, partial_fill, full_fill, cancel_ack, ...
    from_state: str
    state: str  # the OrderState value after the move
    quantity: float
    filled_quantity: float
    note: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.state in ("filled", "cancelled", "rejected", "expired")


class OrderFilled(msgspec.Struct, frozen=True, gc=False):
    """One execution of the strategy's order, as booked (position and cash after it)."""

    time_ns: int
    client_order_id: str
    instrument: str
    side: str
    quantity: float
    price: float
    fee: float
    fee_currency: str
    position: float  # the instrument's position after this fill
    trade_id: str


class IntentRefused(msgspec.Struct, frozen=True, gc=False):
    """The core refused one of the strategy's intents: `reason` is a stable RejectReason code."""

    time_ns: int
    intent: str  # the intent's tag: place_order, cancel_order, ...
    reason: str
    detail: str
    client_order_id: str | None = None


class TimeSliceClosed(msgspec.Struct, frozen=True, gc=False):
    """Every event stamped `time_ns` has been delivered: bars of all instruments closing at
    `time_ns` are in. A strategy that decides once per time step (the Backtrader-style layer's
    `next()`) acts here."""

    time_ns: int


Event = BarClosed | TradePrinted | QuoteChanged | OrderUpdated | OrderFilled | IntentRefused | TimeSliceClosed
