"""The report picture: written, non-trivial, fast on long series; decimation keeps the extremes."""

from __future__ import annotations

import base64
import time
from array import array
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from services.backtest.records import EquityCurve, FillRecord, TradeBuilder, TradeRecord
from services.backtest.report import decimate_indices, write_report, write_report_html
from services.backtest.statistics import Statistics, compute_statistics

T0 = 1_704_067_200 * 1_000_000_000
MINUTE = 60_000_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(n: int, seed: int = 7) -> tuple[EquityCurve, dict[str, tuple[array[int], array[float]]], list[FillRecord]]:
    rng = np.random.default_rng(seed)
    times = T0 + np.arange(n, dtype=np.int64) * MINUTE
    close = 40_000 * np.cumprod(1 + rng.normal(0, 1e-3, n))
    curve = EquityCurve()  # from arrays: the test is about drawing, not appending
    curve.time_ns = array("q", times.tobytes())
    curve.equity = array("d", (10_000 * np.cumprod(1 + rng.normal(0, 1e-3, n))).tobytes())
    curve.cash = array("d", np.full(n, 5_000.0).tobytes())
    curve.exposure = array("d", np.full(n, 0.5).tobytes())
    step = max(n // 40, 1)
    fills = [
        FillRecord(int(times[i]), k, "s", f"o{k}", "BTC-USD", "buy" if k % 2 == 0 else "sell", 0.1,
                   float(close[i]), 0.1, "USD", f"t{k}", "taker")
        for k, i in enumerate(range(1, n, step))
    ]  # fmt: skip
    return curve, {"BTC-USD": (array("q", times.tobytes()), array("d", close.tobytes()))}, fills


def _trades(fills: list[FillRecord]) -> list[TradeRecord]:
    builder = TradeBuilder()
    return [t for t in (builder.on_fill(f, i) for i, f in enumerate(fills)) if t is not None]


def _stats(curve: EquityCurve, trades: list[TradeRecord]) -> Statistics:
    return compute_statistics(curve, trades, 1.0, 10_000.0, "USD")


def test_report_png_is_written_and_not_trivial(tmp_path: Path) -> None:
    curve, prices, fills = _run(5_000)
    trades = _trades(fills)
    path = write_report(
        tmp_path / "report.png",
        curve=curve,
        fills=fills,
        trades=trades,
        stats=_stats(curve, trades),
        prices=prices,
        title="sma cross",
    )
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["report.png"]  # no temp file left behind

    html_path = write_report_html(tmp_path / "report.html", png=path, stats=_stats(curve, trades), title="a <b> c")
    page = html_path.read_text()
    assert base64.b64encode(data).decode() in page
    assert "Max drawdown" in page and "a &lt;b&gt; c" in page


def test_report_without_prices_and_with_many_instruments(tmp_path: Path) -> None:
    curve, _, fills = _run(500)
    many = [
        FillRecord(f.time_ns, f.seq_id, f.strategy_id, f.client_order_id, f"X{k % 6}-USD", f.side, f.quantity,
                   f.price, f.fee, f.fee_currency, f.trade_id, f.liquidity)
        for k, f in enumerate(fills)
    ]  # fmt: skip
    stats = _stats(curve, [])
    path = write_report(tmp_path / "r.png", curve=curve, fills=many, trades=[], stats=stats, prices=None, title="six")
    assert path.read_bytes().startswith(PNG_MAGIC)
    path = write_report(tmp_path / "flat.png", curve=curve, fills=[], trades=[], stats=stats, prices=None, title="none")
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_report_refuses_an_empty_curve(tmp_path: Path) -> None:
    curve, _, _ = _run(10)
    with pytest.raises(ValueError, match="empty"):
        write_report(
            tmp_path / "r.png", curve=EquityCurve(), fills=[], trades=[], stats=_stats(curve, []), prices=None, title=""
        )


def test_a_million_points_draw_in_seconds(tmp_path: Path) -> None:
    curve, prices, fills = _run(1_000_000)
    trades = _trades(fills)
    stats = _stats(curve, trades)
    started = time.perf_counter()
    write_report(tmp_path / "big.png", curve=curve, fills=fills, trades=trades, stats=stats, prices=prices, title="1M")
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"drawing 1M points took {elapsed:.2f} s"  # about 0.5 s on a dev machine


@given(
    hnp.arrays(np.float64, st.integers(1, 3_000), elements=st.floats(-1e6, 1e6)),
    st.integers(1, 200),
    st.integers(0, 2**32 - 1),
)
def test_decimation_keeps_every_bucket_extreme(y: np.ndarray, columns: int, seed: int) -> None:
    n = len(y)
    x = np.cumsum(np.random.default_rng(seed).integers(0, 5, n))  # non-decreasing, with repeats and gaps
    keep = decimate_indices(x, y, columns)
    assert np.all(np.diff(keep) > 0)  # sorted, no repeats
    assert keep[0] == 0 and keep[-1] == n - 1
    assert len(keep) <= 2 * columns + 2
    assert y[keep].min() == y.min() and y[keep].max() == y.max()
    if n > 2 * columns and x[-1] > x[0]:  # each bucket's min and max survive
        bucket = np.minimum(((x - x[0]) * (columns / (x[-1] - x[0]))).astype(np.int64), columns - 1)
        for b in np.unique(bucket):
            inside = y[bucket == b]
            kept = y[keep][bucket[keep] == b]
            assert kept.min() == inside.min() and kept.max() == inside.max()


def test_decimation_of_a_spike() -> None:
    x = np.arange(1_000_000)
    y = np.zeros(1_000_000)
    y[123_457] = 9.0
    y[876_543] = -4.0
    keep = decimate_indices(x, y, 1_000)
    assert 123_457 in keep and 876_543 in keep and len(keep) <= 2_002


def test_decimation_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="x has 2 points but y has 3"):
        decimate_indices(np.arange(2), np.zeros(3))
    with pytest.raises(ValueError, match="non-decreasing"):
        decimate_indices(np.arange(10)[::-1], np.zeros(10), 2)
    with pytest.raises(ValueError, match="columns"):
        decimate_indices(np.arange(10), np.zeros(10), 0)
