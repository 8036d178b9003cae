"""A file feed's envelopes: exactly the market-data envelopes the in-process backtest journals.

Theory of operation. The bus backtest must write the same journal as the in-process backtest of
the same profile, byte for byte, so a file feed builds its envelopes with the very code the
in-process backtest uses, and nothing else:

1. Series: each data spec of the feed is loaded like `tradebus backtest --data` loads it
   (`load_bars` with the instrument's spec, then `resample` to the spec's own @INTERVAL or else
   the feed's `resample`), with instrument specs from the profile's settings
   (`services.deploy.run_config.backtest_config_for`, which every process of a group uses).
2. Producer ids: what `services.data.merge.producer_ids` gives when the in-process backtest
   merges the series of *every* file feed of the profile, in profile order
   (`load_profile_series`): ``file:<instrument>``, plus ``:<interval>`` when the instrument
   appears in more than one series of the profile (even in another feed). Producer seqs count
   from 1 per series, as in-process.
3. Order: `services.data.merge.merge` (event time, then venue, instrument, producer id). Each feed
   sends its own series in that order; the sequencer merges the feeds by the same key.

The journal then differs from the in-process one only where the sequencer puts things (seq ids,
ingest times), which the sequencer assigns the same way in both paths.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from schemas.envelope import Envelope
from schemas.types import MAX_ID_CHARS
from services.backtest.config import BacktestConfig, instrument_spec_for
from services.backtest.wire_limits import check_wire_limits
from services.data import BarSeries, format_interval, load_bars, merge, producer_ids, resample, series_envelopes
from services.deploy.profile import FileFeed, Profile

__all__ = [
    "FILE_PRODUCER_PREFIX",
    "FileFeedStream",
    "feed_producer_ids",
    "file_feed_stream",
    "load_feed_series",
    "load_profile_series",
]

FILE_PRODUCER_PREFIX: Final = "file"
"""Producer id prefix of file data, the one the in-process backtest uses (`merge`'s default)."""

_event_time: Final = operator.attrgetter("event_time_ns")


def load_feed_series(feed: FileFeed, config: BacktestConfig) -> list[BarSeries]:
    """The bar series of one file feed, in the order of its data specs.

    Raises:
        DataError: a file cannot be read or holds bad data, or a resample interval does not fit.
    """
    out: list[BarSeries] = []
    for spec in feed.data:
        bars = load_bars(spec.path, spec.instrument, instrument_spec_for(spec.instrument, config))
        interval = spec.interval or feed.resample
        if interval:
            bars = resample(bars, interval)
        out.append(bars)
    return out


def load_profile_series(profile: Profile, config: BacktestConfig) -> list[BarSeries]:
    """Every file feed's series, in profile order: the data of the in-process backtest of `profile`.

    Raises:
        DataError: as `load_feed_series`.
    """
    return [s for feed in profile.feeds if isinstance(feed, FileFeed) for s in load_feed_series(feed, config)]


def feed_producer_ids(profile: Profile, feed: FileFeed, series: list[BarSeries]) -> list[str]:
    """The producer ids of `feed`'s series, as `producer_ids(load_profile_series(profile))` names them.

    Only the instrument names of the other feeds are needed (from their data specs), so no other
    feed's files are read.

    Raises:
        ValueError: an id longer than the wire allows, or two series of this feed sharing an id.
    """
    assert len(series) == len(feed.data)
    counts: dict[str, int] = {}
    for other in profile.feeds:
        if isinstance(other, FileFeed):
            for spec in other.data:
                counts[spec.instrument] = counts.get(spec.instrument, 0) + 1
    ids: list[str] = []
    for s in series:
        pid = f"{FILE_PRODUCER_PREFIX}:{s.instrument}"
        if counts.get(s.instrument, 0) > 1:
            pid += f":{format_interval(s.interval_ns)}"
        if not 0 < len(pid) <= MAX_ID_CHARS:
            raise ValueError(f"producer id {pid!r} must have 1 to {MAX_ID_CHARS} characters")
        ids.append(pid)
    if len(set(ids)) != len(ids):
        repeated = sorted({pid for pid in ids if ids.count(pid) > 1})
        raise ValueError(f"feed {feed.name}: series would share producer id(s) {', '.join(repeated)}")
    return ids


@dataclass(frozen=True)
class FileFeedStream:
    """A file feed's loaded data, ready to be sent (as many times as asked: a restarted run
    starts over).

    Attributes:
        producers: the producer ids, one per data spec, in data-spec order.
        total: how many envelopes the stream holds.
    """

    producers: tuple[str, ...]
    total: int
    series: tuple[BarSeries, ...] = field(repr=False)

    def envelopes(self) -> Iterator[Envelope]:
        """A new, lazy iterator over the envelopes in send order (seq_id and ingest time 0)."""
        series, ids = self.series, list(self.producers)
        if ids == producer_ids(series, FILE_PRODUCER_PREFIX):
            return merge(*series, producer_prefix=FILE_PRODUCER_PREFIX)
        # An instrument of this feed also appears in another feed: the in-process merge of the
        # whole profile gives it an interval suffix that merging this feed alone would not. Same
        # merge as `merge` (its docstring explains the rank order), with the profile-wide ids.
        order = sorted(range(len(series)), key=lambda i: (series[i].venue, series[i].instrument, ids[i]))
        return heapq.merge(*(series_envelopes(series[i], ids[i]) for i in order), key=_event_time)


def file_feed_stream(profile: Profile, feed: FileFeed, config: BacktestConfig) -> FileFeedStream:
    """Load `feed`'s files and check them against the wire limits.

    Args:
        config: the profile's settings (`services.deploy.run_config.backtest_config_for`).

    Raises:
        DataError: as `load_feed_series`.
        ValueError: a producer id problem, or a value outside the wire limits
            (`WireLimitError` is a ValueError).
    """
    series = load_feed_series(feed, config)
    ids = feed_producer_ids(profile, feed, series)
    for s, pid in zip(series, ids, strict=True):
        check_wire_limits(s, pid)
    return FileFeedStream(tuple(ids), sum(len(s) for s in series), tuple(series))
