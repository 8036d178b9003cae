"""Linked orders at the simulated venue: brackets (parent and children) and OCO groups."""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import OrderReplacedReport
from services.matching import SimulatedVenue, VenueReport
from tests.unit.matching_support import (
    BTC,
    at,
    bar,
    cancel,
    core_config,
    fill_prices,
    flat,
    kinds,
    order,
    reason_of,
    trade,
    venue,
)


def _bracket(v: SimulatedVenue, tif: str = "gtc", parent_type: str = "market", **parent: Any) -> list[VenueReport]:
    """Buy 100 with a take-profit at 110 and a stop-loss at 90."""
    out = v.submit(order("p", order_type=parent_type, tif=tif, **parent), at(0))
    out += v.submit(order("tp", side="sell", order_type="limit", price=110, parent_client_order_id="p"), at(0))
    out += v.submit(order("sl", side="sell", order_type="stop", stop_price=90, parent_client_order_id="p"), at(0))
    return out


def test_children_are_accepted_but_wait_for_their_parent() -> None:
    v = venue()
    assert kinds(_bracket(v)) == ["accepted", "accepted", "accepted"]
    assert v.open_order_count == 3
    out = v.on_bar(BTC, bar(100, 115, 85, 100), at(1))  # would hit both children: they are not working yet
    assert fill_prices(out) == [(100, 100)]
    assert kinds(out) == ["fill"]


def test_children_work_from_the_next_bar_after_the_parent_filled() -> None:
    v = venue()
    _bracket(v)
    v.on_bar(BTC, flat(100), at(1))
    out = v.on_bar(BTC, bar(100, 111, 99, 105), at(2))
    assert fill_prices(out, "tp") == [(100, 110)]
    assert kinds(out) == ["fill", "cancelled"]
    assert reason_of(out, "sl") == "oco"
    assert v.open_order_count == 0


def test_first_sibling_in_arrival_order_wins_on_a_bar_that_hits_both() -> None:
    v = venue()
    _bracket(v)
    v.on_bar(BTC, flat(100), at(1))
    out = v.on_bar(BTC, bar(100, 115, 85, 100), at(2))  # no path assumed: tp arrived first
    assert kinds(out) == ["fill", "cancelled"]
    assert fill_prices(out, "tp") == [(100, 110)]
    assert reason_of(out, "sl") == "oco"


def test_a_partial_child_fill_cancels_its_siblings_at_once() -> None:
    v = venue(volume_share="0.5")
    _bracket(v)
    v.on_bar(BTC, bar(100, 100, 100, 100, volume=1000), at(1))
    out = v.on_bar(BTC, bar(95, 96, 85, 88, volume=100), at(2))  # stop-loss fills 50
    assert kinds(out) == ["fill", "cancelled"]
    assert reason_of(out, "tp") == "oco"
    assert fill_prices(v.on_bar(BTC, bar(89, 90, 88, 89, volume=1000), at(3)), "sl") == [(50, 89)]


def test_a_parent_cancelled_with_nothing_filled_takes_its_children() -> None:
    v = venue()
    _bracket(v, parent_type="limit", price=50)
    out = v.cancel(cancel("p"), at(0))
    assert kinds(out) == ["cancelled", "cancelled", "cancelled"]
    assert [r.report.reason for r in out] == ["by test", "parent cancelled", "parent cancelled"]
    assert v.open_order_count == 0


def test_a_parent_that_expires_unfilled_takes_its_children() -> None:
    v = venue()
    _bracket(v, tif="gtd", parent_type="limit", price=50, expire_time_ns=at(1))
    out = v.advance(at(2))
    assert kinds(out) == ["expired", "cancelled", "cancelled"]
    assert out[1].report.reason == "parent cancelled"


def test_a_parent_ending_partly_filled_shrinks_and_activates_its_children() -> None:
    v = venue(volume_share="0.5")
    _bracket(v, tif="ioc")
    out = v.on_bar(BTC, bar(100, 100, 100, 100, volume=60), at(1))  # parent fills 30, rest cancelled
    assert kinds(out) == ["fill", "cancelled", "replaced", "replaced"]
    resized = [r.report for r in out if isinstance(r.report, OrderReplacedReport)]
    assert [(r.client_order_id, r.quantity, r.price) for r in resized] == [("tp", 30, 110), ("sl", 30, None)]
    nxt = v.on_bar(BTC, bar(100, 112, 99, 111, volume=1000), at(2))
    assert fill_prices(nxt, "tp") == [(30, 110)]


