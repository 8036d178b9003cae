"""load_bars and load_trades: a file to a checked, columnar series in the instrument's units.

Theory of operation, in the order things happen:

1. The format comes from the suffix (.csv, .csv.gz, .parquet); columns are found by name
   (fields.py) and only those are read (csv_source.py, parquet_source.py).
2. Each column is converted exactly (convert.py). A conversion stops at its first bad cell; all
   columns are then cut at the earliest such row, so later checks only see rows that parsed.
3. Row checks (prices positive, volume not negative, high >= low, open/close in range) and
   order checks (times increase, no repeats) run on those rows (validate.py); requested repairs
   replace their checks and count what they change.
4. The earliest failure of all, by file row, becomes the DataError. The whole file is checked,
   not just the start/end window: a damaged file is refused whichever part is asked for.
5. Bars get their close times (timestamp="open" adds the interval), then the start/end window
   is cut on close time (start inclusive, end exclusive) and the columns become `array('q')`.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from collections.abc import Collection
from datetime import date, datetime
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc

from services.data.convert import Converted, Failure, cell_text, first_true, to_sides, to_ticks, to_time_ns
from services.data.csv_source import line_of_row, read_csv_columns, read_csv_header
from services.data.errors import DataError
from services.data.fields import BAR_COLUMNS, TRADE_COLUMNS, resolve_columns
from services.data.parquet_source import read_parquet_columns, read_parquet_header
from services.data.series import BarSeries, TradeSeries
from services.data.times import format_time, parse_interval, parse_time
from services.data.validate import (
    BAR_REPAIRS,
    REPAIRS,
    TRADE_REPAIRS,
    bar_range_failures,
    check_repairs,
    duplicates,
    first_failure,
    negative_failure,
    nonpositive_failures,
    order_failure,
    stable_sort,
)
from services.sequencer.core.config import InstrumentSpec

__all__ = ["TimeArg", "data_format", "load_bars", "load_trades"]

TimeArg = datetime | date | str | int | None
PathArg = str | os.PathLike[str]

_FORMATS: Final = ((".csv.gz", "csv"), (".csv", "csv"), (".parquet", "parquet"))
# A value is shown bare in a message when it reads unambiguously so (numbers, times, words).
_PLAIN_VALUE = re.compile(r"^[\w:.+\-]+$")


def data_format(path: PathArg) -> Literal["csv", "parquet"]:
    """The file format from the suffix (case-insensitive): 'csv' for .csv / .csv.gz, or 'parquet'.

    Raises:
        DataError: any other suffix.
    """
    text = os.fspath(path)
    lowered = text.lower()
    for suffix, kind in _FORMATS:
        if lowered.endswith(suffix):
            return "csv" if kind == "csv" else "parquet"
    suffix = "".join(os.path.basename(text).partition(".")[1:]) or "none"
    raise DataError(text, f"unknown file type (suffix {suffix}; expected .csv, .csv.gz or .parquet)")


class _File:
    """One file being loaded: its columns by role and how to show a cell or raise for a row."""

    __slots__ = ("fmt", "names", "path", "raw", "read_failure", "rows")

    def __init__(self, path: str, wanted: dict[str, tuple[tuple[str, ...], bool]], optional: frozenset[str]) -> None:
        self.path = path
        self.fmt = data_format(path)
        if not os.path.exists(path):
            raise DataError(path, "no such file")
        header = read_csv_header(path) if self.fmt == "csv" else read_parquet_header(path)
        found = resolve_columns(path, header, wanted, optional=optional)
        self.names: dict[str, str] = {role: name for role, name in found.items() if name is not None}
        columns = list(dict.fromkeys(self.names.values()))
        if self.fmt == "csv":
            table, self.read_failure = read_csv_columns(path, columns)
        else:
            table, self.read_failure = read_parquet_columns(path, columns), None
        self.raw: dict[str, Any] = {role: table.column(name).combine_chunks() for role, name in self.names.items()}
        self.rows = table.num_rows
        if self.rows == 0 and self.read_failure is None:
            what = "a header but no data rows" if self.fmt == "csv" else "no data rows"
            raise DataError(path, f"empty file ({what})")

    def text(self, role: str, index: int) -> str:
        return cell_text(self.raw[role], index)

    def error(self, failure: Failure) -> DataError:
        line = line_of_row(self.path, failure.index) if self.fmt == "csv" else None
        value = failure.value
        if value is None:
            reason = f"the row {failure.reason}"
        elif value.strip() == "":
            reason = "empty value"
        else:
            shown = value if _PLAIN_VALUE.match(value) else repr(value)
            reason = f"{shown} {failure.reason}"
        return DataError(self.path, reason, row=failure.index + 1, field=failure.field, value=value, line=line)


def _cut(values: Any, length: int) -> Any:
    return values if len(values) == length else values[:length]


def _to_q(values: Any) -> array[int]:
    """An int64 pyarrow array as array('q'), copying its bytes (no per-element Python work)."""
    values = values.cast(pa.int64())
    assert values.null_count == 0, "converted columns never hold nulls"
    out: array[int] = array("q")
    if len(values):
        start = values.offset * 8
        out.frombytes(memoryview(values.buffers()[1])[start : start + len(values) * 8])
    assert len(out) == len(values)
    return out


def _window(times: array[int], start: TimeArg, end: TimeArg, path: str) -> tuple[int, int]:
    """The slice of sorted `times` with start <= t < end."""
    start_ns = _time_arg(start, "start", path)
    end_ns = _time_arg(end, "end", path)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise DataError(path, f"end {format_time(end_ns)} is not after start {format_time(start_ns)}", field="end")
    lo = 0 if start_ns is None else bisect_left(times, start_ns)
    hi = len(times) if end_ns is None else bisect_left(times, end_ns)
    if hi <= lo:
        covered = f"{format_time(times[0])} to {format_time(times[-1])}" if len(times) else "nothing"
        raise DataError(
            path,
            f"no rows with time in [{'-' if start_ns is None else format_time(start_ns)}, "
            f"{'-' if end_ns is None else format_time(end_ns)}) (the file covers {covered})",
            field="start",
        )
    return lo, hi


def _time_arg(value: TimeArg, name: str, path: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_time(value, name=name)
    except (ValueError, TypeError) as exc:
        raise DataError(path, str(exc), field=name, value=str(value)) from None


def _repair_counts(counts: dict[str, int]) -> dict[str, int]:
    """Only repairs that changed something, in REPAIRS order (deterministic for messages)."""
    return {name: counts[name] for name in REPAIRS if counts.get(name)}


def _infer_interval(stamps: Any, path: str) -> int:
    """The most common positive gap between consecutive stamps (ties: the shortest)."""
    if len(stamps) < 2:
        raise DataError(path, f"cannot infer the bar interval from {len(stamps)} bar; pass interval=", field="interval")
    gaps = pc.subtract(stamps[1:], stamps[:-1])
    counts = pc.value_counts(pc.filter(gaps, pc.greater(gaps, 0)))
    if len(counts) == 0:
        raise DataError(path, "cannot infer the bar interval: no two bars have different times", field="interval")
    best = max(zip(counts.field("counts").to_pylist(), counts.field("values").to_pylist(), strict=True),
               key=lambda pair: (pair[0], -pair[1]))
    return int(best[1])


def load_bars(
    path: PathArg,
    instrument: str,
    spec: InstrumentSpec,
    *,
    interval: str | int | None = None,
    timestamp: Literal["open", "close"] = "open",
    start: TimeArg = None,
    end: TimeArg = None,
    repair: Collection[str] = (),
) -> BarSeries:
    """Load OHLCV bars from a CSV, CSV.gz or Parquet file.

    Args:
        path: the file; the suffix says the format.
        instrument: instrument id for the series (and its envelopes).
        spec: the instrument's spec: venue, price_decimals, size_decimals.
        interval: bar length ("1m", "1h", "1d", ... or ns); None infers the most common gap.
        timestamp: whether the time column stamps a bar's "open" (most exports; close = open +
            interval) or its "close".
        start, end: keep bars whose close time is in [start, end) (datetime, date, ISO text or ns).
        repair: opt-in repairs: "sort", "drop_duplicates", "clip", "round", "fill_volume".

    Returns:
        The bars, with `repairs` counting what each repair changed.

    Raises:
        DataError: the first problem in the file by row order, naming file, row, field and value.
    """
    try:
        return _load_bars(path, instrument, spec, interval, timestamp, start, end, repair)
    finally:
        _release_memory()  # after _load_bars returned: its pyarrow columns are garbage by now


def _load_bars(
    path: PathArg,
    instrument: str,
    spec: InstrumentSpec,
    interval: str | int | None,
    timestamp: Literal["open", "close"],
    start: TimeArg,
    end: TimeArg,
    repair: Collection[str],
) -> BarSeries:
    text_path = os.fspath(path)
    repairs = check_repairs(text_path, repair, BAR_REPAIRS, "bars")
    if timestamp not in ("open", "close"):
        raise DataError(text_path, f"timestamp must be 'open' or 'close', got {timestamp!r}", field="timestamp")
    try:
        interval_ns = None if interval is None else parse_interval(interval)
    except (ValueError, TypeError) as exc:
        raise DataError(text_path, str(exc), field="interval", value=str(interval)) from None
    optional = frozenset({"volume"}) if "fill_volume" in repairs else frozenset()
    src = _File(text_path, dict(BAR_COLUMNS), optional)
    round_ok = "round" in repairs

    converted: dict[str, Converted] = {"time": to_time_ns(src.raw["time"], field=src.names["time"])}
    for role in ("open", "high", "low", "close"):
        converted[role] = to_ticks(
            src.raw[role], spec.price_decimals, field=src.names[role], kind="price", round_ok=round_ok
        )
    if "volume" in src.raw:
        converted["volume"] = to_ticks(
            src.raw["volume"],
            spec.size_decimals,
            field=src.names["volume"],
            kind="size",
            round_ok=round_ok,
            fill_empty="fill_volume" in repairs,
        )
    else:  # repair "fill_volume" with no volume column: every bar gets volume 0
        zeros = pc.fill_null(pa.nulls(src.rows, pa.int64()), 0)
        converted["volume"] = Converted(zeros, None, filled=src.rows)
    counts = {
        "round": sum(c.changed for c in converted.values()),
        "fill_volume": converted["volume"].filled,
    }
    failures = [f for f in [src.read_failure, *(c.failure for c in converted.values())] if f is not None]
    length = min([src.rows, *(f.index for f in failures)])
    cols = {role: _cut(c.values, length) for role, c in converted.items()}
    rows = pa.array(range(length), pa.int64())

    prices = {role: cols[role] for role in ("open", "high", "low", "close")}
    failures += nonpositive_failures(prices, src.names, src.text)
    if "volume" in src.raw:
        negative = negative_failure(cols["volume"], "volume", src.names["volume"], src.text, "volume must be >= 0")
        failures += [negative] if negative else []
    range_failures, clipped, counts["clip"] = bar_range_failures(prices, src.names, src.text, clip="clip" in repairs)
    failures += range_failures
    cols.update(clipped)
    if "sort" in repairs:
        order, counts["sort"] = stable_sort(cols["time"])
        if counts["sort"]:
            cols = {role: values.take(order) for role, values in cols.items()}
            rows = rows.take(order)
    else:
        unsorted = order_failure(cols["time"], src.names["time"], src.text)
        failures += [unsorted] if unsorted else []
    keep, counts["drop_duplicates"], duplicate = duplicates(
        cols["time"], rows, src.names["time"], src.text, drop="drop_duplicates" in repairs
    )
    failures += [duplicate] if duplicate else []
    failure = first_failure(failures)
    if failure is not None:
        raise src.error(failure)
    if keep is not None:
        cols = {role: values.filter(keep) for role, values in cols.items()}

    if interval_ns is None:
        interval_ns = _infer_interval(cols["time"], text_path)
    stamps = cols["time"]
    if timestamp == "open":
        stamps, bad = _checked_add(stamps, interval_ns)
        if bad >= 0:
            raise src.error(Failure(bad, src.names["time"], src.text("time", bad), "plus the interval is after 2262"))
    close_time = _to_q(stamps)
    lo, hi = _window(close_time, start, end, text_path)
    return BarSeries(
        instrument=instrument,
        venue=spec.venue,
        interval_ns=interval_ns,
        close_time_ns=close_time[lo:hi],
        open=_to_q(cols["open"][lo:hi]),
        high=_to_q(cols["high"][lo:hi]),
        low=_to_q(cols["low"][lo:hi]),
        close=_to_q(cols["close"][lo:hi]),
        volume=_to_q(cols["volume"][lo:hi]),
        source=text_path,
        repairs=_repair_counts(counts),
    )


def _release_memory() -> None:
    """Hand pyarrow's freed scratch memory back to the OS.

    Loading a million CSV rows peaks at ~160 MB of pyarrow buffers (text, decimals, masks); the
    allocator keeps them after they are freed, which would hold ~240 MB of RSS through the whole
    backtest for 48 MB of result. Releasing costs milliseconds.
    """
    pa.default_memory_pool().release_unused()


def _checked_add(values: Any, amount: int) -> tuple[Any, int]:
    try:
        return pc.add_checked(values, amount), -1
    except pa.ArrowInvalid:
        bad = first_true(pc.greater(values, 2**63 - 1 - amount))
        return values[:bad], bad


def load_trades(
    path: PathArg,
    instrument: str,
    spec: InstrumentSpec,
    *,
    start: TimeArg = None,
    end: TimeArg = None,
    repair: Collection[str] = (),
) -> TradeSeries:
    """Load public trades from a CSV, CSV.gz or Parquet file.

    Columns: a time column, price, a size column (size, quantity, amount or qty) and optionally
    side (buy/b, sell/s, empty for unknown). Equal times are allowed (prints share a stamp).

    Args:
        path: the file; the suffix says the format.
        instrument: instrument id for the series.
        spec: the instrument's spec: venue, price_decimals, size_decimals.
        start, end: keep trades with time in [start, end).
        repair: opt-in repairs: "sort", "round".

    Raises:
        DataError: the first problem in the file by row order.
    """
    try:
        return _load_trades(path, instrument, spec, start, end, repair)
    finally:
        _release_memory()


def _load_trades(
    path: PathArg, instrument: str, spec: InstrumentSpec, start: TimeArg, end: TimeArg, repair: Collection[str]
) -> TradeSeries:
    text_path = os.fspath(path)
    repairs = check_repairs(text_path, repair, TRADE_REPAIRS, "trades")
    src = _File(text_path, dict(TRADE_COLUMNS), frozenset())
    round_ok = "round" in repairs
    converted = {
        "time": to_time_ns(src.raw["time"], field=src.names["time"]),
        "price": to_ticks(src.raw["price"], spec.price_decimals, field=src.names["price"], kind="price",
                          round_ok=round_ok),
        "quantity": to_ticks(src.raw["quantity"], spec.size_decimals, field=src.names["quantity"], kind="size",
                             round_ok=round_ok),
    }
    counts = {"round": sum(c.changed for c in converted.values())}
    failures = [f for f in [src.read_failure, *(c.failure for c in converted.values())] if f is not None]
    cols = {role: c.values for role, c in converted.items()}
    if "side" in src.raw:
        cols["side"], side_failure = to_sides(src.raw["side"], field=src.names["side"])
        failures += [side_failure] if side_failure else []
    length = min([src.rows, *(f.index for f in failures)])
    cols = {role: _cut(values, length) for role, values in cols.items()}

    failures += nonpositive_failures({"price": cols["price"]}, src.names, src.text)
    bad = first_true(pc.less_equal(cols["quantity"], 0))
    if bad >= 0:
        failures.append(Failure(bad, src.names["quantity"], src.text("quantity", bad), "is not a positive size"))
    if "sort" in repairs:
        order, counts["sort"] = stable_sort(cols["time"])
        if counts["sort"]:
            cols = {role: values.take(order) for role, values in cols.items()}
    else:
        unsorted = order_failure(cols["time"], src.names["time"], src.text)
        failures += [unsorted] if unsorted else []
    failure = first_failure(failures)
    if failure is not None:
        raise src.error(failure)

    times = _to_q(cols["time"])
    lo, hi = _window(times, start, end, text_path)
    aggressor = None
    if "side" in cols:
        side = cols["side"][lo:hi]
        aggressor = memoryview(side.buffers()[1])[side.offset : side.offset + len(side)].tobytes()
    return TradeSeries(
        instrument=instrument,
        venue=spec.venue,
        time_ns=times[lo:hi],
        price=_to_q(cols["price"][lo:hi]),
        quantity=_to_q(cols["quantity"][lo:hi]),
        aggressor=aggressor,
        source=text_path,
        repairs=_repair_counts(counts),
    )

