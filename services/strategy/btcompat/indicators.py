"""Backtrader-style indicators over the streaming ones of `services.strategy.indicators`.

`bt.indicators.SMA(self.data.close, period=10)` (or `bt.ind.SMA`, `SimpleMovingAverage`,
`MovingAverageSimple`) declared in a strategy's `__init__` registers with that strategy and is
updated once per new bar of its clock (the feed of its first input), in declaration order, so an
indicator of an indicator (`SMA(RSI(...))`, `CrossOver(fast, slow)`) always reads its inputs'
values of the same bar. Each is a line (`ind[0]`, `ind[-1]`, `len(ind)`); multi-line ones add
named lines (`bb.top`, `macd.signal`, also as `ind.lines.top`).

Values are the streaming indicators' (same definitions and warm-up as Backtrader, see that
module); before its minimum period a line reads NaN, as in Backtrader. An indicator is fed only
once its inputs are ready, so its minimum period adds up like Backtrader's: SMA(5) of RSI(14)
reads its first value at bar 15 + 5 - 1 = 19.

Inputs: a feed (its close; ATR takes the feed's high, low and close), a line of a feed or of an
indicator, or nothing (the strategy's first feed).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

from services.strategy import indicators as streaming
from services.strategy.btcompat.feeds import Data, FieldLine
from services.strategy.btcompat.lines import NAN, BufferLine, LineBase, Lines, Owner, current_owner

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "RSI_SMMA",
    "SMA",
    "SMMA",
    "AverageTrueRange",
    "BBands",
    "BollingerBands",
    "CrossOver",
    "ExponentialMovingAverage",
    "Highest",
    "Indicator",
    "Lowest",
    "MACDHisto",
    "MACDHistogram",
    "MaxN",
    "MinN",
    "MovingAverageExponential",
    "MovingAverageSimple",
    "MovingAverageSmoothed",
    "RelativeStrengthIndex",
    "SimpleMovingAverage",
    "SmoothedMovingAverage",
    "StandardDeviation",
    "StdDev",
]


PLOT_KEYWORDS = frozenset(
    {"plot", "subplot", "plotname", "plotskip", "plotabove", "plotlinelabels", "plotlinevalues", "plotvaluetags",
     "plotymargin", "plotyhlines", "plotyticks", "plothlines", "plotforce", "plotmaster"}
)  # fmt: skip
"""Backtrader's `plotinfo` keywords: indicators accept them (there is no plotting here)."""


