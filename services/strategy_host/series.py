"""The series a Backtrader-style strategy binds, rebuilt in the host from names and the profile.

In process, the runner calls `strategy.bind_series(series)` with the run's `BarSeries`, and the
adapter (`services.strategy.btcompat.BacktraderAdapter.bind_series`) reads only two attributes of
each: `instrument` and `interval_ns` (series without an integer `interval_ns`, trade series, are
skipped). A lockstep `StrategyHelloRequest` carries only the instrument names, in the run's
order, so the host builds minimal stand-ins (`SeriesRef`) and takes each interval from the
profile: a synthetic feed's `interval`, a data file's `@INTERVAL` or its feed's `resample`; for a
file with none of those, the interval is inferred from the file as `load_bars` infers it (the
profile guarantees the file exists on this host; it is read once, at the hello).

A name that appears several times (one instrument at two intervals) takes the profile's entries
for that instrument in profile order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from services.data.times import parse_interval
from services.deploy.profile import FileFeed, Profile
from services.sequencer.core.config import CoreConfig

__all__ = ["SeriesError", "SeriesRef", "profile_series"]


class SeriesError(ValueError):
    """The series of a hello cannot be matched with the profile's feeds."""


@dataclass(frozen=True, slots=True)
class SeriesRef:
    """What `bind_series` reads of a series: its instrument and bar interval."""

    instrument: str
    interval_ns: int


@dataclass(frozen=True, slots=True)
class _Entry:
    instrument: str
    interval_ns: int | None  # None: infer from `path`
    path: Path | None


def _entries(profile: Profile) -> list[_Entry]:
    out: list[_Entry] = []
    for feed in profile.feeds:
        if isinstance(feed, FileFeed):
            for spec in feed.data:
                interval = spec.interval or feed.resample
                out.append(_Entry(spec.instrument, parse_interval(interval) if interval else None, spec.path))
        else:
            out.append(_Entry(feed.instrument, parse_interval(feed.interval), None))
    return out


def profile_series(profile: Profile, core_config: CoreConfig, names: Sequence[str]) -> list[SeriesRef]:
    """One `SeriesRef` per name, in order.

    Raises:
        SeriesError: a name is not (or not that often) an instrument of the profile's feeds, or
            its interval cannot be inferred from its file.
    """
    unused = _entries(profile)
    refs: list[SeriesRef] = []
    for name in names:
        entry = next((e for e in unused if e.instrument == name), None)
        if entry is None:
            raise SeriesError(f"series {name!r} is not (or not that often) an instrument of the profile's feeds")
        unused.remove(entry)
        interval = entry.interval_ns
        if interval is None:
            interval = _infer_interval(entry, core_config)
        refs.append(SeriesRef(name, interval))
    return refs


def _infer_interval(entry: _Entry, core_config: CoreConfig) -> int:
    from services.data import DataError, load_bars  # pyarrow: only when a file must be read

    assert entry.path is not None
    spec = core_config.instruments.get(entry.instrument)
    if spec is None:
        raise SeriesError(f"series {entry.instrument!r} is not an instrument of the core configuration")
    try:
        return load_bars(entry.path, entry.instrument, spec).interval_ns
    except (DataError, OSError) as exc:
        raise SeriesError(f"series {entry.instrument!r}: cannot infer its interval from {entry.path}: {exc}") from exc
