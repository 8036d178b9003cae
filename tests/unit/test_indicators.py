"""Streaming indicators (services/strategy/indicators.py) against Backtrader, bar by bar.

Backtrader runs once per module on the same bars (a small CSV through GenericCSVData, streaming
mode) and records every indicator line per bar, NaN while warming up. Our indicators see the same
bars; every bar must agree within 1e-9 (absolute or relative) and the first ready bar must be the
same, as must `min_period` and Backtrader's `_minperiod`. Then: argument errors, hypothesis
properties against brute-force references, and the long-run drift of the rolling sums.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import backtrader as bt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.strategy.indicators import (
    ATR,
    EMA,
    MACD,
    RESUM_INTERVAL_MIN,
    RSI,
    SMA,
    SMMA,
    BollingerBands,
    Chain,
    CrossOver,
    Highest,
    Lowest,
    StdDev,
)

SEED = 20_240_603  # every random series here derives from this; a failure names the series
N_BARS = 500
REL_TOL = 1e-9
ABS_TOL = 1e-9

Bar = tuple[float, float, float, float]  # open, high, low, close


def make_bars(seed: int, n: int, flat_then_rising: bool = False) -> list[Bar]:
    """A random walk in integer cents (prices are exact ticks on the wire), as floats.

    A third of the moves are zero, so close == open ties occur (they matter to CrossOver). With
    `flat_then_rising`, 20 flat bars then 20 rising ones come first: RSI's zero-division cases.
    """
    rng = random.Random(seed)
    price = 10_000
    bars: list[Bar] = []
    for i in range(n):
        open_ = price
        if flat_then_rising and i < 20:
            close = price
        elif flat_then_rising and i < 40:
            close = price + rng.randint(1, 50)
        else:
            close = price + rng.choice((-1, 0, 1)) * rng.randint(0, 150)
        high = max(open_, close) + rng.randint(0, 60)
        low = min(open_, close) - rng.randint(0, 60)
        bars.append((open_ / 100, high / 100, low / 100, close / 100))
        price = close
    return bars


def write_csv(bars: list[Bar], path: Path) -> Path:
    """Bars as a CSV that GenericCSVData reads with its default column order."""
    day0 = dt.date(2020, 1, 1)
    lines = ["datetime,open,high,low,close,volume,openinterest"]
    for i, (o, h, lo, c) in enumerate(bars):
        lines.append(f"{day0 + dt.timedelta(days=i)},{o!r},{h!r},{lo!r},{c!r},1,0")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Case:
    """One indicator in both worlds: how to build it, feed it, and which lines correspond."""

    name: str
    backtrader: Callable[[Any], Any]  # data feed -> Backtrader indicator
    ours: Callable[[], Any]
    feed: Callable[[Any, Bar], float | None]  # (our indicator, bar) -> what update returned
    lines: dict[str, str] = field(default_factory=dict)  # our attribute -> Backtrader line name
    # StdDev-based: the window length, and every line's exact value on a constant window of x.
    # Backtrader computes E[x^2] - E[x]^2 there, which is rounding noise (about 1e-6 at these
    # prices), so on those bars the exact value is expected instead of Backtrader's.
    flat_window: int = 0
    flat_value: Callable[[float], float] = lambda x: x


def _close(ind: Any, bar: Bar) -> float | None:
    return ind.update(bar[3])  # type: ignore[no-any-return]


CASES = [
    Case("sma10", lambda d: bt.ind.SMA(d.close, period=10), lambda: SMA(10), _close),
    Case("sma_default", lambda d: bt.ind.SMA(d.close), lambda: SMA(), _close),
    Case("ema10", lambda d: bt.ind.EMA(d.close, period=10), lambda: EMA(10), _close),
    Case("ema_default", lambda d: bt.ind.EMA(d.close), lambda: EMA(), _close),
    Case("smma10", lambda d: bt.ind.SMMA(d.close, period=10), lambda: SMMA(10), _close),
    Case("rsi_default", lambda d: bt.ind.RSI(d.close), lambda: RSI(), _close),
    Case("rsi7", lambda d: bt.ind.RSI(d.close, period=7), lambda: RSI(7), _close),
    Case("atr_default", lambda d: bt.ind.ATR(d), lambda: ATR(), lambda ind, b: ind.update(b[1], b[2], b[3])),
    Case("atr5", lambda d: bt.ind.ATR(d, period=5), lambda: ATR(5), lambda ind, b: ind.update(b[1], b[2], b[3])),
    Case(
        "bbands_default",
        lambda d: bt.ind.BollingerBands(d.close),
        lambda: BollingerBands(),
        _close,
        {"mid": "mid", "top": "top", "bot": "bot"},
        flat_window=20,
    ),
    Case(
        "bbands_5_1.5",
        lambda d: bt.ind.BollingerBands(d.close, period=5, devfactor=1.5),
        lambda: BollingerBands(5, 1.5),
        _close,
        {"mid": "mid", "top": "top", "bot": "bot"},
        flat_window=5,
    ),
    Case(
        "macd_default",
        lambda d: bt.ind.MACDHisto(d.close),
        lambda: MACD(),
        _close,
        {"macd": "macd", "signal": "signal", "histogram": "histo"},
    ),
    Case(
        "macd_5_10_4",
        lambda d: bt.ind.MACDHisto(d.close, period_me1=5, period_me2=10, period_signal=4),
        lambda: MACD(5, 10, 4),
        _close,
        {"macd": "macd", "signal": "signal", "histogram": "histo"},
    ),
    Case("cross", lambda d: bt.ind.CrossOver(d.close, d.open), CrossOver, lambda ind, b: ind.update(b[3], b[0])),
    Case("highest10", lambda d: bt.ind.Highest(d.high, period=10), lambda: Highest(10), lambda i, b: i.update(b[1])),
    Case("lowest10", lambda d: bt.ind.Lowest(d.low, period=10), lambda: Lowest(10), lambda i, b: i.update(b[2])),
    Case("stddev_default", lambda d: bt.ind.StdDev(d.close), StdDev, _close, flat_window=20, flat_value=lambda x: 0.0),
    Case(
        "stddev5",
        lambda d: bt.ind.StdDev(d.close, period=5),
        lambda: StdDev(5),
        _close,
        flat_window=5,
        flat_value=lambda x: 0.0,
    ),
    Case("sma5_of_rsi", lambda d: bt.ind.SMA(bt.ind.RSI(d.close), period=5), lambda: Chain(RSI(), SMA(5)), _close),
]


def _line_value(line: Any) -> float | None:
    value = float(line[0])
    return None if math.isnan(value) else value


@dataclass
class BacktraderRun:
    """Backtrader's indicators and their lines per bar ("name" is line 0, "name.line" each named line)."""

    built: dict[str, Any]
    records: dict[str, list[float | None]]
    error: Exception | None  # what ended the run early; the records stop at the bar before it


