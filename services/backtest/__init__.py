"""Backtests in process: the runner, its results (records, statistics, run folder, report picture).

    from services.backtest import BacktestConfig, run_backtest
    from services.data import load_bars
    result = run_backtest(SmaCross, load_bars("examples/data/BTC-USD_1m.csv", "BTC-USD", spec), BacktestConfig())
    print(result.summary())
"""

from services.backtest.config import BacktestConfig, core_config_for, instrument_spec_for
from services.backtest.result import BacktestResult
from services.backtest.runner import BacktestError, run_backtest

__all__ = ["BacktestConfig", "BacktestError", "BacktestResult", "core_config_for", "instrument_spec_for", "run_backtest"]
