"""Market data for backtests: load, check, repair, resample and merge bars and trades.

Modules, each with its own theory of operation:

    series          BarSeries / TradeSeries: columnar `array('q')` in the instrument's units
    loaders         load_bars / load_trades: CSV, CSV.gz, Parquet to a checked series
    times           the time rule (ISO-8601, dates, epoch numbers by magnitude), intervals
    convert         exact column conversion (decimal text, never binary floats)
    validate        checks and opt-in repairs, first failure by row order
    csv_source      pyarrow CSV reading, with a csv-module path for precise errors
    parquet_source  Parquet reading
    fields          column names and aliases
    resample        bars to coarser, epoch-aligned bars
    merge           series to one envelope stream in the sequencer's merge order
    synthetic       seeded random-walk bars for benchmarks and the sample data
    errors          DataError

docs/data.md describes formats, errors and repairs for users. Import from this package: only
the names below are its public API.
"""

from __future__ import annotations

from services.data.errors import DataError
from services.data.loaders import data_format, load_bars, load_trades
from services.data.merge import bar_envelopes, merge, producer_ids, series_envelopes, trade_envelopes
from services.data.resample import resample
from services.data.series import AGGRESSOR_BUY, AGGRESSOR_SELL, AGGRESSOR_UNKNOWN, BarSeries, TradeSeries
from services.data.synthetic import synthetic_bars
from services.data.times import format_interval, format_time, parse_interval, parse_time
from services.data.validate import REPAIRS

__all__ = [
    "AGGRESSOR_BUY",
    "AGGRESSOR_SELL",
    "AGGRESSOR_UNKNOWN",
    "REPAIRS",
    "BarSeries",
    "DataError",
    "TradeSeries",
    "bar_envelopes",
    "data_format",
    "format_interval",
    "format_time",
    "load_bars",
    "load_trades",
    "merge",
    "parse_interval",
    "parse_time",
    "producer_ids",
    "resample",
    "series_envelopes",
    "synthetic_bars",
    "trade_envelopes",
]
