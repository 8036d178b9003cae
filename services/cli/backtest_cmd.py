"""`tradebus backtest STRATEGY --data PATH`: run a strategy over files in one process.

Prints a summary table and writes a run folder: the journal, orders, fills, trades and equity
(CSV or Parquet), `summary.json`, and `report.png` / `report.html` (price with trade markers,
equity, drawdown). `tradebus replay RUN/journal.tbj` reproduces the run's state hash.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pydantic

from services.backtest.config import BacktestConfig, instrument_spec_for
from services.backtest.runner import BacktestError, run_backtest
from services.data import DataError, load_bars, load_trades, resample
from services.data.series import BarSeries, TradeSeries
from services.matching.config import MatchingConfig
from services.strategy.loader import StrategyLoadError, load_strategy_class

__all__ = ["register"]


class UsageError(Exception):
    """A command-line value that cannot be used; the message names the option and the value."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="run a strategy over market data files (in-process, simulated venue)",
        description="Run a strategy over bar or trade files; print a summary and write a run folder.",
    )
    p.add_argument("strategy", help="path/to/strategy.py[:Class] or package.module[:Class]")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="[INSTRUMENT[@INTERVAL]=]PATH",
        help="bars (.csv, .csv.gz, .parquet); the instrument defaults to the file name up to '_' "
        "(BTC-USD_1m.csv -> BTC-USD); @INTERVAL resamples this file (BTC-USD@1h=...). "
        "Repeat for several instruments or timeframes.",
    )
    p.add_argument("--trades", action="store_true", help="the data files hold trades, not bars")
    p.add_argument("--cash", default="100000", help="starting cash in --currency (default 100000)")
    p.add_argument("--currency", default="USD")
    p.add_argument("--fees", default="0", help="fee rate for every fill, e.g. 0.001 = 0.1%% (sets maker and taker)")
    p.add_argument("--maker-fee", default=None, help="maker fee rate (overrides --fees)")
    p.add_argument("--taker-fee", default=None, help="taker fee rate (overrides --fees)")
    p.add_argument("--fixed-fee", default="0", help="per order, in the quote currency")
    p.add_argument("--slippage", default="0", metavar="BPS", help="market and stop fills, basis points")
    p.add_argument("--latency-ms", default="0", help="order latency in event time, milliseconds")
    p.add_argument("--volume-share", default=None, help="max share of a bar's volume filled (partial fills)")
    p.add_argument("--cheat-on-close", action="store_true", help="market orders fill at the signal bar's close")
    p.add_argument("--allow-short", action="store_true", help="margin account: sells may exceed the position")
    p.add_argument("--from", dest="start", default=None, help="first bar (ISO date/time, UTC), inclusive")
    p.add_argument("--to", dest="end", default=None, help="last bar (ISO date/time, UTC), exclusive")
    p.add_argument("--interval", default=None, help="bar interval when it cannot be inferred (1m, 1h, 1d)")
    p.add_argument("--timestamp", choices=("open", "close"), default="open", help="what the file's bar time marks")
    p.add_argument("--resample", default=None, help="resample bars to a coarser interval (e.g. 5m, 1h)")
    p.add_argument("--repair", default="", help="comma-separated repairs: sort,drop_duplicates,clip,round,fill_volume")
    p.add_argument("--price-decimals", type=int, default=2, help="price precision of the instruments")
    p.add_argument("--size-decimals", type=int, default=4, help="size precision of the instruments")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter (JSON value)")
    p.add_argument("--run-dir", type=Path, default=None, help="run folder (default runs/backtest-<strategy>)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="format of the tables")
    p.add_argument("--no-report", action="store_true", help="skip the report picture")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        strategy = load_strategy_class(args.strategy)
        params = _params(args.param)
        series = _load(args, config)
    except (UsageError, StrategyLoadError, DataError) as exc:
        print(f"tradebus backtest: {exc}", file=sys.stderr)
        return 2
    except pydantic.ValidationError as exc:
        print(f"tradebus backtest: invalid setting: {_pydantic_message(exc)}", file=sys.stderr)
        return 2
    run_dir = args.run_dir or Path("runs") / f"backtest-{Path(args.strategy.partition(':')[0]).stem}"
    try:
        result = run_backtest(strategy, series, config, run_dir=run_dir, progress=not args.no_progress, params=params)
    except (BacktestError, StrategyLoadError) as exc:
        print(f"tradebus backtest: {exc}", file=sys.stderr)
        return 1
    paths = result.write(run_dir, fmt=args.format, report=not args.no_report)
    print(result.summary())
    rate = result.events / result.elapsed_s if result.elapsed_s > 0 else float("inf")
    print(f"\n{result.events:,} market events in {result.elapsed_s:.2f} s ({rate:,.0f}/s); "
          f"{len(result.orders)} orders, {len(result.fills)} fills; state hash {result.state_hash[:16]}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"run folder: {run_dir}")
    for name in ("summary", "report", "report_html", "journal"):
        if name in paths:
            print(f"  {name:12} {paths[name]}")
    return 0


def _decimal(value: str, option: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise UsageError(f"{option}: {value!r} is not a number") from None


def _config(args: argparse.Namespace) -> BacktestConfig:
    fees = _decimal(args.fees, "--fees")
    latency_ms = _decimal(args.latency_ms, "--latency-ms")
    matching = MatchingConfig(
        fill_market_on="close" if args.cheat_on_close else "next_open",
        maker_fee=_decimal(args.maker_fee, "--maker-fee") if args.maker_fee is not None else fees,
        taker_fee=_decimal(args.taker_fee, "--taker-fee") if args.taker_fee is not None else fees,
        fixed_fee=_decimal(args.fixed_fee, "--fixed-fee"),
        slippage_bps=_decimal(args.slippage, "--slippage"),
        latency_ns=int(latency_ms * 1_000_000),
        volume_share=None if args.volume_share is None else _decimal(args.volume_share, "--volume-share"),
    )
    return BacktestConfig(
        cash=_decimal(args.cash, "--cash"),
        currency=args.currency,
        allow_short=args.allow_short,
        price_decimals=args.price_decimals,
        size_decimals=args.size_decimals,
        matching=matching,
    )


def _params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--param: {item!r} is not NAME=VALUE")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw  # a bare word is a string
    return params


def _load(args: argparse.Namespace, config: BacktestConfig) -> list[BarSeries | TradeSeries]:
    repairs = [r for r in args.repair.split(",") if r]
    series: list[BarSeries | TradeSeries] = []
    for item in args.data:
        name, sep, path_text = item.partition("=")
        if not sep:
            path_text = item
            name = Path(item).name.split("_", 1)[0].split(".", 1)[0]
        name, _, own_interval = name.partition("@")
        path = Path(path_text)
        if not path.is_file():
            raise UsageError(f"--data: file {str(path)!r} does not exist")
        spec = instrument_spec_for(name, config)
        if args.trades:
            series.append(load_trades(path, name, spec, start=args.start, end=args.end, repair=repairs))
            continue
        bars = load_bars(
            path, name, spec, interval=args.interval, timestamp=args.timestamp, start=args.start, end=args.end,
            repair=repairs,
        )  # fmt: skip
        if own_interval or args.resample:
            bars = resample(bars, own_interval or args.resample)
        if bars.repairs:
            done = ", ".join(f"{k} {v}" for k, v in sorted(bars.repairs.items()))
            print(f"{path}: repaired rows ({done})", file=sys.stderr)
        series.append(bars)
    return series


def _pydantic_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
