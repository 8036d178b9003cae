"""Pre-trade checks on a new order: intent consistency, venue capabilities, then risk guards.

Each check returns `None` or a `(reason, detail)` refusal; the first refusal wins, in the order
written here (cheapest and most fundamental first), so a refused intent always gets one stable
reason. Details name the field and the value.
"""

from __future__ import annotations

from schemas.enums import OrderType, RejectReason, RiskFlag, TimeInForce
from schemas.intents import PlaceOrder
from services.sequencer.core.book import Book
from services.sequencer.core.config import RiskConfig
from services.sequencer.core.orders import Order
from services.sequencer.core.rules import InstrumentRules

__all__ = [
    "Refusal",
    "check_place",
    "check_replace",
    "check_terms",
    "check_withdrawal",
    "committed_buy_cash",
    "free_position",
    "pending_replace_cash",
    "reference_price",
]

Refusal = tuple[RejectReason, str]

# Enum members bound once: attribute access on an Enum class costs ~90 ns on Python 3.11.
_MARKET = OrderType.MARKET
_GTD = TimeInForce.GTD
_HALT = RiskFlag.HALT
_REDUCE_ONLY = RiskFlag.REDUCE_ONLY
_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOPPED = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


def check_terms(rules: InstrumentRules, quantity: int, price: int | None) -> Refusal | None:
    """Tick, lot and price-bound checks shared by place and replace."""
    if quantity % rules.lot_size:
        return RejectReason.LOT_SIZE, f"quantity {quantity} is not a multiple of lot_size {rules.lot_size}"
    if price is not None:
        if price % rules.tick_size:
            return RejectReason.TICK_SIZE, f"price {price} is not a multiple of tick_size {rules.tick_size}"
        if (rules.min_price is not None and price < rules.min_price) or (
            rules.max_price is not None and price > rules.max_price
        ):
            return (
                RejectReason.PRICE_OUT_OF_BOUNDS,
                f"price {price} outside venue bounds [{rules.min_price}, {rules.max_price}]",
            )
    if rules.max_order_quantity is not None and quantity > rules.max_order_quantity:
        return (
            RejectReason.MAX_ORDER_QUANTITY,
            f"quantity {quantity} > max_order_quantity {rules.max_order_quantity}",
        )
    return None


def reference_price(book: Book, intent: PlaceOrder) -> int | None:
    """The price used for notional and band checks: the order's own, else the last trade."""
    if intent.price is not None:
        return intent.price
    if intent.stop_price is not None:
        return intent.stop_price
    return book.last_prices.get(intent.instrument)