class Params:
    """An indicator's (or strategy's) parameters as attributes: `self.p.period`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        # Only reached for a name that is not a parameter.
        raise AttributeError(f"no parameter {name!r} (parameters: {sorted(self.__dict__)})")

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def _getkwargs(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def _getitems(self) -> list[tuple[str, Any]]:
        return list(self.__dict__.items())

    def __repr__(self) -> str:
        return f"Params({self.__dict__})"


class Indicator(BufferLine):
    """Base of the indicators: the indicator object is its own first line.

    Subclasses set `_line_names` (the first is the indicator itself), `_defaults` (parameters
    and their defaults), and implement `_build` and `_update`.

    Raises (on construction):
        RuntimeError: declared outside a strategy's `__init__`.
        TypeError: an unknown parameter, or an input of the wrong kind.
        ValueError: a parameter out of range (from the streaming indicator).
    """

    __slots__ = ("__dict__", "_inputs", "_line_list", "lines", "p", "params", "plotinfo", "plotlines")

    _line_names: ClassVar[tuple[str, ...]] = ("value",)
    _defaults: ClassVar[dict[str, Any]] = {}
    _n_inputs: ClassVar[int] = 1

    def __init__(self, *inputs: Any, **kwargs: Any) -> None:
        owner = current_owner()
        cls_name = type(self).__name__
        if owner is None:
            raise RuntimeError(
                f"{cls_name}: no strategy is being built; declare indicators in a strategy's __init__ and run the "
                "strategy with run_backtest (a strategy instantiated by hand does not run)"
            )
        # Backtrader's plotting keywords (plot=False, subplot=...) are accepted and kept, not used.
        self.plotinfo = SimpleNamespace(**{k: kwargs.pop(k) for k in list(kwargs) if k in PLOT_KEYWORDS})
        self.plotlines = SimpleNamespace()
        unknown = sorted(set(kwargs) - set(self._defaults))
        if unknown:
            raise TypeError(f"{cls_name}: unknown parameter(s) {unknown}; known: {sorted(self._defaults)}")
        values = dict(self._defaults)
        values.update(kwargs)
        self.p = self.params = Params(values)
        sources = self._resolve(owner, inputs)
        self._inputs = sources
        clock = sources[0]._clock if isinstance(sources[0], LineBase) else sources[0]
        super().__init__(f"{cls_name}", clock, owner.history)
        self._line_list: list[BufferLine] = [self]
        for extra in self._line_names[1:]:
            line = BufferLine(f"{cls_name}.{extra}", clock, owner.history)
            setattr(self, extra, line)
            self._line_list.append(line)
        self.lines = Lines(list(zip(self._line_names, self._line_list, strict=True)))
        self._build(self.p)
        owner._bt_register(self)

    def _resolve(self, owner: Owner, inputs: tuple[Any, ...]) -> list[Any]:
        """The input lines: a feed stands for its close; no input means the first feed's."""
        cls_name = type(self).__name__
        if not inputs:
            datas = getattr(owner, "datas", None)
            if not datas:
                raise TypeError(f"{cls_name}: no input given and the strategy has no data feed")
            inputs = (datas[0],)
        if len(inputs) != self._n_inputs:
            raise TypeError(f"{cls_name}: takes {self._n_inputs} input line(s), got {len(inputs)}: {inputs!r}")
        lines: list[Any] = []
        for value in inputs:
            if isinstance(value, Data):
                lines.append(value.close)
            elif isinstance(value, LineBase):
                lines.append(value)
            else:
                raise TypeError(f"{cls_name}: input {value!r} is not a data feed or a line")
        return lines

    def _build(self, p: Params) -> None:
        raise NotImplementedError

    def _update(self, bar: Any) -> None:
        """Take the clock's new `bar`: compute and push this bar's value(s)."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        """Whether the indicator has its first value (Backtrader: len(self) >= minperiod)."""
        return self._ready

    @property
    def min_period(self) -> int:
        """Bars of its clock before the first value."""
        return self._min_period

    def _movav(self, p: Params, default: str) -> None:
        """Backtrader's `movav` parameter: only the indicator's own default is implemented."""
        movav = getattr(p, "movav", None)
        if movav is None:
            return
        name = getattr(movav, "__name__", repr(movav))
        if name not in _MOVAV_NAMES[default]:
            raise NotImplementedError(f"{type(self).__name__}: movav={name} is not supported; only {default}")


_MOVAV_NAMES = {
    "SMA": {"SMA", "SimpleMovingAverage", "MovingAverageSimple"},
    "EMA": {"EMA", "ExponentialMovingAverage", "MovingAverageExponential"},
    "SMMA": {"SMMA", "SmoothedMovingAverage", "MovingAverageSmoothed", "WilderMA"},
}


class _SingleInput(Indicator):
    """An indicator of one line through one streaming indicator with `update(value)`.

    The hot path reads its input without a method call where it can: a field of the clock's bar
    through the field's getter, an indicator's line straight from its ring.
    """

    __slots__ = ("_buffered", "_get", "_inner", "_source")

    def _wire(self, inner: Any) -> None:
        self._inner = inner
        source = self._source = self._inputs[0]
        # Fed only once the input is ready: the minimum periods add up, minus the shared bar.
        self._min_period = source._min_period + inner.min_period - 1
        own_field = isinstance(source, FieldLine) and source._data is self._clock
        self._get = source._get if own_field else None
        self._buffered = isinstance(source, BufferLine)

    def _read(self, bar: Any) -> Any:
        """This bar's input value, or None while the input is not ready."""
        get = self._get
        if get is not None:
            return get(bar)
        source = self._source
        if not source._ready:
            return None
        return source._buf[source._idx] if self._buffered else source[0]

    def _update(self, bar: Any) -> None:
        get = self._get
        if get is not None:
            value = self._inner.update(get(bar))
        else:
            source = self._source
            if source._ready:
                value = self._inner.update(source._buf[source._idx] if self._buffered else source[0])
            else:
                value = None
        idx = self._idx + 1  # BufferLine._push, inlined
        if idx == self._cap:
            idx = 0
        self._idx = idx
        if value is None:
            self._buf[idx] = NAN
        else:
            self._buf[idx] = value
            self._ready = True


