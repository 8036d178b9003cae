"""Series to one deterministic stream of market-data envelopes, in the sequencer's merge order.

Theory of operation. The backtest orders its inputs by `Sequencer.merge_key`: (event time,
source priority, venue, instrument, producer id, producer seq). Every envelope here has the same
source (MARKET_DATA) and each series has its own (venue, instrument, producer id), and within a
series (event time, producer seq) only grows. So the whole key reduces to (event time, rank of
the series by (venue, instrument, producer id)). heapq.merge gives exactly that when the series
are passed in rank order with the event time as key: it is documented as equivalent to
`sorted(chain(*iterables), key=...)`, and sorted is stable, so equal times keep iterable order.
(This measured faster than merging (time, rank, envelope) tuples: no tuple per row, and the key
is a C attrgetter.) Lazy throughout: a million bars are never a million envelopes at once.

Envelope building is the hot path: one Bar (or Trade) and one Envelope per row, keyword
arguments, nothing else.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Iterator
from typing import Final

from schemas.enums import Side, Source
from schemas.envelope import Envelope
from schemas.market import Bar, Trade
from schemas.types import MAX_ID_CHARS
from services.data.series import BarSeries, TradeSeries
from services.data.times import format_interval

__all__ = ["bar_envelopes", "merge", "producer_ids", "series_envelopes", "trade_envelopes"]

Series = BarSeries | TradeSeries

_SIDES: Final = (None, Side.BUY, Side.SELL)  # indexed by series.AGGRESSOR_*
_event_time: Final = operator.attrgetter("event_time_ns")


def bar_envelopes(series: BarSeries, producer_id: str) -> Iterator[Envelope]:
    """One MARKET_DATA envelope per bar, event time = close time, producer_seq from 1."""
    source, venue, instrument, interval_ns = Source.MARKET_DATA, series.venue, series.instrument, series.interval_ns
    for seq, (t, o, h, lo, c, v) in enumerate(
        zip(series.close_time_ns, series.open, series.high, series.low, series.close, series.volume, strict=True),
        1,
    ):
        yield Envelope(
            source=source,
            producer_id=producer_id,
            producer_seq=seq,
            event_time_ns=t,
            payload=Bar(open=o, high=h, low=lo, close=c, volume=v, interval_ns=interval_ns),
            venue=venue,
            instrument=instrument,
        )


def trade_envelopes(series: TradeSeries, producer_id: str) -> Iterator[Envelope]:
    """One MARKET_DATA envelope per trade, event time = trade time, producer_seq from 1."""
    source, venue, instrument = Source.MARKET_DATA, series.venue, series.instrument
    sides = series.aggressor if series.aggressor is not None else bytes(len(series))
    for seq, (t, p, q, side) in enumerate(zip(series.time_ns, series.price, series.quantity, sides, strict=True), 1):
        yield Envelope(
            source=source,
            producer_id=producer_id,
            producer_seq=seq,
            event_time_ns=t,
            payload=Trade(price=p, quantity=q, aggressor=_SIDES[side]),
            venue=venue,
            instrument=instrument,
        )


def series_envelopes(series: Series, producer_id: str) -> Iterator[Envelope]:
    """The envelopes of one series: the fast path when there is nothing to merge."""
    if isinstance(series, BarSeries):
        return bar_envelopes(series, producer_id)
    return trade_envelopes(series, producer_id)


def producer_ids(series: tuple[Series, ...], prefix: str = "file") -> list[str]:
    """f"{prefix}:{instrument}", plus ":{interval}" (bars) or ":trades" where instruments repeat.

    Raises:
        ValueError: two series would share a producer id, or an id is too long.
    """
    counts: dict[str, int] = {}
    for s in series:
        counts[s.instrument] = counts.get(s.instrument, 0) + 1
    ids = []
    for s in series:
        pid = f"{prefix}:{s.instrument}"
        if counts[s.instrument] > 1:
            pid += f":{format_interval(s.interval_ns)}" if isinstance(s, BarSeries) else ":trades"
        if not 0 < len(pid) <= MAX_ID_CHARS:
            raise ValueError(f"producer id {pid!r} must have 1 to {MAX_ID_CHARS} characters; use a shorter prefix")
        ids.append(pid)
    if len(set(ids)) != len(ids):
        repeated = sorted({pid for pid in ids if ids.count(pid) > 1})
        raise ValueError(f"series would share producer id(s) {', '.join(repeated)}: merge each series once")
    return ids


def merge(*series: Series, producer_prefix: str = "file") -> Iterator[Envelope]:
    """Merge series into one lazy stream ordered exactly as `Sequencer.merge_key` orders it.

    Each series gets producer id f"{producer_prefix}:{instrument}" (with ":{interval}" or
    ":trades" when several series share an instrument) and producer_seq from 1; seq_id and
    ingest_time_ns stay 0 for the sequencer to assign.

    Raises:
        ValueError: no series, or two series would share a producer id.
    """
    if not series:
        raise ValueError("merge needs at least one series")
    for s in series:
        for name, value in (("instrument", s.instrument), ("venue", s.venue)):
            if not 0 < len(value) <= MAX_ID_CHARS:
                raise ValueError(
                    f"series {s.source or s.instrument!r}: {name} {value!r} must have 1 to {MAX_ID_CHARS} characters"
                )
    ids = producer_ids(series, producer_prefix)
    if len(series) == 1:
        return series_envelopes(series[0], ids[0])
    # Rank order = merge-key order of the constant part of the key (same source for all).
    order = sorted(range(len(series)), key=lambda i: (series[i].venue, series[i].instrument, ids[i]))
    return heapq.merge(*(series_envelopes(series[i], ids[i]) for i in order), key=_event_time)
