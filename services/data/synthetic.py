"""Synthetic one-minute bars: a seeded random walk with volatility regimes and trends.

Made for benchmarks and the bundled sample data (examples/data/make_sample.py), not to look like
any real market. Determinism across machines matters more than realism: the walk uses only
`random.random()` / `randrange` (Mersenne Twister, integer-exact) and IEEE + - * / (correctly
rounded everywhere), no libm functions (exp, log, cos differ in the last bit between C
libraries), so a seed gives the same bars on every platform.

The model, per bar: the return is drift + vol * z with z a sum of two uniforms (zero mean, unit
variance; tails do not matter here); the close is the previous close times (1 + return); high and
low extend beyond open/close by a random part of vol; volume scales with vol. Regimes (calm,
normal, wild; up, down or flat drift) last 500 to 4,000 bars, so trends are long enough for a
moving-average crossover to trade, and a weak pull to the start price keeps levels plausible.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from typing import Final

from services.data.series import BarSeries
from services.sequencer.core.config import InstrumentSpec

__all__ = ["DEFAULT_START_NS", "synthetic_bars", "walk"]

DEFAULT_START_NS: Final = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
_MINUTE_NS: Final = 60_000_000_000
_Z_SCALE: Final = 2.449489742783178  # sqrt(6): a sum of two uniforms has variance 1/6
# (volatility per bar, drift per bar): drifts of about +-1.5 % a day at 1,440 bars a day.
_VOLS: Final = (0.0004, 0.0008, 0.0016)
_DRIFTS: Final = (-0.00001, 0.0, 0.00001)
_REGIME_BARS: Final = (500, 4_000)
_PULL_TO_START: Final = 0.00002  # per bar, times the relative distance from the start price
_HIGH_LOW_SPREAD: Final = 0.6  # high/low reach up to this many vols beyond open/close


def synthetic_bars(
    n: int,
    instrument: str,
    spec: InstrumentSpec,
    seed: int,
    *,
    start_price: int | None = None,
    mean_volume: int | None = None,
    start_ns: int = DEFAULT_START_NS,
    interval_ns: int = _MINUTE_NS,
) -> BarSeries:
    """`n` bars of a seeded random walk, in the spec's units (pure Python, ~1.5 s per million).

    Args:
        n: number of bars.
        instrument: instrument id of the series.
        spec: venue, price_decimals and size_decimals of the instrument.
        seed: the random seed; the same seed gives the same bars on every machine.
        start_price: first open in price units (default 30,000 in display units).
        mean_volume: average volume per bar in size units (default 10 in display units).
        start_ns: open time of the first bar; bars are back to back from there.
        interval_ns: bar length.

    Raises:
        ValueError: n negative, or a start price / volume that is not positive.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    price0 = start_price if start_price is not None else 30_000 * 10**spec.price_decimals
    volume0 = mean_volume if mean_volume is not None else 10 * 10**spec.size_decimals
    if price0 <= 0 or volume0 <= 0:
        raise ValueError(f"start_price and mean_volume must be positive, got {price0} and {volume0}")
    close_time: array[int] = array("q", range(start_ns + interval_ns, start_ns + (n + 1) * interval_ns, interval_ns))
    opens: array[int] = array("q", bytes(8 * n))
    highs: array[int] = array("q", bytes(8 * n))
    lows: array[int] = array("q", bytes(8 * n))
    closes: array[int] = array("q", bytes(8 * n))
    volumes: array[int] = array("q", bytes(8 * n))
    for i, (o, h, lo, c, v) in enumerate(walk(seed, price0, volume0, n)):
        opens[i] = o
        highs[i] = h
        lows[i] = lo
        closes[i] = c
        volumes[i] = v
    return BarSeries(
        instrument=instrument,
        venue=spec.venue,
        interval_ns=interval_ns,
        close_time_ns=close_time,
        open=opens,
        high=highs,
        low=lows,
        close=closes,
        volume=volumes,
        source=f"synthetic:seed={seed}",
    )


def walk(seed: int, start_price: int, mean_volume: int, count: int | None) -> Iterator[tuple[int, int, int, int, int]]:
    """(open, high, low, close, volume) of the seeded walk, bar after bar; `count` None: no end.

    The one implementation of the model (module docstring): `synthetic_bars` collects it into a
    series, the synthetic live feed (`services.feeds.synthetic_feed`) sends it bar by bar.
    """
    rng = random.Random(seed)
    rnd, randrange = rng.random, rng.randrange
    anchor = float(start_price)
    price = anchor  # the walk, in price units (float); ticks are rounded from it
    last_close = start_price
    vol = drift = 0.0
    regime_left = 0
    i = 0
    while count is None or i < count:
        i += 1
        if regime_left == 0:
            vol = _VOLS[randrange(3)]
            drift = _DRIFTS[randrange(3)]
            regime_left = randrange(*_REGIME_BARS)
        regime_left -= 1
        z = (rnd() + rnd() - 1.0) * _Z_SCALE
        price *= 1.0 + drift + vol * z - _PULL_TO_START * (price - anchor) / anchor
        o = last_close
        c = round(price)
        if c < 1:
            c = 1
        # Branches, not max()/min(): this loop runs a million times in benchmarks.
        top, bottom = (o, c) if o > c else (c, o)
        h = round(top * (1.0 + vol * _HIGH_LOW_SPREAD * rnd()))
        lo = round(bottom * (1.0 - vol * _HIGH_LOW_SPREAD * rnd()))
        if h < top:
            h = top
        if lo > bottom:
            lo = bottom
        if lo < 1:
            lo = 1
        v = round(mean_volume * (vol / _VOLS[1]) * (0.2 + 1.6 * rnd()))
        last_close = c
        yield o, h, lo, c, v