class SMA(_SingleInput):
    """Simple moving average (Backtrader's MovingAverageSimple): params period=30."""

    __slots__ = ()
    _line_names = ("sma",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 30}

    def _build(self, p: Params) -> None:
        self._wire(streaming.SMA(p.period))


class EMA(_SingleInput):
    """Exponential moving average (Backtrader's ExponentialMovingAverage): params period=30."""

    __slots__ = ()
    _line_names = ("ema",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 30}

    def _build(self, p: Params) -> None:
        self._wire(streaming.EMA(p.period))


class SMMA(_SingleInput):
    """Wilder's smoothed moving average (Backtrader's SmoothedMovingAverage): params period=30."""

    __slots__ = ()
    _line_names = ("smma",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 30}

    def _build(self, p: Params) -> None:
        self._wire(streaming.SMMA(p.period))


class RSI(_SingleInput):
    """Relative strength index, Wilder smoothing (Backtrader's RSI / RSI_SMMA): params period=14,
    safediv=False, safehigh=100.0, safelow=50.0; upperband/lowerband are kept for reading only."""

    __slots__ = ()
    _line_names = ("rsi",)
    _defaults: ClassVar[dict[str, Any]] = {
        "period": 14,
        "movav": None,
        "upperband": 70.0,
        "lowerband": 30.0,
        "safediv": False,
        "safehigh": 100.0,
        "safelow": 50.0,
        "lookback": 1,
    }

    def _build(self, p: Params) -> None:
        self._movav(p, "SMMA")
        if p.lookback != 1:
            raise NotImplementedError(f"RSI: lookback={p.lookback!r} is not supported; only 1")
        self._wire(streaming.RSI(p.period, safediv=p.safediv, safehigh=p.safehigh, safelow=p.safelow))


class StdDev(_SingleInput):
    """Population standard deviation of the window (Backtrader's StandardDeviation): params period=20."""

    __slots__ = ()
    _line_names = ("stddev",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 20, "movav": None, "safepow": True}

    def _build(self, p: Params) -> None:
        self._movav(p, "SMA")
        self._wire(streaming.StdDev(p.period))


class Highest(_SingleInput):
    """The highest value of the last `period` (Backtrader's Highest / MaxN): params period=1."""

    __slots__ = ()
    _line_names = ("highest",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 1}

    def _build(self, p: Params) -> None:
        self._wire(streaming.Highest(p.period))


class Lowest(_SingleInput):
    """The lowest value of the last `period` (Backtrader's Lowest / MinN): params period=1."""

    __slots__ = ()
    _line_names = ("lowest",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 1}

    def _build(self, p: Params) -> None:
        self._wire(streaming.Lowest(p.period))


class BollingerBands(_SingleInput):
    """Bollinger bands (Backtrader's BollingerBands / BBands): lines mid, top, bot; params
    period=20, devfactor=2.0."""

    __slots__ = ()
    _line_names = ("mid", "top", "bot")
    _defaults: ClassVar[dict[str, Any]] = {"period": 20, "devfactor": 2.0, "movav": None}

    mid: BufferLine  # the indicator itself, set in _build
    top: BufferLine
    bot: BufferLine

    def _build(self, p: Params) -> None:
        self._movav(p, "SMA")
        self._wire(streaming.BollingerBands(p.period, p.devfactor))
        self.mid = self
        for line in self._line_list:
            line._min_period = self._min_period

    def _update(self, bar: Any) -> None:
        inner = self._inner
        value = self._read(bar)
        if value is not None and inner.update(value) is not None:
            self._push(inner.mid)
            self.top._push(inner.top)
            self.bot._push(inner.bot)
            self._ready = self.top._ready = self.bot._ready = True
            return
        self._push(NAN)
        self.top._push(NAN)
        self.bot._push(NAN)


