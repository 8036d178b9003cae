"""Streaming technical indicators: O(1) work per new value, no history re-scan, plain floats.

Theory of operation
-------------------
Each indicator is a small slotted object fed one value (or one bar) at a time through `update`,
which returns the new value, or None while the indicator is still warming up. `value` holds the
last value, `ready` says whether there is one, and `min_period` is the number of inputs needed
before the first value. `min_period` equals Backtrader's `_minperiod` for the same indicator and
parameters, and the values match Backtrader's defaults in meaning (tests/unit/test_indicators.py
runs both side by side on the same bars):

- EMA and SMMA (Wilder's moving average) are seeded with the arithmetic mean of the first `period`
  inputs, as Backtrader's ExponentialSmoothing is; then `prev * (1 - alpha) + x * alpha`.
- RSI is SMMA(up moves) / SMMA(down moves) over one-bar changes, so it needs period + 1 inputs.
  With Backtrader's default (safediv=False) a zero average down move raises ZeroDivisionError, as
  Backtrader does; with safediv=True it reads safehigh (100), or safelow (50) when both are zero.
- ATR is SMMA of the true range, max(high, prev close) - min(low, prev close). The first bar has
  no previous close and so no true range: ATR needs period + 1 bars.
- StdDev is the population standard deviation of the window (Backtrader's default). Bollinger
  bands are mid = SMA, top/bot = mid +/- devfactor * StdDev over the same window.
- MACD is EMA(fast) - EMA(slow), signal an EMA of that line, histogram = macd - signal.
- CrossOver follows Backtrader's rule: a cross needs the last non-zero difference a - b to have the
  other sign, so touching and turning back is no cross, while crossing through equality is one.

Rolling sums drift: each addition rounds, and over millions of updates the errors add up. SMA and
StdDev re-sum their window exactly (math.fsum) every RESUM_INTERVAL_MIN updates, which bounds the
drift at O(1) amortized cost. StdDev keeps its sums relative to a shift (the window value nearest
the mean at the last re-sum), so the variance is not the small difference of two large numbers,
and it also re-sums as soon as its rounding noise could matter (RESUM_NOISE_RATIO): a window that
turns quiet after big moves is exact again, and a constant one reads exactly 0.0. Backtrader
computes E[x^2] - E[x]^2 directly, which is rounding noise on a (nearly) constant window and loses
every digit when prices are large next to their spread; there ours is the accurate one (the parity
test expects the exact value on constant windows, and Backtrader's everywhere else).

Inputs are assumed finite: prices reach strategies as exact integer ticks scaled to floats, so a
NaN or an infinity here is a bug upstream, and it is not checked for on the hot path.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RESUM_INTERVAL_MIN",
    "RESUM_NOISE_RATIO",
    "RSI",
    "SMA",
    "SMMA",
    "BollingerBands",
    "Chain",
    "CrossOver",
    "Highest",
    "Indicator",
    "Lowest",
    "StdDev",
]

RESUM_INTERVAL_MIN = 1024
"""Updates between two exact re-sums of a rolling window (SMA, StdDev).

A re-sum costs O(period), so the interval is at least `period` too: at most one extra addition per
update on average. Between re-sums at most this many roundings accumulate, about 1e-13 relative on
the series we see, far below the 1e-9 the tests ask for; a shorter interval would only cost time.
(A value 1e17 times the others still wipes their digits out of an SMA until the next re-sum.)
"""


RESUM_NOISE_RATIO = 1e4
"""StdDev re-sums when its rounding noise may be more than 1/RESUM_NOISE_RATIO of the variance.

