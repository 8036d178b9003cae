"""Per-instrument rules compiled once from the config: capability matrix plus risk limits.

The same declarations drive validation and the tests (tests build configs, then assert that
each capability refuses what it should).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from schemas.enums import OrderType, TimeInForce
from services.sequencer.core.config import CoreConfig

__all__ = ["InstrumentRules", "compile_rules"]


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    instrument: str
    venue: str
    base: str
    quote: str
    notional_scale: int  # price x quantity x notional_scale = quote currency units
    base_unit_scale: int  # quantity x base_unit_scale = base currency units
    tick_size: int
    lot_size: int
    min_notional: int
    min_price: int | None  # inclusive, price units
    max_price: int | None  # inclusive, price units
    order_types: frozenset[OrderType]
    time_in_force: frozenset[TimeInForce]
    post_only: bool
    native_replace: bool
    native_gtd: bool
    partial_fills: bool
    linked_orders: bool
    max_order_quantity: int | None
    max_position: int | None
    max_order_notional: int | None


def _bound(value: Decimal, decimals: int, inclusive: bool, lower: bool) -> int:
    """Convert a display-unit bound to the tightest inclusive bound in price units."""
    scaled = value.scaleb(decimals)
    if lower:
        unit = int(scaled.to_integral_value(rounding=ROUND_CEILING))
        return unit + 1 if (not inclusive and unit == scaled) else unit
    unit = int(scaled.to_integral_value(rounding=ROUND_FLOOR))
    return unit - 1 if (not inclusive and unit == scaled) else unit


def compile_rules(config: CoreConfig) -> dict[str, InstrumentRules]:
    """Build the rules for every instrument, in sorted order (determinism)."""
    rules: dict[str, InstrumentRules] = {}
    for name in sorted(config.instruments):
        inst = config.instruments[name]
        venue = config.venues[inst.venue]
        quote_decimals = config.currencies[inst.quote].decimals
        min_price = max_price = None
        if venue.price_bounds is not None:
            low, high = venue.price_bounds
            min_price = _bound(low, inst.price_decimals, venue.price_bounds_inclusive, lower=True)
            max_price = _bound(high, inst.price_decimals, venue.price_bounds_inclusive, lower=False)
        rules[name] = InstrumentRules(
            instrument=name,
            venue=inst.venue,
            base=inst.base,
            quote=inst.quote,
            notional_scale=10 ** (quote_decimals - inst.price_decimals - inst.size_decimals),
            base_unit_scale=10 ** (config.currencies[inst.base].decimals - inst.size_decimals),
            tick_size=inst.tick_size,
            lot_size=inst.lot_size,
            min_notional=inst.min_notional,
            min_price=min_price,
            max_price=max_price,
            order_types=frozenset(venue.order_types),
            time_in_force=frozenset(venue.time_in_force),
            post_only=venue.post_only,
            native_replace=venue.native_replace,
            native_gtd=venue.native_gtd,
            partial_fills=venue.partial_fills,
            linked_orders=venue.linked_orders,
            max_order_quantity=config.risk.max_order_quantity.get(name),
            max_position=config.risk.max_position.get(name),
            max_order_notional=config.risk.max_order_notional.get(inst.quote),
        )
    return rules
