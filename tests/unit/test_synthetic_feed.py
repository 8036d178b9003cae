"""The synthetic feed: a seed fixes the bars; bars are valid and schema-valid; times follow the start."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec
import pytest

from bus.codec import INGRESS, FrameCodec
from schemas.codec import envelope_decoder
from schemas.enums import Source
from schemas.market import Bar
from services.backtest import BacktestConfig, instrument_spec_for
from services.data import synthetic_bars
from services.deploy.profile import SyntheticFeed
from services.feeds.pacing import Pacer
from services.feeds.synthetic_feed import (
    DEFAULT_START_NS,
    live_start_ns,
    price_units,
    synthetic_envelopes,
    synthetic_producer_id,
)

SPEC = instrument_spec_for("BTC-USD", BacktestConfig())
MINUTE = 60_000_000_000


def _feed(seed: int = 7, count: int | str = 500, **kw: object) -> SyntheticFeed:
    return SyntheticFeed.model_validate(
        {"name": "syn", "kind": "synthetic", "instrument": "BTC-USD", "seed": seed, "count": count, **kw}
    )


def test_same_seed_same_envelopes_other_seed_other_prices() -> None:
    a = list(synthetic_envelopes(_feed(), SPEC, start_ns=DEFAULT_START_NS))
    b = list(synthetic_envelopes(_feed(), SPEC, start_ns=DEFAULT_START_NS))
    c = list(synthetic_envelopes(_feed(seed=8), SPEC, start_ns=DEFAULT_START_NS))
    assert len(a) == 500 and a == b
    assert [e.payload for e in a] != [e.payload for e in c]
    # Only times depend on the start; the prices depend on the seed alone.
    later = list(synthetic_envelopes(_feed(), SPEC, start_ns=DEFAULT_START_NS + 7 * MINUTE))
    assert [e.payload for e in later] == [e.payload for e in a]
    assert [e.event_time_ns - 7 * MINUTE for e in later] == [e.event_time_ns for e in a]


def test_bars_are_those_of_synthetic_bars() -> None:
    """Same model, same draws: bar i is bar i of services.data.synthetic.synthetic_bars (regimes included)."""
    n = 5_000
    sent = list(synthetic_envelopes(_feed(seed=3, count=n), SPEC, start_ns=DEFAULT_START_NS))
    bars = synthetic_bars(n, "BTC-USD", SPEC, 3)
    got = [(e.event_time_ns, e.payload.open, e.payload.high, e.payload.low, e.payload.close, e.payload.volume)
           for e in sent if isinstance(e.payload, Bar)]  # fmt: skip
    want = list(zip(bars.close_time_ns, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True))
    assert got == want


def test_envelope_shape_times_and_validity() -> None:
    sent = list(synthetic_envelopes(_feed(seed=11, count=2_000, interval="5m"), SPEC, start_ns=DEFAULT_START_NS))
    decoder = envelope_decoder()
    codec = FrameCodec(INGRESS)
    for i, env in enumerate(sent):
        assert env.source is Source.MARKET_DATA
        assert (env.producer_id, env.producer_seq) == ("synthetic:BTC-USD", i + 1)
        assert (env.venue, env.instrument) == (SPEC.venue, "BTC-USD")
        assert env.event_time_ns == DEFAULT_START_NS + (i + 1) * 5 * MINUTE
        bar = env.payload
        assert isinstance(bar, Bar)
        assert bar.interval_ns == 5 * MINUTE
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume >= 0
        assert decoder.decode(msgspec.msgpack.encode(env)) == env
        assert codec.decode(codec.encode(env)) == env
    # Consecutive bars join: each opens at the previous close.
    bars = [e.payload for e in sent if isinstance(e.payload, Bar)]
    assert all(b.open == a.close for a, b in itertools.pairwise(bars))


def test_unlimited_runs_on_and_starts_like_a_finite_one() -> None:
    endless = synthetic_envelopes(_feed(count="unlimited"), SPEC, start_ns=DEFAULT_START_NS)
    head = list(itertools.islice(endless, 300))
    assert head == list(synthetic_envelopes(_feed(count=300), SPEC, start_ns=DEFAULT_START_NS))
    assert next(endless).producer_seq == 301


def test_start_price_in_display_units_and_a_tiny_price_stays_positive() -> None:
    first = next(synthetic_envelopes(_feed(start_price="123.45"), SPEC, start_ns=0)).payload
    assert isinstance(first, Bar) and first.open == 12_345
    tiny = list(synthetic_envelopes(_feed(start_price="0.01", count=3_000), SPEC, start_ns=0))
    assert all(isinstance(e.payload, Bar) and e.payload.low >= 1 for e in tiny)
    with pytest.raises(ValueError, match="whole number"):
        synthetic_envelopes(_feed(start_price="1.005"), SPEC, start_ns=0)
    assert price_units(Decimal(30000), 2) == 3_000_000


def test_live_start_is_on_an_interval_boundary() -> None:
    now = DEFAULT_START_NS + 3 * MINUTE + 12_345
    assert live_start_ns(now, MINUTE) == DEFAULT_START_NS + 3 * MINUTE
    assert live_start_ns(DEFAULT_START_NS, MINUTE) == DEFAULT_START_NS


def test_producer_id_fits_the_wire() -> None:
    assert synthetic_producer_id("ETH-USD") == "synthetic:ETH-USD"
    synthetic_producer_id("X" * 54)
    with pytest.raises(ValueError, match="64"):
        synthetic_producer_id("X" * 55)


def test_at_pace_1_a_live_bar_is_due_when_it_closes() -> None:
    """Sent through the feed's pacer at 1.0, bar i goes out (close_i - close_0) after bar 0."""
    start = live_start_ns(DEFAULT_START_NS + 17, MINUTE)
    sent = list(synthetic_envelopes(_feed(count=5), SPEC, start_ns=start))
    pacer, wall0 = Pacer(1.0), 5_000
    assert [pacer.due_ns(e.event_time_ns, wall0) for e in sent] == [wall0 + i * MINUTE for i in range(5)]
    fast = Pacer(1000.0)
    assert [fast.due_ns(e.event_time_ns, 0) for e in sent] == [i * MINUTE // 1000 for i in range(5)]
    assert all(Pacer("max").due_ns(e.event_time_ns, 42) == 42 for e in sent)
    # The first envelope anchored the schedule for good: asked later, the first bar is still due at 0.
    assert fast.anchored and fast.due_ns(sent[0].event_time_ns, 10**9) == 0
    unpaced = Pacer("max")
    unpaced.due_ns(sent[0].event_time_ns, 1)
    assert unpaced.unpaced and not unpaced.anchored