def run_backtrader(csv: Path, make: dict[str, Callable[[Any], Any]]) -> BacktraderRun:
    """Run `make`'s indicators over the CSV bar by bar (as ours run), recording every line."""
    run = BacktraderRun({}, {}, None)

    class Recorder(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            for name, factory in make.items():
                run.built[name] = factory(self.data)

        def _record(self) -> None:
            for name, ind in run.built.items():
                run.records.setdefault(name, []).append(_line_value(ind.lines[0]))
                for line_name in ind.lines.getlinealiases():
                    line = getattr(ind.lines, line_name)
                    run.records.setdefault(f"{name}.{line_name}", []).append(_line_value(line))

        def prenext(self) -> None:
            self._record()

        def next(self) -> None:
            self._record()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.GenericCSVData(dataname=str(csv), dtformat="%Y-%m-%d", timeframe=bt.TimeFrame.Days))
    cerebro.addstrategy(Recorder)
    try:
        cerebro.run(runonce=False)
    except Exception as exc:  # noqa: BLE001  (the zero-division test compares where it stopped)
        run.error = exc
    return run


def assert_series_equal(name: str, ours: list[float | None], theirs: list[float | None]) -> None:
    assert len(ours) == len(theirs), name
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a is None or b is None:
            assert a is None and b is None, f"{name} bar {i}: ours {a!r}, Backtrader {b!r}"
        else:
            assert math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{name} bar {i}: ours {a!r}, Backtrader {b!r}"


