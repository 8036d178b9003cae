"""Matching configuration: how the simulated venue prices, charges and delays what it fills.

Validated with pydantic when built; the venue compiles the Decimal rates once into exact integer
ratios (see `costs.py`), so nothing on the matching path touches a float or a Decimal context.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DAY_NS", "MatchingConfig"]

DAY_NS = 86_400_000_000_000
"""One UTC day in nanoseconds: DAY orders end at a multiple of it plus `day_end_offset_ns`."""


class MatchingConfig(BaseModel):
    """How `SimulatedVenue` fills orders. Every field has a neutral default (Backtrader's broker
    with no commission, no slippage, fills at the next open).

    Fees and slippage are Decimals (never floats): a fee of 0.1% is `Decimal("0.001")`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_market_on: Literal["next_open", "close"] = Field(
        default="next_open",
        description="next_open: a market order fills at the open of the first bar after it arrived; "
        "close: at the close of the bar that closed when it arrived (Backtrader's cheat-on-close)",
    )
    maker_fee: Decimal = Field(default=Decimal(0), ge=0, lt=1, description="fraction of notional for maker fills")
    taker_fee: Decimal = Field(default=Decimal(0), ge=0, lt=1, description="fraction of notional for taker fills")
    fixed_fee: Decimal = Field(
        default=Decimal(0), ge=0, description="per order, quote-currency display units, charged on its first fill"
    )
    slippage_bps: Decimal = Field(
        default=Decimal(0), ge=0, lt=10_000, description="against the trader on market and stop fills"
    )
    slippage_model: Literal["fixed_bps", "spread"] = Field(
        default="fixed_bps",
        description="spread: against quotes the opposite side is the whole cost (no extra slippage); "
        "bars and trades carry no spread, so they fall back to fixed_bps",
    )
    latency_ns: int = Field(
        default=0, ge=0, le=DAY_NS, description="a command reaches the venue this long after it was sent"
    )
    volume_share: Decimal | None = Field(
        default=None,
        gt=0,
        le=1,
        description="max share of one bar's / trade's volume (or quote's size) the venue fills per instrument; "
        "None: no limit",
    )
    day_end_offset_ns: int = Field(
        default=0,
        ge=0,
        lt=DAY_NS,
        description="DAY orders end at the first UTC midnight + this offset after they arrive",
    )
