"""Bars to coarser bars: buckets aligned to multiples of the new interval since the epoch (UTC).

A bar belongs to the bucket holding its open time (close - interval). Each bucket: open of its
first bar, highest high, lowest low, close of its last bar, summed volume; it closes at the
bucket's end, also when it is partial (data that starts or stops inside it), so every output
bar is exactly `interval` long and a 1h bar always closes on the hour. Empty buckets produce
no bar. Because buckets nest (a multiple of a multiple), resampling by k then by m equals
resampling by k*m.
"""

from __future__ import annotations

from array import array

from services.data.errors import DataError
from services.data.series import BarSeries
from services.data.times import format_interval, parse_interval

__all__ = ["resample"]


def resample(series: BarSeries, interval: str | int) -> BarSeries:
    """Aggregate bars to `interval` ("5m", "1h", "1d", ... or ns), a whole multiple of theirs.

    Raises:
        DataError: the interval is malformed, shorter than the series', or not a multiple of it.
    """
    where = series.source or series.instrument
    try:
        target = parse_interval(interval)
    except (ValueError, TypeError) as exc:
        raise DataError(where, str(exc), field="interval", value=str(interval)) from None
    source = series.interval_ns
    if target % source != 0:
        raise DataError(
            where,
            f"cannot resample {format_interval(source)} bars to {format_interval(target)}: "
            f"the new interval must be a whole multiple of {format_interval(source)}",
            field="interval",
            value=str(interval),
        )
    close_time: array[int] = array("q")
    opens: array[int] = array("q")
    highs: array[int] = array("q")
    lows: array[int] = array("q")
    closes: array[int] = array("q")
    volumes: array[int] = array("q")
    bucket = -1
    o = h = lo = c = v = 0
    for t, bo, bh, bl, bc, bv in zip(
        series.close_time_ns, series.open, series.high, series.low, series.close, series.volume, strict=True
    ):
        start = (t - source) // target * target
        if start != bucket:
            if bucket >= 0:
                close_time.append(bucket + target)
                opens.append(o)
                highs.append(h)
                lows.append(lo)
                closes.append(c)
                volumes.append(v)
            bucket, o, h, lo, c, v = start, bo, bh, bl, bc, bv
            continue
        if bh > h:
            h = bh
        if bl < lo:
            lo = bl
        c = bc
        v += bv
    if bucket >= 0:
        close_time.append(bucket + target)
        opens.append(o)
        highs.append(h)
        lows.append(lo)
        closes.append(c)
        volumes.append(v)
    return BarSeries(
        instrument=series.instrument,
        venue=series.venue,
        interval_ns=target,
        close_time_ns=close_time,
        open=opens,
        high=highs,
        low=lows,
        close=closes,
        volume=volumes,
        source=series.source,
        repairs=dict(series.repairs),
    )
