"""Data feeds: one per (instrument, bar interval), fed with `BarClosed` events by the adapter.

A feed keeps the last `history` bars as the events themselves (frozen structs, one store a bar)
in a ring like `lines.BufferLine`'s, and its lines (`open`, `high`, `low`, `close`, `volume`,
`openinterest`, `datetime`) read one field of the stored bars: a new bar costs one store, not
seven. `data[0]` is `data.close[0]`, as in Backtrader.

Timestamps. A tradebus bar event is stamped with its close time; Backtrader stamps a bar with the
time written in the file, which for most exports (and for `services.data.load_bars`' default,
`timestamp="open"`) is the bar's open. The `datetime` line therefore reads the bar's OPEN time
(close - interval), so `self.data.datetime.date(0)` of a daily bar is its own day, as in
Backtrader. `datetime.close_time_ns(ago)` gives the event time itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import date, datetime
from datetime import time as dtime
from typing import Any

from services.strategy.btcompat.lines import (
    NS_PER_DAY,
    LineBase,
    Lines,
    _index_error,
    date2num,
    ns_to_datetime,
    num2date,
)
from services.strategy.events import BarClosed

__all__ = ["Data", "DateTimeLine", "FieldLine"]


class FieldLine(LineBase):
    """One field of a feed's stored bars (`close`, `high`, ...): reads through the feed's ring."""

    __slots__ = ("_data", "_get")

    def __init__(self, data: Data, name: str, get: Callable[[BarClosed], Any]) -> None:
        self._name = name
        self._clock = data
        self._data = data
        self._get = get
        self._ready = False  # set by the feed's first bar
        self._min_period = 1

    def __getitem__(self, ago: int) -> Any:
        d = self._data
        try:  # free unless it raises (3.11): a non-int index gets the same clear error
            if 0 >= ago > d._negcap and ago > -d._count:
                return self._get(d._bars[d._idx + ago])
        except TypeError:
            pass
        raise d._index_error(self._name, ago)


def _zero(_bar: BarClosed) -> float:
    return 0.0


class DateTimeLine(FieldLine):
    """The bar times: `[ago]` is Backtrader's float date number of the bar's open time;
    `datetime(ago)`, `date(ago)` and `time(ago)` read it as naive UTC, like Backtrader."""

    __slots__ = ("_interval_ns",)

    def __init__(self, data: Data) -> None:
        super().__init__(data, "datetime", self._num)

    def _num(self, bar: BarClosed) -> float:
        return 719_163 + (bar.time_ns - bar.interval_ns) / NS_PER_DAY

    def open_time_ns(self, ago: int = 0) -> int:
        """The open time (ns since the epoch, UTC) of the bar `ago` bars back."""
        bar = self._data._bar(ago, self._name)
        return bar.time_ns - bar.interval_ns

    def close_time_ns(self, ago: int = 0) -> int:
        """The close time, i.e. the event time, of the bar `ago` bars back."""
        return self._data._bar(ago, self._name).time_ns

    def datetime(self, ago: int = 0, tz: Any = None, naive: bool = True) -> datetime:
        """The bar's (open) time as a datetime: naive UTC unless `naive=False` or `tz` is given."""
        return ns_to_datetime(self.open_time_ns(ago), tz, naive)

    def date(self, ago: int = 0, tz: Any = None, naive: bool = True) -> date:
        """The bar's (open) date, UTC."""
        return self.datetime(ago, tz, naive).date()

    def time(self, ago: int = 0, tz: Any = None, naive: bool = True) -> dtime:
        """The bar's (open) time of day, UTC."""
        return self.datetime(ago, tz, naive).time()


_LINE_ORDER = ("close", "low", "high", "open", "volume", "openinterest", "datetime")
"""Backtrader's order of a feed's lines: `data.lines[0]` is the close."""


class Data:
    """A bar feed of one instrument at one interval, as a Backtrader strategy sees `self.data`.

    Attributes:
        instrument: the instrument id.
        interval_ns: the bar length (None until the first bar when it was not declared).
        _name: the feed's name (the instrument; `instrument@interval` when one instrument has
            several feeds), as Backtrader's `data._name`.
        open, high, low, close, volume, openinterest, datetime: the lines (openinterest reads 0).
    """

    __slots__ = (
        "_bars",
        "_cap",
        "_count",
        "_dataname",
        "_id",
        "_idx",
        "_indicators",
        "_minperiod",
        "_name",
        "_negcap",
        "_position",
        "close",
        "datetime",
        "high",
        "instrument",
        "interval_ns",
        "lines",
        "low",
        "open",
        "openinterest",
        "volume",
    )

    def __init__(self, instrument: str, interval_ns: int | None, name: str, index: int, history: int) -> None:
        self.instrument = instrument
        self.interval_ns = interval_ns
        self._name = name
        self._dataname = instrument
        self._id = index
        self._bars: list[Any] = [None] * history  # BarClosed once written
        self._cap = history
        self._negcap = -history
        self._idx = -1
        self._count = 0
        self._indicators: list[Any] = []  # updated after each bar, in declaration order
        self._minperiod = 1
        self._position: Any = None  # the instrument's Position, set by the strategy
        self.open = FieldLine(self, "open", operator.attrgetter("open"))
        self.high = FieldLine(self, "high", operator.attrgetter("high"))
        self.low = FieldLine(self, "low", operator.attrgetter("low"))
        self.close = FieldLine(self, "close", operator.attrgetter("close"))
        self.volume = FieldLine(self, "volume", operator.attrgetter("volume"))
        self.openinterest = FieldLine(self, "openinterest", _zero)
        self.datetime = DateTimeLine(self)
        self.lines = Lines([(name, getattr(self, name)) for name in _LINE_ORDER])

    def _push(self, bar: BarClosed) -> None:
        """Take a new bar and update the indicators clocked by this feed, in declaration order.

        The adapter inlines this on its hot path; keep the two in step.
        """
        idx = self._idx + 1
        if idx == self._cap:
            idx = 0
        self._idx = idx
        self._bars[idx] = bar
        self._count += 1
        if self._count == 1:
            self._first_bar()
        for indicator in self._indicators:
            indicator._update(bar)

    def _first_bar(self) -> None:
        for line in self.lines:
            line._ready = True

    def _bar(self, ago: int, name: str) -> BarClosed:
        if 0 >= ago > self._negcap and ago > -self._count:
            bar: BarClosed = self._bars[self._idx + ago]
            return bar
        raise self._index_error(name, ago)

    def _index_error(self, line: str, ago: Any) -> IndexError:
        return _index_error(f"{self._name}.{line}", ago, min(self._count, self._cap), self._cap)

    def __len__(self) -> int:
        """Bars seen so far."""
        return self._count

    def __getitem__(self, ago: int) -> Any:
        return self.close[ago]

    def __repr__(self) -> str:
        return f"<Data {self._name} bars={self._count}>"

    # Backtrader's feed helpers
    def date2num(self, value: datetime | date) -> float:
        return date2num(value)

    def num2date(self, num: float | None = None, tz: Any = None, naive: bool = True) -> datetime:
        if num is None:
            return self.datetime.datetime(0, tz, naive)
        return num2date(num, tz, naive)

    def getlinealiases(self) -> tuple[str, ...]:
        return self.lines.getlinealiases()
