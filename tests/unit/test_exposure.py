"""No-margin accounts: pre-trade guards keep our intents inside the account, and a venue's fill
that takes it outside is booked, published and halts trading (never raised over)."""

from __future__ import annotations

from schemas import (
    AdjustCash,
    FillBooked,
    FillReport,
    IntentRejected,
    InvariantBroken,
    ReplaceOrder,
    ReportRefused,
    RiskFlagChanged,
)
from services.sequencer.core import SequencerCore
from services.sequencer.scenario import Scenario, demo_config

BTC = "BTC-USD"
PX = 4_200_000


def _run(sc: Scenario) -> tuple[SequencerCore, list]:  # type: ignore[type-arg]
    core = SequencerCore(demo_config(invariant_policy="raise"))
    return core, [o for env in sc.sequenced() for o in core.apply(env)]


def test_a_late_fill_that_makes_a_short_is_booked_and_halts_trading() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("b", quantity=1_0000)
    sc.fill("b", "t1", 1_0000, PX)
    sc.place("s1", side="sell", quantity=1_0000)
    sc.cancel("s1")
    sc.cancelled("s1")
    sc.place("s2", side="sell", quantity=1_0000)  # the position looks free again
    sc.fill("s2", "t2", 1_0000, PX)
    sc.fill("s1", "t3", 1_0000, PX)  # but the venue had traded s1 after all
    sc.place("b2", quantity=1_0000)
    core, out = _run(sc)
    assert [f.late for f in out if isinstance(f, FillBooked)] == [False, False, True]
    # short 1 BTC: the position is negative, and so are the BTC holdings it stands for
    assert [b.invariant for b in out if isinstance(b, InvariantBroken)] == [
        "no_short_without_margin",
        "no_negative_balance_without_margin",
    ]
    assert any(isinstance(o, RiskFlagChanged) and o.enabled and "exposure" in o.reason for o in out)
    assert core.book.portfolio.positions[BTC].quantity == -1_0000
    assert [r.reason.value for r in out if isinstance(r, IntentRejected)] == ["halted"]


def test_a_fee_in_the_base_currency_is_owed_against_the_position() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("b", quantity=1_0000)
    sc.report(FillReport(client_order_id="b", trade_id="t1", quantity=1_0000, price=PX, fee=10, fee_currency="BTC"))
    sc.place("all", side="sell", quantity=1_0000)  # 1 BTC minus a 1e-7 BTC fee is not 1 BTC
    sc.place("most", side="sell", quantity=9999)
    core, out = _run(sc)
    assert core.book.portfolio.cash["BTC"].balance == -10
    assert [r.reason.value for r in out if isinstance(r, IntentRejected)] == ["insufficient_position"]
    assert not [o for o in out if isinstance(o, InvariantBroken)]


def test_open_buys_keep_their_reservation_when_the_market_moves() -> None:
    sc = Scenario()
    sc.trade(BTC, 100_000_00)
    sc.place("m", quantity=10_0000, order_type="market", price=None)  # reserves 1,000,000 USD
    sc.trade(BTC, 50_000_00)
    sc.place("b", quantity=10_0000, price=50_000_00)  # would need 500,000 more: none is free
    _, out = _run(sc)
    assert [r.reason.value for r in out if isinstance(r, IntentRejected)] == ["insufficient_cash"]


def test_replace_and_withdrawal_cannot_take_committed_cash() -> None:
    sc = Scenario()
    sc.trade(BTC, 100_000_00)
    sc.place("b", quantity=6_0000, price=100_000_00)  # 600,000 of 1,000,000 USD
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="b", quantity=12_0000), producer="strategy-s1")
    sc.emit(AdjustCash(currency="USD", amount=-500_000 * 10**6), producer="control")
    sc.emit(AdjustCash(currency="USD", amount=-400_000 * 10**6), producer="control")
    core, out = _run(sc)
    assert [r.reason.value for r in out if isinstance(r, IntentRejected)] == ["insufficient_cash"]
    assert [r.reason.value for r in out if isinstance(r, ReportRefused)] == ["insufficient_cash"]
    assert core.book.portfolio.cash["USD"].balance == 600_000 * 10**6
