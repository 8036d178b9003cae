"""The Backtrader-style strategy layer: `from services.strategy import btcompat as bt` in place of
`import backtrader as bt`, and a Backtrader strategy runs in tradebus (`run_backtest`, or the
`tradebus backtest` CLI). docs/btcompat.md lists what is supported and what differs.

Every order helper becomes an intent through the core: the layer reads state and writes intents,
and nothing in it changes the core's state.

Modules:

    lines       ring-buffered lines, `[0]` / `[-1]` indexing, line operations, date numbers
    feeds       Data: one feed per (instrument, bar interval)
    indicators  Backtrader-named indicators over services.strategy.indicators
    orders      Order, OrderData, Trade
    broker      the broker view (cash, value), Position, sizers
    strategy    Strategy: params, minimum period, next/prenext, order helpers
    adapter     BacktraderAdapter: runs a Strategy subclass as a native strategy
"""

from __future__ import annotations

from types import SimpleNamespace

from services.strategy.btcompat import indicators
from services.strategy.btcompat.adapter import BacktraderAdapter
from services.strategy.btcompat.broker import AllInSizer, Broker, FixedSize, PercentSizer, Position, Sizer
from services.strategy.btcompat.feeds import Data
from services.strategy.btcompat.lines import DEFAULT_HISTORY, LineBase, date2num, num2date
from services.strategy.btcompat.orders import Order, OrderData, Trade
from services.strategy.btcompat.strategy import Strategy

__all__ = [
    "DEFAULT_HISTORY",
    "AllInSizer",
    "BacktraderAdapter",
    "Broker",
    "Data",
    "FixedSize",
    "LineBase",
    "Order",
    "OrderData",
    "PercentSizer",
    "Position",
    "Sizer",
    "Strategy",
    "Trade",
    "date2num",
    "ind",
    "indicators",
    "num2date",
    "sizers",
]

ind = indicators
"""`bt.ind.SMA`: Backtrader's short name for the indicators module."""

sizers = SimpleNamespace(
    FixedSize=FixedSize,
    SizerFix=FixedSize,
    PercentSizer=PercentSizer,
    AllInSizer=AllInSizer,
)
"""`bt.sizers.FixedSize(stake=10)`, for `self.setsizer(...)`."""
