"""SMA crossover written for Backtrader, run by tradebus: only the import differs.

    tradebus backtest examples/strategies/sma_cross_bt.py --data examples/data/BTC-USD_1m.csv --fees 0.001

With `import backtrader as bt` instead, the class runs unchanged in Backtrader (the parity tests
do exactly that and compare every trade).
"""

from __future__ import annotations

from services.strategy import btcompat as bt


class SmaCrossBt(bt.Strategy):
    """Long-only SMA(fast) / SMA(slow) crossover: buy `size` on a cross up, close on a cross down."""

    params = (("fast", 10), ("slow", 30), ("size", 1.0))

    def __init__(self) -> None:
        fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.crossover = bt.ind.CrossOver(fast, slow)

    def next(self) -> None:
        if not self.position and self.crossover[0] > 0:
            self.buy(size=self.p.size)
        elif self.position and self.crossover[0] < 0:
            self.close()
