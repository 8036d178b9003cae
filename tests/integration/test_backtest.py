"""The in-process backtest end to end: determinism (byte-identical journal, same hash under any
hash seed, replay reproduces it), the run folder, the CLI, and strategies that misbehave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.backtest import BacktestConfig, BacktestError, instrument_spec_for, run_backtest
from services.cli.main import main as tradebus
from services.data import load_bars
from services.sequencer.recovery import replay_journal
from services.strategy import BarClosed, OrderFilled, OrderUpdated, Strategy, StrategyContext
from services.strategy.loader import load_strategy_class

REPO = Path(__file__).resolve().parents[2]
BTC_FILE = REPO / "examples/data/BTC-USD_1m.csv"
ETH_FILE = REPO / "examples/data/ETH-USD_1m.csv"
CONFIG = BacktestConfig(matching={"maker_fee": "0.001", "taker_fee": "0.001"})
END = "2024-01-03"  # two days of minutes: quick, and plenty of crossovers


def _bars(path: Path = BTC_FILE, name: str = "BTC-USD") -> Any:
    return load_bars(path, name, instrument_spec_for(name, CONFIG), end=END)


SMA_CROSS = load_strategy_class(str(REPO / "examples/strategies/sma_cross.py"))


def test_a_run_is_byte_identical_and_replays_to_its_state_hash(tmp_path: Path) -> None:
    first = run_backtest(SMA_CROSS, _bars(), CONFIG, run_dir=tmp_path / "a")
    second = run_backtest(SMA_CROSS, _bars(), CONFIG, run_dir=tmp_path / "b")
    assert first.fills and first.trades, "the example should trade on two days of data"
    assert first.warnings == []
    assert (tmp_path / "a/journal.tbj").read_bytes() == (tmp_path / "b/journal.tbj").read_bytes()
    assert first.state_hash == second.state_hash
    replayed = replay_journal(tmp_path / "a/journal.tbj", None)
    assert replayed.final_state_hash == first.state_hash
    assert replayed.final_seq_id == first.seq_id


def test_the_state_hash_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    hashes = set()
    for seed in ("0", "4242"):
        run_dir = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "services.cli.main", "backtest", "examples/strategies/pairs_ratio.py",
             "--data", str(BTC_FILE), "--data", str(ETH_FILE), "--data", f"BTC-USD@1h={BTC_FILE}",
             "--to", END, "--run-dir", str(run_dir), "--no-progress", "--no-report"],
            cwd=REPO, env=env, check=True, capture_output=True,
        )  # fmt: skip
        hashes.add(json.loads((run_dir / "summary.json").read_text())["config"]["state_hash"])
    assert len(hashes) == 1


def test_the_cli_writes_the_run_folder_and_replay_checks_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    code = tradebus(
        ["backtest", str(REPO / "examples/strategies/sma_cross.py"), "--data", str(BTC_FILE), "--to", END,
         "--fees", "0.001", "--run-dir", str(run_dir), "--no-progress", "--param", "fast=5"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    for label in ("Total return", "CAGR", "Sharpe", "Sortino", "Max drawdown", "Max drawdown duration",
                  "Win rate", "Profit factor", "Exposure", "Fees paid"):  # fmt: skip
        assert label in out
    names = {p.name for p in run_dir.iterdir()}
    assert {"journal.tbj", "orders.csv", "fills.csv", "trades.csv", "equity.csv", "summary.json", "report.png"} <= names
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["params"] == {"fast": 5, "slow": 30, "size": 1.0}
    assert (run_dir / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tradebus(["replay", str(run_dir / "journal.tbj")]) == 0
    assert "final state hash vs" in capsys.readouterr().out
    assert tradebus(["replay", str(run_dir / "journal.tbj"), "--expect-hash", "0" * 64]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nope.csv"], "--data: file 'nope.csv' does not exist"),
        (["--data", str(BTC_FILE), "--cash", "lots"], "--cash: 'lots' is not a number"),
        (["--data", str(BTC_FILE), "--fees", "-0.1"], "taker_fee"),
        (["--data", str(BTC_FILE), "--param", "fast"], "--param: 'fast' is not NAME=VALUE"),
        (["--data", str(BTC_FILE), "--repair", "magic"], "magic"),
    ],
)
def test_cli_refuses_bad_settings_naming_them(args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = tradebus(["backtest", "examples/strategies/sma_cross.py", *args, "--run-dir", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_data_is_reported_with_file_row_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "BTC-USD_bad.csv"
    bad.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100.00,101.00,99.00,100.50,1\n"
        "2024-01-01T00:01:00Z,100.50,99.00,101.00,100.00,1\n"
    )
    code = tradebus(["backtest", "examples/strategies/sma_cross.py", "--data", str(bad), "--run-dir", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "BTC-USD_bad.csv" in err and "row 2" in err and "high" in err, err


class _Raises(Strategy):
    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        if isinstance(event, BarClosed) and event.time_ns > 1_704_067_500_000_000_000:
            raise ZeroDivisionError("oops")
        return None


class _ReturnsJunk(Strategy):
    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        return ["buy please"] if isinstance(event, BarClosed) else None


class _NeverSettles(Strategy):
    """Answers every refusal with the same doomed order."""

    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        if isinstance(event, BarClosed) or type(event).__name__ == "IntentRefused":
            return ctx.sell("BTC-USD", 1)  # no position and no margin: refused, again and again
        return None


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (_Raises, r"strategy main: _Raises.on_event raised ZeroDivisionError: oops \(event time 1704067560000000000"),
        (_ReturnsJunk, "returned str 'buy please'; on_event must return intents"),
        (_NeverSettles, "did not settle after 10000 rounds"),
    ],
)
def test_a_misbehaving_strategy_stops_the_run_with_a_clear_error(strategy: type[Strategy], message: str) -> None:
    with pytest.raises(BacktestError, match=message):
        run_backtest(strategy, _bars(), CONFIG)


class _Recorder(Strategy):
    """Buys once, then records what it is told, in order."""

    def on_start(self, ctx: StrategyContext) -> None:
        self.seen: list[str] = []

    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        if isinstance(event, BarClosed):
            self.seen.append(f"bar {event.time_ns}")
            if len(self.seen) == 3:
                return ctx.buy("BTC-USD", 0.5)
        elif isinstance(event, OrderUpdated):
            self.seen.append(f"{event.event} -> {event.state}")
        elif isinstance(event, OrderFilled):
            self.seen.append(f"fill {event.quantity} @ {event.price} pos {event.position}")
        return None


def test_a_market_order_fills_at_the_next_bars_open_and_the_strategy_hears_it_first() -> None:
    bars = _bars()
    strategy = _Recorder()
    result = run_backtest(strategy, bars, CONFIG)
    t = list(bars.close_time_ns[:4])
    next_open = bars.open[3] / 100
    assert strategy.seen[:9] == [
        f"bar {t[0]}", f"bar {t[1]}", f"bar {t[2]}",
        "submit -> submitted", "accept -> accepted",
        "full_fill -> filled", f"fill 0.5 @ {next_open} pos 0.5",
        f"bar {t[3]}", f"bar {bars.close_time_ns[4]}",
    ]  # fmt: skip
    [fill] = result.fills
    assert fill.price == next_open and fill.fee == pytest.approx(next_open * 0.5 * 0.001)
    assert result.statistics.fees_paid == pytest.approx(fill.fee)


def test_a_series_beyond_the_wire_limits_is_refused_before_the_run() -> None:
    bars = _bars()
    bars.high[5] = 2**62 + 1  # the loader would never produce it; a hand-built series might
    with pytest.raises(BacktestError, match=r"high 4611686018427387905 is outside the wire limits"):
        run_backtest(SMA_CROSS, bars, CONFIG)


def test_the_native_and_backtrader_style_examples_end_in_the_same_state() -> None:
    """The same SMA crossover written twice, once per API: same orders, fills and state hash."""
    native = run_backtest(SMA_CROSS, _bars(), CONFIG)
    bt_style = run_backtest(load_strategy_class(str(REPO / "examples/strategies/sma_cross_bt.py")), _bars(), CONFIG)
    assert len(native.fills) > 10
    assert [(f.time_ns, f.side, f.quantity, f.price) for f in native.fills] == [
        (f.time_ns, f.side, f.quantity, f.price) for f in bt_style.fills
    ]
    assert native.state_hash == bt_style.state_hash


def test_a_backtest_on_trades_fills_market_orders_at_the_next_print(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trades = tmp_path / "BTC-USD_trades.csv"
    trades.write_text(
        "time,price,size,side\n"
        "2024-01-01T00:00:00Z,42000.00,0.5,buy\n"
        "2024-01-01T00:00:01Z,42001.50,0.1,sell\n"
        "2024-01-01T00:00:02Z,41999.00,0.2,buy\n"
    )
    strategy = tmp_path / "buy_first.py"
    strategy.write_text(
        "from services.strategy import Strategy\n"
        "class BuyFirstTrade(Strategy):\n"
        "    def on_event(self, ctx, event):\n"
        "        if type(event).__name__ == 'TradePrinted' and not ctx.position(event.instrument) and not ctx.open_orders():\n"
        "            return ctx.buy(event.instrument, 0.01)\n"
    )
    run_dir = tmp_path / "run"
    code = tradebus(["backtest", str(strategy), "--data", str(trades), "--trades", "--run-dir", str(run_dir), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    fills = (run_dir / "fills.csv").read_text().splitlines()
    assert len(fills) == 2, fills  # header and one fill: at the second print's price
    assert "42001.5" in fills[1]


def test_parquet_in_and_out_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    run_dir = tmp_path / "run"
    code = tradebus(
        ["backtest", str(REPO / "examples/strategies/sma_cross.py"), "--data", str(REPO / "examples/data/BTC-USD_1m.parquet"),
         "--to", END, "--format", "parquet", "--run-dir", str(run_dir), "--no-progress", "--no-report"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    fills = pq.read_table(run_dir / "fills.parquet")
    csv_run = run_backtest(SMA_CROSS, _bars(), BacktestConfig())
    assert fills.num_rows == len(csv_run.fills) > 0  # the Parquet file holds the same bars as the CSV
    assert json.loads((run_dir / "summary.json").read_text())["config"]["state_hash"] == csv_run.state_hash
