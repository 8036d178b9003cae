"""Fees and slippage in exact integer arithmetic.

Rates arrive as Decimals (`MatchingConfig`) and are turned once into exact integer ratios with
`Decimal.as_integer_ratio`, so a fee or a slipped price is computed with Python ints only: no
float, and no Decimal context whose precision (28 digits by default) a large notional could
exceed. Notionals are `price x quantity x notional_scale` quote-currency units (see
`services.sequencer.core.rules.InstrumentRules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["FeeSchedule", "Slippage", "display_to_units"]

_BPS_PER_UNIT = 10_000


def display_to_units(amount: Decimal, decimals: int) -> int:
    """A display-unit amount (e.g. 0.5 USD) as integer currency units, rounded half up.

    Args:
        amount: a non-negative amount in display units.
        decimals: the currency's decimals (its unit is 10**-decimals).
    """
    num, den = amount.as_integer_ratio()
    scaled_num = num * int(10**decimals)
    return (2 * scaled_num + den) // (2 * den)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker rates as exact ratios; `fee` rounds half up to a whole currency unit."""

    maker_num: int
    maker_den: int
    taker_num: int
    taker_den: int

    @classmethod
    def of(cls, maker: Decimal, taker: Decimal) -> FeeSchedule:
        """Build from Decimal fractions of notional (e.g. Decimal("0.001") for 10 bps)."""
        m_num, m_den = maker.as_integer_ratio()
        t_num, t_den = taker.as_integer_ratio()
        return cls(m_num, m_den, t_num, t_den)

    def fee(self, notional: int, taker: bool) -> int:
        """Fee in quote-currency units for a fill of `notional` units: |notional| x rate, half up.

        Half up on a non-negative value: floor(x + 1/2) = (2 * num + den) // (2 * den).
        """
        num, den = (self.taker_num, self.taker_den) if taker else (self.maker_num, self.maker_den)
        if num == 0:
            return 0
        scaled = abs(notional) * num
        return (2 * scaled + den) // (2 * den)


@dataclass(frozen=True, slots=True)
class Slippage:
    """A fixed slippage in basis points, applied against the trader and rounded to the tick.

    The move is |price| x bps / 10_000 (so a negative price, which some futures print, also
    moves against the trader), then the price is rounded to a multiple of `tick` away from the
    trader: up for a buy, down for a sell. Zero bps leaves the price untouched (not even rounded).
    """

    num: int  # bps / 10_000 = num / den, exactly
    den: int

    @classmethod
    def of(cls, bps: Decimal) -> Slippage:
        num, den = bps.as_integer_ratio()
        return cls(num, den * _BPS_PER_UNIT)

    @property
    def active(self) -> bool:
        return self.num != 0

    def apply(self, price: int, is_buy: bool, tick: int) -> int:
        """The slipped price: worse for the trader by the rate, on the tick grid."""
        if self.num == 0:
            return price
        den = self.den
        move = abs(price) * self.num
        if is_buy:
            scaled = price * den + move
            return -((-scaled) // (den * tick)) * tick  # ceiling to the tick: against a buyer
        scaled = price * den - move
        return (scaled // (den * tick)) * tick  # floor to the tick: against a seller
