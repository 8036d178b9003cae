"""Parity with Backtrader: the same strategy source, run by Backtrader and by tradebus through the
Backtrader-style layer, on the same bars and settings, gives the same fills, trades and value.

Each strategy below is written once, as a function of the `bt` module it runs against
(`backtrader` or `services.strategy.btcompat`). Both engines see identical bars: a slice of
examples/data/BTC-USD_1m.csv loaded with `services.data.load_bars`, handed to Backtrader through
a small in-memory feed with the same floats (Backtrader's datetime is the bar's stamp in the
file, its open; ours is stamped by its close, and the layer's datetime line reads the open).

Compared exactly: bar index of every fill, side, size, price in ticks, order types, the whole
order-notification sequence (statuses, by order number), trade open/close bars. Compared within
1e-6 per fill: commissions (ours are exact integers of the currency's smallest unit, rounded
half up; Backtrader's are floats), and the final value and cash within 1e-6 per fill.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

import backtrader
import pytest

from services.backtest.config import BacktestConfig, instrument_spec_for
from services.backtest.runner import run_backtest
from services.data import BarSeries, load_bars
from services.matching.config import MatchingConfig
from services.strategy import btcompat
from services.strategy.btcompat import BacktraderAdapter

DATA = "examples/data/BTC-USD_1m.csv"
BARS = 3000
START = "2024-01-03T00:00:00Z"
COMMISSION = Decimal("0.001")
CASH = Decimal(100_000)
CONFIG = BacktestConfig(cash=CASH, matching=MatchingConfig(maker_fee=COMMISSION, taker_fee=COMMISSION))
SPEC = instrument_spec_for("BTC-USD", CONFIG)
TICK = 10.0**-SPEC.price_decimals
COMM_TOLERANCE = 1e-6
MINUTES_PER_DAY = 1440


# ---------------------------------------------------------------------- the strategies, written once


def recorder(bt: Any) -> Any:
    """A base that records what the engine tells the strategy, in engine-neutral terms.

    Backtrader notifies clones of an order, so orders are matched by `ref`, never by identity,
    and refs are counted from the strategy's first (Backtrader's counter is process-wide).
    """

    class Recorder(bt.Strategy):
        def __init__(self) -> None:
            self.events: list[tuple[Any, ...]] = []
            self.fills: list[tuple[Any, ...]] = []
            self.trades: list[tuple[Any, ...]] = []
            self.order: Any = None
            self.ref0: int | None = None

        def notify_order(self, order: Any) -> None:
            if self.ref0 is None:
                self.ref0 = order.ref
            self.events.append((len(self.data), order.ref - self.ref0, order.getstatusname()))
            if order.status == order.Completed:
                self.fills.append(
                    (
                        len(self.data),
                        order.ref - self.ref0,
                        order.isbuy(),
                        round(order.executed.price / TICK),
                        order.executed.size,
                        order.executed.comm,
                        order.getordername(),
                        round(order.executed.dt * MINUTES_PER_DAY),  # the execution bar's minute
                        order.executed.value,
                        order.executed.pnl,
                    )
                )
            if not order.alive() and self.order is not None and order.ref == self.order.ref:
                self.order = None

        def notify_trade(self, trade: Any) -> None:
            self.trades.append(
                (len(self.data), trade.isopen, trade.isclosed, trade.justopened, trade.baropen, trade.barclose,
                 trade.size, round(trade.price / TICK), round(trade.pnl, 6))
            )  # fmt: skip

        def stop(self) -> None:
            self.final = (self.broker.getvalue(), self.broker.getcash())

    return Recorder


def sma_cross(bt: Any) -> Any:
    """1. SMA(10/30) crossover, market orders: buy on a cross up when flat, close on a cross down."""

    class SmaCross(recorder(bt)):  # type: ignore[misc]
        params = (("fast", 10), ("slow", 30), ("size", 1.0))

        def __init__(self) -> None:
            super().__init__()
            fast = bt.ind.SMA(self.data.close, period=self.p.fast)
            slow = bt.indicators.SimpleMovingAverage(self.data.close, period=self.p.slow)
            self.crossover = bt.ind.CrossOver(fast, slow)

        def next(self) -> None:
            if self.order:
                return
            if not self.position:
                if self.crossover > 0:
                    self.order = self.buy(size=self.p.size)
            elif self.crossover < 0:
                self.order = self.close()

    return SmaCross


def limit_entries(bt: Any) -> Any:
    """2. Limit orders: above the SMA, bid a little under the close, valid for a few bars (then it
    expires); once long, offer above the entry price (good till cancelled)."""

    class LimitEntries(recorder(bt)):  # type: ignore[misc]
        params: ClassVar[dict[str, float]] = dict(period=20, below=0.001, above=0.001, valid_bars=5, size=0.5)

        def __init__(self) -> None:
            super().__init__()
            self.sma = bt.indicators.MovingAverageSimple(self.data, period=self.p.period)

        def next(self) -> None:
            if self.order:
                return
            close = self.data.close[0]
            if not self.position:
                if close > self.sma[0]:
                    self.order = self.buy(
                        size=self.p.size,
                        exectype=bt.Order.Limit,
                        price=round(close * (1 - self.p.below), 2),
                        valid=dt.timedelta(minutes=self.p.valid_bars),
                    )
            else:
                self.order = self.sell(
                    size=self.position.size,
                    exectype=bt.Order.Limit,
                    price=round(self.position.price * (1 + self.p.above), 2),
                )

    return LimitEntries


def stop_loss_brackets(bt: Any) -> Any:
    """3. Stop-loss exits: on an EMA cross up, a market entry with a stop below and a take-profit
    above (`buy_bracket`); the children work from the bar after the entry fills, and one filling
    cancels the other."""

    class StopLossBrackets(recorder(bt)):  # type: ignore[misc]
        params = (("fast", 10), ("slow", 30), ("stop", 0.004), ("take", 0.008), ("size", 1.0))

        def __init__(self) -> None:
            super().__init__()
            self.cross = bt.ind.CrossOver(bt.ind.EMA(period=self.p.fast), bt.ind.EMA(period=self.p.slow))
            self.working: list[Any] = []

        def notify_order(self, order: Any) -> None:
            super().notify_order(order)
            if not order.alive():
                self.working = [o for o in self.working if o.ref != order.ref]

        def next(self) -> None:
            if self.working or self.position:
                return
            if self.cross > 0:
                close = self.data.close[0]
                orders = self.buy_bracket(
                    size=self.p.size,
                    exectype=bt.Order.Market,
                    stopprice=round(close * (1 - self.p.stop), 2),
                    limitprice=round(close * (1 + self.p.take), 2),
                )
                self.working = [o for o in orders if o is not None]

    return StopLossBrackets


def stop_exits(bt: Any) -> Any:
    """3b. Stop-loss exits placed by hand: after a market entry fills, a stop order below the
    entry price; a cross down cancels it and closes at market."""

    class StopExits(recorder(bt)):  # type: ignore[misc]
        params = (("period", 15), ("stop", 0.003))

        def __init__(self) -> None:
            super().__init__()
            self.cross = bt.ind.CrossOver(self.data.close, bt.ind.SMA(period=self.p.period))
            self.stop_order: Any = None

        def notify_order(self, order: Any) -> None:
            super().notify_order(order)
            if self.stop_order is not None and order.ref == self.stop_order.ref and not order.alive():
                self.stop_order = None
            if order.status == order.Completed and order.isbuy():
                price = round(order.executed.price * (1 - self.p.stop), 2)
                self.stop_order = self.sell(size=order.executed.size, exectype=bt.Order.Stop, price=price)

        def next(self) -> None:
            if self.order:
                return
            if not self.position:
                if self.cross > 0:
                    self.order = self.buy(size=0.25)
            elif self.cross < 0 and self.stop_order is not None and self.stop_order.status == bt.Order.Accepted:
                # Accepted only: Backtrader cannot cancel an order before its broker has accepted
                # it (at the next bar); the cancel is silently lost there, not here.
                self.cancel(self.stop_order)
                self.order = self.close()

    return StopExits


STRATEGIES = [sma_cross, limit_entries, stop_loss_brackets, stop_exits]


# ---------------------------------------------------------------------- the two engines


@pytest.fixture(scope="module")
def bars() -> BarSeries:
    series = load_bars(DATA, "BTC-USD", SPEC, start=START)
    assert len(series) >= BARS
    return BarSeries(
        series.instrument, series.venue, series.interval_ns, series.close_time_ns[:BARS], series.open[:BARS],
        series.high[:BARS], series.low[:BARS], series.close[:BARS], series.volume[:BARS], series.source,
    )  # fmt: skip


class SeriesFeed(backtrader.feed.DataBase):  # type: ignore[misc]
    """Backtrader bars from rows (open time, open, high, low, close, volume): no CSV, no pandas."""

    params = (("rows", None),)

    def start(self) -> None:
        super().start()
        self._next_row = 0

    def _load(self) -> bool:
        rows = self.p.rows
        if self._next_row >= len(rows):
            return False
        stamp, o, h, low, c, v = rows[self._next_row]
        self._next_row += 1
        lines = self.lines
        lines.datetime[0] = backtrader.date2num(stamp)
        lines.open[0], lines.high[0], lines.low[0], lines.close[0] = o, h, low, c
        lines.volume[0] = v
        lines.openinterest[0] = 0.0
        return True


def backtrader_rows(series: BarSeries) -> list[tuple[Any, ...]]:
    """The bars as the layer's strategy sees them (the same float conversions), stamped by open."""
    px = 10.0**-SPEC.price_decimals
    sz = 10.0**-SPEC.size_decimals
    rows = []
    for t, o, h, low, c, v in zip(
        series.close_time_ns, series.open, series.high, series.low, series.close, series.volume, strict=True
    ):
        stamp = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=(t - series.interval_ns) // 1000)
        rows.append((stamp, o * px, h * px, low * px, c * px, v * sz))
    return rows


