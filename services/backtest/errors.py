"""Errors of the backtest (kept apart from the runner so the runner can be compiled with mypyc)."""

from __future__ import annotations

__all__ = ["BacktestError"]


class BacktestError(RuntimeError):
    """The backtest cannot go on: a strategy error, a runaway loop, or an unusable input."""
