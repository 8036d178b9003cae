"""Display units (floats a strategy writes) to the core's exact integers, and back.

A price becomes the nearest tick; a quantity becomes whole lots, rounded down (never trade more
than asked). Anything that does not become a positive, finite, representable number is refused
with an error naming the field and the value, before it reaches the core.
"""

from __future__ import annotations

import math
from decimal import Decimal

from services.sequencer.core.config import InstrumentSpec

__all__ = ["InstrumentUnits"]


class InstrumentUnits:
    """Conversions for one instrument, compiled from its spec."""

    __slots__ = ("instrument", "lot_size", "price_scale", "size_scale", "spec", "tick_size", "to_price", "to_size")

    def __init__(self, instrument: str, spec: InstrumentSpec) -> None:
        self.instrument = instrument
        self.spec = spec
        self.tick_size = spec.tick_size
        self.lot_size = spec.lot_size
        # Multipliers from integer units to display units (one multiplication on the hot path).
        self.to_price = 10.0**-spec.price_decimals
        self.to_size = 10.0**-spec.size_decimals
        self.price_scale: int = 10**spec.price_decimals
        self.size_scale: int = 10**spec.size_decimals

    def price_units(self, value: float | Decimal, field: str = "price") -> int:
        """The nearest tick to `value` (display units), in price units.

        Raises:
            ValueError: `value` is not finite, or not positive.
        """
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{field}: {value!r} is not a finite number ({self.instrument})")
        ticks = _nearest_whole(value, self.price_scale, self.tick_size)
        if ticks <= 0:
            raise ValueError(f"{field}: {value!r} is not a positive price at tick {self.tick_size} ({self.instrument})")
        return ticks * self.tick_size

    def size_units(self, value: float | Decimal, field: str = "quantity") -> int:
        """Whole lots of `value` (display units), rounded down, in size units.

        Raises:
            ValueError: `value` is not finite, or rounds down to zero lots.
        """
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{field}: {value!r} is not a finite number ({self.instrument})")
        lots = _whole_lots(value, self.size_scale, self.lot_size)
        if lots <= 0:
            lot = Decimal(self.lot_size) / self.size_scale
            raise ValueError(f"{field}: {value!r} is less than one lot ({lot}) of {self.instrument}")
        return lots * self.lot_size

    def price(self, units: int) -> float:
        """Display price: the float nearest the exact decimal (a division, not a multiplication)."""
        return units / self.price_scale

    def size(self, units: int) -> float:
        return units / self.size_scale


# Float fast paths: a float's product with the scale is within a few ulps of the exact decimal's.
# Only when that lands near a rounding boundary does the exact decimal text decide (Decimal(str()),
# the shortest repr, is what the user wrote). _NEAR is far above float noise at these magnitudes
# and far below any real distance to a boundary.
_NEAR = 1e-6


def _nearest_whole(value: float | Decimal, scale: int, step: int) -> int:
    """round(value x scale / step), half to even on the exact decimal of `value`."""
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, float):
        x = value * scale / step
        nearest = round(x)
        if abs(abs(x - nearest) - 0.5) > _NEAR:
            return nearest
        value = Decimal(str(value))
    return int((value * scale / step).to_integral_value())  # Decimal: half-even


def _whole_lots(value: float | Decimal, scale: int, lot: int) -> int:
    """floor(value x scale / lot) on the exact decimal of `value` (0.3 is 3000 units, not 2999)."""
    if isinstance(value, int):
        return value * scale // lot
    if isinstance(value, float):
        x = value * scale / lot
        below = math.floor(x)
        if x - below > _NEAR and below + 1 - x > _NEAR:
            return below
        value = Decimal(str(value))
    return int((value * scale / lot) // 1)
