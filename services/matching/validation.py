"""What the simulated venue refuses when an order arrives, and why (the `OrderRejectedReport` text).

The core validates every intent before it becomes a `SubmitOrder`, so in a backtest these checks
should never fire; they are here because the venue is also a paper-trading venue, and because a
simulator that silently trades what the configured venue cannot would make a backtest lie. Checks
run in a fixed order and the first failure names the field and its value.
"""

from __future__ import annotations

from schemas.enums import OrderType, TimeInForce
from schemas.market import Quote
from schemas.outputs import SubmitOrder
from services.matching.orders import ORDER_TYPES, TIMES_IN_FORCE, OrderStatus, SimOrder
from services.sequencer.core.rules import InstrumentRules

__all__ = ["refuse_submit", "would_take"]

_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOPPED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})
_GTD = TimeInForce.GTD
_LIMIT = OrderType.LIMIT


def would_take(quote: Quote | None, is_buy: bool, limit: int) -> bool:
    """Whether a limit at `limit` would trade against the standing quote (the post-only test).

    With no quote the venue has no book to cross: nothing can take liquidity on arrival.
    """
    if quote is None:
        return False
    if is_buy:
        return quote.ask_size > 0 and limit >= quote.ask_price
    return quote.bid_size > 0 and limit <= quote.bid_price


def _refuse_terms(cmd: SubmitOrder, rules: InstrumentRules) -> str | None:
    otype = ORDER_TYPES[cmd.order_type]
    tif = TIMES_IN_FORCE[cmd.time_in_force]
    venue = rules.venue
    if otype not in rules.order_types:
        return f"order_type {otype} is not offered at venue {venue}"
    if tif not in rules.time_in_force:
        return f"time_in_force {tif} is not offered at venue {venue}"
    # Each field read and each membership test once (this runs for every order).
    price = cmd.price
    stop_price = cmd.stop_price
    priced = otype in _PRICED
    stopped = otype in _STOPPED
    if priced and price is None:
        return f"order_type {otype} needs price"
    if not priced and price is not None:
        return f"order_type {otype} takes no price, got {price}"
    if stopped and stop_price is None:
        return f"order_type {otype} needs stop_price"
    if not stopped and stop_price is not None:
        return f"order_type {otype} takes no stop_price, got {stop_price}"
    if cmd.quantity % rules.lot_size:
        return f"quantity {cmd.quantity} is not a multiple of lot_size {rules.lot_size}"
    if price is not None and price % rules.tick_size:
        return f"price {price} is not a multiple of tick_size {rules.tick_size}"
    if stop_price is not None and stop_price % rules.tick_size:
        return f"stop_price {stop_price} is not a multiple of tick_size {rules.tick_size}"
    if tif is _GTD:
        if cmd.expire_time_ns is None:
            return "time_in_force gtd needs expire_time_ns"
    elif cmd.expire_time_ns is not None:
        return f"expire_time_ns is only for gtd, got time_in_force {tif}"
    if cmd.post_only:
        if not rules.post_only:
            return f"post_only is not offered at venue {venue}"
        if otype is not _LIMIT:
            return f"post_only needs order_type limit, got {otype}"
    return None


def _refuse_link(cmd: SubmitOrder, rules: InstrumentRules, parent: SimOrder | None) -> str | None:
    if cmd.parent_client_order_id is None and cmd.oco_group is None:
        return None
    if not rules.linked_orders:
        return f"linked orders (parent_client_order_id, oco_group) are not offered at venue {rules.venue}"
    pid = cmd.parent_client_order_id
    if pid is None:
        return None
    if parent is None:
        return f"parent_client_order_id {pid!r} is not an order known at venue {rules.venue}"
    if parent.instrument != cmd.instrument:
        return f"parent {pid!r} is on {parent.instrument!r}, not {cmd.instrument!r}"
    if parent.parent is not None:
        return f"parent {pid!r} is itself a child: brackets are one level deep"
    if parent.status != OrderStatus.WORKING and parent.status != OrderStatus.FILLED and parent.filled == 0:
        return f"parent {pid!r} was {parent.status} with nothing filled"
    return None


def refuse_submit(cmd: SubmitOrder, rules: InstrumentRules, quote: Quote | None, parent: SimOrder | None) -> str | None:
    """Why the venue refuses `cmd`, or None to accept it.

    A GTD order whose expiry passed before it arrived is not refused but expired at once (the
    venue's call, in `venue.py`): the core may already have expired it, and a rejection would
    contradict that.

    Args:
        rules: the instrument's compiled rules (capabilities, tick and lot size).
        quote: the instrument's standing quote, for the post-only test.
        parent: the venue's record of `cmd.parent_client_order_id`, if it has one.
    """
    reason = _refuse_terms(cmd, rules)
    if reason is None:
        reason = _refuse_link(cmd, rules, parent)
    if reason is None and cmd.post_only:
        assert cmd.price is not None  # post-only is a limit: checked above
        if would_take(quote, cmd.side == "buy", cmd.price):
            assert quote is not None
            side, other = ("ask", quote.ask_price) if cmd.side == "buy" else ("bid", quote.bid_price)
            reason = f"post_only {cmd.side} limit {cmd.price} would take liquidity: {side} {other}"
    return reason
