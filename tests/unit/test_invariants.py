"""Invariant checks fire, name what broke, and follow the configured policy."""

from __future__ import annotations

import pytest

from schemas import IntentRejected, InvariantBroken, RiskFlagChanged
from services.sequencer.core import InvariantViolation, SequenceError, SequencerCore
from services.sequencer.scenario import Scenario, demo_config

PX = 4_200_000


def _core_with_open_order(policy: str) -> tuple[SequencerCore, Scenario]:
    core = SequencerCore(demo_config(invariant_policy=policy))
    sc = Scenario()
    sc.trade("BTC-USD", PX)
    sc.place("o1")
    sc.accept("o1")
    for env in sc.sequenced():
        core.apply(env)
    return core, sc


def _next(sc: Scenario, core: SequencerCore, build) -> list:  # type: ignore[no-untyped-def]
    """Emit one more envelope and apply it with the next seq id."""
    build(sc)
    env = sc.sequenced()[-1]
    return core.apply(env)


def test_raise_policy_stops_on_cash_that_does_not_match_its_ledger() -> None:
    core, sc = _core_with_open_order("raise")
    core.book.portfolio.cash["USD"].balance += 1  # a bug elsewhere moved cash without a fill
    with pytest.raises(InvariantViolation) as info:
        _next(sc, core, lambda s: s.fill("o1", "t1", 5000, PX))
    assert info.value.invariant == "cash_conservation"
    assert "USD" in info.value.detail and info.value.seq_id == 4


def test_halt_policy_publishes_and_refuses_new_orders() -> None:
    core, sc = _core_with_open_order("halt")
    core.book.portfolio.positions.setdefault("BTC-USD", core.book.portfolio.position("BTC-USD")).quantity += 7
    out = _next(sc, core, lambda s: s.fill("o1", "t1", 5000, PX))
    broken = [o for o in out if isinstance(o, InvariantBroken)]
    assert [b.invariant for b in broken] == ["position_conservation"]
    assert any(isinstance(o, RiskFlagChanged) and o.enabled for o in out)
    out = _next(sc, core, lambda s: s.place("o2"))
    assert [o.reason.value for o in out if isinstance(o, IntentRejected)] == ["halted"]


def test_log_policy_publishes_and_keeps_trading() -> None:
    core, sc = _core_with_open_order("log")
    core.book.portfolio.cash["USD"].fees += 3  # a ledger entry with no cash movement
    out = _next(sc, core, lambda s: s.fill("o1", "t1", 5000, PX))
    assert [o.invariant for o in out if isinstance(o, InvariantBroken)] == ["cash_conservation"]
    assert not core.book.halted
    out = _next(sc, core, lambda s: s.place("o2"))
    assert not [o for o in out if isinstance(o, IntentRejected)]


def test_a_venue_fill_far_beyond_the_limit_breaks_no_negative_balance() -> None:
    core = SequencerCore(demo_config(invariant_policy="log"))
    sc = Scenario()
    sc.trade("BTC-USD", PX)
    sc.place("o1", quantity=20_0000, price=PX)  # 20 BTC at 42,000 = 840,000 USD of 1,000,000
    sc.fill("o1", "t1", 20_0000, 10 * PX)  # the venue fills at ten times the limit
    out = [o for env in sc.sequenced() for o in core.apply(env)]
    assert "no_negative_balance_without_margin" in [o.invariant for o in out if isinstance(o, InvariantBroken)]


def test_seq_ids_must_be_contiguous() -> None:
    core = SequencerCore(demo_config())
    sc = Scenario()
    sc.trade("BTC-USD", PX)
    sc.trade("BTC-USD", PX)
    first, second = sc.sequenced()
    with pytest.raises(SequenceError, match="seq_id 2 does not follow last applied seq_id 0"):
        core.apply(second)
    core.apply(first)
    with pytest.raises(SequenceError):
        core.apply(first)
