"""Columnar market data: one `array('q')` per field, integers in the instrument's units.

A million bars are six arrays of 8 MB each; the backtest turns them into envelopes one at a time
(see merge.py), so the whole run stays far below its memory budget. Prices count
10**-price_decimals, sizes 10**-size_decimals, times are nanoseconds since the epoch (UTC).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Final

__all__ = ["AGGRESSOR_BUY", "AGGRESSOR_SELL", "AGGRESSOR_UNKNOWN", "BarSeries", "TradeSeries"]

# Codes of TradeSeries.aggressor: one byte a trade instead of a Python object a trade.
AGGRESSOR_UNKNOWN: Final = 0
AGGRESSOR_BUY: Final = 1
AGGRESSOR_SELL: Final = 2


@dataclass(slots=True)
class BarSeries:
    """OHLCV bars of one instrument at one interval, sorted by close time with no repeats.

    Attributes:
        instrument: instrument id as configured in the core.
        venue: venue id of the instrument.
        interval_ns: bar length in nanoseconds.
        close_time_ns: when each bar closed (the backtest's event time).
        open, high, low, close: prices in price units.
        volume: sizes in size units.
        source: where the bars came from (a file path), for messages.
        repairs: repairs applied while loading, name -> rows changed (only those that changed rows).
    """

    instrument: str
    venue: str
    interval_ns: int
    close_time_ns: array[int]
    open: array[int]
    high: array[int]
    low: array[int]
    close: array[int]
    volume: array[int]
    source: str = ""
    repairs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.close_time_ns)
        for name in ("open", "high", "low", "close", "volume"):
            # A ragged series would silently drop the tail in zip(): refuse it at construction.
            got = len(getattr(self, name))
            assert got == n, f"BarSeries {self.instrument}: {name} has {got} values, close_time_ns {n}"
        assert self.interval_ns > 0, f"BarSeries {self.instrument}: interval_ns {self.interval_ns} must be positive"

    def __len__(self) -> int:
        return len(self.close_time_ns)


@dataclass(slots=True)
class TradeSeries:
    """Public trades of one instrument, sorted by time (equal times allowed: prints share a stamp).

    Attributes:
        instrument: instrument id as configured in the core.
        venue: venue id of the instrument.
        time_ns: when each trade happened.
        price: prices in price units.
        quantity: sizes in size units, positive.
        aggressor: one byte a trade (AGGRESSOR_UNKNOWN / _BUY / _SELL), or None without a side column.
        source: where the trades came from (a file path), for messages.
        repairs: repairs applied while loading, name -> rows changed.
    """

    instrument: str
    venue: str
    time_ns: array[int]
    price: array[int]
    quantity: array[int]
    aggressor: bytes | None = None
    source: str = ""
    repairs: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.time_ns)
        assert len(self.price) == n and len(self.quantity) == n, f"TradeSeries {self.instrument}: ragged columns"
        assert self.aggressor is None or len(self.aggressor) == n, f"TradeSeries {self.instrument}: ragged aggressor"

    def __len__(self) -> int:
        return len(self.time_ns)