def flat_bars(closes: list[float], window: int) -> list[int]:
    """The bars whose last `window` closes are all equal."""
    return [i for i in range(window - 1, len(closes)) if len(set(closes[i + 1 - window : i + 1])) == 1]


def first_ready(series: list[float | None]) -> int | None:
    return next((i for i, v in enumerate(series) if v is not None), None)


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return make_bars(SEED, N_BARS)


@pytest.fixture(scope="module")
def backtrader_run(bars: list[Bar], tmp_path_factory: pytest.TempPathFactory) -> BacktraderRun:
    csv = write_csv(bars, tmp_path_factory.mktemp("bars") / "bars.csv")
    run = run_backtrader(csv, {case.name: case.backtrader for case in CASES})
    assert run.error is None
    return run


def test_the_bars_exercise_ties_and_crosses(bars: list[Bar]) -> None:
    """The series must hold the cases that matter, or the parity below proves less than it says."""
    ties = sum(1 for o, _, _, c in bars if o == c)
    assert ties >= 50
    ours = CrossOver()
    crosses = [ours.update(c, o) for o, _, _, c in bars]
    assert crosses.count(1.0) >= 20 and crosses.count(-1.0) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_matches_backtrader_every_bar(case: Case, bars: list[Bar], backtrader_run: BacktraderRun) -> None:
    records = backtrader_run.records
    theirs = backtrader_run.built[case.name]
    ours = case.ours()
    assert ours.min_period == theirs._minperiod

    returned: list[float | None] = []
    attributes: dict[str, list[float | None]] = {attr: [] for attr in case.lines}
    for bar in bars:
        returned.append(case.feed(ours, bar))
        for attr in case.lines:
            attributes[attr].append(getattr(ours, attr))

    # What update returns is Backtrader's first line from the indicator's minperiod on.
    main = [v if i >= theirs._minperiod - 1 else None for i, v in enumerate(records[case.name])]
    expected = {attr: list(records[f"{case.name}.{line_name}"]) for attr, line_name in case.lines.items()}
    assert first_ready(returned) == theirs._minperiod - 1 == first_ready(main)
    if case.flat_window:
        closes = [bar[3] for bar in bars]
        for i in flat_bars(closes, case.flat_window):
            exact = case.flat_value(closes[i])
            main[i] = exact
            for series in expected.values():
                series[i] = exact
    assert_series_equal(case.name, returned, main)
    assert ours.ready and ours.value == returned[-1]
    for attr, series in expected.items():
        assert_series_equal(f"{case.name}.{attr}", attributes[attr], series)


def test_constant_windows_read_exactly_zero(bars: list[Bar], backtrader_run: BacktraderRun) -> None:
    """Where Backtrader's E[x^2] - E[x]^2 is rounding noise, ours is exact (the override above)."""
    closes = [bar[3] for bar in bars]
    flat = flat_bars(closes, 5)
    assert len(flat) >= 3  # the series has them, so the override is exercised
    sd = StdDev(5)
    ours = [sd.update(c) for c in closes]
    assert all(ours[i] == 0.0 for i in flat)
    theirs = backtrader_run.records["stddev5"]
    assert any(theirs[i] != 0.0 for i in flat)


def test_macd_line_is_set_before_the_signal(bars: list[Bar]) -> None:
    """The macd line exists from the slow EMA's first value; update waits for the signal."""
    macd = MACD(5, 10, 4)
    for i, (_, _, _, close) in enumerate(bars[:13]):
        returned = macd.update(close)
        assert (macd.macd is not None) == (i >= 9)
        assert (returned is not None) == (i >= 12) == macd.ready


