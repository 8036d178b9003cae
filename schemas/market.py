"""Market data payloads. The instrument and venue travel on the envelope."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from schemas.base import Message
from schemas.enums import Side
from schemas.types import Id, NonNegQuantity, Price, Quantity

__all__ = ["Bar", "Quote", "Trade"]


class Bar(Message, frozen=True):
    """An OHLCV bar that closed at the envelope's event time."""

    open: Price
    high: Price
    low: Price
    close: Price
    volume: NonNegQuantity
    interval_ns: Annotated[int, Meta(gt=0, le=2**63 - 1, description="Bar length in nanoseconds")] = 60_000_000_000

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"bar high {self.high} < low {self.low}")
        if not (self.low <= self.open <= self.high):
            raise ValueError(f"bar open {self.open} outside [low {self.low}, high {self.high}]")
        if not (self.low <= self.close <= self.high):
            raise ValueError(f"bar close {self.close} outside [low {self.low}, high {self.high}]")


class Trade(Message, frozen=True):
    """One public trade print."""

    price: Price
    quantity: Quantity
    aggressor: Side | None = None
    trade_id: Id | None = None


class Quote(Message, frozen=True):
    """Top of book."""

    bid_price: Price
    bid_size: NonNegQuantity
    ask_price: Price
    ask_size: NonNegQuantity

    def __post_init__(self) -> None:
        if self.bid_price > self.ask_price:
            raise ValueError(f"crossed quote: bid_price {self.bid_price} > ask_price {self.ask_price}")
