"""Resampling bars and merging series into the sequencer's merge order."""

from __future__ import annotations

import itertools
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.enums import Side, Source
from schemas.envelope import Envelope
from schemas.market import Bar, Trade
from services.data import (
    AGGRESSOR_BUY,
    AGGRESSOR_SELL,
    AGGRESSOR_UNKNOWN,
    BarSeries,
    TradeSeries,
    merge,
    producer_ids,
    resample,
    series_envelopes,
)
from services.sequencer.core.sequencing import Sequencer
from tests.unit.data_samples import MINUTE, T0

FIELDS = ("close_time_ns", "open", "high", "low", "close", "volume")


def _bars(open_minutes: list[int], ohlcv: list[tuple[int, int, int, int, int]], instrument: str = "X") -> BarSeries:
    def q(values: list[int]) -> array[int]:
        return array("q", values)

    return BarSeries(
        instrument=instrument,
        venue="SIM",
        interval_ns=MINUTE,
        close_time_ns=q([T0 + (m + 1) * MINUTE for m in open_minutes]),
        open=q([b[0] for b in ohlcv]),
        high=q([b[1] for b in ohlcv]),
        low=q([b[2] for b in ohlcv]),
        close=q([b[3] for b in ohlcv]),
        volume=q([b[4] for b in ohlcv]),
    )


