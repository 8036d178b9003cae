"""Streaming indicator benchmark: ours against talipp (and TA-Lib, if it imports). Writes JSON.

The issue asks to prefer a maintained library where one fits, and to measure the choice. This
feeds the same seeded random walk of closes (with a high/low around each) one value at a time to
our indicators and to talipp's incremental `add`, and reports updates per second (best of REPEATS
runs), the memory each keeps after the run (tracemalloc, a separate run), and how far talipp's
values are from ours, which tests/unit/test_indicators.py holds equal to Backtrader's. TA-Lib only
computes whole arrays, so its figure (when installed) is a batch one, for scale. A plain method
call per value is measured in the same run as the floor, so a noisy machine shows in both.

    python -m tests.performance.bench_indicators [--out .bench/indicators.json] [--n 1000000]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.strategy.indicators import ATR, EMA, RSI, SMA, StdDev

SEED = 20_240_603
REPEATS = 3
AGREEMENT_VALUES = 5_000  # values compared between talipp and ours (the comparison is O(n))
SMA_PERIOD, EMA_PERIOD, RSI_PERIOD, ATR_PERIOD, STDDEV_PERIOD = 30, 30, 14, 14, 20

Bars = tuple[list[float], list[float], list[float]]  # highs, lows, closes


def make_bars(n: int, seed: int = SEED) -> Bars:
    """A random walk of closes in cents (as floats), with a high and a low around each."""
    rng = random.Random(seed)
    price = 1_000_000
    highs, lows, closes = [], [], []
    for _ in range(n):
        price = max(100, price + rng.randint(-500, 500))
        closes.append(price / 100)
        highs.append((price + rng.randint(0, 300)) / 100)
        lows.append((price - rng.randint(0, 300)) / 100)
    return highs, lows, closes


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Smallest wall time of `repeats` calls, the garbage collector on (as in a backtest)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class _Floor:
    """The floor: one Python method call per value, doing nothing but storing it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def update(self, value: float) -> float:
        self.value = value
        return value