def test_a_child_arriving_after_its_parent_filled_works_from_the_next_event() -> None:
    v = venue()
    v.submit(order("p"), at(0))
    v.on_bar(BTC, flat(100), at(1))
    child = order("tp", side="sell", order_type="limit", price=101, parent_client_order_id="p")
    assert kinds(v.submit(child, at(1))) == ["accepted"]
    assert fill_prices(v.on_bar(BTC, flat(102), at(2))) == [(100, 102)]  # gapped through: the open


def test_a_child_of_a_parent_that_ended_unfilled_is_rejected() -> None:
    v = venue()
    v.submit(order("p", order_type="limit", price=50), at(0))
    v.cancel(cancel("p"), at(0))
    out = v.submit(order("c", side="sell", order_type="limit", price=60, parent_client_order_id="p"), at(0))
    assert reason_of(out, "c") == "parent 'p' was cancelled with nothing filled"


def test_cancelling_a_child_leaves_its_sibling_alone() -> None:
    v = venue()
    _bracket(v)
    out = v.cancel(cancel("tp"), at(0))
    assert kinds(out) == ["cancelled"]
    v.on_bar(BTC, flat(100), at(1))
    assert fill_prices(v.on_bar(BTC, bar(95, 96, 85, 88), at(2)), "sl") == [(100, 90)]


def test_children_on_trades_work_from_the_next_print() -> None:
    v = venue()
    _bracket(v)
    out = v.on_trade(BTC, trade(80), at(0) + 1)  # parent fills at 80, through the stop-loss
    assert fill_prices(out) == [(100, 80)]
    assert fill_prices(v.on_trade(BTC, trade(80), at(0) + 2), "sl") == [(100, 80)]


# ---------------------------------------------------------------------- OCO groups


def test_an_oco_fill_cancels_the_other_members() -> None:
    v = venue()
    v.submit(order("a", order_type="limit", price=95, oco_group="g"), at(0))
    v.submit(order("b", side="sell", order_type="limit", price=105, oco_group="g"), at(0))
    v.submit(order("c", order_type="limit", price=94, oco_group="g"), at(0))
    v.submit(order("other", order_type="limit", price=80, oco_group="h"), at(0))
    out = v.on_bar(BTC, bar(100, 101, 94, 96), at(1))  # a and c both touched: a arrived first
    assert kinds(out) == ["fill", "cancelled", "cancelled"]
    assert fill_prices(out, "a") == [(100, 95)]
    assert [r.report.client_order_id for r in out[1:]] == ["b", "c"]
    assert v.open_order_count == 1  # "other" is in another group


def test_cancelling_an_oco_member_cancels_nothing_else() -> None:
    v = venue()
    v.submit(order("a", order_type="limit", price=95, oco_group="g"), at(0))
    v.submit(order("b", side="sell", order_type="limit", price=105, oco_group="g"), at(0))
    assert kinds(v.cancel(cancel("a"), at(0))) == ["cancelled"]
    assert fill_prices(v.on_bar(BTC, bar(100, 106, 99, 101), at(1)), "b") == [(100, 105)]


def test_oco_groups_are_per_strategy() -> None:
    v = venue()
    v.submit(order("a", order_type="limit", price=95, oco_group="g"), at(0))
    other = order("b", order_type="limit", price=95, oco_group="g")
    v.submit(msgspec.structs.replace(other, strategy_id="s2"), at(0))
    out = v.on_bar(BTC, bar(100, 101, 94, 96), at(1))
    assert kinds(out) == ["fill", "fill"]


def test_linked_orders_need_a_venue_that_holds_them() -> None:
    v = venue(core_config(linked_orders=False))
    out = v.submit(order("a", order_type="limit", price=95, oco_group="g"), at(0))
    assert reason_of(out, "a") == "linked orders (parent_client_order_id, oco_group) are not offered at venue SIM"
