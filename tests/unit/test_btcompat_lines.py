"""Lines and feeds of the Backtrader-style layer: `[ago]` indexing over bounded rings, the errors
beyond them, date numbers, feed lines and their times, and line operations."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import backtrader
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.strategy import btcompat as bt
from services.strategy.btcompat.feeds import Data
from services.strategy.btcompat.lines import BufferLine, LineOperation, date2num, num2date
from tests.unit.btcompat_support import MINUTE, START, Driver, bar


class _Clock:
    """A stand-in feed: a line takes one value per bar of its clock."""

    def __init__(self) -> None:
        self._count = 0

    def __len__(self) -> int:
        return self._count


def _line(values: list[float], capacity: int) -> BufferLine:
    clock = _Clock()
    line = BufferLine("x", clock, capacity)
    for v in values:
        clock._count += 1
        line._push(v)
    return line


@given(st.lists(st.floats(allow_nan=False), max_size=60), st.integers(2, 16))
def test_ring_reads_back_exactly_what_history_allows(values: list[float], capacity: int) -> None:
    line = _line(values, capacity)
    assert len(line) == len(values)
    available = min(len(values), capacity)
    for ago in range(0, -available, -1):
        assert line[ago] == values[len(values) - 1 + ago]
    with pytest.raises(IndexError):
        line[-available]
    with pytest.raises(IndexError):
        line[1]


def test_index_errors_say_why() -> None:
    line = _line([1.0, 2.0, 3.0], 4)
    with pytest.raises(IndexError, match=r"only 3 bar\(s\) so far"):
        line[-3]
    with pytest.raises(IndexError, match="future"):
        line[1]
    full = _line([float(i) for i in range(10)], 4)
    assert full[-3] == 6.0
    with pytest.raises(IndexError, match=r"history=4.*look 4 bars back"):
        full[-4]
    with pytest.raises(IndexError, match="must be an int"):
        full["0"]  # type: ignore[index]


def test_history_must_hold_the_previous_value() -> None:
    with pytest.raises(ValueError, match="history"):
        BufferLine("x", _Clock(), 1)


def test_get_returns_oldest_first() -> None:
    line = _line([1.0, 2.0, 3.0, 4.0], 8)
    assert line.get(size=3) == [2.0, 3.0, 4.0]
    assert line.get(ago=-1, size=2) == [2.0, 3.0]


@pytest.mark.parametrize(
    "moment",
    [dt.datetime(2024, 1, 3, 0, 52), dt.datetime(1999, 12, 31, 23, 59, 59, 500000), dt.datetime(2030, 6, 1)],
)
def test_date_numbers_are_backtraders(moment: dt.datetime) -> None:
    assert date2num(moment) == pytest.approx(backtrader.date2num(moment), abs=1e-10)
    assert num2date(date2num(moment)) == moment
    aware = moment.replace(tzinfo=dt.UTC)
    assert date2num(aware) == date2num(moment)


class _Lines(bt.Strategy):
    history = 8

    def __init__(self) -> None:
        self.sma = bt.ind.SMA(period=3)
        self.diff = self.data.close - self.sma  # a line operation, built while building
        self.above = self.data.close > self.sma
        self.seen: list[Any] = []

    def next(self) -> None:
        self.seen.append((self.data.close > self.sma, self.data.close - self.sma, self.diff[0], self.above[0]))


def test_feed_lines_read_the_bars() -> None:
    d = Driver(_Lines)
    for i, close in enumerate([10.0, 11.0, 12.0, 14.0]):
        d.step(bar(i, close, open_=close - 0.5, high=close + 1, low=close - 1, volume=2.0 + i))
    data: Data = d.strategy.data
    assert len(data) == 4
    assert data is d.strategy.datas[0] is d.strategy.data0
    assert data._name == "BTC-USD"
    assert data.close[0] == data[0] == 14.0
    assert data.close[-1] == 12.0
    assert (data.open[0], data.high[0], data.low[0], data.volume[0], data.openinterest[0]) == (
        13.5,
        15.0,
        13.0,
        5.0,
        0.0,
    )
    assert data.lines[0] is data.close
    assert data.lines.high is data.high
    # The datetime line reads the bar's open time: the stamp Backtrader shows for the same file row.
    assert data.datetime.datetime(0) == dt.datetime(2024, 1, 1, 0, 3)
    assert data.datetime.datetime(-3) == dt.datetime(2024, 1, 1, 0, 0)
    assert data.datetime.date(0) == dt.date(2024, 1, 1)
    assert data.datetime.close_time_ns(0) == START + 4 * MINUTE
    assert data.datetime[0] == pytest.approx(backtrader.date2num(dt.datetime(2024, 1, 1, 0, 3)), abs=1e-10)
    assert data.datetime.datetime(0, naive=False).tzinfo is dt.UTC
    assert d.strategy.datetime.date(0) == dt.date(2024, 1, 1)
    assert d.strategy.data_close is data.close
    assert d.strategy.data0_high is data.high


def test_strategy_history_bounds_every_line() -> None:
    d = Driver(_Lines)
    d.run([float(i) for i in range(1, 21)])
    s = d.strategy
    assert s.data.close[-7] == 13.0
    assert s.sma[-7] == 12.0
    with pytest.raises(IndexError, match="history=8"):
        s.data.close[-8]
    with pytest.raises(IndexError, match="history=8"):
        s.sma[-8]


def test_operators_build_lines_then_compare_values() -> None:
    d = Driver(_Lines)
    d.run([10.0, 11.0, 12.0, 14.0])
    s = d.strategy
    assert isinstance(s.diff, LineOperation)
    assert isinstance(s.above, LineOperation)
    # While running, the same operators give plain values of the current bar.
    last = s.seen[-1]
    assert last == (True, pytest.approx(14.0 - 37.0 / 3), pytest.approx(14.0 - 37.0 / 3), 1.0)
    assert math.isnan(s.diff[-2])  # the SMA was not ready two bars before
    assert s.diff[-1] == pytest.approx(1.0)


def test_indicator_outside_init_is_refused() -> None:
    with pytest.raises(RuntimeError, match="declare indicators in a strategy's __init__"):
        bt.ind.SMA(period=3)