def test_rsi_zero_division_matches_backtrader(tmp_path: Path) -> None:
    """Flat, then only rising: Backtrader's default raises where ours does; safediv reads 50 then 100."""
    bars = make_bars(SEED + 1, 80, flat_then_rising=True)
    csv = write_csv(bars, tmp_path / "flat.csv")

    theirs = run_backtrader(csv, {"rsi": lambda d: bt.ind.RSI(d.close)})
    assert isinstance(theirs.error, ZeroDivisionError)
    ours = RSI()
    raised_at = None
    for i, (_, _, _, close) in enumerate(bars):
        try:
            ours.update(close)
        except ZeroDivisionError as exc:
            raised_at = i
            assert "safediv" in str(exc)
            break
    # The first bar with a value: the average down move is zero from the start.
    assert raised_at == len(theirs.records["rsi"]) == ours.min_period - 1

    safe_run = run_backtrader(csv, {"rsi": lambda d: bt.ind.RSI(d.close, safediv=True)})
    assert safe_run.error is None
    safe = RSI(safediv=True)
    returned = [safe.update(c) for _, _, _, c in bars]
    assert safe.min_period == safe_run.built["rsi"]._minperiod
    assert_series_equal("rsi_safe", returned, safe_run.records["rsi"])
    assert returned[14:20] == [50.0] * 6  # flat: both averages zero -> safelow
    assert returned[35] == 100.0  # only rises in the window -> safehigh


def test_rsi_goes_on_after_a_zero_division() -> None:
    rsi = RSI(3)
    for price in (10.0, 11.0, 12.0):
        assert rsi.update(price) is None
    with pytest.raises(ZeroDivisionError, match=r"RSI\(3\)"):
        rsi.update(13.0)
    assert not rsi.ready
    value = rsi.update(12.0)
    assert value is not None and 0.0 < value < 100.0 and rsi.ready


# --- argument validation -------------------------------------------------------------------------

BAD_PERIODS = [0, -3, 2.5, True, "20", None]


@pytest.mark.parametrize("factory", [SMA, EMA, SMMA, RSI, ATR, StdDev, BollingerBands, Highest, Lowest])
@pytest.mark.parametrize("bad", BAD_PERIODS, ids=repr)
def test_bad_period_is_refused_naming_it(factory: Callable[[Any], Any], bad: object) -> None:
    with pytest.raises(ValueError, match="period") as info:
        factory(bad)
    assert repr(bad) in str(info.value)
    assert factory.__name__ in str(info.value)


@pytest.mark.parametrize("argument", ["fast_period", "slow_period", "signal_period"])
@pytest.mark.parametrize("bad", BAD_PERIODS, ids=repr)
def test_bad_macd_period_is_refused_naming_it(argument: str, bad: object) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        MACD(**{argument: bad})  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("make", "argument", "bad"),
    [
        (lambda v: BollingerBands(devfactor=v), "devfactor", -1.0),
        (lambda v: BollingerBands(devfactor=v), "devfactor", math.nan),
        (lambda v: BollingerBands(devfactor=v), "devfactor", math.inf),
        (lambda v: BollingerBands(devfactor=v), "devfactor", "2"),
        (lambda v: RSI(safehigh=v), "safehigh", 100.5),
        (lambda v: RSI(safelow=v), "safelow", -1.0),
    ],
)
def test_bad_number_is_refused_naming_it(make: Callable[[Any], Any], argument: str, bad: object) -> None:
    with pytest.raises(ValueError, match=argument) as info:
        make(bad)
    assert repr(bad) in str(info.value)


def test_other_bad_arguments() -> None:
    with pytest.raises(TypeError, match="safediv must be a bool, got 'yes'"):
        RSI(safediv="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least two stages, got 1"):
        Chain(SMA(3))


