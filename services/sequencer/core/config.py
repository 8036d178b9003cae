"""Core configuration: venues, instruments, currencies, account and risk limits.

Validated with pydantic when loaded; the core compiles it once into plain lookups. The config is
part of the determinism contract: its hash is stored in the journal header and every checkpoint,
and a journal is only replayed under the config it was written with.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.enums import OrderType, Source, TimeInForce

__all__ = [
    "DEFAULT_SOURCE_PRIORITY",
    "AccountConfig",
    "CoreConfig",
    "CurrencySpec",
    "InstrumentSpec",
    "InvariantPolicy",
    "OrderRateLimit",
    "RiskConfig",
    "VenueSpec",
]

InvariantPolicy = Literal["raise", "halt", "log"]

# Reports first so a batch that holds a fill and a strategy's reaction sees the fill applied
# first; then control (a halt must beat the intents beside it), timers, market data, intents.
DEFAULT_SOURCE_PRIORITY: tuple[Source, ...] = (
    Source.BROKER_REPORT,
    Source.CONTROL,
    Source.TIMER,
    Source.MARKET_DATA,
    Source.STRATEGY,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CurrencySpec(_Strict):
    """A currency: cash and fees are integer counts of 10**-decimals."""

    decimals: int = Field(ge=0, le=18)


class VenueSpec(_Strict):
    """What a venue can do: the capability matrix consulted when validating intents."""

    order_types: tuple[OrderType, ...] = (OrderType.MARKET, OrderType.LIMIT)
    time_in_force: tuple[TimeInForce, ...] = (TimeInForce.GTC, TimeInForce.IOC)
    native_replace: bool = False
    partial_fills: bool = True
    post_only: bool = False
    native_gtd: bool = True  # False: the core expires GTD orders itself, driven by event time
    linked_orders: bool = False  # brackets (parent/child) and OCO groups held at the venue
    # Price bounds in display units (e.g. (0, 1) for a prediction market), exclusive unless said.
    price_bounds: tuple[Decimal, Decimal] | None = None
    price_bounds_inclusive: bool = False

    @model_validator(mode="after")
    def _bounds_ordered(self) -> VenueSpec:
        if self.price_bounds is not None and self.price_bounds[0] >= self.price_bounds[1]:
            raise ValueError(f"price_bounds must be (low, high) with low < high, got {self.price_bounds}")
        return self


class InstrumentSpec(_Strict):
    """An instrument at one venue. Prices count 10**-price_decimals, sizes 10**-size_decimals."""

    venue: str = Field(min_length=1, max_length=64)
    base: str = Field(min_length=1, max_length=16)
    quote: str = Field(min_length=1, max_length=16)
    price_decimals: int = Field(ge=0, le=12)
    size_decimals: int = Field(ge=0, le=12)
    tick_size: int = Field(default=1, ge=1, description="in price units")
    lot_size: int = Field(default=1, ge=1, description="in size units")
    min_notional: int = Field(default=0, ge=0, description="in quote currency units")


class AccountConfig(_Strict):
    """Starting cash per currency (in currency units) and whether balances may go negative."""

    initial_cash: dict[str, int] = Field(default_factory=dict)
    margin: bool = False


class OrderRateLimit(_Strict):
    """At most `max_orders` new orders per strategy in any `interval_ns` of event time."""

    max_orders: int = Field(ge=1)
    interval_ns: int = Field(ge=1)


class RiskConfig(_Strict):
    """Pre-trade guards. A missing limit is not checked; a present one refuses with a reason code."""

    max_order_quantity: dict[str, int] = Field(default_factory=dict, description="per instrument, size units")
    max_position: dict[str, int] = Field(default_factory=dict, description="per instrument, |size units|")
    max_order_notional: dict[str, int] = Field(default_factory=dict, description="per currency, its units")
    max_open_orders: int | None = Field(default=None, ge=1, description="per strategy")
    price_band_bps: int | None = Field(default=None, ge=1, le=100_000)
    order_rate: OrderRateLimit | None = None
    reserve_fee_bps: int = Field(default=0, ge=0, le=10_000, description="cash held back for fees")


class CoreConfig(_Strict):
    """Everything the core needs to decide; nothing it needs comes from anywhere else."""

    currencies: dict[str, CurrencySpec]
    venues: dict[str, VenueSpec]
    instruments: dict[str, InstrumentSpec]
    account: AccountConfig = AccountConfig()
    risk: RiskConfig = RiskConfig()
    source_priority: tuple[Source, ...] = DEFAULT_SOURCE_PRIORITY
    invariant_policy: InvariantPolicy = "raise"
    dedup_window: int = Field(default=100_000, ge=16, description="idempotency keys and trade ids kept")

    @model_validator(mode="after")
    def _cross_references(self) -> CoreConfig:
        for name, inst in self.instruments.items():
            if inst.venue not in self.venues:
                raise ValueError(f"instruments.{name}.venue: unknown venue {inst.venue!r}")
            for field in ("base", "quote"):
                code = getattr(inst, field)
                if code not in self.currencies:
                    raise ValueError(f"instruments.{name}.{field}: unknown currency {code!r}")
            quote_decimals = self.currencies[inst.quote].decimals
            if inst.price_decimals + inst.size_decimals > quote_decimals:
                raise ValueError(
                    f"instruments.{name}: price_decimals + size_decimals = "
                    f"{inst.price_decimals + inst.size_decimals} exceeds {inst.quote} decimals "
                    f"{quote_decimals}; notionals would not be exact"
                )
            base_decimals = self.currencies[inst.base].decimals
            if inst.size_decimals > base_decimals:
                raise ValueError(
                    f"instruments.{name}: size_decimals {inst.size_decimals} exceeds {inst.base} decimals "
                    f"{base_decimals}; a position would not convert exactly to its base currency"
                )
        for code in self.account.initial_cash:
            if code not in self.currencies:
                raise ValueError(f"account.initial_cash: unknown currency {code!r}")
        for field in ("max_order_quantity", "max_position"):
            for name in getattr(self.risk, field):
                if name not in self.instruments:
                    raise ValueError(f"risk.{field}: unknown instrument {name!r}")
        for code in self.risk.max_order_notional:
            if code not in self.currencies:
                raise ValueError(f"risk.max_order_notional: unknown currency {code!r}")
        if sorted(self.source_priority) != sorted(Source):
            raise ValueError(
                f"source_priority must list every source exactly once, got {list(self.source_priority)}"
            )
        return self

    def canonical_json(self) -> bytes:
        """Stable bytes for hashing and for the journal header."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()
