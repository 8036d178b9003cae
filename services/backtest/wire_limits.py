"""Checking a whole market-data series against the wire schema's limits, once.

The journal checks each record by decoding it back before writing it. A backtest builds a
million bar envelopes from columns the loader has already validated; checking each column's
range once (C-speed min/max over arrays) proves every envelope built from it decodes, so the
runner may skip the per-record decode for them (`JournalWriter.append_batch(...,
prechecked_market_data=True)`). Bar's own rules (high >= low, ...) run when each Bar is built.
"""

from __future__ import annotations

from array import array

from schemas.types import MAX_ABS_AMOUNT, MAX_ID_CHARS
from services.data.series import BarSeries, TradeSeries

__all__ = ["WireLimitError", "check_wire_limits"]

_MAX_TIME = 2**63 - 1


class WireLimitError(ValueError):
    """A series holds a value no envelope may carry."""


def check_wire_limits(series: BarSeries | TradeSeries, producer_id: str) -> None:
    """Raise if any envelope built from `series` would fail the schema's limits.

    Raises:
        WireLimitError: naming the series, the field and the offending extreme.
    """
    where = series.source or series.instrument
    for name, value in (("instrument", series.instrument), ("venue", series.venue), ("producer_id", producer_id)):
        if not 0 < len(value) <= MAX_ID_CHARS:
            raise WireLimitError(f"{where}: {name} {value!r} must have 1 to {MAX_ID_CHARS} characters")
    if isinstance(series, BarSeries):
        if not 0 < series.interval_ns <= _MAX_TIME:
            raise WireLimitError(f"{where}: interval_ns {series.interval_ns} out of range")
        columns: tuple[tuple[str, array[int], int, int], ...] = (
            ("close_time_ns", series.close_time_ns, 0, _MAX_TIME),
            ("open", series.open, -MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
            ("high", series.high, -MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
            ("low", series.low, -MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
            ("close", series.close, -MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
            ("volume", series.volume, 0, MAX_ABS_AMOUNT),
        )
    else:
        columns = (
            ("time_ns", series.time_ns, 0, _MAX_TIME),
            ("price", series.price, -MAX_ABS_AMOUNT, MAX_ABS_AMOUNT),
            ("quantity", series.quantity, 1, MAX_ABS_AMOUNT),
        )
    for name, column, low, high in columns:
        if not column:
            continue
        lo, hi = min(column), max(column)
        if lo < low or hi > high:
            bad = lo if lo < low else hi
            raise WireLimitError(f"{where}: {name} {bad} is outside the wire limits [{low}, {high}]")