def test_period_one_is_the_identity() -> None:
    for ind in (SMA(1), EMA(1), SMMA(1), Highest(1), Lowest(1)):
        assert [ind.update(v) for v in (3.0, 1.5, 2.25)] == [3.0, 1.5, 2.25]
    assert [StdDev(1).update(v) for v in (3.0, 1.5)] == [0.0, 0.0]


# --- properties against brute-force references ---------------------------------------------------

# Prices as exact ticks scaled to floats, as strategies see them.
prices = st.lists(st.integers(min_value=1, max_value=10_000_000).map(lambda t: t / 100), min_size=1, max_size=120)
periods = st.integers(min_value=1, max_value=25)


def _scale(window: list[float]) -> float:
    return max(1.0, max(abs(v) for v in window))


@given(values=prices, period=periods)
def test_sma_is_the_mean_of_the_last_n(values: list[float], period: int) -> None:
    sma = SMA(period)
    for i, v in enumerate(values):
        out = sma.update(v)
        if i + 1 < period:
            assert out is None and not sma.ready
            continue
        window = values[i + 1 - period : i + 1]
        assert out is not None
        assert math.isclose(out, math.fsum(window) / period, rel_tol=REL_TOL, abs_tol=ABS_TOL * _scale(window))


@given(values=prices, period=periods)
def test_highest_and_lowest_are_the_window_extremes(values: list[float], period: int) -> None:
    highest, lowest = Highest(period), Lowest(period)
    for i, v in enumerate(values):
        hi, lo = highest.update(v), lowest.update(v)
        window = values[max(0, i + 1 - period) : i + 1]
        if i + 1 < period:
            assert hi is None and lo is None
        else:
            assert hi == max(window) and lo == min(window)


@given(values=prices, period=periods)
def test_stddev_is_the_population_stddev_of_the_window(values: list[float], period: int) -> None:
    sd = StdDev(period)
    for i, v in enumerate(values):
        out = sd.update(v)
        if i + 1 < period:
            assert out is None
            continue
        window = values[i + 1 - period : i + 1]
        assert out is not None and sd.mean is not None
        assert math.isclose(out, statistics.pstdev(window), rel_tol=REL_TOL, abs_tol=ABS_TOL * _scale(window))
        assert math.isclose(sd.mean, statistics.fmean(window), rel_tol=REL_TOL, abs_tol=ABS_TOL * _scale(window))


def crossover_reference(pairs: list[tuple[int, int]]) -> list[float | None]:
    """The definition, scanning history: the sign of the last non-zero a - b before this pair."""
    out: list[float | None] = [None]
    for i in range(1, len(pairs)):
        before = next((a - b for a, b in reversed(pairs[:i]) if a != b), 0)
        a, b = pairs[i]
        out.append(1.0 if before < 0 and a > b else -1.0 if before > 0 and a < b else 0.0)
    return out


@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_crossover_matches_its_definition(pairs: list[tuple[int, int]]) -> None:
    cross = CrossOver()
    assert [cross.update(float(a), float(b)) for a, b in pairs] == crossover_reference(pairs)


single_input = st.sampled_from(
    [
        lambda p: SMA(p),
        lambda p: EMA(p),
        lambda p: SMMA(p),
        lambda p: RSI(p, safediv=True),
        lambda p: StdDev(p),
        lambda p: Highest(p),
        lambda p: BollingerBands(p),
        lambda p: MACD(p, p + 2, p),
    ]
)


@given(
    stages=st.lists(st.tuples(single_input, st.integers(1, 6)), min_size=2, max_size=3),
    values=st.lists(st.integers(1, 1000).map(float), min_size=40, max_size=40),
)
def test_chain_min_period_is_its_first_ready_input(
    stages: list[tuple[Callable[[int], Any], int]], values: list[float]
) -> None:
    chain = Chain(*(make(period) for make, period in stages))
    outputs = [chain.update(v) for v in values]
    assert first_ready(outputs) in (chain.min_period - 1, None)
    assert (first_ready(outputs) is None) == (chain.min_period > len(values))
    assert chain.ready == (chain.min_period <= len(values)) and chain.value == outputs[-1]


