"""Intents: a strategy asks, the core validates, then places, cancels or replaces.

Validation order for a new order is fixed (see risk.py): consistency, venue capabilities, risk
guards, state-machine legality. A refused intent becomes an `IntentRejected` output with a
stable reason code and a detail naming the field and the value; it never raises.
"""

from __future__ import annotations

from schemas.enums import OrderEvent, RejectReason, TimeInForce
from schemas.envelope import Envelope
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.outputs import Output, RequestCancel, RequestReplace, RiskFlagChanged, SubmitOrder
from services.sequencer.core.book import Book
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.errors import IllegalTransition
from services.sequencer.core.lifecycle import OrderLifecycle
from services.sequencer.core.orders import Order
from services.sequencer.core.refusals import differences, drop_duplicate, reject_intent
from services.sequencer.core.risk import check_place, check_replace, reference_price
from services.sequencer.core.rules import InstrumentRules

__all__ = ["IntentHandler"]

_SUBMIT = OrderEvent.SUBMIT
_CANCEL_REQUEST = OrderEvent.CANCEL_REQUEST
_REPLACE_REQUEST = OrderEvent.REPLACE_REQUEST
_GTD = TimeInForce.GTD


class IntentHandler:
    """Applies PlaceOrder, CancelOrder, ReplaceOrder, SetRiskFlag and NoOp to the book."""

    __slots__ = ("_book", "_lifecycle", "_margin", "_risk", "_rules")

    def __init__(
        self, book: Book, rules: dict[str, InstrumentRules], config: CoreConfig, lifecycle: OrderLifecycle
    ) -> None:
        self._book = book
        self._rules = rules
        self._risk = config.risk
        self._margin = config.account.margin
        self._lifecycle = lifecycle

    def place(self, env: Envelope, intent: PlaceOrder, out: list[Output]) -> None:
        book = self._book
        cid = intent.client_order_id
        existing = book.orders.get(cid)
        if existing is not None:
            if existing.intent == intent:
                drop_duplicate(env, cid, "client_order_id already placed with the same content", out)
            else:
                reject_intent(
                    env,
                    intent,
                    RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                    f"client_order_id {cid!r} already used; differs in {differences(existing.intent, intent)}",
                    out,
                )
            return
        if env.instrument and env.instrument != intent.instrument:
            reject_intent(
                env,
                intent,
                RejectReason.ENVELOPE_MISMATCH,
                f"envelope.instrument {env.instrument!r} != instrument {intent.instrument!r}",
                out,
            )
            return
        rules = self._rules.get(intent.instrument)
        if rules is None:
            reject_intent(
                env, intent, RejectReason.UNKNOWN_INSTRUMENT, f"instrument {intent.instrument!r}", out
            )
            return
        now = book.event_time_ns
        refusal = check_place(book, rules, self._rules, self._risk, self._margin, intent, now)
        if refusal is not None:
            reject_intent(env, intent, refusal[0], refusal[1], out)
            return
        seq = env.seq_id
        order = Order.place(intent, rules.venue, seq)
        order.reserve_price = reference_price(book, intent)
        book.orders[cid] = order
        book.open_orders[cid] = order
        strat = book.strategies.get(intent.strategy_id) or book.strategy(intent.strategy_id)
        strat.open_orders += 1
        if self._risk.order_rate is not None:
            strat.recent_order_times_ns.append(now)
        lifecycle = self._lifecycle
        lifecycle.touch(order)
        lifecycle.transition(order, _SUBMIT, seq, out)
        if intent.time_in_force == _GTD:
            lifecycle.schedule_expiry(order)
        out.append(
            SubmitOrder(
                seq_id=seq,
                venue=rules.venue,
                strategy_id=intent.strategy_id,
                client_order_id=cid,
                instrument=intent.instrument,
                side=intent.side,
                order_type=intent.order_type,
                quantity=intent.quantity,
                price=intent.price,
                stop_price=intent.stop_price,
                time_in_force=intent.time_in_force,
                expire_time_ns=intent.expire_time_ns,
                reduce_only=intent.reduce_only,
                post_only=intent.post_only,
                parent_client_order_id=intent.parent_client_order_id,
                oco_group=intent.oco_group,
            )
        )

    def _owned_order(self, env: Envelope, intent: CancelOrder | ReplaceOrder, out: list[Output]) -> Order | None:
        order = self._book.orders.get(intent.client_order_id)
        if order is None:
            reject_intent(
                env, intent, RejectReason.UNKNOWN_ORDER, f"client_order_id {intent.client_order_id!r}", out
            )
            return None
        if order.strategy_id != intent.strategy_id:
            reject_intent(
                env,
                intent,
                RejectReason.NOT_OWNER,
                f"order {intent.client_order_id!r} belongs to strategy {order.strategy_id!r}",
                out,
            )
            return None
        return order

    def _request(
        self, env: Envelope, intent: CancelOrder | ReplaceOrder, order: Order, event: OrderEvent, out: list[Output]
    ) -> bool:
        """Move the order into its pending state, or refuse the intent if the table does not allow it."""
        try:
            self._lifecycle.touch(order)
            self._lifecycle.transition(order, event, env.seq_id, out)
        except IllegalTransition as exc:
            reject_intent(env, intent, RejectReason.ILLEGAL_TRANSITION, str(exc), out)
            return False
        return True

    def cancel(self, env: Envelope, intent: CancelOrder, out: list[Output]) -> None:
        order = self._owned_order(env, intent, out)
        if order is None:
            return
        if not self._request(env, intent, order, _CANCEL_REQUEST, out):
            return
        out.append(
            RequestCancel(
                seq_id=env.seq_id,
                venue=order.venue,
                client_order_id=order.client_order_id,
                instrument=order.instrument,
                reason="requested by strategy",
            )
        )

    def replace(self, env: Envelope, intent: ReplaceOrder, out: list[Output]) -> None:
        order = self._owned_order(env, intent, out)
        if order is None:
            return
        rules = self._rules[order.instrument]
        if not rules.native_replace:
            reject_intent(
                env,
                intent,
                RejectReason.REPLACE_UNSUPPORTED,
                f"venue {rules.venue} has no native replace: cancel and place instead",
                out,
            )
            return
        if intent.price is not None and order.price is None:
            reject_intent(
                env,
                intent,
                RejectReason.UNEXPECTED_PRICE,
                f"order {order.client_order_id!r} is {order.intent.order_type}: it has no price to replace",
                out,
            )
            return
        quantity = intent.quantity if intent.quantity is not None else order.quantity
        price = intent.price if intent.price is not None else order.price
        if quantity == order.quantity and price == order.price:
            reject_intent(env, intent, RejectReason.NOTHING_TO_CHANGE, "quantity and price unchanged", out)
            return
        refusal = check_replace(self._book, rules, self._rules, self._risk, self._margin, order, quantity, price)
        if refusal is not None:
            reject_intent(env, intent, refusal[0], refusal[1], out)
            return
        if not self._request(env, intent, order, _REPLACE_REQUEST, out):
            return
        order.replace_quantity = quantity
        order.replace_price = price
        out.append(
            RequestReplace(
                seq_id=env.seq_id,
                venue=order.venue,
                client_order_id=order.client_order_id,
                instrument=order.instrument,
                quantity=quantity,
                price=price,
            )
        )

    def set_risk_flag(self, env: Envelope, intent: SetRiskFlag, out: list[Output]) -> None:
        flags = self._book.strategy(intent.strategy_id).flags
        if intent.enabled:
            flags.add(intent.flag)
        else:
            flags.discard(intent.flag)
        out.append(
            RiskFlagChanged(
                seq_id=env.seq_id,
                flag=intent.flag,
                enabled=intent.enabled,
                reason=intent.reason,
                strategy_id=intent.strategy_id,
            )
        )

    def noop(self, env: Envelope, intent: NoOp, out: list[Output]) -> None:
        """A strategy's explicit 'nothing to do' (lockstep acknowledgement)."""
