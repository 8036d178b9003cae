"""The run folder: files, columns, ISO and raw times, summary.json, atomic writes, speed."""

from __future__ import annotations

import csv
import json
import time
from array import array
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.backtest.output import write_run_outputs
from services.backtest.records import EquityCurve, FillRecord, OrderRecord, TradeBuilder, TradeRecord
from services.backtest.statistics import Statistics, compute_statistics, iso_utc

T0 = 1_704_067_200 * 1_000_000_000
HOUR = 3_600 * 1_000_000_000


def _fill(i: int, side: str, qty: float, price: float) -> FillRecord:
    return FillRecord(T0 + i * HOUR, i, "s1", f"o{i}", "BTC-USD", side, qty, price, 0.5, "USD", f"t{i}", "taker")


def _order(i: int, price: float | None) -> OrderRecord:
    return OrderRecord(
        client_order_id=f"o{i}",
        strategy_id="s1",
        instrument="BTC-USD",
        side="buy",
        order_type="market" if price is None else "limit",
        quantity=1.0,
        price=price,
        stop_price=None,
        time_in_force="gtc",
        state="filled",
        filled_quantity=1.0,
        avg_fill_price=100.0,
        created_time_ns=T0 + i * HOUR,
        updated_time_ns=T0 + i * HOUR + 5,
        parent_client_order_id=None,
        oco_group=None if price is None else "g1",
    )


def _results() -> tuple[list[OrderRecord], list[FillRecord], list[TradeRecord], EquityCurve, Statistics, TradeBuilder]:
    fills = [_fill(1, "buy", 1.0, 100.0), _fill(2, "sell", 1.0, 110.0), _fill(3, "buy", 2.0, 105.0)]
    builder = TradeBuilder()
    trades = [t for t in (builder.on_fill(f, f.seq_id) for f in fills) if t is not None]
    curve = EquityCurve()
    for i, value in enumerate([1000.0, 1000.0, 1010.0, 990.0]):
        curve.append(T0 + i * HOUR, value, value - 100, 0.2 if i % 2 else 0.0)
    stats = compute_statistics(curve, trades, 1.5, 1000.0, "USD")
    return [_order(1, None), _order(2, 110.0)], fills, trades, curve, stats, builder


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_run_folder(tmp_path: Path) -> None:
    orders, fills, trades, curve, stats, builder = _results()
    run_dir = tmp_path / "runs" / "one"  # created, parents too
    written = write_run_outputs(
        run_dir,
        orders=orders,
        fills=fills,
        trades=trades,
        curve=curve,
        stats=stats,
        config_summary={"strategy": "sma", "fast": 10},
        open_trades=builder.open_trades(),
    )
    assert set(written) == {"orders", "fills", "trades", "equity", "open_trades", "summary"}
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(p.name for p in written.values())  # no temp files

    fill_rows = _read_csv(written["fills"])
    assert list(fill_rows[0])[:3] == ["time", "time_ns", "seq_id"]
    assert [r["side"] for r in fill_rows] == ["buy", "sell", "buy"]
    assert fill_rows[1]["time"] == iso_utc(T0 + 2 * HOUR) == "2024-01-01T02:00:00.000000000Z"
    assert int(fill_rows[1]["time_ns"]) == T0 + 2 * HOUR
    assert float(fill_rows[1]["price"]) == 110.0

    order_rows = _read_csv(written["orders"])
    assert [r["price"] for r in order_rows] == ["", "110"]  # None is an empty cell
    assert order_rows[1]["updated_time"] == "2024-01-01T02:00:00.000000005Z"
    assert [r["oco_group"] for r in order_rows] == ["", "g1"]

    (trade_row,) = _read_csv(written["trades"])
    assert list(trade_row) == [
        "instrument",
        "direction",
        "entry_time",
        "entry_time_ns",
        "exit_time",
        "exit_time_ns",
        "quantity",
        "entry_price",
        "exit_price",
        "pnl",
        "fees",
        "pnl_net",
        "bars_held",
    ]
    assert (float(trade_row["pnl"]), float(trade_row["pnl_net"]), trade_row["bars_held"]) == (10.0, 9.0, "1")

    (open_row,) = _read_csv(written["open_trades"])
    assert (open_row["direction"], float(open_row["quantity"])) == ("long", 2.0)

    equity_rows = _read_csv(written["equity"])
    assert list(equity_rows[0]) == ["time", "time_ns", "equity", "cash", "exposure", "drawdown"]
    assert [float(r["equity"]) for r in equity_rows] == [1000, 1000, 1010, 990]
    assert float(equity_rows[-1]["drawdown"]) == pytest.approx(20 / 1010)

    summary = json.loads(written["summary"].read_text())
    assert summary["config"] == {"strategy": "sma", "fast": 10}
    assert summary["files"] == {
        "orders": "orders.csv",
        "fills": "fills.csv",
        "trades": "trades.csv",
        "equity": "equity.csv",
        "open_trades": "open_trades.csv",
    }
    assert summary["statistics"]["trades"] == 1
    assert summary["statistics"]["max_drawdown"] == pytest.approx(20 / 1010)
    assert summary["statistics"]["start_time"] == "2024-01-01T00:00:00.000000000Z"


