"""Venue reports: what a gateway says happened to an order, applied through the table.

Fills are classified as partial or full by quantity, deduplicated by (venue, trade id), refused
when they would overfill, and a fill before acknowledgement first records the acceptance it
proves. Everything that cannot be applied is refused as an output; state is then unchanged.
"""

from __future__ import annotations

from typing import Any

from schemas.enums import OrderEvent, RefusalReason
from schemas.envelope import Envelope
from schemas.outputs import FillBooked, Output
from schemas.reports import (
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
    SubmissionUnknownReport,
)
from services.sequencer.core.book import Book
from services.sequencer.core.errors import IllegalTransition
from services.sequencer.core.lifecycle import OrderLifecycle, Touched
from services.sequencer.core.order_machine import TERMINAL_STATES, OrderStateMachine
from services.sequencer.core.orders import Order
from services.sequencer.core.refusals import drop_duplicate, refuse_report
from services.sequencer.core.rules import InstrumentRules

__all__ = ["REPORT_EVENTS", "ReportHandler"]

_next_state = OrderStateMachine.next_state
_ACCEPT = OrderEvent.ACCEPT
_PARTIAL_FILL = OrderEvent.PARTIAL_FILL
_FULL_FILL = OrderEvent.FULL_FILL
_REPLACE_ACK = OrderEvent.REPLACE_ACK

# Report type -> order event, for every report but fills (which need quantities to classify).
REPORT_EVENTS: dict[type, OrderEvent] = {
    OrderAcceptedReport: OrderEvent.ACCEPT,
    OrderRejectedReport: OrderEvent.REJECT,
    OrderCancelledReport: OrderEvent.CANCEL_ACK,
    CancelRejectedReport: OrderEvent.CANCEL_REJECT,
    OrderExpiredReport: OrderEvent.EXPIRE,
    OrderReplacedReport: OrderEvent.REPLACE_ACK,
    ReplaceRejectedReport: OrderEvent.REPLACE_REJECT,
    SubmissionUnknownReport: OrderEvent.SUBMISSION_UNKNOWN,
}