def check_place(
    book: Book,
    rules: InstrumentRules,
    all_rules: dict[str, InstrumentRules],
    risk: RiskConfig,
    margin: bool,
    intent: PlaceOrder,
    now_ns: int,
) -> Refusal | None:
    """All checks for a new order, in a fixed order."""
    otype = intent.order_type
    # 1. intent consistency
    if otype in _PRICED and intent.price is None:
        return RejectReason.MISSING_PRICE, f"order_type {otype} needs price"
    if otype not in _PRICED and intent.price is not None:
        return RejectReason.UNEXPECTED_PRICE, f"order_type {otype} takes no price, got {intent.price}"
    if otype in _STOPPED and intent.stop_price is None:
        return RejectReason.MISSING_PRICE, f"order_type {otype} needs stop_price"
    if otype not in _STOPPED and intent.stop_price is not None:
        return (
            RejectReason.UNEXPECTED_PRICE,
            f"order_type {otype} takes no stop_price, got {intent.stop_price}",
        )
    tif = intent.time_in_force
    if tif == _GTD:
        if intent.expire_time_ns is None:
            return RejectReason.MISSING_EXPIRE_TIME, "time_in_force gtd needs expire_time_ns"
        if intent.expire_time_ns <= now_ns:
            return (
                RejectReason.ALREADY_EXPIRED,
                f"expire_time_ns {intent.expire_time_ns} <= event time {now_ns}",
            )
    elif intent.expire_time_ns is not None:
        return RejectReason.UNEXPECTED_EXPIRE_TIME, f"expire_time_ns is only for gtd, got time_in_force {tif}"
    # 2. venue capabilities
    if otype not in rules.order_types:
        return RejectReason.ORDER_TYPE_UNSUPPORTED, f"venue {rules.venue} does not take order_type {otype}"
    if tif not in rules.time_in_force:
        return RejectReason.TIME_IN_FORCE_UNSUPPORTED, f"venue {rules.venue} does not take time_in_force {tif}"
    if intent.post_only and not rules.post_only:
        return RejectReason.POST_ONLY_UNSUPPORTED, f"venue {rules.venue} does not take post_only"
    if intent.parent_client_order_id is not None or intent.oco_group is not None:
        if not rules.linked_orders:
            return RejectReason.LINKED_ORDERS_UNSUPPORTED, f"venue {rules.venue} does not hold linked orders"
        if intent.parent_client_order_id is not None:
            refusal = check_parent(book, intent)
            if refusal is not None:
                return refusal
    qty = intent.quantity
    refusal = check_terms(rules, qty, intent.price)
    if refusal is None and intent.stop_price is not None:
        refusal = check_terms(rules, qty, intent.stop_price)
    if refusal is not None:
        return refusal
    ref = reference_price(book, intent)
    notional = None if ref is None else abs(ref) * qty * rules.notional_scale
    if rules.min_notional and notional is not None and notional < rules.min_notional:
        return RejectReason.MIN_NOTIONAL, f"notional {notional} < min_notional {rules.min_notional}"
    # 3. risk guards
    strat = book.strategies.get(intent.strategy_id)
    flags = strat.flags if strat is not None else ()
    if book.halted or _HALT in flags:
        scope = "trading is halted" if book.halted else f"strategy {intent.strategy_id} is halted"
        return RejectReason.HALTED, scope
    if rules.max_order_notional is not None:
        if notional is None:
            return RejectReason.NO_REFERENCE_PRICE, f"no price to value a {otype} order on {intent.instrument}"
        if notional > rules.max_order_notional:
            return (
                RejectReason.MAX_ORDER_NOTIONAL,
                f"notional {notional} > max_order_notional {rules.max_order_notional}",
            )
    if risk.price_band_bps is not None and otype != _MARKET:
        last = book.last_prices.get(intent.instrument)
        if last is None:
            return RejectReason.NO_REFERENCE_PRICE, f"no last trade on {intent.instrument} for the price band"
        for name, px in (("price", intent.price), ("stop_price", intent.stop_price)):
            if px is not None and abs(px - last) * 10_000 > risk.price_band_bps * abs(last):
                return (
                    RejectReason.PRICE_BAND,
                    f"{name} {px} is more than {risk.price_band_bps} bps from last trade {last}",
                )
    position = book.portfolio.positions.get(intent.instrument)
    held = position.quantity if position is not None else 0
    signed = qty if intent.side == "buy" else -qty
    if (intent.reduce_only or _REDUCE_ONLY in flags) and not (
        held != 0 and (held > 0) != (signed > 0) and qty <= abs(held)
    ):
        return RejectReason.REDUCE_ONLY, f"quantity {signed:+d} does not reduce position {held}"
    if rules.max_position is not None:
        # Worst case: every open order on this side fills, then this one.
        same_side = sum(
            o.remaining if o.is_buy else -o.remaining
            for o in book.open_orders.values()
            if o.instrument == intent.instrument and o.is_buy == (signed > 0)
        )
        projected = held + same_side + signed
        if abs(projected) > rules.max_position:
            return (
                RejectReason.MAX_POSITION,
                f"position would reach {projected}, beyond max_position {rules.max_position}",
            )
    if risk.max_open_orders is not None and strat is not None and strat.open_orders >= risk.max_open_orders:
        return RejectReason.MAX_OPEN_ORDERS, f"strategy {intent.strategy_id} has {strat.open_orders} open orders"
    if risk.order_rate is not None and strat is not None:
        window = strat.recent_order_times_ns
        horizon = now_ns - risk.order_rate.interval_ns
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= risk.order_rate.max_orders:
            return (
                RejectReason.ORDER_RATE,
                (
                    f"{len(window)} orders in the last {risk.order_rate.interval_ns} ns "
                    f"(max {risk.order_rate.max_orders})"
                ),
            )
    if margin or intent.parent_client_order_id is not None:
        # A child only closes what its parent opens (the venue holds it until the parent fills),
        # so the parent's checks cover it.
        return None
    return _check_balance(book, rules, all_rules, risk, intent, held, ref)