def test_parquet_run_folder_keeps_types(tmp_path: Path) -> None:
    orders, fills, trades, curve, stats, _ = _results()
    written = write_run_outputs(
        tmp_path, orders=orders, fills=fills, trades=trades, curve=curve, stats=stats, fmt="parquet", config_summary={}
    )
    assert written["equity"].name == "equity.parquet" and "open_trades" not in written
    equity = pq.read_table(written["equity"])
    assert equity.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert equity.column("time_ns").to_pylist() == list(curve.time_ns)
    fills_table = pq.read_table(written["fills"])
    assert fills_table.column("quantity").to_pylist() == [1.0, 1.0, 2.0]
    assert pq.read_table(written["orders"]).column("price").to_pylist() == [None, 110.0]


def test_empty_results_still_have_headers(tmp_path: Path) -> None:
    _, _, _, curve, stats, _ = _results()
    written = write_run_outputs(tmp_path, orders=[], fills=[], trades=[], curve=curve, stats=stats, config_summary={})
    header = written["fills"].read_text().splitlines()
    assert len(header) == 1 and header[0].startswith('"time","time_ns","seq_id"')


def test_bad_arguments_write_nothing(tmp_path: Path) -> None:
    orders, fills, trades, curve, stats, _ = _results()
    with pytest.raises(ValueError, match="fmt must be 'csv' or 'parquet', got 'xlsx'"):
        write_run_outputs(
            tmp_path / "a", orders=orders, fills=fills, trades=trades, curve=curve, stats=stats,
            fmt="xlsx", config_summary={},  # type: ignore[arg-type]
        )  # fmt: skip
    with pytest.raises(ValueError, match="config_summary"):
        write_run_outputs(
            tmp_path / "b", orders=orders, fills=fills, trades=trades, curve=curve, stats=stats,
            config_summary={"path": Path("x")},
        )  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_million_equity_rows_write_in_seconds(tmp_path: Path) -> None:
    n = 1_000_000
    curve = EquityCurve()  # filled from arrays: a million appends would time the test, not the writer
    curve.time_ns = array("q", (T0 + np.arange(n, dtype=np.int64) * 60_000_000_000).tobytes())
    curve.equity = array("d", (1000.0 + np.sin(np.arange(n) / 1e4)).tobytes())
    curve.cash = array("d", np.full(n, 500.0).tobytes())
    curve.exposure = array("d", np.zeros(n).tobytes())
    stats = compute_statistics(curve, [], 0.0, 1000.0, "USD")
    started = time.perf_counter()
    written = write_run_outputs(tmp_path, orders=[], fills=[], trades=[], curve=curve, stats=stats, config_summary={})
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"writing 1M equity rows took {elapsed:.2f} s"  # about 0.7 s on a dev machine
    with written["equity"].open() as handle:
        assert sum(1 for _ in handle) == n + 1
