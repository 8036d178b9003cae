"""Linked orders in the core: a bracket child is checked against its parent, is covered by the
parent's risk checks, and children of one parent (or one OCO group) commit a position once."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import IntentRejected, SubmitOrder
from services.sequencer.core import SequencerCore
from services.sequencer.core.config import VenueSpec
from services.sequencer.scenario import Scenario, demo_config

BTC = "BTC-USD"
PX = 4_200_000
_SIM_LINKED = VenueSpec(
    order_types=("market", "limit", "stop", "stop_limit"),
    time_in_force=("gtc", "ioc", "fok", "day", "gtd"),
    linked_orders=True,
)


def _run(sc: Scenario, linked: bool = True) -> list[Any]:
    config = demo_config()
    if linked:
        config = demo_config(venues={**config.venues, "SIM": _SIM_LINKED})
    core = SequencerCore(config)
    return [o for env in sc.sequenced() for o in core.apply(env)]


def _rejections(out: list[Any]) -> dict[str, str]:
    return {o.client_order_id: f"{o.reason}: {o.detail}" for o in out if type(o) is IntentRejected}


def test_a_bracket_reaches_the_venue_with_its_links() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("entry", quantity=1_0000)
    sc.place("stop", side="sell", order_type="stop", price=None, stop_price=PX - 100, parent_client_order_id="entry")
    sc.place("take", side="sell", price=PX + 100, parent_client_order_id="entry")
    out = _run(sc)
    assert _rejections(out) == {}
    submits = {o.client_order_id: o for o in out if type(o) is SubmitOrder}
    assert submits["stop"].parent_client_order_id == "entry"
    assert submits["take"].parent_client_order_id == "entry"
    assert submits["entry"].parent_client_order_id is None


def test_a_venue_without_linked_orders_refuses_them() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("entry", quantity=1_0000)
    sc.place("take", side="sell", price=PX + 100, parent_client_order_id="entry")
    sc.place("oco", side="buy", price=PX - 100, oco_group="g1")
    rejected = _rejections(_run(sc, linked=False))
    assert rejected["take"].startswith("linked_orders_unsupported")
    assert rejected["oco"].startswith("linked_orders_unsupported")


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        (dict(parent_client_order_id="nope"), "'nope' is not a known order"),
        (dict(parent_client_order_id="entry", side="buy"), "must be opposite"),
        (dict(parent_client_order_id="entry", quantity=2_0000), "exceeds parent quantity 10000"),
        (dict(parent_client_order_id="entry", strategy="s2"), "belongs to strategy 's1'"),
        (dict(parent_client_order_id="take", side="buy"), "is itself a child"),
        (dict(parent_client_order_id="done"), "'done' is no longer open"),
    ],
)
def test_an_invalid_parent_is_refused_naming_why(child: dict[str, Any], expected: str) -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("done", quantity=1_0000)
    sc.cancel("done")
    sc.cancelled("done")
    sc.place("entry", quantity=1_0000)
    sc.place("take", side="sell", price=PX + 100, parent_client_order_id="entry")
    terms: dict[str, Any] = dict(side="sell", price=PX + 200, quantity=1_0000)
    terms.update(child)
    sc.place("child", **terms)
    rejected = _rejections(_run(sc))
    assert set(rejected) == {"child"}
    assert rejected["child"].startswith("invalid_link") and expected in rejected["child"], rejected


def test_bracket_children_commit_the_position_once_and_only_what_the_parent_bought() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("entry", quantity=1_0000)
    sc.place("stop", side="sell", order_type="stop", price=None, stop_price=PX - 100, parent_client_order_id="entry")
    sc.place("take", side="sell", price=PX + 100, parent_client_order_id="entry")
    sc.accept("entry")
    sc.fill("entry", "t1", 6000, PX)  # parent part filled: the children may sell at most 6000
    sc.place("sell-rest", side="sell", price=PX + 300, quantity=1)  # nothing is free
    sc.place("buy-more", quantity=2_0000)
    sc.fill("buy-more", "t2", 2_0000, PX)
    sc.place("sell-free", side="sell", price=PX + 300, quantity=2_0000)  # exactly the unlinked part
    rejected = _rejections(_run(sc))
    assert set(rejected) == {"sell-rest"}, rejected
    assert "exceeds free position 0" in rejected["sell-rest"]


def test_an_oco_group_commits_its_largest_member_once() -> None:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("b", quantity=1_0000)
    sc.fill("b", "t1", 1_0000, PX)
    sc.place("tp", side="sell", price=PX + 100, quantity=1_0000, oco_group="exit")
    sc.place("sl", side="sell", order_type="stop", price=None, stop_price=PX - 100, quantity=1_0000, oco_group="exit")
    sc.place("extra", side="sell", price=PX + 300, quantity=1)
    rejected = _rejections(_run(sc))
    assert set(rejected) == {"extra"}, rejected