def run_backtrader(factory: Any, series: BarSeries, cheat_on_close: bool = False) -> Any:
    cerebro = backtrader.Cerebro(stdstats=False)
    feed = SeriesFeed(rows=backtrader_rows(series), timeframe=backtrader.TimeFrame.Minutes, compression=1)
    cerebro.adddata(feed, name="BTC-USD")
    cerebro.broker.setcash(float(CASH))
    cerebro.broker.setcommission(commission=float(COMMISSION))
    cerebro.broker.set_coc(cheat_on_close)
    cerebro.addstrategy(factory(backtrader))
    return cerebro.run()[0]


def run_tradebus(factory: Any, series: BarSeries, config: BacktestConfig = CONFIG) -> tuple[Any, Any]:
    adapter = BacktraderAdapter(factory(btcompat), datas=[series])
    result = run_backtest(adapter, series, config)
    return adapter.strategy, result


# ---------------------------------------------------------------------- the comparisons


@pytest.mark.parametrize("factory", STRATEGIES, ids=lambda f: f.__name__)
def test_same_fills_trades_and_value(factory: Any, bars: BarSeries) -> None:
    ref = run_backtrader(factory, bars)
    ours, result = run_tradebus(factory, bars)
    assert_same_run(ref, ours, result)


@pytest.mark.parametrize("factory", [sma_cross, stop_exits], ids=lambda f: f.__name__)
def test_cheat_on_close_matches_fill_market_on_close(factory: Any, bars: BarSeries) -> None:
    """Backtrader's cheat-on-close is `fill_market_on="close"`: market orders fill at the close of
    the bar they were sent on. (Brackets differ there: see docs/btcompat.md.)"""
    ref = run_backtrader(factory, bars, cheat_on_close=True)
    matching = CONFIG.matching.model_copy(update={"fill_market_on": "close"})
    ours, result = run_tradebus(factory, bars, CONFIG.model_copy(update={"matching": matching}))
    assert_same_run(ref, ours, result)


