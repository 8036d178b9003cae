"""Two instruments and two timeframes in one native strategy: buy ETH when it is cheap against
BTC (the ETH/BTC price ratio far below its recent mean), sell when the ratio is back at its mean,
and only while BTC's hourly trend is up.

    tradebus backtest examples/strategies/pairs_ratio.py \\
        --data examples/data/BTC-USD_1m.csv --data examples/data/ETH-USD_1m.csv \\
        --data BTC-USD@1h=examples/data/BTC-USD_1m.csv --fees 0.0005

The 1-hour BTC bars come from resampling the 1-minute file (`services.data.resample`); they
arrive as `BarClosed` events with `interval_ns` of one hour.
"""

from __future__ import annotations

from typing import Any

from services.strategy import BarClosed, Strategy, StrategyContext
from services.strategy.indicators import SMA, StdDev

_HOUR_NS = 3_600_000_000_000


class PairsRatio(Strategy):
    """Mean reversion of the ETH/BTC ratio, long ETH only, gated by BTC's hourly SMA trend."""

    params = {"window": 120, "entry_z": 2.0, "size": 5.0, "trend": 12}

    def on_start(self, ctx: StrategyContext) -> None:
        self.mean = SMA(self.p.window)
        self.dev = StdDev(self.p.window)
        self.trend = SMA(self.p.trend)
        self.hourly_close: float | None = None
        self.last: dict[str, float] = {}
        self.minute_time = -1

    def on_event(self, ctx: StrategyContext, event: Any) -> Any:
        if type(event) is not BarClosed:
            return None
        if event.interval_ns == _HOUR_NS:
            self.hourly_close = event.close
            self.trend.update(event.close)
            return None
        self.last[event.instrument] = event.close
        if event.instrument != "ETH-USD" or "BTC-USD" not in self.last:
            return None
        ratio = event.close / self.last["BTC-USD"]
        mean = self.mean.update(ratio)
        dev = self.dev.update(ratio)
        if mean is None or dev is None or dev == 0:
            return None
        z = (ratio - mean) / dev
        held = ctx.position("ETH-USD")
        uptrend = self.trend.value is not None and self.hourly_close is not None and self.hourly_close > self.trend.value
        if held == 0 and z < -self.p.entry_z and uptrend and not ctx.open_orders("ETH-USD"):
            return ctx.buy("ETH-USD", self.p.size)
        if held > 0 and z >= 0 and not ctx.open_orders("ETH-USD"):
            return ctx.sell("ETH-USD", held)
        return None