# --- numerical stability over long runs ----------------------------------------------------------


def exact_window_stats(window: list[float]) -> tuple[float, float]:
    """Mean and population stddev, two-pass with exactly rounded sums."""
    mean = math.fsum(window) / len(window)
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in window) / len(window))


@pytest.mark.parametrize(
    ("series", "n"),
    [("random_walk", 1_000_000), ("large_offset", 200_000)],
)
def test_rolling_sums_do_not_drift(series: str, n: int) -> None:
    """Relative error < 1e-9 at sampled windows all along a long run (SMA and StdDev, period 20).

    large_offset is 1e8 + U(0, 1): the naive E[x^2] - E[x]^2 loses every digit there (checked
    below, so the series stays a hard one), while the shifted sums keep them.
    """
    rng = random.Random(SEED + n)
    if series == "random_walk":
        values, x = [], 100.0
        for _ in range(n):
            x += rng.gauss(0.0, 1.0)
            values.append(x)
    else:
        values = [1e8 + rng.random() for _ in range(n)]
    period = 20
    sma, sd = SMA(period), StdDev(period)
    worst_sma = worst_sd = 0.0
    for i, v in enumerate(values):
        mean_out, sd_out = sma.update(v), sd.update(v)
        if i % 997 == 0 and i >= period:
            mean, stddev = exact_window_stats(values[i + 1 - period : i + 1])
            assert mean_out is not None and sd_out is not None
            worst_sma = max(worst_sma, abs(mean_out - mean) / abs(mean))
            worst_sd = max(worst_sd, abs(sd_out - stddev) / stddev)
    assert worst_sma < 1e-9 and worst_sd < 1e-9, (worst_sma, worst_sd)

    if series == "large_offset":
        window = values[-period:]
        naive = math.sqrt(abs(math.fsum(v * v for v in window) / period - (math.fsum(window) / period) ** 2))
        assert abs(naive - exact_window_stats(window)[1]) / exact_window_stats(window)[1] > 1e-3


def test_stddev_is_exact_again_once_big_values_leave() -> None:
    """Rounding noise left by big values is dropped by a re-sum as soon as it could matter."""
    # Found by hypothesis: the noise of 0.81 leaving used to read 5.8e-9 on a constant window.
    sd = StdDev(3)
    outputs = [sd.update(v) for v in (0.81, 0.01, 0.01, 0.02, 0.01, 0.01, 0.01)]
    assert outputs[-1] == 0.0 and sd.mean == 0.01

    rng = random.Random(SEED)
    sd = StdDev(10)
    values = [1e9 * rng.random() for _ in range(10)] + [1.0 + rng.randint(0, 9) / 100 for _ in range(30)]
    for i, v in enumerate(values):
        out = sd.update(v)
        if i >= 19:  # the big values have all left the window
            mean, exact = exact_window_stats(values[i - 9 : i + 1])
            assert out is not None and sd.mean is not None
            assert math.isclose(out, exact, rel_tol=REL_TOL), (i, out, exact)
            assert math.isclose(sd.mean, mean, rel_tol=REL_TOL)


def test_stddev_constant_windows_after_big_moves_read_zero() -> None:
    sd = StdDev(4)
    levels = [0.5, 1e6 + 0.37, 3.3, 123_456.78, 0.01]
    for level in levels:
        for _ in range(3):
            sd.update(level * 1.5)  # a move away, then a flat stretch at `level`
        outputs = [sd.update(level) for _ in range(6)]
        assert outputs[-2:] == [0.0, 0.0] and sd.mean == level


def test_sma_is_exact_again_after_the_periodic_resum() -> None:
    """A value 1e17 times the others wipes out their digits in a rolling sum until the re-sum."""
    sma = SMA(3)
    sma.update(1e17)
    for i in range(RESUM_INTERVAL_MIN + 3):
        out = sma.update(1.0 + (i % 3))
    assert out == 2.0