Each rolling update of the sum of squares rounds by about 1e-16 of the squares it moves, so the
error is bounded by 1e-16 x (the squares moved since the last re-sum + the sum of squares about
the shift). While that total stays under this ratio x n x variance, the variance is good to
~1e-12 relative (the tests ask 1e-9). It is crossed when the window turns quiet after big values
(an outlier leaves, a flat stretch after a move, the mean drifting far from the shift); a re-sum
then costs O(period), and it takes a comparable amount of new movement to cross it again.
"""


class Indicator(Protocol):
    """What any single-input streaming indicator offers (ATR and CrossOver take more inputs)."""

    @property
    def value(self) -> float | None:
        """The last value; None until ready."""

    @property
    def ready(self) -> bool:
        """Whether a value has been produced."""

    @property
    def min_period(self) -> int:
        """Inputs needed before the first value."""

    def update(self, value: float, /) -> float | None:
        """Take the next input; return the new value, or None while warming up."""


def _check_period(owner: str, name: str, value: object) -> int:
    """Return `value` if it is an int >= 1 (bool excluded); else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an integer >= 1, got {value!r}")
    return value


def _check_number(owner: str, name: str, value: object, low: float, high: float = math.inf) -> float:
    """Return `value` as a float if it is a finite number in [low, high]; else ValueError naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        bounds = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{owner}: {name} must be a finite number {bounds}, got {value!r}")
    return float(value)


class SMA:
    """Simple moving average: the arithmetic mean of the last `period` values (Backtrader's SMA).

    The first value is the exact mean of the first `period` inputs; after that a rolling sum,
    re-summed exactly every RESUM_INTERVAL_MIN updates so it cannot drift.

    Args:
        period: window length, an int >= 1 (Backtrader's default 30).

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ("_resum_every", "_sum", "_until_resum", "_window", "min_period", "period", "ready", "value")

    def __init__(self, period: int = 30) -> None:
        self.period = _check_period("SMA", "period", period)
        self.min_period = period
        self.value: float | None = None
        self.ready = False
        self._window: deque[float] = deque(maxlen=period)
        self._sum = 0.0
        self._resum_every = max(period, RESUM_INTERVAL_MIN)
        self._until_resum = self._resum_every

    def update(self, value: float) -> float | None:
        """Take the next value; return the mean of the last `period` values, None until ready."""
        window = self._window
        if self.ready:
            self._sum += value - window[0]
            window.append(value)  # maxlen drops the oldest
            self._until_resum -= 1
            if not self._until_resum:
                self._until_resum = self._resum_every
                self._sum = math.fsum(window)
        else:
            window.append(value)
            if len(window) < self.period:
                return None
            self._sum = math.fsum(window)
            self.ready = True
        mean = self._sum / self.period
        self.value = mean
        return mean


class _ExponentialSmoothing:
    """Backtrader's ExponentialSmoothing: seeded with the mean of the first `period` inputs."""

    __slots__ = ("_alpha", "_alpha1", "_seed", "min_period", "period", "ready", "value")

    def __init__(self, period: int, alpha: float) -> None:
        self.period = period
        self.min_period = period
        self.value: float | None = None
        self.ready = False
        self._alpha = alpha
        self._alpha1 = 1.0 - alpha  # computed once, as Backtrader does, so the roundings agree
        self._seed: list[float] = []

    def update(self, value: float) -> float | None:
        """Take the next value; return the smoothed value, None until `period` values were seen."""
        prev = self.value
        if prev is not None:
            smoothed = prev * self._alpha1 + value * self._alpha
            self.value = smoothed
            return smoothed
        seed = self._seed
        seed.append(value)
        if len(seed) < self.period:
            return None
        smoothed = math.fsum(seed) / self.period
        seed.clear()
        self.value = smoothed
        self.ready = True
        return smoothed


class EMA(_ExponentialSmoothing):
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the SMA of the first period.

    Args:
        period: an int >= 1 (Backtrader's default 30).

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ()

    def __init__(self, period: int = 30) -> None:
        _check_period("EMA", "period", period)
        super().__init__(period, 2.0 / (1.0 + period))


class SMMA(_ExponentialSmoothing):
    """Wilder's smoothed moving average, alpha = 1 / period, seeded with the SMA of the first period.

    Args:
        period: an int >= 1 (Backtrader's default 30).

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ()

    def __init__(self, period: int = 30) -> None:
        _check_period("SMMA", "period", period)
        super().__init__(period, 1.0 / period)


def _rs_for(rsi: float) -> float:
    """The relative strength that maps to `rsi` (Backtrader's RSI._rscalc): inf for 100."""
    try:
        return (-100.0 / (rsi - 100.0)) - 1.0
    except ZeroDivisionError:
        return math.inf


class RSI:
    """Relative strength index with Wilder smoothing (Backtrader's RSI, lookback 1).

    RSI = 100 - 100 / (1 + SMMA(up moves) / SMMA(down moves)); needs period + 1 values.

    Args:
        period: smoothing period, an int >= 1 (default 14).
        safediv: what a zero average down move does. False (Backtrader's default): raise
            ZeroDivisionError, as Backtrader does. True: read safehigh, or safelow when the
            average up move is zero too.
        safehigh: the value when only the down average is zero (safediv=True), in [0, 100].
        safelow: the value when both averages are zero (safediv=True), in [0, 100].

    Raises:
        ValueError: if a parameter is out of range.
    """

    __slots__ = (
        "_down",
        "_high_rs",
        "_low_rs",
        "_prev",
        "_up",
        "min_period",
        "period",
        "ready",
        "safediv",
        "safehigh",
        "safelow",
        "value",
    )

    def __init__(self, period: int = 14, *, safediv: bool = False, safehigh: float = 100.0, safelow: float = 50.0):
        self.period = _check_period("RSI", "period", period)
        if not isinstance(safediv, bool):
            raise TypeError(f"RSI: safediv must be a bool, got {safediv!r}")
        self.safediv = safediv
        self.safehigh = _check_number("RSI", "safehigh", safehigh, 0.0, 100.0)
        self.safelow = _check_number("RSI", "safelow", safelow, 0.0, 100.0)
        # Backtrader maps the safe values back to a relative strength and applies the usual
        # formula; doing the same keeps the roundings identical.
        self._high_rs = _rs_for(self.safehigh)
        self._low_rs = _rs_for(self.safelow)
        self.min_period = period + 1  # the first value has no previous one to move from
        self.value: float | None = None
        self.ready = False
        self._prev: float | None = None
        self._up = SMMA(period)
        self._down = SMMA(period)

    def update(self, value: float) -> float | None:
        """Take the next close; return the RSI, None until period + 1 values were seen.

        Raises:
            ZeroDivisionError: safediv=False and the average down move is zero (the state has
                advanced; the next update goes on from there).
        """
        prev = self._prev
        self._prev = value
        if prev is None:
            return None
        up_move = value - prev
        down_move = prev - value
        # Branches, not max(): this is the hot path, and a call costs ~10x a comparison.
        up = self._up.update(up_move if up_move > 0.0 else 0.0)  # noqa: FURB136
        down = self._down.update(down_move if down_move > 0.0 else 0.0)  # noqa: FURB136
        if up is None or down is None:
            return None
        if down == 0.0:
            if not self.safediv:
                raise ZeroDivisionError(
                    f"RSI({self.period}): the average down move is 0 (average up move {up!r}), so RS is undefined; "
                    "Backtrader's default raises here too; pass safediv=True for safehigh/safelow"
                )
            rs = self._low_rs if up == 0.0 else self._high_rs
        else:
            rs = up / down
        rsi = 100.0 - 100.0 / (1.0 + rs)
        self.value = rsi
        self.ready = True
        return rsi


class ATR:
    """Average true range: Wilder's SMMA of max(high, prev close) - min(low, prev close).

    Backtrader's ATR; the first bar has no true range, so it needs period + 1 bars.

    Args:
        period: smoothing period, an int >= 1 (default 14).

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ("_prev_close", "_smma", "min_period", "period", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("ATR", "period", period)
        self.min_period = period + 1
        self.value: float | None = None
        self.ready = False
        self._prev_close: float | None = None
        self._smma = SMMA(period)

    def update(self, high: float, low: float, close: float) -> float | None:
        """Take the next bar; return the ATR, None until period + 1 bars were seen."""
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            return None
        # Branches, not max()/min(): this is the hot path, and a call costs ~10x a comparison.
        true_high = high if high > prev_close else prev_close  # noqa: FURB136
        true_low = low if low < prev_close else prev_close  # noqa: FURB136
        atr = self._smma.update(true_high - true_low)
        if atr is None:
            return None
        self.value = atr
        self.ready = True
        return atr


class StdDev:
    """Population standard deviation of the last `period` values (Backtrader's StdDev default).

    Keeps the window's sum and sum of squares relative to a shift, the window value nearest the
    mean at the last exact re-sum. Re-summed every RESUM_INTERVAL_MIN updates (drift), and as soon
    as the rounding noise could matter next to the variance (see RESUM_NOISE_RATIO), so a window
    that turns quiet after big moves is exact again and a constant window reads exactly 0.0.
    `mean` is the window mean that goes with `value`.

    Args:
        period: window length, an int >= 1 (Backtrader's default 20).

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = (
        "_moved",
        "_resum_every",
        "_shift",
        "_sum",
        "_sumsq",
        "_until_resum",
        "_window",
        "mean",
        "min_period",
        "period",
        "ready",
        "value",
    )

    def __init__(self, period: int = 20) -> None:
        self.period = _check_period("StdDev", "period", period)
        self.min_period = period
        self.value: float | None = None
        self.mean: float | None = None
        self.ready = False
        self._window: deque[float] = deque(maxlen=period)
        self._shift = 0.0
        self._sum = 0.0  # sum of (x - shift) over the window
        self._sumsq = 0.0  # sum of (x - shift) ** 2 over the window
        self._moved = 0.0  # squares moved in and out of _sumsq since the last re-sum: its error scale
        self._resum_every = max(period, RESUM_INTERVAL_MIN)
        self._until_resum = self._resum_every

    def update(self, value: float) -> float | None:
        """Take the next value; return the window's standard deviation, None until ready."""
        window = self._window
        if self.ready:
            shift = self._shift
            new = value - shift
            old = window[0] - shift
            window.append(value)  # maxlen drops the oldest
            change = new - old
            self._sum += change
            change_sq = change * (new + old)  # new**2 - old**2 with one rounding less
            self._sumsq += change_sq
            self._moved += change_sq if change_sq > 0.0 else -change_sq  # a branch is cheaper than abs()
            self._until_resum -= 1
            if not self._until_resum:
                self._resum()
        else:
            window.append(value)
            if len(window) < self.period:
                return None
            self._resum()
            self.ready = True
        period = self.period
        offset = self._sum / period
        variance = self._sumsq / period - offset * offset
        if self._moved + self._sumsq > RESUM_NOISE_RATIO * period * variance:
            # After a re-sum _moved is 0 and _sumsq <= 2 n variance (offset**2 <= variance), or
            # both are exactly 0 (a constant window): this cannot fire twice in a row.
            self._resum()
            offset = self._sum / period
            variance = self._sumsq / period - offset * offset
        stddev = math.sqrt(variance) if variance > 0.0 else 0.0  # rounding can dip below zero
        self.mean = self._shift + offset
        self.value = stddev
        return stddev

    def _resum(self) -> None:
        """Recompute the sums exactly from the window, shifted to the window value nearest its mean.

        A window value, so that a constant window sums to exact zeros; the nearest to the mean,
        so that the offset is at most one standard deviation (were every value further from the
        mean than that, the variance would be larger).
        """
        window = self._window
        mean = math.fsum(window) / len(window)
        shift = min(window, key=lambda x: abs(x - mean))
        self._shift = shift
        self._sum = math.fsum([x - shift for x in window])
        self._sumsq = math.fsum([(x - shift) * (x - shift) for x in window])
        self._moved = 0.0
        self._until_resum = self._resum_every


class BollingerBands:
    """Bollinger bands: mid = SMA(period), top/bot = mid +/- devfactor * StdDev(period).

    Backtrader's BollingerBands (period 20, devfactor 2.0). `update` returns mid; `mid`, `top` and
    `bot` hold the last bands.

    Args:
        period: window length, an int >= 1 (default 20).
        devfactor: band width in standard deviations, a finite number >= 0 (default 2.0).

    Raises:
        ValueError: if a parameter is out of range.
    """

    __slots__ = ("_stddev", "bot", "devfactor", "mid", "min_period", "period", "ready", "top", "value")

    def __init__(self, period: int = 20, devfactor: float = 2.0) -> None:
        self.period = _check_period("BollingerBands", "period", period)
        self.devfactor = _check_number("BollingerBands", "devfactor", devfactor, 0.0)
        self.min_period = period
        self.value: float | None = None
        self.mid: float | None = None
        self.top: float | None = None
        self.bot: float | None = None
        self.ready = False
        self._stddev = StdDev(period)

    def update(self, value: float) -> float | None:
        """Take the next value; return the middle band, None until `period` values were seen."""
        stddev = self._stddev.update(value)
        if stddev is None:
            return None
        mid = self._stddev.mean
        assert mid is not None  # StdDev sets its mean with its first value
        dev = self.devfactor * stddev
        self.top = mid + dev
        self.bot = mid - dev
        self.mid = mid
        self.value = mid
        self.ready = True
        return mid


class MACD:
    """Moving average convergence/divergence: EMA(fast) - EMA(slow) and an EMA(signal) of it.

    Backtrader's MACD (12/26/9) with MACDHisto's histogram = macd - signal. Ready, like
    Backtrader's indicator, once the signal line has a value: max(fast, slow) + signal - 1 inputs.
    The `macd` line itself is set from input max(fast, slow) on, as Backtrader's line is.
    `update` returns the macd line.

    Args:
        fast_period: the fast EMA's period, an int >= 1 (default 12).
        slow_period: the slow EMA's period, an int >= 1 (default 26).
        signal_period: the signal EMA's period, an int >= 1 (default 9).

    Raises:
        ValueError: if a period is not an int >= 1.
    """

    __slots__ = ("_fast", "_signal", "_slow", "histogram", "macd", "min_period", "ready", "signal", "value")

    def __init__(self, fast_period: int = 12, slow_period: int = 26, signal_period: int = 9) -> None:
        _check_period("MACD", "fast_period", fast_period)
        _check_period("MACD", "slow_period", slow_period)
        _check_period("MACD", "signal_period", signal_period)
        self.min_period = max(fast_period, slow_period) + signal_period - 1
        self.value: float | None = None
        self.macd: float | None = None
        self.signal: float | None = None
        self.histogram: float | None = None
        self.ready = False
        self._fast = EMA(fast_period)
        self._slow = EMA(slow_period)
        self._signal = EMA(signal_period)

    def update(self, value: float) -> float | None:
        """Take the next value; return the macd line, None until the signal line is ready."""
        fast = self._fast.update(value)
        slow = self._slow.update(value)
        if fast is None or slow is None:
            return None
        macd = fast - slow
        self.macd = macd
        signal = self._signal.update(macd)
        if signal is None:
            return None
        self.signal = signal
        self.histogram = macd - signal
        self.value = macd
        self.ready = True
        return macd


class CrossOver:
    """+1.0 when `a` crosses above `b`, -1.0 when it crosses below, else 0.0 (Backtrader's CrossOver).

    A cross up is a > b now while the last non-zero a - b before this input was negative (and the
    mirror for a cross down). A first difference of exactly zero seeds as zero, so no cross can
    be seen until a and b have differed. Needs two inputs (min_period 2).
    """

    __slots__ = ("_last_diff", "min_period", "ready", "value")

    def __init__(self) -> None:
        self.min_period = 2
        self.value: float | None = None
        self.ready = False
        self._last_diff: float | None = None  # the last non-zero a - b (or the first a - b)

    def update(self, a: float, b: float) -> float | None:
        """Take the next pair; return +1.0, -1.0 or 0.0, None on the first pair."""
        diff = a - b
        last = self._last_diff
        if last is None:
            self._last_diff = diff
            return None
        if diff != 0.0:
            self._last_diff = diff
        if last < 0.0 and a > b:
            cross = 1.0
        elif last > 0.0 and a < b:
            cross = -1.0
        else:
            cross = 0.0
        self.value = cross
        self.ready = True
        return cross


class _WindowExtreme:
    """Highest and Lowest: a monotonic deque of (input index, sign x value), O(1) amortized.

    Lowest keeps negated values, so one loop finds both extremes (negation is exact for floats).
    """

    __slots__ = ("_count", "_queue", "_sign", "min_period", "period", "ready", "value")

    def __init__(self, owner: str, period: int, sign: float) -> None:
        self.period = _check_period(owner, "period", period)
        self.min_period = period
        self.value: float | None = None
        self.ready = False
        self._sign = sign
        self._count = 0  # inputs seen; the index of the next one
        # Candidates only: each is better than everything after it, so the front is the extreme.
        # Every input enters and leaves once, hence O(1) amortized per update.
        self._queue: deque[tuple[int, float]] = deque()

    def update(self, value: float) -> float | None:
        """Take the next value; return the window's extreme, None until `period` values were seen."""
        index = self._count
        self._count = index + 1
        signed = self._sign * value
        queue = self._queue
        while queue and queue[-1][1] <= signed:
            queue.pop()
        queue.append((index, signed))
        if queue[0][0] <= index - self.period:
            queue.popleft()
        if index + 1 < self.period:
            return None
        extreme = self._sign * queue[0][1]
        self.value = extreme
        self.ready = True
        return extreme


class Highest(_WindowExtreme):
    """The largest of the last `period` values (Backtrader's Highest / MaxN), O(1) amortized.

    Args:
        period: window length, an int >= 1.

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ()

    def __init__(self, period: int) -> None:
        super().__init__("Highest", period, 1.0)


class Lowest(_WindowExtreme):
    """The smallest of the last `period` values (Backtrader's Lowest / MinN), O(1) amortized.

    Args:
        period: window length, an int >= 1.

    Raises:
        ValueError: if `period` is not an int >= 1.
    """

    __slots__ = ()

    def __init__(self, period: int) -> None:
        super().__init__("Lowest", period, -1.0)


class Chain:
    """Indicators in series: each stage's output is the next stage's input.

    `Chain(RSI(14), SMA(5))` is the SMA of the RSI, ready after 15 + 5 - 1 inputs (Backtrader's
    minperiod for the same composition). Stages should be fresh: the chain feeds them itself.

    Args:
        *stages: two or more single-input indicators.

    Raises:
        ValueError: if fewer than two stages are given.
    """

    __slots__ = ("min_period", "stages")

    def __init__(self, *stages: Indicator) -> None:
        if len(stages) < 2:
            raise ValueError(f"Chain: needs at least two stages, got {len(stages)}")
        self.stages = stages
        self.min_period = sum(stage.min_period for stage in stages) - (len(stages) - 1)

    @property
    def value(self) -> float | None:
        """The last stage's last value; None until ready."""
        return self.stages[-1].value

    @property
    def ready(self) -> bool:
        """Whether the last stage has a value."""
        return self.stages[-1].ready

    def update(self, value: float) -> float | None:
        """Feed `value` through the stages; return the last stage's new value, None until ready."""
        out: float | None = value
        for stage in self.stages:
            assert out is not None  # a stage that returned None stopped the loop below
            out = stage.update(out)
            if out is None:
                return None
        return out
