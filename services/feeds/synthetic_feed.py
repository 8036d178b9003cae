"""A synthetic live feed: seeded random-walk bars, one envelope per bar, for paper mode.

Theory of operation. The bars are those of `services.data.synthetic.synthetic_bars` (same model,
same draws from `random.Random(seed)`, same integer rounding), produced one at a time so the
feed can run without end: bar i of this feed equals bar i of ``synthetic_bars(n, ...)`` for the
same seed, start price and times, for every n > i (a unit test holds the two together). A seed
therefore gives the same prices on every machine and every run; only the times depend on when
the feed starts:

- bar i closes at ``start_ns + (i + 1) * interval_ns`` (its event time);
- `start_ns` is given (tests, replays) or taken from the wall clock when the feed starts, rounded
  down to a whole interval (`live_start_ns`), so bars close on interval boundaries like an
  exchange's.

Sent at pace 1.0 (`services.feeds.pacing`), bar i goes out when the wall clock reaches its close
time: a live feed. The producer id is ``synthetic:<instrument>``; producer_seq is i + 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Final

from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.market import Bar
from schemas.types import MAX_ID_CHARS
from services.data.synthetic import DEFAULT_START_NS, walk
from services.data.times import parse_interval
from services.deploy.profile import SyntheticFeed
from services.sequencer.core.config import InstrumentSpec

__all__ = [
    "DEFAULT_START_NS",
    "SYNTHETIC_PRODUCER_PREFIX",
    "live_start_ns",
    "price_units",
    "synthetic_envelopes",
    "synthetic_producer_id",
    "synthetic_walk",
]

SYNTHETIC_PRODUCER_PREFIX: Final = "synthetic"

# The model itself is `services.data.synthetic.walk`, shared with `synthetic_bars`.


def synthetic_producer_id(instrument: str) -> str:
    """``synthetic:<instrument>``.

    Raises:
        ValueError: the id would be longer than the wire allows (instrument over 54 characters).
    """
    pid = f"{SYNTHETIC_PRODUCER_PREFIX}:{instrument}"
    if not 0 < len(pid) <= MAX_ID_CHARS:
        raise ValueError(f"producer id {pid!r} must have 1 to {MAX_ID_CHARS} characters: use a shorter instrument name")
    return pid


def price_units(price: Decimal, decimals: int) -> int:
    """A display price as a count of the instrument's price unit (10**-decimals).

    Raises:
        ValueError: not a whole number of units, or not positive.
    """
    units = price.scaleb(decimals)
    if units != units.to_integral_value() or units <= 0:
        raise ValueError(f"start price {price} is not a positive whole number of 1e-{decimals} price units")
    return int(units)


def live_start_ns(now_ns: int, interval_ns: int) -> int:
    """The wall-clock start of a live synthetic feed: `now_ns` rounded down to a whole interval."""
    assert interval_ns > 0
    return now_ns - now_ns % interval_ns


def synthetic_walk(
    seed: int,
    *,
    start_price: int,
    mean_volume: int,
    start_ns: int,
    interval_ns: int,
    count: int | None,
) -> Iterator[tuple[int, Bar]]:
    """(close time, bar) of the seeded walk, one at a time; `count` None runs without end.

    Args:
        seed: the seed of `random.Random`; the same seed gives the same bars everywhere.
        start_price: first open, in price units (> 0).
        mean_volume: average volume per bar, in size units (> 0).
        start_ns: open time of the first bar.
        interval_ns: bar length (> 0).
        count: how many bars, or None for no end.
    """
    if start_price <= 0 or mean_volume <= 0:
        raise ValueError(f"start_price and mean_volume must be positive, got {start_price} and {mean_volume}")
    if interval_ns <= 0:
        raise ValueError(f"interval_ns must be positive, got {interval_ns}")
    if count is not None and count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    for i, (o, h, lo, c, v) in enumerate(walk(seed, start_price, mean_volume, count), start=1):
        yield start_ns + i * interval_ns, Bar(open=o, high=h, low=lo, close=c, volume=v, interval_ns=interval_ns)


def synthetic_envelopes(feed: SyntheticFeed, spec: InstrumentSpec, *, start_ns: int) -> Iterator[Envelope]:
    """The feed's envelopes: MARKET_DATA bars of `feed.instrument` on `spec.venue`, lazily.

    Args:
        feed: the profile's feed (seed, interval, start price in display units, count).
        spec: the instrument's spec (venue, price and size decimals).
        start_ns: open time of the first bar (`live_start_ns` for a live feed).

    Raises:
        ValueError: a start price that is not a whole number of price units, or a producer id
            that is too long (raised at once, not at the first `next`).
    """
    producer = synthetic_producer_id(feed.instrument)
    interval_ns = parse_interval(feed.interval)
    walk = synthetic_walk(
        feed.seed,
        start_price=price_units(feed.start_price, spec.price_decimals),
        mean_volume=10 * 10**spec.size_decimals,  # synthetic_bars' default: 10 in display units
        start_ns=start_ns,
        interval_ns=interval_ns,
        count=None if feed.count == "unlimited" else feed.count,
    )
    return _envelopes(walk, producer, spec.venue, feed.instrument)


def _envelopes(walk: Iterator[tuple[int, Bar]], producer: str, venue: str, instrument: str) -> Iterator[Envelope]:
    source = Source.MARKET_DATA
    for seq, (t, bar) in enumerate(walk, 1):
        yield Envelope(
            source=source,
            producer_id=producer,
            producer_seq=seq,
            event_time_ns=t,
            payload=bar,
            venue=venue,
            instrument=instrument,
        )