class MACD(_SingleInput):
    """MACD (Backtrader's MACD with MACDHisto's histogram): lines macd, signal, histo; params
    period_me1=12, period_me2=26, period_signal=9. The macd line has values from bar
    max(me1, me2) on; the indicator is ready (and signal/histo read) from the signal's first."""

    __slots__ = ()
    _line_names = ("macd", "signal", "histo")
    _defaults: ClassVar[dict[str, Any]] = {"period_me1": 12, "period_me2": 26, "period_signal": 9, "movav": None}

    macd: BufferLine  # the indicator itself, set in _build
    signal: BufferLine
    histo: BufferLine

    def _build(self, p: Params) -> None:
        self._movav(p, "EMA")
        self._wire(streaming.MACD(p.period_me1, p.period_me2, p.period_signal))
        self.macd = self
        # Backtrader's indicator minimum period is its signal line's; the macd line itself has
        # values earlier (from bar max(me1, me2)), and `self.macd[0]` reads them as Backtrader does.
        for line in self._line_list:
            line._min_period = self._min_period

    def _update(self, bar: Any) -> None:
        inner = self._inner
        value = self._read(bar)
        if value is not None:
            inner.update(value)
            macd = inner.macd
            if macd is not None:
                self._push(macd)
                if inner.ready:
                    self.signal._push(inner.signal)
                    self.histo._push(inner.histogram)
                    self._ready = self.signal._ready = self.histo._ready = True
                    return
                self.signal._push(NAN)
                self.histo._push(NAN)
                return
        self._push(NAN)
        self.signal._push(NAN)
        self.histo._push(NAN)


class ATR(Indicator):
    """Average true range of a feed (Backtrader's AverageTrueRange): params period=14."""

    __slots__ = ("_data", "_inner")
    _line_names = ("atr",)
    _defaults: ClassVar[dict[str, Any]] = {"period": 14, "movav": None}

    def _resolve(self, owner: Owner, inputs: tuple[Any, ...]) -> list[Any]:
        if not inputs:
            datas = getattr(owner, "datas", None)
            if not datas:
                raise TypeError("ATR: no input given and the strategy has no data feed")
            inputs = (datas[0],)
        if len(inputs) != 1 or not isinstance(inputs[0], Data):
            raise TypeError(f"ATR: takes one data feed (it reads high, low and close), got {inputs!r}")
        return [inputs[0]]

    def _build(self, p: Params) -> None:
        self._movav(p, "SMMA")
        self._data: Data = self._inputs[0]
        self._inner = streaming.ATR(p.period)
        self._min_period = self._inner.min_period

    def _update(self, bar: Any) -> None:
        value = self._inner.update(bar.high, bar.low, bar.close)
        if value is None:
            self._push(NAN)
            return
        self._push(value)
        self._ready = True


class CrossOver(Indicator):
    """+1 when the first line crosses above the second, -1 below, else 0 (Backtrader's CrossOver).

    Its first value comes one bar after both inputs are ready (it needs a previous difference).
    """

    __slots__ = ("_a", "_b", "_buffered", "_inner")
    _line_names = ("crossover",)
    _defaults: ClassVar[dict[str, Any]] = {}
    _n_inputs = 2

    def _build(self, p: Params) -> None:
        self._a, self._b = self._inputs
        self._inner = streaming.CrossOver()
        self._min_period = max(self._a._min_period, self._b._min_period) + 1
        # Two indicators (the usual case): read both rings directly on the hot path.
        self._buffered = isinstance(self._a, BufferLine) and isinstance(self._b, BufferLine)

    def _update(self, bar: Any) -> None:
        a = self._a
        b = self._b
        value = None
        if a._ready and b._ready:
            if self._buffered:
                value = self._inner.update(a._buf[a._idx], b._buf[b._idx])
            else:
                value = self._inner.update(a[0], b[0])
        idx = self._idx + 1  # BufferLine._push, inlined
        if idx == self._cap:
            idx = 0
        self._idx = idx
        if value is None:
            self._buf[idx] = NAN
        else:
            self._buf[idx] = value
            self._ready = True


# Backtrader's names for the same indicators.
SimpleMovingAverage = MovingAverageSimple = SMA
ExponentialMovingAverage = MovingAverageExponential = EMA
SmoothedMovingAverage = MovingAverageSmoothed = SMMA
RelativeStrengthIndex = RSI_SMMA = RSI
StandardDeviation = StdDev
MaxN = Highest
MinN = Lowest
BBands = BollingerBands
AverageTrueRange = ATR
MACDHisto = MACDHistogram = MACD
