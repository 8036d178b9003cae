"""Driving the Backtrader-style layer by hand: a context over a real (empty) core, bar events, and
a driver that feeds an adapter the events the runner would, in the runner's order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.backtest.config import BacktestConfig, core_config_for
from services.backtest.state_view import BookView
from services.sequencer.core.engine import SequencerCore
from services.strategy.btcompat import BacktraderAdapter
from services.strategy.context import StrategyContext
from services.strategy.events import BarClosed, OrderFilled, OrderUpdated, TimeSliceClosed

MINUTE = 60_000_000_000
START = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def make_ctx(instruments: tuple[str, ...] = ("BTC-USD",), cash: int = 100_000) -> StrategyContext:
    config = BacktestConfig(cash=Decimal(cash))
    core_config = core_config_for(list(instruments), config)
    core = SequencerCore(core_config)
    return StrategyContext("main", core_config, BookView(core.book), {}, config.currency)


def bar(
    index: int,
    close: float,
    instrument: str = "BTC-USD",
    interval: int = MINUTE,
    *,
    open_: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1.0,
) -> BarClosed:
    """The bar number `index` (0-based) of its interval since START, closing at START + (index + 1) x interval."""
    o = close if open_ is None else open_
    return BarClosed(
        instrument,
        START + (index + 1) * interval,
        o,
        max(o, close) if high is None else high,
        min(o, close) if low is None else low,
        close,
        volume,
        interval,
    )


class Driver:
    """Feeds an adapter bars and order events as the runner does; collects what it returns."""

    def __init__(
        self,
        cls: type[Any],
        params: dict[str, Any] | None = None,
        datas: list[Any] | None = None,
        instruments: tuple[str, ...] = ("BTC-USD",),
    ) -> None:
        self.ctx = make_ctx(instruments)
        self.adapter = BacktraderAdapter(cls, params, datas=datas if datas is not None else [("BTC-USD", MINUTE)])
        self.intents: list[Any] = list(self.adapter.on_start(self.ctx) or [])
        self.strategy: Any = self.adapter.strategy

    def send(self, event: Any) -> list[Any]:
        out = list(self.adapter.on_event(self.ctx, event) or [])
        self.intents += out
        return out

    def step(self, *bars: BarClosed) -> list[Any]:
        """Bars closing at one time, then the slice: returns the intents of that step."""
        for b in bars:
            self.send(b)
        return self.send(TimeSliceClosed(bars[0].time_ns))

    def run(self, closes: list[float]) -> None:
        for i, close in enumerate(closes):
            self.step(bar(i, close))

    def updated(self, cid: str, state: str, quantity: float, filled: float = 0.0, t: int = 0) -> None:
        self.send(OrderUpdated(t, cid, "BTC-USD", "x", "x", state, quantity, filled))

    def filled(
        self, cid: str, side: str, quantity: float, price: float, position: float, fee: float = 0.0, t: int = 0
    ) -> None:
        self.send(OrderFilled(t, cid, "BTC-USD", side, quantity, price, fee, "USD", position, f"T-{cid}-{position}"))