def check_parent(book: Book, intent: PlaceOrder) -> Refusal | None:
    """A bracket child: its parent is an open order of the same strategy and instrument, on the
    other side, for at least the child's quantity, and not itself a child."""
    pid = intent.parent_client_order_id
    parent = book.open_orders.get(pid) if pid is not None else None
    if parent is None:
        known = pid in book.orders
        why = "is no longer open" if known else "is not a known order"
        return RejectReason.INVALID_LINK, f"parent_client_order_id {pid!r} {why}"
    if parent.strategy_id != intent.strategy_id:
        return RejectReason.INVALID_LINK, f"parent {pid!r} belongs to strategy {parent.strategy_id!r}"
    if parent.instrument != intent.instrument:
        return RejectReason.INVALID_LINK, f"parent {pid!r} is on {parent.instrument!r}, not {intent.instrument!r}"
    if parent.is_buy == (intent.side == "buy"):
        return RejectReason.INVALID_LINK, f"child side {intent.side} must be opposite to its parent's"
    if parent.intent.parent_client_order_id is not None:
        return RejectReason.INVALID_LINK, f"parent {pid!r} is itself a child: brackets are one level deep"
    if intent.quantity > parent.quantity:
        return RejectReason.INVALID_LINK, f"child quantity {intent.quantity} exceeds parent quantity {parent.quantity}"
    return None


def pending_replace_cash(old_price: int, old_remaining: int, new_price: int, new_remaining: int) -> int:
    """What a buy may still spend while a replace to new terms is pending (in price x size units).

    The replace may land at once and the new terms fill in full; or the old terms keep filling
    until it lands, and the new terms then buy only the quantity they add, at the new price. The
    larger of the two is held: with a lower price and a larger quantity, the fills at the old price
    cost more than the new terms count for the same units.
    """
    added = new_remaining - old_remaining
    return max(
        old_price * old_remaining + (new_price * added if added > 0 else 0),
        new_price * new_remaining,
    )


def committed_buy_cash(book: Book, all_rules: dict[str, InstrumentRules], currency: str, fee_bps: int) -> int:
    """Cash the open buys in `currency` may still spend: reserve price x remaining, plus fees
    (while a replace is pending, the worst of the old and new terms: `pending_replace_cash`).

    Each order is valued at the price fixed when it was placed (its limit or stop price, or the
    last price for a market order), so a moving market cannot free cash an order still needs.
    """
    committed = 0
    for o in book.open_orders.values():
        if o.is_buy:
            rules = all_rules[o.instrument]
            if rules.quote == currency:
                old_price = abs(o.reserve_price or 0)
                if o.replace_quantity is None:
                    reserved = old_price * o.remaining
                else:  # a pending replace may land between any two fills
                    price = o.replace_price if o.replace_price is not None else o.reserve_price
                    reserved = pending_replace_cash(
                        old_price, o.remaining, abs(price or 0), o.replace_quantity - o.filled_quantity
                    )
                committed += reserved * rules.notional_scale
    return committed + committed * fee_bps // 10_000


def free_position(book: Book, rules: InstrumentRules, held: int, oco_group: str | None = None) -> int:
    """What a no-margin account may still sell: the position, less fees owed in the base
    currency (rounded against us), less the open sells. Linked sells count once per link (one
    fill cancels the rest); `oco_group`'s own members are left out (a new member joins them)."""
    base_cash = book.portfolio.cash[rules.base].balance
    owed = base_cash // rules.base_unit_scale if base_cash < 0 else 0  # floor: a part unit counts whole
    selling = 0
    linked: dict[str, int] = {}  # link -> the most any one member may sell (one fill cancels the rest)
    instrument = rules.instrument
    for o in book.open_orders.values():  # a plain loop: a generator costs more than the few orders
        if not o.is_buy and o.instrument == instrument:
            remaining = o.quantity - o.filled_quantity
            if o.replace_quantity is not None:  # a pending replace may land: hold the larger
                remaining = max(remaining, o.replace_quantity - o.filled_quantity)
            intent = o.intent
            pid = intent.parent_client_order_id
            if pid is None and intent.oco_group is None:
                selling += remaining
                continue
            if pid is not None:  # sells no more than its parent has bought so far
                parent = book.orders.get(pid)
                remaining = min(remaining, parent.filled_quantity if parent is not None else 0)
            if pid is None and intent.oco_group == oco_group:
                continue
            link = "p:" + pid if pid is not None else "g:" + str(intent.oco_group)
            if remaining > linked.get(link, 0):
                linked[link] = remaining
    for amount in linked.values():
        selling += amount
    return held + owed - selling


