"""The Backtrader-style `Strategy`: parameters, minimum period and the prenext/nextstart/next
phases, indicators as Backtrader declares them, and feed routing."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.strategy import btcompat as bt
from services.strategy import indicators as streaming
from services.strategy.btcompat import BacktraderAdapter
from services.strategy.loader import StrategyLoadError, as_native_strategy
from tests.unit.btcompat_support import MINUTE, Driver, bar, make_ctx

# ---------------------------------------------------------------------- parameters


class TupleParams(bt.Strategy):
    params = (("fast", 10), ("slow", 30))


class DictParams(bt.Strategy):
    params: ClassVar[dict[str, int]] = {"fast": 10, "slow": 30}


class Child(TupleParams):
    params = (("slow", 50), ("stake", 2))


@pytest.mark.parametrize("cls", [TupleParams, DictParams])
def test_both_param_forms_give_defaults_and_overrides(cls: type[bt.Strategy]) -> None:
    d = Driver(cls, {"slow": 40})
    assert (d.strategy.p.fast, d.strategy.p.slow) == (10, 40)
    assert d.strategy.params is d.strategy.p
    assert d.adapter.param_values == {"fast": 10, "slow": 40}


def test_params_merge_down_the_class_hierarchy() -> None:
    d = Driver(Child)
    assert (d.strategy.p.fast, d.strategy.p.slow, d.strategy.p.stake) == (10, 50, 2)


def test_unknown_param_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['slowest'\]; known: \['fast', 'slow'\]"):
        BacktraderAdapter(TupleParams, {"slowest": 1})
    with pytest.raises(StrategyLoadError, match="slowest"):
        as_native_strategy(TupleParams, {"slowest": 1})


def test_malformed_params_are_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"item 'fast' is not a \(name, default\) pair"):

        class Bad(bt.Strategy):
            params = ("fast", 10)

    with pytest.raises(TypeError, match="name 3 is not an identifier"):

        class Worse(bt.Strategy):
            params = ((3, 10),)


def test_loader_wraps_a_backtrader_class() -> None:
    native = as_native_strategy(TupleParams, {"fast": 5})
    assert isinstance(native, BacktraderAdapter)
    assert native.wants_time_slices
    assert native.param_values == {"fast": 5, "slow": 30}


# ---------------------------------------------------------------------- phases


class Phases(bt.Strategy):
    params = (("fast", 3), ("slow", 5))

    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=self.p.fast), bt.ind.SMA(period=self.p.slow))
        self.calls: list[tuple[str, int]] = []

    def start(self) -> None:
        self.calls.append(("start", len(self.data)))

    def prenext(self) -> None:
        self.calls.append(("prenext", len(self.data)))

    def nextstart(self) -> None:
        self.calls.append(("nextstart", len(self.data)))
        super().nextstart()

    def next(self) -> None:
        self.calls.append(("next", len(self.data)))

    def stop(self) -> None:
        self.calls.append(("stop", len(self.data)))


@given(st.integers(1, 8), st.integers(1, 12))
def test_next_starts_at_the_largest_minimum_period(fast: int, slow: int) -> None:
    d = Driver(Phases, {"fast": fast, "slow": slow})
    d.run([float(i % 7) for i in range(20)])
    d.adapter.on_stop(d.ctx)
    minperiod = max(fast, slow) + 1  # CrossOver needs one bar more than its inputs
    assert d.strategy.data._minperiod == minperiod
    calls = d.strategy.calls
    assert calls[0] == ("start", 0)
    assert calls[-1] == ("stop", 20)
    phases = calls[1:-1]
    assert phases[: minperiod - 1] == [("prenext", n) for n in range(1, minperiod)]
    assert phases[minperiod - 1 : minperiod + 1] == [("nextstart", minperiod), ("next", minperiod)]
    assert phases[minperiod + 1 :] == [("next", n) for n in range(minperiod + 1, 21)]
    assert len(d.strategy) == 20


class TwoFeeds(bt.Strategy):
    def __init__(self) -> None:
        self.a = bt.ind.SMA(self.data0, period=4)
        self.b = bt.ind.SMA(self.data1.close, period=2)
        self.phase: list[tuple[str, int, int]] = []

    def prenext(self) -> None:
        self.phase.append(("prenext", len(self.data0), len(self.data1)))

    def next(self) -> None:
        self.phase.append(("next", len(self.data0), len(self.data1)))


def test_each_feed_has_its_own_minimum_period_and_bars_route_by_interval() -> None:
    five = 5 * MINUTE
    d = Driver(TwoFeeds, datas=[("BTC-USD", "1m"), ("BTC-USD", "5m")])
    s = d.strategy
    assert [x._name for x in s.datas] == ["BTC-USD@1m", "BTC-USD@5m"]
    assert [x._minperiod for x in s.datas] == [4, 2]
    for i in range(12):
        bars = [bar(i, 100.0 + i)]
        if (i + 1) % 5 == 0:
            bars.append(bar(i // 5, 200.0 + i, interval=five))
        d.step(*bars)
    assert len(s.data0) == 12 and len(s.data1) == 2
    assert s.data1.close[0] == 209.0 and s.data1.close[-1] == 204.0
    assert s.phase[8] == ("prenext", 9, 1)
    assert s.phase[9] == ("next", 10, 2)
    assert s.getdatabyname("BTC-USD@5m") is s.data1
    assert s.getposition(s.data1) is s.getposition(s.data0)  # one instrument, one position


def test_undeclared_feeds_follow_the_configured_instruments() -> None:
    class Plain(bt.Strategy):
        pass

    d = Driver(Plain, instruments=("ETH-USD", "BTC-USD"))
    d.adapter = BacktraderAdapter(Plain)  # no feeds declared
    d.adapter.on_start(d.ctx)
    s = d.adapter.strategy
    assert s is not None
    assert [x._name for x in s.datas] == list(d.ctx.instruments) == ["ETH-USD", "BTC-USD"]
    assert all(x.interval_ns is None for x in s.datas)  # learnt from the first bar
    d.step(bar(0, 1.0, "BTC-USD"), bar(0, 2.0, "ETH-USD"))
    assert s.datas[0].interval_ns == MINUTE and s.datas[0].close[0] == 2.0
    with pytest.raises(ValueError, match="declare every feed"):
        d.send(bar(0, 3.0, "BTC-USD", interval=5 * MINUTE))


# ---------------------------------------------------------------------- indicators


class Indicators(bt.Strategy):
    def __init__(self) -> None:
        self.sma = bt.indicators.SimpleMovingAverage(self.data.close, period=5)
        self.ema = bt.ind.EMA(self.data, period=4)
        self.rsi = bt.ind.RSI(period=6, safediv=True)
        self.sma_rsi = bt.ind.SMA(self.rsi, period=3)
        self.atr = bt.ind.ATR(self.data, period=3)
        self.bb = bt.ind.BollingerBands(period=5, devfactor=1.5)
        self.macd = bt.ind.MACD(period_me1=3, period_me2=6, period_signal=3)
        self.hi = bt.ind.Highest(self.data.high, period=4)
        self.lo = bt.ind.MinN(self.data.low, period=4)
        self.sd = bt.ind.StdDev(period=5)
        self.cross = bt.ind.CrossOver(self.data.close, self.sma)


def _closes(n: int) -> list[float]:
    return [100.0 + 7.0 * math.sin(i / 3.0) + (i % 5) for i in range(n)]


def test_indicators_match_the_streaming_ones_and_read_nan_before_ready() -> None:
    closes = _closes(40)
    d = Driver(Indicators)
    for i, c in enumerate(closes):
        d.step(bar(i, c, high=c + 1.0, low=c - 2.0))
    s = d.strategy
    sma, ema, rsi, sd = streaming.SMA(5), streaming.EMA(4), streaming.RSI(6, safediv=True), streaming.StdDev(5)
    chain = streaming.Chain(streaming.RSI(6, safediv=True), streaming.SMA(3))
    atr, bb, macd = streaming.ATR(3), streaming.BollingerBands(5, 1.5), streaming.MACD(3, 6, 3)
    for c in closes:
        for ind in (sma, ema, rsi, sd, chain, bb, macd):
            ind.update(c)
        atr.update(c + 1.0, c - 2.0, c)
    assert s.sma[0] == sma.value and s.ema[0] == ema.value and s.rsi[0] == rsi.value and s.sd[0] == sd.value
    assert s.sma_rsi[0] == pytest.approx(chain.value) and s.atr[0] == atr.value
    assert (s.bb.mid[0], s.bb.top[0], s.bb.bot[0]) == (bb.mid, bb.top, bb.bot)
    assert s.bb.lines.top is s.bb.top and s.bb[0] == bb.mid
    assert (s.macd.macd[0], s.macd.signal[0], s.macd.histo[0]) == (macd.macd, macd.signal, macd.histogram)
    assert s.hi[0] == max(closes[-4:]) + 1.0 and s.lo[0] == min(closes[-4:]) - 2.0
    # Minimum periods add up as Backtrader's do; before them the lines read NaN.
    assert [x.min_period for x in (s.sma, s.rsi, s.sma_rsi, s.atr, s.macd, s.cross)] == [5, 7, 9, 4, 8, 6]
    assert math.isnan(s.sma[-(40 - 4)]) and not math.isnan(s.sma[-(40 - 5)])
    assert math.isnan(s.sma_rsi[-(40 - 8)]) and not math.isnan(s.sma_rsi[-(40 - 9)])
    assert s.data._minperiod == 9
    assert len(s.sma) == 40
    assert s.cross[0] in (-1.0, 0.0, 1.0)


def test_indicator_errors_name_the_problem() -> None:
    class Unknown(bt.Strategy):
        def __init__(self) -> None:
            bt.ind.SMA(period=3, length=4)

    with pytest.raises(TypeError, match=r"SMA: unknown parameter\(s\) \['length'\]"):
        Driver(Unknown)

    class WrongInput(bt.Strategy):
        def __init__(self) -> None:
            bt.ind.ATR(self.data.close)

    with pytest.raises(TypeError, match="ATR: takes one data feed"):
        Driver(WrongInput)

    class BadPeriod(bt.Strategy):
        def __init__(self) -> None:
            bt.ind.EMA(period=0)

    with pytest.raises(ValueError, match="period must be an integer >= 1, got 0"):
        Driver(BadPeriod)

    class OtherMovav(bt.Strategy):
        def __init__(self) -> None:
            bt.ind.BollingerBands(movav=bt.ind.EMA)

    with pytest.raises(NotImplementedError, match="movav=EMA"):
        Driver(OtherMovav)


def test_aliases_are_the_same_indicators() -> None:
    ind = bt.indicators
    assert bt.ind is ind
    assert ind.SMA is ind.SimpleMovingAverage is ind.MovingAverageSimple
    assert ind.EMA is ind.ExponentialMovingAverage
    assert ind.RSI is ind.RelativeStrengthIndex
    assert ind.BBands is ind.BollingerBands and ind.MaxN is ind.Highest and ind.MinN is ind.Lowest
    assert ind.StandardDeviation is ind.StdDev and ind.AverageTrueRange is ind.ATR


class Truthy(bt.Strategy):
    def __init__(self) -> None:
        self.cross = bt.ind.CrossOver(bt.ind.SMA(period=2), bt.ind.SMA(period=3))
        self.seen: list[tuple[bool, bool, bool]] = []

    def next(self) -> None:
        self.seen.append((bool(self.cross), self.cross > 0, self.cross < 0))


def test_indicator_comparisons_read_the_current_value() -> None:
    d = Driver(Truthy)
    d.run([5.0, 4.0, 3.0, 2.0, 6.0, 7.0, 1.0, 1.0])
    crosses = [d.strategy.cross[-k] for k in range(len(d.strategy.seen) - 1, -1, -1)]
    assert d.strategy.seen == [(c != 0, c > 0, c < 0) for c in crosses]
    assert 1.0 in crosses and -1.0 in crosses


def test_unknown_instrument_bars_are_ignored() -> None:
    d = Driver(Truthy)
    assert d.send(bar(0, 1.0, "ETH-USD")) == []
    assert len(d.strategy.data) == 0


def test_history_is_a_class_setting() -> None:
    class Short(bt.Strategy):
        history = 3

    d = Driver(Short)
    d.run([1.0, 2.0, 3.0, 4.0])
    assert d.strategy.data.close[-2] == 2.0
    with pytest.raises(IndexError, match="history=3"):
        d.strategy.data.close[-3]


def test_strategy_outside_a_run_says_so() -> None:
    with pytest.raises(AttributeError, match="not running"):
        TupleParams().data  # noqa: B018
    with pytest.raises(RuntimeError, match="no strategy is being built"):
        Truthy()


def test_plotting_keywords_are_accepted_and_ignored() -> None:
    class Plotted(bt.Strategy):
        def __init__(self) -> None:
            self.sma = bt.ind.SMA(period=2, plot=False, subplot=True)
            self.sma.plotinfo.plotname = "fast"
            self.sma.plotlines.sma = {"color": "red"}

    d = Driver(Plotted)
    d.run([1.0, 3.0])
    assert d.strategy.sma[0] == 2.0
    assert vars(d.strategy.sma.plotinfo) == {"plot": False, "subplot": True, "plotname": "fast"}


def test_declared_feeds_win_and_leave_other_series_out() -> None:
    adapter = BacktraderAdapter(TupleParams, datas=[("BTC-USD", "1m")])
    adapter.bind_series([SimpleNamespace(instrument="ETH-USD", interval_ns=MINUTE)])  # the caller's list wins
    ctx = make_ctx(("BTC-USD", "ETH-USD"))
    adapter.on_start(ctx)
    s = adapter.strategy
    assert s is not None and [x._name for x in s.datas] == ["BTC-USD"]
    assert adapter.on_event(ctx, bar(0, 7.0, interval=5 * MINUTE)) is None  # no feed declared for it
    assert adapter.on_event(ctx, bar(0, 7.0, "ETH-USD")) is None
    assert len(s.data) == 0
    with pytest.raises(RuntimeError, match="already built"):
        adapter.bind_series([])
    with pytest.raises(RuntimeError, match="runs one backtest"):
        adapter.on_start(ctx)


def test_bind_series_declares_feeds_in_the_given_order() -> None:
    adapter = BacktraderAdapter(TupleParams)
    adapter.bind_series(
        [
            SimpleNamespace(instrument="ETH-USD", interval_ns=MINUTE),
            SimpleNamespace(instrument="BTC-USD", interval_ns=MINUTE),
        ]
    )
    adapter.on_start(make_ctx(("BTC-USD", "ETH-USD")))
    assert adapter.strategy is not None
    assert [x._name for x in adapter.strategy.datas] == ["ETH-USD", "BTC-USD"]