def our_runners(bars: Bars) -> dict[str, Callable[[], Any]]:
    """name -> a function that builds a fresh indicator and feeds it every bar; returns it."""
    highs, lows, closes = bars

    def single(make: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            ind = make()
            update = ind.update
            for close in closes:
                update(close)
            return ind

        return run

    def atr() -> Any:
        ind = ATR(ATR_PERIOD)
        update = ind.update
        for high, low, close in zip(highs, lows, closes, strict=True):
            update(high, low, close)
        return ind

    return {
        "floor (method call)": single(_Floor),
        f"SMA({SMA_PERIOD})": single(lambda: SMA(SMA_PERIOD)),
        f"EMA({EMA_PERIOD})": single(lambda: EMA(EMA_PERIOD)),
        f"RSI({RSI_PERIOD})": single(lambda: RSI(RSI_PERIOD, safediv=True)),
        f"ATR({ATR_PERIOD})": atr,
        f"StdDev({STDDEV_PERIOD})": single(lambda: StdDev(STDDEV_PERIOD)),
    }


def talipp_runners(bars: Bars) -> dict[str, Callable[[], Any]]:
    """The same indicators through talipp's incremental `add` (OHLCV objects built beforehand)."""
    from talipp.indicators import ATR as TATR
    from talipp.indicators import EMA as TEMA
    from talipp.indicators import RSI as TRSI
    from talipp.indicators import SMA as TSMA
    from talipp.indicators import StdDev as TStdDev
    from talipp.ohlcv import OHLCV

    highs, lows, closes = bars
    ohlcv = [OHLCV(c, h, lo, c, 1.0) for h, lo, c in zip(highs, lows, closes, strict=True)]

    def feed(make: Callable[[], Any], values: list[Any]) -> Callable[[], Any]:
        def run() -> Any:
            ind = make()
            add = ind.add
            for value in values:
                add(value)
            return ind

        return run

    return {
        f"SMA({SMA_PERIOD})": feed(lambda: TSMA(SMA_PERIOD), closes),
        f"EMA({EMA_PERIOD})": feed(lambda: TEMA(EMA_PERIOD), closes),
        f"RSI({RSI_PERIOD})": feed(lambda: TRSI(RSI_PERIOD), closes),
        f"ATR({ATR_PERIOD})": feed(lambda: TATR(ATR_PERIOD), ohlcv),
        f"StdDev({STDDEV_PERIOD})": feed(lambda: TStdDev(STDDEV_PERIOD), closes),
    }


def talib_runners(bars: Bars) -> dict[str, Callable[[], Any]] | str:
    """TA-Lib's batch functions over whole arrays, or why there are none."""
    try:
        import numpy as np

        talib = importlib.import_module("talib")  # optional: not a dependency
    except ImportError as exc:
        return f"not importable ({exc}); not installed on purpose (no new dependency)"
    highs, lows, closes = (np.asarray(series, dtype=np.float64) for series in bars)
    return {
        f"SMA({SMA_PERIOD})": lambda: talib.SMA(closes, SMA_PERIOD),
        f"EMA({EMA_PERIOD})": lambda: talib.EMA(closes, EMA_PERIOD),
        f"RSI({RSI_PERIOD})": lambda: talib.RSI(closes, RSI_PERIOD),
        f"ATR({ATR_PERIOD})": lambda: talib.ATR(highs, lows, closes, ATR_PERIOD),
        f"StdDev({STDDEV_PERIOD})": lambda: talib.STDDEV(closes, STDDEV_PERIOD, 1.0),
    }


def retained_bytes(run: Callable[[], Any]) -> int:
    """Bytes still allocated, with the indicator alive, after feeding it every value."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        indicator = run()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del indicator
    return after - before


def _our_series(name: str, bars: Bars) -> list[float | None]:
    highs, lows, closes = bars
    if name.startswith("ATR"):
        atr = ATR(ATR_PERIOD)
        return [atr.update(h, lo, c) for h, lo, c in zip(highs, lows, closes, strict=True)]
    make: dict[str, Callable[[], Any]] = {
        f"SMA({SMA_PERIOD})": lambda: SMA(SMA_PERIOD),
        f"EMA({EMA_PERIOD})": lambda: EMA(EMA_PERIOD),
        f"RSI({RSI_PERIOD})": lambda: RSI(RSI_PERIOD, safediv=True),
        f"StdDev({STDDEV_PERIOD})": lambda: StdDev(STDDEV_PERIOD),
    }
    ind = make[name]()
    return [ind.update(c) for c in closes]


def agreement(bars: Bars) -> dict[str, dict[str, Any]]:
    """Per indicator: first value's index in each, and talipp's largest relative difference from ours."""
    short: Bars = (bars[0][:AGREEMENT_VALUES], bars[1][:AGREEMENT_VALUES], bars[2][:AGREEMENT_VALUES])
    out: dict[str, dict[str, Any]] = {}
    for name, run in talipp_runners(short).items():
        theirs = list(run())
        ours = _our_series(name, short)
        first_ours = next(i for i, v in enumerate(ours) if v is not None)
        first_theirs = next(i for i, v in enumerate(theirs) if v is not None)
        worst = 0.0
        for a, b in zip(ours, theirs, strict=True):
            if a is not None and b is not None:
                worst = max(worst, abs(a - b) / max(abs(a), 1e-300))
        out[name] = {
            "first_value_index_ours": first_ours,
            "first_value_index_talipp": first_theirs,
            "max_rel_diff": worst,
            "matches_backtrader": first_ours == first_theirs and worst < 1e-9,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(".bench/indicators.json"))
    parser.add_argument("--n", type=int, default=1_000_000, help="values per run (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    if args.n < AGREEMENT_VALUES or args.repeats < 1:
        parser.error(f"--n must be >= {AGREEMENT_VALUES} and --repeats >= 1, got {args.n} and {args.repeats}")

    print(f"seed {SEED}, {args.n:,} values, best of {args.repeats}", flush=True)
    bars = make_bars(args.n)
    results: dict[str, Any] = {}
    memory: dict[str, dict[str, int]] = {}
    ours = our_runners(bars)
    talipp = talipp_runners(bars)
    talib = talib_runners(bars)
    for library, runners in (("ours", ours), ("talipp", talipp), ("talib_batch", talib)):
        if isinstance(runners, str):
            results[library] = runners
            print(f"{library:12s} {runners}", flush=True)
            continue
        results[library] = {}
        for name, run in runners.items():
            seconds = best_of(run, args.repeats)
            rate = args.n / seconds
            results[library][name] = {"seconds": round(seconds, 4), "updates_per_s": round(rate)}
            print(f"{library:12s} {name:20s} {rate:>14,.0f} /s  ({seconds:.3f} s)", flush=True)
            if library != "talib_batch" and not name.startswith("floor"):
                memory.setdefault(library, {})[name] = retained_bytes(run)
                print(f"{'':12s} {'':20s} {memory[library][name]:>14,d} bytes retained", flush=True)

    ratios = {
        name: round(results["ours"][name]["updates_per_s"] / results["talipp"][name]["updates_per_s"], 2)
        for name in results["talipp"]
    }
    agree = agreement(bars)
    for name, row in agree.items():
        print(f"talipp vs ours {name:14s} speed x{ratios[name]:<6} {row}", flush=True)

    report = {
        "benchmark": "indicators",
        "seed": SEED,
        "n": args.n,
        "repeats": args.repeats,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "results": results,
        "retained_bytes": memory,
        "ours_speed_over_talipp": ratios,
        "talipp_agreement_with_ours": agree,
        "talipp_keeps_history": "input_values and output_values (and RSI's avg_gain/avg_loss, ATR's tr) grow "
        "by one per add until purge_oldest() is called",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(math.isfinite(r) for r in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
