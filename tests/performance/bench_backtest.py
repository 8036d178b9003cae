"""Backtest throughput: SMA(10/30) crossover over N one-minute bars, five ways, in one run.

    python -m tests.performance.bench_backtest --bars 1000000 --out .bench/backtest.json

Cases, each in its own subprocess (so each peak memory is its own), on the same seeded data:

- `native`: tradebus in-process backtest, native `on_event` strategy (journal written);
- `btcompat`: the same backtest, Backtrader-style strategy through `services.strategy.btcompat`;
- `backtrader`: Backtrader 1.9.78 (`cerebro.run()`, its default `runonce=True`);
- `backtrader_runonce_false`: Backtrader with `runonce=False` (next() bar by bar, like us);
- `plain_loop`: a Python loop computing the same signals (the floor of any Python engine);
- `native_csv` / `backtrader_csv`: from the same CSV file to the result, each engine's own loader
  (tradebus `load_bars`, Backtrader `GenericCSVData`) included in the time.

Throughput is bars/s of wall time for the run itself (data already in memory); ratios compare
cases of the same run, which is what means something on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.backtest import BacktestConfig, instrument_spec_for, run_backtest
from services.data.series import BarSeries
from services.data.synthetic import synthetic_bars

REPO = Path(__file__).resolve().parents[2]
SEED = 20261124
CASES = (
    "native",
    "btcompat",
    "native_interpreted",
    "btcompat_interpreted",
    "backtrader",
    "backtrader_runonce_false",
    "plain_loop",
    "native_csv",
    "backtrader_csv",
)
_INTERPRETED = "_interpreted"  # suffix: the same case without the compiled build on the path
CONFIG = BacktestConfig(cash=10_000_000)  # enough cash that every signal trades (Backtrader's broker too)


def _bars(n: int) -> BarSeries:
    return synthetic_bars(n, "BTC-USD", instrument_spec_for("BTC-USD", CONFIG), SEED)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def case_native(bars: BarSeries) -> dict[str, Any]:
    from services.strategy.loader import load_strategy_class

    strategy = load_strategy_class(str(REPO / "examples/strategies/sma_cross.py"))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_backtest(strategy, bars, CONFIG, run_dir=tmp)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "trades": len(result.fills), "final_value": result.final_equity}


def case_btcompat(bars: BarSeries) -> dict[str, Any]:
    from services.strategy.loader import load_strategy_class

    strategy = load_strategy_class(str(REPO / "examples/strategies/sma_cross_bt.py"))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_backtest(strategy, bars, CONFIG, run_dir=tmp)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "trades": len(result.fills), "final_value": result.final_equity}


def _backtrader(bars: BarSeries, runonce: bool) -> dict[str, Any]:
    import backtrader as bt

    px = 10.0**-2
    sz = 10.0**-4
    rows = [
        (t, o * px, h * px, lo * px, c * px, v * sz)
        for t, o, h, lo, c, v in zip(bars.close_time_ns, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True)
    ]

    class Feed(bt.feed.DataBase):  # type: ignore[misc]
        """Bars from memory: Backtrader's own CSV parsing would dominate its time."""

        def start(self) -> None:
            super().start()
            self._rows = iter(rows)

        def _load(self) -> bool:
            row = next(self._rows, None)
            if row is None:
                return False
            t, o, h, lo, c, v = row
            self.lines.datetime[0] = bt.date2num(_utc(t))
            self.lines.open[0], self.lines.high[0], self.lines.low[0], self.lines.close[0] = o, h, lo, c
            self.lines.volume[0] = v
            self.lines.openinterest[0] = 0.0
            return True

    return _run_cerebro(Feed(timeframe=bt.TimeFrame.Minutes), runonce=runonce)


def _run_cerebro(feed: Any, *, runonce: bool = True) -> dict[str, Any]:
    """SMA 10/30 crossover, long only, size 1, in a default `Cerebro()` (stdstats and all)."""
    import backtrader as bt

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        params = (("fast", 10), ("slow", 30))

        def __init__(self) -> None:
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))

        def next(self) -> None:
            if self.cross[0] > 0 and not self.position:
                self.buy(size=1)
            elif self.cross[0] < 0 and self.position:
                self.close()

    cerebro = bt.Cerebro(runonce=runonce)
    cerebro.adddata(feed)
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(float(CONFIG.cash))
    started = time.perf_counter()
    [strategy] = cerebro.run()
    elapsed = time.perf_counter() - started
    fills = sum(1 for o in strategy._orders if o.status == o.Completed)
    return {"seconds": elapsed, "trades": fills, "final_value": cerebro.broker.getvalue()}


def _utc(time_ns: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time_ns / 1e9, UTC).replace(tzinfo=None)


def case_backtrader(bars: BarSeries) -> dict[str, Any]:
    return _backtrader(bars, runonce=True)


def case_backtrader_runonce_false(bars: BarSeries) -> dict[str, Any]:
    return _backtrader(bars, runonce=False)