class ReportHandler:
    """Applies execution reports (acks, rejects, fills, cancels, expiry, replace, in-doubt)."""

    __slots__ = ("_book", "_lifecycle", "_rules", "_touched", "_window")

    def __init__(
        self, book: Book, rules: dict[str, InstrumentRules], dedup_window: int, lifecycle: OrderLifecycle
    ) -> None:
        self._book = book
        self._rules = rules
        self._window = dedup_window
        self._lifecycle = lifecycle
        self._touched: Touched = lifecycle.touched

    def _refuse_unmatched(self, env: Envelope, report: Any, order: Order | None, out: list[Output]) -> None:
        """The report names no order of ours, or one at another venue."""
        if order is None:
            refuse_report(
                env, RefusalReason.UNKNOWN_ORDER, f"no order with client_order_id {report.client_order_id!r}", out
            )
            return
        refuse_report(
            env,
            RefusalReason.VENUE_MISMATCH,
            f"report from venue {env.venue!r} for an order at venue {order.venue!r}",
            out,
        )

    def report(self, env: Envelope, report: Any, out: list[Output]) -> None:
        order = self._book.orders.get(report.client_order_id)
        if order is None or (env.venue and env.venue != order.venue):
            self._refuse_unmatched(env, report, order, out)
            return
        rtype = type(report)
        event = REPORT_EVENTS[rtype]
        if event is _REPLACE_ACK and report.quantity <= order.filled_quantity:
            refuse_report(
                env,
                RefusalReason.OVERFILL,
                f"replaced quantity {report.quantity} <= filled {order.filled_quantity} on {order.client_order_id!r}",
                out,
            )
            return
        if event is _REPLACE_ACK and order.pending_from is None and (
            report.quantity > order.quantity or report.price not in (None, order.price)
        ):
            refuse_report(
                env,
                RefusalReason.ILLEGAL_TRANSITION,
                f"unsolicited replace of {order.client_order_id!r} may only reduce its quantity "
                f"({order.quantity} -> {report.quantity}, price {order.price} -> {report.price})",
                out,
            )
            return
        seq = env.seq_id
        self._lifecycle.touch(order)
        try:
            resolved = self._lifecycle.resolve(order, event, seq)
        except IllegalTransition as exc:
            refuse_report(env, RefusalReason.ILLEGAL_TRANSITION, str(exc), out)
            return
        # What the report changes besides the state, applied only once it is known to be legal.
        if rtype is OrderAcceptedReport:
            if report.venue_order_id is not None:
                order.venue_order_id = report.venue_order_id
        elif rtype is OrderReplacedReport:
            order.quantity = report.quantity
            if report.price is not None:
                order.price = report.price
                order.reserve_price = report.price
            order.replace_quantity = None
            order.replace_price = None
            self._touched.replaced.add(order.client_order_id)
        elif rtype is ReplaceRejectedReport:
            order.replace_quantity = None
            order.replace_price = None
        self._lifecycle.commit(order, event, resolved, seq, out)

    def fill(self, env: Envelope, fill: FillReport, out: list[Output]) -> None:
        order = self._book.orders.get(fill.client_order_id)
        if order is None or (env.venue and env.venue != order.venue):
            self._refuse_unmatched(env, fill, order, out)
            return
        book = self._book
        trade_key = (order.venue, fill.trade_id)
        if trade_key in book.trade_ids:
            drop_duplicate(env, f"trade {order.venue}/{fill.trade_id}", "venue trade id already booked", out)
            return
        filled = order.filled_quantity + fill.quantity
        if filled > order.quantity:
            refuse_report(
                env,
                RefusalReason.OVERFILL,
                f"fill of {fill.quantity} would take {order.client_order_id!r} to {filled} > quantity {order.quantity}",
                out,
            )
            return
        rules = self._rules[order.instrument]
        fee_currency = fill.fee_currency if fill.fee_currency is not None else rules.quote
        if fee_currency not in book.portfolio.cash:
            refuse_report(env, RefusalReason.UNKNOWN_CURRENCY, f"fee_currency {fee_currency!r}", out)
            return
        event = _FULL_FILL if filled == order.quantity else _PARTIAL_FILL
        late = order.state in TERMINAL_STATES
        seq = env.seq_id
        lifecycle = self._lifecycle
        lifecycle.touch(order)
        implied_accept = not order.accepted and not late
        resolved = None
        try:
            # Check legality first: nothing may change if the fill is refused.
            if implied_accept:
                state, pending_from, _ = _next_state(
                    order.client_order_id, order.state, order.pending_from, _ACCEPT, seq
                )
                _next_state(order.client_order_id, state, pending_from, event, seq)
            else:
                resolved = lifecycle.resolve(order, event, seq)
        except IllegalTransition as exc:
            refuse_report(env, RefusalReason.ILLEGAL_TRANSITION, str(exc), out)
            return
        if implied_accept:
            # A fill proves the venue accepted the order: record that first (see order_machine).
            lifecycle.transition(order, _ACCEPT, seq, out, note="implied by a fill before acknowledgement")
            resolved = lifecycle.resolve(order, event, seq)
        book.trade_ids[trade_key] = None
        if len(book.trade_ids) > self._window:
            del book.trade_ids[next(iter(book.trade_ids))]
        order.accepted = True
        order.filled_quantity = filled
        order.filled_notional += fill.price * fill.quantity
        signed = fill.quantity if order.is_buy else -fill.quantity
        book.order_fill_net[order.instrument] = book.order_fill_net.get(order.instrument, 0) + signed
        position_quantity, realized_pnl, cash_balance = book.portfolio.book_fill(
            order.instrument, rules.quote, order.is_buy, fill.quantity, fill.price, fill.fee, fee_currency
        )
        self._touched.instruments.add(order.instrument)
        self._touched.currencies.add(rules.quote)
        self._touched.currencies.add(fee_currency)
        if position_quantity < 0 or book.portfolio.cash[rules.base].balance < 0:
            # Base-currency holdings are cash + position: only either being negative can make
            # them negative, so the (costlier) holdings check runs only then.
            self._touched.currencies.add(rules.base)
        assert resolved is not None
        lifecycle.commit(order, event, resolved, seq, out)
        out.append(
            FillBooked(
                seq_id=seq,
                strategy_id=order.strategy_id,
                client_order_id=order.client_order_id,
                instrument=order.instrument,
                side=order.intent.side,
                trade_id=fill.trade_id,
                quantity=fill.quantity,
                price=fill.price,
                fee=fill.fee,
                fee_currency=fee_currency,
                position_quantity=position_quantity,
                realized_pnl=realized_pnl,
                cash_balance=cash_balance,
                late=late,
            )
        )
