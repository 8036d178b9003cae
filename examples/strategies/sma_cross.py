"""SMA crossover on the native API: buy when the fast average crosses above the slow one, sell
the whole position when it crosses back below.

    tradebus backtest examples/strategies/sma_cross.py --data examples/data/BTC-USD_1m.csv --fees 0.001
"""

from __future__ import annotations

from typing import Any

from services.strategy import BarClosed, Strategy, StrategyContext
from services.strategy.indicators import SMA, CrossOver


class SmaCross(Strategy):
    """Long-only SMA(fast) / SMA(slow) crossover with market orders, a fixed size per entry."""

    params = {"fast": 10, "slow": 30, "size": 1.0}
    wants_order_events = False  # it reads its position through ctx

    def on_start(self, ctx: StrategyContext) -> None:
        self.fast = SMA(self.p.fast)
        self.slow = SMA(self.p.slow)
        self.cross = CrossOver()

    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        if type(event) is not BarClosed:
            return None
        fast = self.fast.update(event.close)
        slow = self.slow.update(event.close)
        if fast is None or slow is None:
            return None
        signal = self.cross.update(fast, slow)
        if not signal:
            return None
        held = ctx.position(event.instrument)
        if signal > 0 and held == 0:
            return ctx.buy(event.instrument, self.p.size)
        if signal < 0 and held > 0:
            return ctx.sell(event.instrument, held)
        return None
