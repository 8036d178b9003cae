"""Backtest settings, validated with pydantic, and the core configuration they imply."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.matching.config import MatchingConfig
from services.sequencer.core.config import (
    AccountConfig,
    CoreConfig,
    CurrencySpec,
    InstrumentSpec,
    InvariantPolicy,
    RiskConfig,
    VenueSpec,
)

__all__ = ["SIM_VENUE", "BacktestConfig", "core_config_for", "instrument_spec_for"]

SIM_VENUE = "SIM"

# The simulated venue takes everything the matching model implements.
_SIM_SPEC = VenueSpec(
    order_types=("market", "limit", "stop", "stop_limit"),
    time_in_force=("gtc", "ioc", "fok", "day", "gtd"),
    native_replace=True,
    partial_fills=True,
    post_only=True,
    native_gtd=True,
    linked_orders=True,
)


class BacktestConfig(BaseModel):
    """How a backtest runs: money, costs, fills and bookkeeping.

    `instruments` names the spec of each traded instrument; an instrument missing there gets one
    from `instrument_spec_for` (base-quote split on '-' or '/', `price_decimals`, `size_decimals`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cash: Decimal = Field(default=Decimal(100_000), ge=0, description="starting cash, account currency")
    currency: str = Field(default="USD", min_length=1, max_length=16)
    currency_decimals: int = Field(default=6, ge=0, le=18)
    allow_short: bool = Field(default=False, description="margin account: sells beyond the position are allowed")
    instruments: dict[str, InstrumentSpec] = Field(default_factory=dict)
    price_decimals: int = Field(default=2, ge=0, le=12, description="for instruments not in `instruments`")
    size_decimals: int = Field(default=4, ge=0, le=12, description="for instruments not in `instruments`")
    matching: MatchingConfig = MatchingConfig()
    risk: RiskConfig = RiskConfig()
    strategy_id: str = Field(default="main", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    invariant_policy: InvariantPolicy = "raise"
    journal_batch: int = Field(default=4096, ge=1, le=1_000_000, description="records per journal write")


def instrument_spec_for(name: str, config: BacktestConfig) -> InstrumentSpec:
    """The configured spec of `name`, else one derived from its name (e.g. 'BTC-USD')."""
    spec = config.instruments.get(name)
    if spec is not None:
        return spec
    for sep in ("-", "/", "_"):
        if sep in name:
            base, quote = name.split(sep, 1)
            break
    else:
        base, quote = name, config.currency
    return InstrumentSpec(
        venue=SIM_VENUE,
        base=base.upper(),
        quote=quote.upper(),
        price_decimals=config.price_decimals,
        size_decimals=config.size_decimals,
    )


def core_config_for(instruments: list[str], config: BacktestConfig) -> CoreConfig:
    """The core configuration of a backtest over `instruments` on the simulated venue.

    Currency decimals are wide enough for exact notionals (price x size) of every instrument.
    """
    specs = {name: instrument_spec_for(name, config) for name in instruments}
    decimals: dict[str, int] = {config.currency: config.currency_decimals}
    for spec in specs.values():
        need_quote = spec.price_decimals + spec.size_decimals
        decimals[spec.quote] = max(decimals.get(spec.quote, 0), need_quote, config.currency_decimals)
        decimals[spec.base] = max(decimals.get(spec.base, 0), spec.size_decimals)
    cash_units = int(config.cash * 10 ** decimals[config.currency])
    venues = {spec.venue for spec in specs.values()}
    return CoreConfig(
        currencies={code: CurrencySpec(decimals=d) for code, d in sorted(decimals.items())},
        venues={venue: _SIM_SPEC for venue in sorted(venues)},
        instruments=specs,
        account=AccountConfig(initial_cash={config.currency: cash_units}, margin=config.allow_short),
        risk=config.risk,
        invariant_policy=config.invariant_policy,
    )


Format = Literal["csv", "parquet"]
