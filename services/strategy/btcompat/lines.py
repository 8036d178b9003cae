"""Lines: Backtrader-style series indexed by "bars ago", kept in bounded ring buffers.

Theory of operation
-------------------
`line[0]` is the current value, `line[-1]` the one before, as in Backtrader. A line keeps only
the last `history` values (the strategy's `history`, DEFAULT_HISTORY unless raised), so memory
does not grow with the run: a million bars cost what `history` bars cost. Looking further back,
or forward (`line[1]`), raises an IndexError that says how far back the line can see.

The ring is a Python list of `history` slots and `_idx`, the slot of the newest value. Reading
`ago` bars back is `buf[_idx + ago]`: when that index goes negative, Python's negative indexing
wraps it to the end of the list, which is exactly where the ring continues, so a read is one
index with no modulo. A line takes exactly one value per bar of its clock (its feed), so the
values available are min(bars of the clock, history), and a write is three stores and a compare.

Two stages, as in Backtrader. While a strategy's `__init__` runs (the "building" stage: an owner
is on the `_OWNERS` stack), arithmetic and comparisons between lines build new lines
(`self.data.close - self.sma` is a `LineOperation`, updated every bar like an indicator). Once
the run is going they compare and compute the current values: `self.sma > self.data.close` is a
plain bool inside `next()`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

__all__ = [
    "DEFAULT_HISTORY",
    "NAN",
    "BufferLine",
    "LineBase",
    "LineOperation",
    "Lines",
    "building",
    "current_owner",
    "date2num",
    "ns_to_datetime",
    "ns_to_num",
    "num2date",
    "time_to_ns",
]

DEFAULT_HISTORY = 1024
"""Values each line keeps, so `line[-k]` works for k < history once k bars have passed.

