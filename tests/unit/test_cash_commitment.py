"""No-margin cash commitment while a replace is pending (found by test_core_stateful's model).

A buy replaced to a larger quantity at a lower price used to hold only the larger of its old and
new terms. But until the venue applies the replace, the order keeps filling at the old price; each
such unit costs the old price while the new terms counted it at the new one. A new buy could take
that difference, and after the replace landed as asked the open buys committed more than the cash:
an honest strategy and venue took the account negative (exposure published, trading halted).
"""

from __future__ import annotations

from typing import Any

from schemas import (
    FillBooked,
    IntentRejected,
    InvariantBroken,
    OrderReplacedReport,
    RejectReason,
    ReplaceOrder,
    RequestReplace,
)
from services.sequencer.core import SequencerCore
from services.sequencer.scenario import Scenario, demo_config

BTC = "BTC-USD"
OLD_PX = 100_000_00  # cents: 1 BTC (1_0000 size units) costs 1e11 micro-USD; the account holds 1e12
NEW_PX = 90_000_00


def _run(sc: Scenario) -> tuple[SequencerCore, list[Any]]:
    core = SequencerCore(demo_config(invariant_policy="raise"))
    return core, [o for env in sc.sequenced() for o in core.apply(env)]


def _replace_down_in_price_and_up_in_quantity() -> Scenario:
    sc = Scenario()
    sc.trade(BTC, OLD_PX)
    sc.place("b1", quantity=5_0000, price=OLD_PX)  # holds 5e11 of the 1e12
    sc.accept("b1")
    # 10 BTC at 90k (9e11): as checked before, only 4e11 more than held, which fits the free 5e11.
    # But 4 BTC may still fill at 100k before the venue applies it: 4e11 + 6 x 9e10 = 9.4e11,
    # and the whole old order may fill first: 5e11 + 5 x 9e10 = 9.5e11 to hold, leaving 5e10 free.
    sc.emit(
        ReplaceOrder(strategy_id="s1", client_order_id="b1", quantity=10_0000, price=NEW_PX), producer="strategy-s1"
    )
    return sc


def test_a_pending_replace_holds_the_fills_at_the_old_price() -> None:
    sc = _replace_down_in_price_and_up_in_quantity()
    sc.place("fits", quantity=5000, price=OLD_PX)  # 5e10: exactly what is free
    sc.place("over", quantity=1, price=OLD_PX)  # one more size unit: refused
    _, outs = _run(sc)
    assert [o.client_order_id for o in outs if isinstance(o, RequestReplace)] == ["b1"]
    refused = [(o.client_order_id, o.reason) for o in outs if isinstance(o, IntentRejected)]
    assert refused == [("over", RejectReason.INSUFFICIENT_CASH)]


def test_a_buy_cannot_take_the_cash_a_pending_replace_may_still_spend_at_the_old_price() -> None:
    # regression: b2 (1e11) was accepted against a hold of max(5e11, 9e11); b1 filled 4 BTC at the
    # old price, the venue applied the replace as asked, and everything filled within its terms:
    # USD ended at -4e10, with no late fill, fee or unasked terms to explain it
    sc = _replace_down_in_price_and_up_in_quantity()
    sc.place("b2", quantity=1_0000, price=OLD_PX)  # 1e11 > the 5e10 really free: refused
    sc.fill("b1", "t1", 4_0000, OLD_PX)  # the old terms still work at the venue
    sc.report(OrderReplacedReport(client_order_id="b1", quantity=10_0000, price=NEW_PX))
    sc.fill("b1", "t2", 6_0000, NEW_PX)
    sc.fill("b2", "t3", 1_0000, OLD_PX)  # refused as unknown now; booked (and -4e10 USD) before the fix
    core, outs = _run(sc)
    refused = [(o.client_order_id, o.reason) for o in outs if isinstance(o, IntentRejected)]
    assert refused == [("b2", RejectReason.INSUFFICIENT_CASH)]
    assert not [o for o in outs if isinstance(o, InvariantBroken)]
    assert [o.trade_id for o in outs if isinstance(o, FillBooked)] == ["t1", "t2"]
    assert core.book.portfolio.cash["USD"].balance == 10**12 - 4 * 10**11 - 6 * 9 * 10**10 >= 0