def assert_same_run(ref: Any, ours: Any, result: Any) -> None:
    """Fills, notifications and trades equal; commissions and values within the stated tolerance."""
    assert len(ref.fills) >= 10, "the scenario must trade to mean anything"
    assert len(ours.fills) == len(ref.fills)
    for theirs, mine in zip(ref.fills, ours.fills, strict=True):
        assert mine[:5] == theirs[:5], (theirs, mine)  # bar, order, side, price ticks, size
        assert mine[6:8] == theirs[6:8], (theirs, mine)  # order type, execution bar time
        assert mine[5] == pytest.approx(theirs[5], abs=COMM_TOLERANCE), (theirs, mine)
        assert mine[8:] == pytest.approx(theirs[8:], abs=1e-6), (theirs, mine)  # value (cost basis), pnl
    assert ours.events == ref.events
    assert len(ours.trades) == len(ref.trades)
    for theirs, mine in zip(ref.trades, ours.trades, strict=True):
        assert mine[:8] == theirs[:8], (theirs, mine)
        assert mine[8] == pytest.approx(theirs[8], abs=1e-6), (theirs, mine)
    tolerance = COMM_TOLERANCE * len(ref.fills)
    assert ours.final[0] == pytest.approx(ref.final[0], abs=tolerance)
    assert ours.final[1] == pytest.approx(ref.final[1], abs=tolerance)
    # The run's own books agree with what the strategy was told.
    assert len(result.fills) == len(ours.fills)
    assert sum(f.fee for f in result.fills) == pytest.approx(sum(f[5] for f in ref.fills), abs=tolerance)