Indicators here are streaming (they never re-read a line's history), so history only serves the
strategy's own look-backs, which are short (`[-1]`, `[-2]`, a few dozen bars for a pattern).
1,024 covers those at about 8 KB a line; a strategy that needs more sets `history` on its class.
Beyond it, a read raises an IndexError naming the limit.
"""

MIN_HISTORY = 2
"""At least the current and the previous value: `[-1]` is the most common look-back of all."""

NAN = math.nan
"""What an indicator line reads before its minimum period, as in Backtrader."""

EPOCH_ORDINAL = 719_163
"""`date(1970, 1, 1).toordinal()`: Backtrader's date numbers count days from 0001-01-01 (day 1)."""

NS_PER_DAY = 86_400_000_000_000
_NS_PER_US = 1_000


class Owner(Protocol):
    """What a line needs from the strategy that declares it (see `strategy.Strategy`)."""

    @property
    def history(self) -> int: ...

    def _bt_register(self, line: BufferLine) -> None: ...


_OWNERS: list[Owner] = []
"""Strategies whose `__init__` is running (a stack: one, in practice)."""


def current_owner() -> Owner | None:
    """The strategy being built, or None once the run is going (or outside a run)."""
    return _OWNERS[-1] if _OWNERS else None


@contextmanager
def building(owner: Owner) -> Iterator[None]:
    """Run a block (the strategy's `__init__`) in the building stage of `owner`."""
    _OWNERS.append(owner)
    try:
        yield
    finally:
        popped = _OWNERS.pop()
        assert popped is owner, "building stages must nest"


# ---------------------------------------------------------------------- dates


def ns_to_num(time_ns: int) -> float:
    """Backtrader's float date number (days since 0001-01-01, plus one) of a UTC time in ns."""
    return EPOCH_ORDINAL + time_ns / NS_PER_DAY


def time_to_ns(value: datetime | date) -> int:
    """Nanoseconds since the epoch of a datetime (naive means UTC) or a date (its midnight, UTC)."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * _NS_PER_US


def ns_to_datetime(time_ns: int, tz: Any = None, naive: bool = True) -> datetime:
    """A UTC time in ns as a datetime (microsecond precision): naive UTC by default, as Backtrader
    returns; `naive=False` gives an aware one (in `tz` when given, else UTC)."""
    moment = datetime(1970, 1, 1) + timedelta(microseconds=time_ns // _NS_PER_US)
    if naive and tz is None:
        return moment
    aware = moment.replace(tzinfo=UTC)
    if tz is not None:
        aware = aware.astimezone(tz)
    return aware.replace(tzinfo=None) if naive else aware


def date2num(value: datetime | date) -> float:
    """Backtrader's `date2num`: a datetime (naive means UTC) or date as a float day number."""
    return ns_to_num(time_to_ns(value))


def num2date(num: float, tz: Any = None, naive: bool = True) -> datetime:
    """Backtrader's `num2date`: a float day number as a naive UTC datetime.

    A day number near 7.4e5 has a resolution of about 10 µs, so the time is rounded to the
    millisecond: a whole-millisecond time comes back exactly (Backtrader's own returns
    00:51:59.999995 for 00:52). Feeds keep exact times: use `datetime.datetime(ago)` there.
    """
    millis = round((num - EPOCH_ORDINAL) * 86_400_000)
    return ns_to_datetime(millis * 1_000_000, tz, naive)


# ---------------------------------------------------------------------- lines


def _now(value: Any) -> Any:
    """The current value of a line, or the value itself."""
    return value[0] if isinstance(value, LineBase) else value


class LineBase:
    """What every line offers: `[ago]`, `len()`, `get()`, and operators on the current value.

    Attributes:
        _name: the line's name, for messages.
        _clock: the data feed the line advances with (one value per bar of it).
        _ready: whether `[0]` holds a real value (an indicator past its minimum period).
        _min_period: bars of the clock before the line has its first value.
    """

    __slots__ = ("_clock", "_min_period", "_name", "_ready")

    _clock: Any
    _min_period: int
    _name: str
    _ready: bool

    def __getitem__(self, ago: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        """Bars of its clock the line has been through (Backtrader: the line's length)."""
        return len(self._clock)

    def get(self, ago: int = 0, size: int = 1) -> list[Any]:
        """The `size` values ending `ago` bars back, oldest first (Backtrader's `line.get`)."""
        return [self[ago - k] for k in range(size - 1, -1, -1)]

    def __float__(self) -> float:
        return float(self[0])

    def __bool__(self) -> bool:
        # Backtrader: in next(), `if self.crossover:` tests the current value.
        return bool(self[0])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, '_name', '?')}>"

    __hash__ = object.__hash__  # lines are used as dict keys and in sets by identity

    # Comparisons and arithmetic: a new line while building, the current values while running.
    # == and != keep identity semantics (lines sit in lists and dicts). The comparisons are
    # written out, with no helper call: `if self.cross > 0` runs every bar.

    def __lt__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.lt, self, other, "<")
        return self[0] < (other[0] if isinstance(other, LineBase) else other)

    def __le__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.le, self, other, "<=")
        return self[0] <= (other[0] if isinstance(other, LineBase) else other)

    def __gt__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.gt, self, other, ">")
        return self[0] > (other[0] if isinstance(other, LineBase) else other)

    def __ge__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.ge, self, other, ">=")
        return self[0] >= (other[0] if isinstance(other, LineBase) else other)

    def __add__(self, other: Any) -> Any:
        return _binary(operator.add, self, other, "+")

    def __radd__(self, other: Any) -> Any:
        return _binary(operator.add, other, self, "+")

    def __sub__(self, other: Any) -> Any:
        return _binary(operator.sub, self, other, "-")

    def __rsub__(self, other: Any) -> Any:
        return _binary(operator.sub, other, self, "-")

    def __mul__(self, other: Any) -> Any:
        return _binary(operator.mul, self, other, "*")

    def __rmul__(self, other: Any) -> Any:
        return _binary(operator.mul, other, self, "*")

    def __truediv__(self, other: Any) -> Any:
        return _binary(operator.truediv, self, other, "/")

    def __rtruediv__(self, other: Any) -> Any:
        return _binary(operator.truediv, other, self, "/")

    def __neg__(self) -> Any:
        return _binary(operator.sub, 0.0, self, "-")

    def __abs__(self) -> Any:
        owner = current_owner()
        if owner is None:
            return abs(self[0])
        return LineOperation(owner, lambda a, _b: abs(a), self, 0.0, "abs")


def _binary(fn: Callable[[Any, Any], Any], a: Any, b: Any, symbol: str) -> Any:
    if _OWNERS:
        return _operation(fn, a, b, symbol)
    return fn(_now(a), _now(b))


def _operation(fn: Callable[[Any, Any], Any], a: Any, b: Any, symbol: str) -> LineOperation:
    return LineOperation(_OWNERS[-1], fn, a, b, symbol)


