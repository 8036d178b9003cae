"""The run folder: orders, fills, trades and the equity curve as tables, and summary.json.

Every table has, for each time, an ISO-8601 UTC column (`time`, `entry_time`, ...) beside the raw
nanosecond column (`time_ns`, `entry_time_ns`, ...): people read the first, programs join on the
second. In CSV the ISO column is text ('2024-01-01T00:00:00.000000000Z'); in Parquet it is a
timestamp[ns, UTC] column, which readers turn into datetimes themselves.

Each file is written to a hidden temporary name in the folder and renamed into place, so a reader
never sees half a file; summary.json is written last, so its presence means the folder is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from services.backtest.records import EquityCurve, FillRecord, OpenTrade, OrderRecord, TradeRecord
from services.backtest.statistics import Statistics, drawdown_series

__all__ = ["FILE_STEMS", "write_run_outputs"]

OutputFormat = Literal["csv", "parquet"]

# Keys of the returned mapping, and the file stems in the folder.
FILE_STEMS = ("orders", "fills", "trades", "equity")

_Columns = tuple[tuple[str, pa.DataType], ...]

_FILL_COLUMNS: _Columns = (
    ("time_ns", pa.int64()),
    ("seq_id", pa.int64()),
    ("strategy_id", pa.string()),
    ("client_order_id", pa.string()),
    ("instrument", pa.string()),
    ("side", pa.string()),
    ("quantity", pa.float64()),
    ("price", pa.float64()),
    ("fee", pa.float64()),
    ("fee_currency", pa.string()),
    ("trade_id", pa.string()),
    ("liquidity", pa.string()),
)
_ORDER_COLUMNS: _Columns = (
    ("client_order_id", pa.string()),
    ("strategy_id", pa.string()),
    ("instrument", pa.string()),
    ("side", pa.string()),
    ("order_type", pa.string()),
    ("quantity", pa.float64()),
    ("price", pa.float64()),
    ("stop_price", pa.float64()),
    ("time_in_force", pa.string()),
    ("state", pa.string()),
    ("filled_quantity", pa.float64()),
    ("avg_fill_price", pa.float64()),
    ("created_time_ns", pa.int64()),
    ("updated_time_ns", pa.int64()),
    ("parent_client_order_id", pa.string()),
    ("oco_group", pa.string()),
)
_TRADE_COLUMNS: _Columns = (
    ("instrument", pa.string()),
    ("direction", pa.string()),
    ("entry_time_ns", pa.int64()),
    ("exit_time_ns", pa.int64()),
    ("quantity", pa.float64()),
    ("entry_price", pa.float64()),
    ("exit_price", pa.float64()),
    ("pnl", pa.float64()),
    ("fees", pa.float64()),
    ("pnl_net", pa.float64()),
    ("bars_held", pa.int64()),
)
_OPEN_TRADE_COLUMNS: _Columns = (
    ("instrument", pa.string()),
    ("direction", pa.string()),
    ("entry_time_ns", pa.int64()),
    ("entry_bar_index", pa.int64()),
    ("quantity", pa.float64()),
    ("max_quantity", pa.float64()),
    ("average_cost", pa.float64()),
    ("entry_price", pa.float64()),
    ("realized_pnl", pa.float64()),
    ("fees", pa.float64()),
)


def _time_column(time_ns: pa.Array, fmt: OutputFormat) -> pa.Array:
    """The ISO (CSV) or timestamp (Parquet) twin of a nanosecond column."""
    if fmt == "parquet":
        return time_ns.cast(pa.timestamp("ns", tz="UTC"))
    # Arrow formats tz-naive timestamps fast ('2024-01-01 00:00:00.000000000'; tz-aware formatting
    # is ten times slower); the values are UTC, so make it ISO by hand: 'T' in the middle, 'Z' last.
    text = pc.cast(time_ns.cast(pa.timestamp("ns")), pa.string())
    text = pc.utf8_replace_slice(text, 10, 11, "T")
    return pc.binary_join_element_wise(text, pa.scalar("Z"), "")


def _table(records: Sequence[object], columns: _Columns, fmt: OutputFormat) -> pa.Table:
    """A table with one column per record field; each `*_ns` column gets its readable twin first."""
    names: list[str] = []
    arrays: list[pa.Array] = []
    for name, kind in columns:
        values = pa.array([getattr(r, name) for r in records], type=kind)
        if name.endswith("_ns"):
            names.append(name.removesuffix("_ns"))
            arrays.append(_time_column(values, fmt))
        names.append(name)
        arrays.append(values)
    return pa.Table.from_arrays(arrays, names=names)


def _equity_table(curve: EquityCurve, initial_equity: float, fmt: OutputFormat) -> pa.Table:
    """The curve's arrays go to Arrow without a copy; drawdown follows the statistics' definition."""
    time_ns = pa.array(np.frombuffer(curve.time_ns, dtype=np.int64))
    equity = np.frombuffer(curve.equity, dtype=np.float64)
    return pa.Table.from_arrays(
        [
            _time_column(time_ns, fmt),
            time_ns,
            pa.array(equity),
            pa.array(np.frombuffer(curve.cash, dtype=np.float64)),
            pa.array(np.frombuffer(curve.exposure, dtype=np.float64)),
            pa.array(drawdown_series(equity, initial_equity)),
        ],
        names=["time", "time_ns", "equity", "cash", "exposure", "drawdown"],
    )


def _write_table(table: pa.Table, path: Path, fmt: OutputFormat) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "csv":
        pcsv.write_csv(table, tmp)
    else:
        pq.write_table(table, tmp)
    os.replace(tmp, path)


def _write_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_run_outputs(
    run_dir: Path,
    *,
    orders: Sequence[OrderRecord],
    fills: Sequence[FillRecord],
    trades: Sequence[TradeRecord],
    curve: EquityCurve,
    stats: Statistics,
    fmt: OutputFormat = "csv",
    config_summary: Mapping[str, object],
    open_trades: Sequence[OpenTrade] | None = None,
) -> dict[str, Path]:
    """Write the run folder (created if missing; files of an earlier run with these names are replaced).

    Args:
        run_dir: the folder.
        orders, fills, trades, curve, stats: the run's results.
        fmt: "csv" or "parquet" for the tables; summary.json is always JSON.
        config_summary: what the run was configured with, stored under "config" in summary.json;
            must be JSON-serialisable.
        open_trades: round trips still open at the end, written to open_trades.<fmt> when given.

    Returns:
        The written files by stem: "orders", "fills", "trades", "equity", ["open_trades"], "summary".

    Raises:
        ValueError: `fmt` is not "csv" or "parquet", or `config_summary` is not JSON-serialisable.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"write_run_outputs: fmt must be 'csv' or 'parquet', got {fmt!r}")
    summary = {"statistics": stats.to_dict(), "config": dict(config_summary), "files": {}}
    try:  # before writing anything, so bad config leaves no half-written folder behind
        json.dumps(summary, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"write_run_outputs: config_summary is not JSON-serialisable: {exc}") from exc

    run_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "orders": _table(orders, _ORDER_COLUMNS, fmt),
        "fills": _table(fills, _FILL_COLUMNS, fmt),
        "trades": _table(trades, _TRADE_COLUMNS, fmt),
        "equity": _equity_table(curve, stats.initial_equity, fmt),
    }
    if open_trades is not None:
        tables["open_trades"] = _table(open_trades, _OPEN_TRADE_COLUMNS, fmt)
    written: dict[str, Path] = {}
    for stem, table in tables.items():
        path = run_dir / f"{stem}.{fmt}"
        _write_table(table, path, fmt)
        written[stem] = path
    summary["files"] = {stem: path.name for stem, path in written.items()}
    summary_path = run_dir / "summary.json"
    _write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", summary_path)
    written["summary"] = summary_path
    return written