def _check_balance(
    book: Book,
    rules: InstrumentRules,
    all_rules: dict[str, InstrumentRules],
    risk: RiskConfig,
    intent: PlaceOrder,
    held: int,
    ref: int | None,
) -> Refusal | None:
    """Without margin, a buy must be covered by free cash and a sell by a free position."""
    qty = intent.quantity
    if intent.side == "buy":
        if ref is None:
            return RejectReason.NO_REFERENCE_PRICE, f"no price to value a market buy on {intent.instrument}"
        need = abs(ref) * qty * rules.notional_scale
        need += need * risk.reserve_fee_bps // 10_000
        free = book.portfolio.cash[rules.quote].balance - committed_buy_cash(
            book, all_rules, rules.quote, risk.reserve_fee_bps
        )
        if need > free:
            return RejectReason.INSUFFICIENT_CASH, f"buy needs {need} {rules.quote}, free cash is {free}"
        return None
    available = free_position(book, rules, held, intent.oco_group)
    if qty > available:
        return (
            RejectReason.INSUFFICIENT_POSITION,
            f"sell of {qty} exceeds free position {available} on {intent.instrument} (no margin)",
        )
    return None


def check_replace(
    book: Book,
    rules: InstrumentRules,
    all_rules: dict[str, InstrumentRules],
    risk: RiskConfig,
    margin: bool,
    order: Order,
    quantity: int,
    price: int | None,
) -> Refusal | None:
    """Checks for new terms of a working order, including what they newly commit."""
    filled = order.filled_quantity
    if quantity <= filled:
        return RejectReason.NOTHING_TO_CHANGE, f"quantity {quantity} <= already filled {filled}"
    refusal = check_terms(rules, quantity, price)
    if refusal is not None:
        return refusal
    if rules.max_order_notional is not None and price is not None:
        notional = abs(price) * quantity * rules.notional_scale
        if notional > rules.max_order_notional:
            return (
                RejectReason.MAX_ORDER_NOTIONAL,
                f"notional {notional} > max_order_notional {rules.max_order_notional}",
            )
    if margin:
        return None
    remaining = quantity - filled
    if order.is_buy:
        reserve = abs(price if price is not None else order.reserve_price or 0)
        held = abs(order.reserve_price or 0) * order.remaining
        extra = pending_replace_cash(abs(order.reserve_price or 0), order.remaining, reserve, remaining) - held
        extra *= rules.notional_scale
        extra += extra * risk.reserve_fee_bps // 10_000
        if extra > 0:
            free = book.portfolio.cash[rules.quote].balance - committed_buy_cash(
                book, all_rules, rules.quote, risk.reserve_fee_bps
            )
            if extra > free:
                return RejectReason.INSUFFICIENT_CASH, f"new terms need {extra} more {rules.quote}, free cash is {free}"
        return None
    position = book.portfolio.positions.get(order.instrument)
    available = free_position(book, rules, position.quantity if position is not None else 0)
    if remaining - order.remaining > available:
        return (
            RejectReason.INSUFFICIENT_POSITION,
            f"selling {remaining - order.remaining} more exceeds free position {available} (no margin)",
        )
    return None


def check_withdrawal(
    book: Book, all_rules: dict[str, InstrumentRules], risk: RiskConfig, currency: str, amount: int
) -> Refusal | None:
    """Without margin, a withdrawal may not take cash the open buys still need."""
    if amount >= 0:
        return None
    free = book.portfolio.cash[currency].balance - committed_buy_cash(book, all_rules, currency, risk.reserve_fee_bps)
    if -amount > free:
        return RejectReason.INSUFFICIENT_CASH, f"withdrawal of {-amount} {currency} exceeds free cash {free}"
    return None