def test_exits_are_exercised(bars: BarSeries) -> None:
    """The scenarios cover what they claim: expiries, stop fills, take-profit fills, OCO cancels."""
    limits, _ = run_tradebus(limit_entries, bars)
    assert any(status == "Expired" for _, _, status in limits.events)
    brackets, _ = run_tradebus(stop_loss_brackets, bars)
    kinds = {fill[6] for fill in brackets.fills if not fill[2]}
    assert kinds == {"Stop", "Limit"}
    assert any(status == "Canceled" for _, _, status in brackets.events)
    stops, _ = run_tradebus(stop_exits, bars)
    assert {fill[6] for fill in stops.fills if not fill[2]} == {"Stop", "Market"}


def test_strategy_class_runs_without_declared_feeds(bars: BarSeries) -> None:
    """`run_backtest(StrategyClass, series)` (the loader wraps it) trades as the declared form does."""
    declared, _ = run_tradebus(sma_cross, bars)
    result = run_backtest(sma_cross(btcompat), bars, CONFIG)
    assert len(result.fills) == len(declared.fills)
    assert [round(f.price / TICK) for f in result.fills] == [f[3] for f in declared.fills]


class _Pairs(btcompat.Strategy):
    """Buys ETH when BTC's 5-minute close rises, closes after three 1-minute bars."""

    def __init__(self) -> None:
        self.btc, self.btc5, self.eth = self.datas
        self.fast = btcompat.ind.SMA(self.btc5, period=2)
        self.entered_at = 0
        self.fills: list[tuple[str, int, float]] = []

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            self.fills.append((order.data._name, len(order.data), order.executed.price))

    def next(self) -> None:
        position = self.getposition(self.eth)
        if not position and self.btc5.close[0] > self.fast[0]:
            self.buy(data=self.eth, size=1.0)
            self.entered_at = len(self.btc)
        elif position and len(self.btc) - self.entered_at >= 3:
            self.close(data=self.eth)


def test_several_feeds_through_the_runner(bars: BarSeries) -> None:
    from services.data import resample

    btc = BarSeries(
        bars.instrument, bars.venue, bars.interval_ns, bars.close_time_ns[:300], bars.open[:300], bars.high[:300],
        bars.low[:300], bars.close[:300], bars.volume[:300], bars.source,
    )  # fmt: skip
    eth = load_bars("examples/data/ETH-USD_1m.csv", "ETH-USD", instrument_spec_for("ETH-USD", CONFIG), start=START)
    eth = BarSeries(
        eth.instrument, eth.venue, eth.interval_ns, eth.close_time_ns[:300], eth.open[:300], eth.high[:300],
        eth.low[:300], eth.close[:300], eth.volume[:300], eth.source,
    )  # fmt: skip
    btc5 = resample(btc, "5m")
    adapter = BacktraderAdapter(_Pairs)
    result = run_backtest(adapter, [btc, btc5, eth], CONFIG)  # the runner binds self.datas in this order
    s = adapter.strategy
    assert s is not None
    assert [d._name for d in s.datas] == ["BTC-USD@1m", "BTC-USD@5m", "ETH-USD"]
    assert [len(d) for d in s.datas] == [300, len(btc5), 300]
    assert len(s.fills) >= 4 and {name for name, _, _ in s.fills} == {"ETH-USD"}
    px = 10.0**-SPEC.price_decimals
    for _, index, price in s.fills:  # market orders fill at the open of ETH's next bar
        assert round(price / px) == eth.open[index - 1]
    assert [f.instrument for f in result.fills] == ["ETH-USD"] * len(s.fills)