def test_resample_by_hand() -> None:
    # One-minute bars opening at minutes 3..8 and 12 (T0 is a multiple of 5 minutes since the epoch).
    bars = _bars(
        [3, 4, 5, 6, 7, 8, 12],
        [(10, 12, 9, 11, 1), (11, 15, 10, 14, 2), (14, 14, 13, 13, 3), (13, 20, 12, 19, 4),
         (19, 19, 5, 6, 5), (6, 8, 6, 7, 6), (7, 7, 7, 7, 7)],
    )
    five = resample(bars, "5m")
    assert five.interval_ns == 5 * MINUTE
    # Buckets [0,5) partial, [5,10) full, [10,15) partial; each closes at its bucket's end.
    assert [(t - T0) // MINUTE for t in five.close_time_ns] == [5, 10, 15]
    assert five.open == array("q", [10, 14, 7])
    assert five.high == array("q", [15, 20, 7])
    assert five.low == array("q", [9, 5, 7])
    assert five.close == array("q", [14, 7, 7])
    assert five.volume == array("q", [3, 18, 7])
    same = resample(bars, "1m")
    for name in FIELDS:
        assert getattr(same, name) == getattr(bars, name)
    assert same.open is not bars.open  # a copy, not an alias of the input's arrays


@st.composite
def bar_series(draw: st.DrawFn) -> BarSeries:
    gaps = draw(st.lists(st.integers(1, 7), min_size=1, max_size=60))
    start = draw(st.integers(0, 500))
    minutes = list(itertools.accumulate([start, *gaps[1:]]))
    rows = []
    for _ in minutes:
        low = draw(st.integers(1, 1_000))
        high = low + draw(st.integers(0, 50))
        rows.append((draw(st.integers(low, high)), high, low, draw(st.integers(low, high)), draw(st.integers(0, 99))))
    return _bars(minutes, rows)


@settings(max_examples=60)
@given(bar_series(), st.integers(1, 8), st.integers(1, 8))
def test_resampling_by_k_then_m_equals_resampling_by_k_times_m(bars: BarSeries, k: int, m: int) -> None:
    twice = resample(resample(bars, k * MINUTE), k * m * MINUTE)
    once = resample(bars, k * m * MINUTE)
    for name in FIELDS:
        assert getattr(twice, name) == getattr(once, name), name
    assert twice.interval_ns == once.interval_ns == k * m * MINUTE
    assert sum(once.volume) == sum(bars.volume)
    assert max(once.high) == max(bars.high) and min(once.low) == min(bars.low)
    assert once.open[0] == bars.open[0] and once.close[-1] == bars.close[-1]
    assert all(t % once.interval_ns == 0 for t in once.close_time_ns)


def _trades(instrument: str, times: list[int], sides: bytes | None) -> TradeSeries:
    n = len(times)
    return TradeSeries(
        instrument=instrument,
        venue="V",
        time_ns=array("q", times),
        price=array("q", [100 + i for i in range(n)]),
        quantity=array("q", [1 + i for i in range(n)]),
        aggressor=sides,
    )


def test_envelopes_of_one_series() -> None:
    bars = _bars([0, 1], [(10, 12, 9, 11, 1), (11, 15, 10, 14, 2)], instrument="BTC-USD")
    first, second = merge(bars)
    assert first == Envelope(
        source=Source.MARKET_DATA,
        producer_id="file:BTC-USD",
        producer_seq=1,
        event_time_ns=T0 + MINUTE,
        payload=Bar(open=10, high=12, low=9, close=11, volume=1, interval_ns=MINUTE),
        venue="SIM",
        instrument="BTC-USD",
    )
    assert (second.producer_seq, second.event_time_ns, second.seq_id) == (2, T0 + 2 * MINUTE, 0)
    trades = _trades("ETH-USD", [5, 5, 9], bytes([AGGRESSOR_BUY, AGGRESSOR_SELL, AGGRESSOR_UNKNOWN]))
    envs = list(series_envelopes(trades, "p"))
    assert [e.payload for e in envs] == [
        Trade(price=100, quantity=1, aggressor=Side.BUY),
        Trade(price=101, quantity=2, aggressor=Side.SELL),
        Trade(price=102, quantity=3, aggressor=None),
    ]
    assert [e.producer_seq for e in envs] == [1, 2, 3]


def test_producer_ids() -> None:
    one = _bars([0], [(1, 1, 1, 1, 1)], instrument="A")
    five = resample(one, "5m")
    trades = _trades("A", [1], None)
    other = _bars([0], [(1, 1, 1, 1, 1)], instrument="B")
    assert producer_ids((one, other)) == ["file:A", "file:B"]
    assert producer_ids((one, five, trades, other), "csv") == ["csv:A:1m", "csv:A:5m", "csv:A:trades", "csv:B"]
    with pytest.raises(ValueError, match="series would share producer id"):
        list(merge(one, one))
    with pytest.raises(ValueError, match="at most|must have 1 to 64 characters"):
        producer_ids((one,), "p" * 70)
    with pytest.raises(ValueError, match="at least one series"):
        merge()


@st.composite
def series_sets(draw: st.DrawFn) -> list[BarSeries | TradeSeries]:
    kinds = draw(
        st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from([1, 2, 0])), min_size=1, max_size=5,
                 unique=True)
    )  # (instrument, interval in minutes or 0 for trades): unique, so producer ids are unique
    venues = {"A": "V2", "B": "V1", "C": "V1"}  # venue sorts before instrument in the merge key
    out: list[BarSeries | TradeSeries] = []
    for instrument, minutes in kinds:
        if minutes == 0:
            times = sorted(draw(st.lists(st.integers(0, 20), max_size=12)))  # equal times allowed
            sides = bytes(draw(st.lists(st.integers(0, 2), min_size=len(times), max_size=len(times))))
            trades = _trades(instrument, [T0 + t * MINUTE for t in times], sides)
            trades.venue = venues[instrument]
            out.append(trades)
            continue
        opens = sorted(draw(st.sets(st.integers(0, 20), max_size=12)))
        bars = _bars([o * minutes for o in opens], [(5, 6, 4, 5, 1)] * len(opens), instrument)
        bars.interval_ns = minutes * MINUTE
        bars.close_time_ns = array("q", [T0 + (o + 1) * minutes * MINUTE for o in opens])
        bars.venue = venues[instrument]
        out.append(bars)
    return out


@settings(max_examples=60)
@given(series_sets())
def test_merge_order_equals_sorting_by_the_sequencer_merge_key(series: list[BarSeries | TradeSeries]) -> None:
    ids = producer_ids(tuple(series))
    expected = sorted(
        itertools.chain.from_iterable(series_envelopes(s, pid) for s, pid in zip(series, ids, strict=True)),
        key=Sequencer().merge_key,
    )
    assert list(merge(*series)) == expected
    assert list(merge(*reversed(series))) == expected  # argument order does not matter


def test_merge_is_lazy() -> None:
    # Two million bars would take seconds and gigabytes to build at once; the first few take nothing.
    n = 1_000_000

    def flat(instrument: str) -> BarSeries:
        zeros = array("q", bytes(8 * n))
        times = array("q", range(T0 + MINUTE, T0 + (n + 1) * MINUTE, MINUTE))
        return BarSeries(instrument, "SIM", MINUTE, times, zeros, zeros, zeros, zeros, zeros)

    first = list(itertools.islice(merge(flat("B"), flat("A")), 4))
    assert [(e.instrument, e.producer_seq) for e in first] == [("A", 1), ("B", 1), ("A", 2), ("B", 2)]