class BufferLine(LineBase):
    """A line that stores its own values in a ring of `capacity` slots (see the module docstring)."""

    __slots__ = ("_buf", "_cap", "_idx", "_negcap")

    def __init__(self, name: str, clock: Any, capacity: int, min_period: int = 1) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < MIN_HISTORY:
            raise ValueError(f"history: must be an integer >= {MIN_HISTORY}, got {capacity!r}")
        self._name = name
        self._clock = clock
        self._ready = False
        self._min_period = min_period
        self._buf: list[Any] = [NAN] * capacity
        self._cap = capacity
        self._negcap = -capacity
        self._idx = -1

    def __getitem__(self, ago: int) -> Any:
        try:  # free unless it raises (3.11): a non-int index gets the same clear error
            if 0 >= ago > self._negcap and ago > -self._clock._count:
                return self._buf[self._idx + ago]
        except TypeError:
            pass
        raise self._index_error(ago)

    def _push(self, value: Any) -> None:
        """Append the value of a new bar (the oldest falls out once the ring is full).

        Indicators inline this on their hot path; keep them in step with it.
        """
        idx = self._idx + 1
        if idx == self._cap:
            idx = 0
        self._idx = idx
        self._buf[idx] = value

    def _index_error(self, ago: Any) -> IndexError:
        return _index_error(self._name, ago, min(self._clock._count, self._cap), self._cap)

    # The current value straight from the ring: these run in next() on every bar.

    def __lt__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.lt, self, other, "<")
        idx = self._idx
        value = self._buf[idx] if idx >= 0 else self._now()
        return value < (other[0] if isinstance(other, LineBase) else other)

    def __le__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.le, self, other, "<=")
        idx = self._idx
        value = self._buf[idx] if idx >= 0 else self._now()
        return value <= (other[0] if isinstance(other, LineBase) else other)

    def __gt__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.gt, self, other, ">")
        idx = self._idx
        value = self._buf[idx] if idx >= 0 else self._now()
        return value > (other[0] if isinstance(other, LineBase) else other)

    def __ge__(self, other: Any) -> Any:
        if _OWNERS:
            return _operation(operator.ge, self, other, ">=")
        idx = self._idx
        value = self._buf[idx] if idx >= 0 else self._now()
        return value >= (other[0] if isinstance(other, LineBase) else other)

    def _now(self) -> Any:
        """The current value; IndexError before the first bar."""
        if self._idx >= 0:
            return self._buf[self._idx]
        raise self._index_error(0)


def _index_error(name: str, ago: Any, available: int, capacity: int) -> IndexError:
    if not isinstance(ago, int):
        return IndexError(f"{name}[{ago!r}]: the index must be an int (0 now, -1 the bar before, ...)")
    if ago > 0:
        return IndexError(f"{name}[{ago}]: the future is not known; use 0 (now) or a negative number of bars ago")
    if available < capacity:
        return IndexError(f"{name}[{ago}]: only {available} bar(s) so far")
    return IndexError(
        f"{name}[{ago}]: only the last {capacity} values are kept (history={capacity}); "
        f"set a larger `history` on the strategy class to look {-ago} bars back"
    )


class LineOperation(BufferLine):
    """A line computed bar by bar from other lines (or numbers) with `fn`, e.g. `close - sma`.

    Built by the operators of a line during the building stage; updated with the indicators, in
    declaration order, and NaN until every line it reads is ready. Its minimum period is the
    largest of its operands'.
    """

    __slots__ = ("_a", "_b", "_fn", "_lines")

    def __init__(self, owner: Owner, fn: Callable[[Any, Any], Any], a: Any, b: Any, symbol: str) -> None:
        lines = [x for x in (a, b) if isinstance(x, LineBase)]
        assert lines, "an operation needs at least one line"
        clock = lines[0]._clock
        name = f"({_label(a)} {symbol} {_label(b)})"
        super().__init__(name, clock, owner.history, max(x._min_period for x in lines))
        self._fn = fn
        self._a = a
        self._b = b
        self._lines = lines
        owner._bt_register(self)

    def _update(self, bar: Any) -> None:
        for line in self._lines:
            if not line._ready:
                self._push(NAN)
                return
        value = self._fn(_now(self._a), _now(self._b))
        self._push(float(value))
        self._ready = True


def _label(value: Any) -> str:
    return value._name if isinstance(value, LineBase) else repr(value)


class Lines:
    """The `lines` namespace of a feed or an indicator: by name (`lines.close`) or by index
    (`lines[0]`, Backtrader's order)."""

    __slots__ = ("_order",)

    def __init__(self, order: list[tuple[str, LineBase]]) -> None:
        self._order = order

    def __getattr__(self, name: str) -> LineBase:
        for key, line in self._order:
            if key == name:
                return line
        raise AttributeError(f"no line {name!r} (lines: {self.getlinealiases()})")

    def __getitem__(self, index: int) -> LineBase:
        return self._order[index][1]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[LineBase]:
        return (line for _, line in self._order)

    def getlinealiases(self) -> tuple[str, ...]:
        """The line names, in order."""
        return tuple(name for name, _ in self._order)