def write_csv(bars: BarSeries, path: Path) -> None:
    """The same bars as a CSV file stamped by open time, the way exchanges export them."""
    from datetime import UTC, datetime

    with path.open("w") as f:
        f.write("datetime,open,high,low,close,volume\n")
        for t, o, h, lo, c, v in zip(bars.close_time_ns, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True):
            stamp = datetime.fromtimestamp((t - bars.interval_ns) // 10**9, UTC).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"{stamp},{o / 100:.2f},{h / 100:.2f},{lo / 100:.2f},{c / 100:.2f},{v / 10_000:.4f}\n")


def case_native_csv(bars: BarSeries) -> dict[str, Any]:
    """From the CSV file to the result: tradebus's loader, then the backtest."""
    from services.data import load_bars
    from services.strategy.loader import load_strategy_class

    strategy = load_strategy_class(str(REPO / "examples/strategies/sma_cross.py"))
    path = Path(os.environ["BENCH_CSV"])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        loaded = load_bars(path, "BTC-USD", instrument_spec_for("BTC-USD", CONFIG))
        result = run_backtest(strategy, loaded, CONFIG, run_dir=tmp)
        elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "trades": len(result.fills), "final_value": result.final_equity}


def case_backtrader_csv(bars: BarSeries) -> dict[str, Any]:
    """From the CSV file to the result: Backtrader's GenericCSVData, default Cerebro."""
    import backtrader as bt

    feed = bt.feeds.GenericCSVData(
        dataname=os.environ["BENCH_CSV"], dtformat="%Y-%m-%d %H:%M:%S", datetime=0, open=1, high=2, low=3,
        close=4, volume=5, openinterest=-1, timeframe=bt.TimeFrame.Minutes,
    )  # fmt: skip
    return _run_cerebro(feed)


def case_plain_loop(bars: BarSeries) -> dict[str, Any]:
    """Rolling sums and a crossover test: the same signals, no engine at all."""
    started = time.perf_counter()
    closes = bars.close
    fast_n, slow_n = 10, 30
    fast_sum = slow_sum = 0
    prev_diff = 0.0
    long = False
    signals = 0
    for i, c in enumerate(closes):
        fast_sum += c
        slow_sum += c
        if i >= fast_n:
            fast_sum -= closes[i - fast_n]
        if i >= slow_n:
            slow_sum -= closes[i - slow_n]
        if i >= slow_n - 1:
            diff = fast_sum / fast_n - slow_sum / slow_n
            if diff > 0 and prev_diff <= 0 and i >= slow_n and not long:
                long = True
                signals += 1
            elif diff < 0 and prev_diff >= 0 and i >= slow_n and long:
                long = False
                signals += 1
            prev_diff = diff
    return {"seconds": time.perf_counter() - started, "trades": signals, "final_value": None}


def run_case(name: str, n: int) -> dict[str, Any]:
    """Run one case here (the parent runs each in a fresh process); `build` says which code ran."""
    runner: Callable[[BarSeries], dict[str, Any]] = globals()[f"case_{name.removesuffix(_INTERPRETED)}"]
    bars = _bars(n)
    out = runner(bars)
    out["bars"] = n
    out["bars_per_s"] = n / out["seconds"]
    out["peak_rss_mb"] = _peak_mb()
    import services.backtest.runner as runner_module

    out["build"] = "compiled" if runner_module.__file__ and runner_module.__file__.endswith(".so") else "interpreted"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(".bench/backtest.json"))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.bars)))
        return 0
    results: dict[str, Any] = {}
    cases = args.cases.split(",")
    csv_dir = tempfile.TemporaryDirectory()
    if any(name.endswith("_csv") for name in cases):
        csv_path = Path(csv_dir.name) / "BTC-USD_1m.csv"
        write_csv(_bars(args.bars), csv_path)
        os.environ["BENCH_CSV"] = str(csv_path)
    for name in cases:
        print(f"{name}: {args.bars:,} bars ...", file=sys.stderr, flush=True)
        interpreted = name.endswith(_INTERPRETED)
        env = {k: v for k, v in os.environ.items() if not (interpreted and k == "PYTHONPATH")}
        proc = subprocess.run(
            # -P when we run with it: a compiled build on PYTHONPATH must win over the sources in cwd.
            [sys.executable, *(["-P"] if sys.flags.safe_path and not interpreted else []), "-m",
             "tests.performance.bench_backtest", "--case", name, "--bars", str(args.bars)],
            cwd=REPO, capture_output=True, text=True, check=False, env=env,
        )  # fmt: skip
        if proc.returncode != 0:
            results[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
            print(f"  failed: {results[name]['error']}", file=sys.stderr)
            continue
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"  {r['bars_per_s']:>12,.0f} bars/s  {r['seconds']:7.2f} s  peak {r['peak_rss_mb']:6.0f} MB  "
              f"trades {r['trades']}", file=sys.stderr)  # fmt: skip
    csv_dir.cleanup()
    ratios = {}
    for name, r in results.items():
        # In-memory cases against Backtrader's in-memory run, file cases against its file run.
        base = results.get("backtrader_csv" if name.endswith("_csv") else "backtrader", {}).get("bars_per_s")
        if base and "bars_per_s" in r and not name.startswith("backtrader"):
            ratios[f"{name}_vs_{'backtrader_csv' if name.endswith('_csv') else 'backtrader'}"] = r["bars_per_s"] / base
    report = {
        "command": "make bench (PYTHONPATH=.build/compiled:. python -P -m tests.performance.bench_backtest "
        f"--bars {args.bars})",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "targets": {"native_bars_per_s": 150_000, "native_vs_backtrader": 15, "btcompat_bars_per_s": 75_000, "peak_rss_mb": 500},
        "results": results,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for key, value in ratios.items():
        print(f"{key}: {value:.1f}x", file=sys.stderr)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
