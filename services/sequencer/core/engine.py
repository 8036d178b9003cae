"""`SequencerCore`: the deterministic heart. `apply(envelope) -> outputs`, nothing else moves state.

Theory of operation
-------------------
The service assigns contiguous seq ids (see `sequencing.py`), journals each envelope, then calls
`apply`. `apply`:

1. checks the seq id follows the last one (the caller's contract; a break is our bug: raise);
2. advances event time (monotone: the max event time seen; the only clock the core has);
3. drops a repeat of a producer's counter, notes a gap;
4. refuses a payload arriving from the wrong source (a strategy cannot send a fill);
5. drops or refuses a repeated idempotency key (same content: no-op; other content: refusal);
6. dispatches on the payload type;
7. expires GTD orders that are due, for venues without native GTD;
8. checks the invariants of what it touched, and applies the invariant policy.

Refusals of a peer's bad input are outputs, never exceptions. Exceptions mean our bug.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from schemas.control import AdjustCash, HaltTrading, ResumeTrading, Timer
from schemas.enums import OrderEvent, OrderState, RefusalReason, RejectReason, RiskFlag, TimeInForce
from schemas.envelope import PAYLOAD_SOURCE, Envelope
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Quote, Trade
from schemas.outputs import (
    CashAdjusted,
    DuplicateDropped,
    FillBooked,
    IntentRejected,
    InvariantBroken,
    OrderTransitioned,
    Output,
    ProducerGap,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    RiskFlagChanged,
    SubmitOrder,
)
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
from schemas.state import CoreSnapshot
from schemas.types import MAX_TEXT_CHARS
from services.sequencer.core.book import Book, state_hash_of
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.errors import (
    IllegalTransition,
    InvariantViolation,
    RestoreError,
    SequenceError,
)
from services.sequencer.core.order_machine import (
    PENDING_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    OrderStateMachine,
)
from services.sequencer.core.orders import Order
from services.sequencer.core.portfolio import Portfolio
from services.sequencer.core.risk import check_place, check_replace
from services.sequencer.core.rules import compile_rules

__all__ = ["SequencerCore"]

E = OrderEvent
_next_state = OrderStateMachine.next_state
# Enum members bound once: attribute access on an Enum class costs ~90 ns on Python 3.11.
_SUBMIT = OrderEvent.SUBMIT
_ACCEPT = OrderEvent.ACCEPT
_PARTIAL_FILL = OrderEvent.PARTIAL_FILL
_FULL_FILL = OrderEvent.FULL_FILL
_CANCEL_REQUEST = OrderEvent.CANCEL_REQUEST
_REPLACE_REQUEST = OrderEvent.REPLACE_REQUEST
_REPLACE_ACK = OrderEvent.REPLACE_ACK
_EXPIRE = OrderEvent.EXPIRE
_GTD = TimeInForce.GTD
_HALT = RiskFlag.HALT

# Entries that move to a plain, non-pending state: looked up directly on the hot path. The full
# rules (STAY, PREVIOUS, pending shadows) stay in OrderStateMachine.next_state.
_DIRECT: dict[tuple[OrderState, OrderEvent], tuple[OrderState, str]] = {
    key: (target, note)
    for key, (target, note) in TRANSITIONS.items()
    if isinstance(target, OrderState) and target not in PENDING_STATES
}

# Report type -> order event, for every report but fills (which need quantities to classify).
_REPORT_EVENTS: dict[type, OrderEvent] = {
    OrderAcceptedReport: E.ACCEPT,
    OrderRejectedReport: E.REJECT,
    OrderCancelledReport: E.CANCEL_ACK,
    CancelRejectedReport: E.CANCEL_REJECT,
    OrderExpiredReport: E.EXPIRE,
    OrderReplacedReport: E.REPLACE_ACK,
    ReplaceRejectedReport: E.REPLACE_REJECT,
    SubmissionUnknownReport: E.SUBMISSION_UNKNOWN,
}


def _clip(text: str) -> str:
    """Keep free text inside the wire limit so every output we publish also decodes."""
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 3] + "..."


def _differences(old: Any, new: Any) -> str:
    """Name the fields that differ between two payloads: what a conflicting repeat changed."""
    if type(old) is not type(new):
        return f"type {type(old).__name__} -> {type(new).__name__}"
    diffs = [
        f"{f}: {getattr(old, f)!r} -> {getattr(new, f)!r}"
        for f in old.__struct_fields__
        if getattr(old, f) != getattr(new, f)
    ]
    return "; ".join(diffs)


class SequencerCore:
    """The only code that changes trading state. Pure: no I/O, no clock, no randomness.

    Args:
        config: the validated core configuration (its hash is part of every checkpoint).
    """

    def __init__(self, config: CoreConfig) -> None:
        self.config = config
        self.config_hash = config.config_hash()
        self._rules = compile_rules(config)
        self._risk = config.risk
        self._margin = config.account.margin
        self._policy = config.invariant_policy
        self._window = config.dedup_window
        portfolio = Portfolio(
            dict(config.account.initial_cash),
            list(config.currencies),
            {name: r.notional_scale for name, r in self._rules.items()},
        )
        self.book = Book(portfolio)
        self._instruments_by_quote: dict[str, list[str]] = {c: [] for c in sorted(config.currencies)}
        for name, r in self._rules.items():
            self._instruments_by_quote[r.quote].append(name)
        # (expire_time_ns, created_seq_id, client_order_id): GTD orders the core expires itself.
        self._expiry: list[tuple[int, int, str]] = []
        # Per event: what was touched, for the invariant checks. order id -> (state, filled, remaining)
        self._touched_orders: dict[str, tuple[Order, OrderState, int, int]] = {}
        self._replaced: set[str] = set()
        self._touched_instruments: set[str] = set()
        self._touched_currencies: set[str] = set()
        self._handlers: dict[type, Callable[[Envelope, Any, list[Output]], None]] = {
            Bar: self._on_bar,
            Trade: self._on_trade,
            Quote: self._on_quote,
            FillReport: self._on_fill,
            Timer: self._on_timer,
            HaltTrading: self._on_halt,
            ResumeTrading: self._on_resume,
            AdjustCash: self._on_adjust_cash,
            PlaceOrder: self._on_place,
            CancelOrder: self._on_cancel,
            ReplaceOrder: self._on_replace,
            SetRiskFlag: self._on_set_risk_flag,
            NoOp: self._on_noop,
        }
        for report_type in _REPORT_EVENTS:
            self._handlers[report_type] = self._on_report

    # ------------------------------------------------------------------ public API

    @property
    def seq_id(self) -> int:
        """Seq id of the last applied envelope (0 before any)."""
        return self.book.seq_id

    @property
    def event_time_ns(self) -> int:
        return self.book.event_time_ns

    def apply(self, env: Envelope) -> list[Output]:
        """Apply one sequenced envelope and return what happened, in order.

        Raises:
            SequenceError: `env.seq_id` is not the last seq id + 1 (the caller's bug).
            InvariantViolation: an invariant failed and the policy is `raise`.
        """
        book = self.book
        seq = env.seq_id
        if seq != book.seq_id + 1:
            raise SequenceError(f"envelope seq_id {seq} does not follow last applied seq_id {book.seq_id}")
        book.seq_id = seq
        book.event_time_ns = max(book.event_time_ns, env.event_time_ns)
        pid = env.producer_id
        pseq = env.producer_seq
        last = book.producers.get(pid, 0)
        if pseq <= last:
            return [
                DuplicateDropped(
                    seq_id=seq,
                    producer_id=pid,
                    producer_seq=pseq,
                    key=_clip(f"{pid}#{pseq}"),
                    detail=f"producer_seq {pseq} <= last applied {last}",
                )
            ]
        book.producers[pid] = pseq
        out: list[Output] = []
        if pseq != last + 1:
            out.append(ProducerGap(seq_id=seq, producer_id=pid, expected_seq=last + 1, received_seq=pseq))
        payload = env.payload
        ptype = type(payload)
        if PAYLOAD_SOURCE[ptype] != env.source:
            self._refuse_source(env, out)
        elif env.idempotency_key is None or self._admit_idempotency_key(env, env.idempotency_key, out):
            self._handlers[ptype](env, payload, out)
        if self._expiry and self._expiry[0][0] <= book.event_time_ns:
            self._expire_due(seq, out)
        if self._touched_orders or self._touched_instruments or self._touched_currencies:
            self._check_invariants(seq, out)
        return out

    def snapshot(self) -> CoreSnapshot:
        """All state as one canonical struct (for checkpoints, sync and hashing)."""
        return self.book.to_snapshot(self.config_hash)

    def state_hash(self) -> str:
        return state_hash_of(self.snapshot())

    def restore(self, snapshot: CoreSnapshot) -> None:
        """Replace the state with a snapshot taken under the same config.

        Raises:
            RestoreError: the snapshot was taken under another config.
        """
        if snapshot.config_hash != self.config_hash:
            raise RestoreError(
                f"snapshot config_hash {snapshot.config_hash[:12]} != core config_hash {self.config_hash[:12]}"
            )
        self.book.restore(snapshot)
        self._expiry = []
        for order in self.book.open_orders.values():
            self._schedule_expiry(order)

    # ------------------------------------------------------------------ admission

    def _refuse_source(self, env: Envelope, out: list[Output]) -> None:
        payload = env.payload
        expected = PAYLOAD_SOURCE[type(payload)]
        detail = f"source {str(env.source)!r} cannot carry {payload.__struct_config__.tag!r} (needs {str(expected)!r})"
        strategy_id = getattr(payload, "strategy_id", None)
        if strategy_id is not None:
            out.append(
                IntentRejected(
                    seq_id=env.seq_id,
                    strategy_id=strategy_id,
                    intent=str(payload.__struct_config__.tag),
                    reason=RejectReason.SOURCE_MISMATCH,
                    detail=detail,
                    client_order_id=getattr(payload, "client_order_id", None),
                )
            )
        else:
            self._refuse_report(env, RefusalReason.SOURCE_MISMATCH, detail, out)

    def _admit_idempotency_key(self, env: Envelope, key: str, out: list[Output]) -> bool:
        """True when the key is new. A repeat is dropped (same content) or refused (other content)."""
        seen = self.book.idempotency
        previous = seen.get(key)
        payload = env.payload
        if previous is None:
            seen[key] = payload
            if len(seen) > self._window:
                del seen[next(iter(seen))]
            return True
        if previous == payload:
            out.append(
                DuplicateDropped(
                    seq_id=env.seq_id,
                    producer_id=env.producer_id,
                    producer_seq=env.producer_seq,
                    key=_clip(key),
                    detail="idempotency key already applied with the same content",
                )
            )
            return False
        detail = _clip(f"idempotency key {key!r} reused with different content: {_differences(previous, payload)}")
        strategy_id = getattr(payload, "strategy_id", None)
        if strategy_id is not None and env.source == "strategy":
            out.append(
                IntentRejected(
                    seq_id=env.seq_id,
                    strategy_id=strategy_id,
                    intent=str(payload.__struct_config__.tag),
                    reason=RejectReason.IDEMPOTENCY_CONFLICT,
                    detail=detail,
                    client_order_id=getattr(payload, "client_order_id", None),
                )
            )
        else:
            self._refuse_report(env, RefusalReason.CONFLICTING_DUPLICATE, detail, out)
        return False

    def _refuse_report(self, env: Envelope, reason: RefusalReason, detail: str, out: list[Output]) -> None:
        payload = env.payload
        out.append(
            ReportRefused(
                seq_id=env.seq_id,
                report=str(payload.__struct_config__.tag),
                reason=reason,
                detail=_clip(detail),
                venue=env.venue,
                client_order_id=getattr(payload, "client_order_id", None),
            )
        )

    def _reject_intent(
        self, env: Envelope, intent: Any, reason: RejectReason, detail: str, out: list[Output]
    ) -> None:
        out.append(
            IntentRejected(
                seq_id=env.seq_id,
                strategy_id=intent.strategy_id,
                intent=str(intent.__struct_config__.tag),
                reason=reason,
                detail=_clip(detail),
                client_order_id=getattr(intent, "client_order_id", None),
            )
        )

    # ------------------------------------------------------------------ market data and time

    def _on_bar(self, env: Envelope, bar: Bar, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = bar.close
        else:
            self._refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_trade(self, env: Envelope, trade: Trade, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = trade.price
        else:
            self._refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_quote(self, env: Envelope, quote: Quote, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = (quote.bid_price + quote.ask_price) // 2
        else:
            self._refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_timer(self, env: Envelope, timer: Timer, out: list[Output]) -> None:
        """Time already advanced in `apply`; expiry runs after every envelope."""

    # ------------------------------------------------------------------ control

    def _on_halt(self, env: Envelope, cmd: HaltTrading, out: list[Output]) -> None:
        self.book.halted = True
        out.append(RiskFlagChanged(seq_id=env.seq_id, flag=RiskFlag.HALT, enabled=True, reason=cmd.reason))

    def _on_resume(self, env: Envelope, cmd: ResumeTrading, out: list[Output]) -> None:
        self.book.halted = False
        out.append(RiskFlagChanged(seq_id=env.seq_id, flag=RiskFlag.HALT, enabled=False, reason=cmd.reason))

    def _on_adjust_cash(self, env: Envelope, cmd: AdjustCash, out: list[Output]) -> None:
        cash = self.book.portfolio.cash.get(cmd.currency)
        if cash is None:
            self._refuse_report(env, RefusalReason.UNKNOWN_CURRENCY, f"currency {cmd.currency!r}", out)
            return
        if not self._margin and cash.balance + cmd.amount < 0:
            self._refuse_report(
                env,
                RefusalReason.INSUFFICIENT_CASH,
                f"amount {cmd.amount} would leave {cmd.currency} balance {cash.balance + cmd.amount}",
                out,
            )
            return
        balance = self.book.portfolio.adjust_cash(cmd.currency, cmd.amount)
        self._touched_currencies.add(cmd.currency)
        out.append(CashAdjusted(seq_id=env.seq_id, currency=cmd.currency, amount=cmd.amount, balance=balance))

    # ------------------------------------------------------------------ intents

    def _on_place(self, env: Envelope, intent: PlaceOrder, out: list[Output]) -> None:
        book = self.book
        cid = intent.client_order_id
        existing = book.orders.get(cid)
        if existing is not None:
            if existing.intent == intent:
                out.append(
                    DuplicateDropped(
                        seq_id=env.seq_id,
                        producer_id=env.producer_id,
                        producer_seq=env.producer_seq,
                        key=cid,
                        detail="client_order_id already placed with the same content",
                    )
                )
            else:
                self._reject_intent(
                    env,
                    intent,
                    RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                    f"client_order_id {cid!r} already used; differs in {_differences(existing.intent, intent)}",
                    out,
                )
            return
        if env.instrument and env.instrument != intent.instrument:
            self._reject_intent(
                env,
                intent,
                RejectReason.ENVELOPE_MISMATCH,
                f"envelope.instrument {env.instrument!r} != instrument {intent.instrument!r}",
                out,
            )
            return
        rules = self._rules.get(intent.instrument)
        if rules is None:
            self._reject_intent(
                env, intent, RejectReason.UNKNOWN_INSTRUMENT, f"instrument {intent.instrument!r}", out
            )
            return
        now = book.event_time_ns
        refusal = check_place(book, rules, self._rules, self._risk, self._margin, intent, now)
        if refusal is not None:
            self._reject_intent(env, intent, refusal[0], refusal[1], out)
            return
        seq = env.seq_id
        order = Order.place(intent, rules.venue, seq)
        book.orders[cid] = order
        book.open_orders[cid] = order
        strat = book.strategy(intent.strategy_id)
        strat.open_orders += 1
        if self._risk.order_rate is not None:
            strat.recent_order_times_ns.append(now)
        self._touch(order)
        self._transition(order, _SUBMIT, seq, out)
        self._schedule_expiry(order)
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
            )
        )

    def _owned_order(self, env: Envelope, intent: CancelOrder | ReplaceOrder, out: list[Output]) -> Order | None:
        order = self.book.orders.get(intent.client_order_id)
        if order is None:
            self._reject_intent(
                env, intent, RejectReason.UNKNOWN_ORDER, f"client_order_id {intent.client_order_id!r}", out
            )
            return None
        if order.strategy_id != intent.strategy_id:
            self._reject_intent(
                env,
                intent,
                RejectReason.NOT_OWNER,
                f"order {intent.client_order_id!r} belongs to strategy {order.strategy_id!r}",
                out,
            )
            return None
        return order

    def _on_cancel(self, env: Envelope, intent: CancelOrder, out: list[Output]) -> None:
        order = self._owned_order(env, intent, out)
        if order is None:
            return
        try:
            self._touch(order)
            self._transition(order, _CANCEL_REQUEST, env.seq_id, out)
        except IllegalTransition as exc:
            self._reject_intent(env, intent, RejectReason.ILLEGAL_TRANSITION, str(exc), out)
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

    def _on_replace(self, env: Envelope, intent: ReplaceOrder, out: list[Output]) -> None:
        order = self._owned_order(env, intent, out)
        if order is None:
            return
        rules = self._rules[order.instrument]
        if not rules.native_replace:
            self._reject_intent(
                env,
                intent,
                RejectReason.REPLACE_UNSUPPORTED,
                f"venue {rules.venue} has no native replace: cancel and place instead",
                out,
            )
            return
        if intent.price is not None and order.price is None:
            self._reject_intent(
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
            self._reject_intent(env, intent, RejectReason.NOTHING_TO_CHANGE, "quantity and price unchanged", out)
            return
        refusal = check_replace(self.book, rules, self._risk, order.filled_quantity, quantity, price)
        if refusal is not None:
            self._reject_intent(env, intent, refusal[0], refusal[1], out)
            return
        try:
            self._touch(order)
            self._transition(order, _REPLACE_REQUEST, env.seq_id, out)
        except IllegalTransition as exc:
            self._reject_intent(env, intent, RejectReason.ILLEGAL_TRANSITION, str(exc), out)
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

    def _on_set_risk_flag(self, env: Envelope, intent: SetRiskFlag, out: list[Output]) -> None:
        flags = self.book.strategy(intent.strategy_id).flags
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

    def _on_noop(self, env: Envelope, intent: NoOp, out: list[Output]) -> None:
        """A strategy's explicit 'nothing to do' (lockstep acknowledgement)."""

    # ------------------------------------------------------------------ venue reports

    def _reported_order(self, env: Envelope, report: Any, out: list[Output]) -> Order | None:
        order = self.book.orders.get(report.client_order_id)
        if order is None:
            self._refuse_report(
                env, RefusalReason.UNKNOWN_ORDER, f"no order with client_order_id {report.client_order_id!r}", out
            )
            return None
        if env.venue and env.venue != order.venue:
            self._refuse_report(
                env,
                RefusalReason.VENUE_MISMATCH,
                f"report from venue {env.venue!r} for an order at venue {order.venue!r}",
                out,
            )
            return None
        return order

    def _on_report(self, env: Envelope, report: Any, out: list[Output]) -> None:
        order = self._reported_order(env, report, out)
        if order is None:
            return
        rtype = type(report)
        event = _REPORT_EVENTS[rtype]
        if event is _REPLACE_ACK and report.quantity <= order.filled_quantity:
            self._refuse_report(
                env,
                RefusalReason.OVERFILL,
                f"replaced quantity {report.quantity} <= filled {order.filled_quantity} on {order.client_order_id!r}",
                out,
            )
            return
        seq = env.seq_id
        self._touch(order)
        try:
            resolved = self._resolve(order, event, seq)
        except IllegalTransition as exc:
            self._refuse_report(env, RefusalReason.ILLEGAL_TRANSITION, str(exc), out)
            return
        # What the report changes besides the state, applied only once it is known to be legal.
        if rtype is OrderAcceptedReport:
            if report.venue_order_id is not None:
                order.venue_order_id = report.venue_order_id
        elif rtype is OrderReplacedReport:
            order.quantity = report.quantity
            if report.price is not None:
                order.price = report.price
            order.replace_quantity = None
            order.replace_price = None
            self._replaced.add(order.client_order_id)
        elif rtype is ReplaceRejectedReport:
            order.replace_quantity = None
            order.replace_price = None
        self._commit(order, event, resolved, seq, out)

    def _on_fill(self, env: Envelope, fill: FillReport, out: list[Output]) -> None:
        order = self._reported_order(env, fill, out)
        if order is None:
            return
        book = self.book
        trade_key = (order.venue, fill.trade_id)
        if trade_key in book.trade_ids:
            out.append(
                DuplicateDropped(
                    seq_id=env.seq_id,
                    producer_id=env.producer_id,
                    producer_seq=env.producer_seq,
                    key=_clip(f"trade {order.venue}/{fill.trade_id}"),
                    detail="venue trade id already booked",
                )
            )
            return
        filled = order.filled_quantity + fill.quantity
        if filled > order.quantity:
            self._refuse_report(
                env,
                RefusalReason.OVERFILL,
                f"fill of {fill.quantity} would take {order.client_order_id!r} to {filled} > quantity {order.quantity}",
                out,
            )
            return
        rules = self._rules[order.instrument]
        fee_currency = fill.fee_currency if fill.fee_currency is not None else rules.quote
        if fee_currency not in book.portfolio.cash:
            self._refuse_report(env, RefusalReason.UNKNOWN_CURRENCY, f"fee_currency {fee_currency!r}", out)
            return
        event = _FULL_FILL if filled == order.quantity else _PARTIAL_FILL
        late = order.state in TERMINAL_STATES
        seq = env.seq_id
        self._touch(order)
        try:
            # Check legality first: nothing may change if the fill is refused.
            probe_state = order.state
            probe_from = order.pending_from
            if not order.accepted and not late:
                probe_state, probe_from, _ = _next_state(order.client_order_id, probe_state, probe_from, _ACCEPT, seq)
            _next_state(order.client_order_id, probe_state, probe_from, event, seq)
        except IllegalTransition as exc:
            self._refuse_report(env, RefusalReason.ILLEGAL_TRANSITION, str(exc), out)
            return
        if not order.accepted and not late:
            # A fill proves the venue accepted the order: record that first (see order_machine).
            self._transition(order, _ACCEPT, seq, out, note="implied by a fill before acknowledgement")
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
        self._touched_instruments.add(order.instrument)
        self._touched_currencies.add(rules.quote)
        self._touched_currencies.add(fee_currency)
        self._transition(order, event, seq, out)
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

    # ------------------------------------------------------------------ transitions and expiry

    def _touch(self, order: Order) -> None:
        """Remember the order as it was before this event, for the invariant checks."""
        touched = self._touched_orders
        if order.client_order_id not in touched:
            touched[order.client_order_id] = (order, order.state, order.filled_quantity, order.quantity - order.filled_quantity)

    def _resolve(self, order: Order, event: OrderEvent, seq: int) -> tuple[OrderState, OrderState | None, str]:
        """Where `event` takes `order`, without changing it.

        Raises:
            IllegalTransition: the table has no such move.
        """
        direct = _DIRECT.get((order.state, event))
        if direct is not None:
            return direct[0], None, direct[1]
        return _next_state(order.client_order_id, order.state, order.pending_from, event, seq)

    def _commit(
        self,
        order: Order,
        event: OrderEvent,
        resolved: tuple[OrderState, OrderState | None, str],
        seq: int,
        out: list[Output],
        note: str = "",
    ) -> None:
        """Apply a resolved move and write its trace row."""
        previous = order.state
        state, order.pending_from, table_note = resolved
        order.state = state
        order.updated_seq_id = seq
        if event is _ACCEPT:
            order.accepted = True
        if state in TERMINAL_STATES and previous not in TERMINAL_STATES:
            del self.book.open_orders[order.client_order_id]
            self.book.strategies[order.strategy_id].open_orders -= 1
        out.append(
            OrderTransitioned(
                seq_id=seq,
                client_order_id=order.client_order_id,
                strategy_id=order.strategy_id,
                instrument=order.instrument,
                event=event,
                from_state=previous,
                to_state=state,
                quantity=order.quantity,
                filled_quantity=order.filled_quantity,
                note=note or table_note,
            )
        )

    def _transition(self, order: Order, event: OrderEvent, seq: int, out: list[Output], note: str = "") -> None:
        """Resolve and commit in one step (for moves with no other effect to order around).

        Raises:
            IllegalTransition: nothing about the order has changed.
        """
        direct = _DIRECT.get((order.state, event))
        if direct is not None:
            resolved: tuple[OrderState, OrderState | None, str] = (direct[0], None, direct[1])
        else:
            resolved = _next_state(order.client_order_id, order.state, order.pending_from, event, seq)
        self._commit(order, event, resolved, seq, out, note)

    def _schedule_expiry(self, order: Order) -> None:
        intent = order.intent
        if (
            intent.time_in_force == _GTD
            and intent.expire_time_ns is not None
            and not self._rules[order.instrument].native_gtd
        ):
            heapq.heappush(self._expiry, (intent.expire_time_ns, order.created_seq_id, order.client_order_id))

    def _expire_due(self, seq: int, out: list[Output]) -> None:
        """Expire GTD orders whose time has come (event time), and tell their venues to cancel."""
        now = self.book.event_time_ns
        while self._expiry and self._expiry[0][0] <= now:
            _, _, cid = heapq.heappop(self._expiry)
            order = self.book.open_orders.get(cid)
            if order is None:
                continue
            try:
                self._touch(order)
                self._transition(order, _EXPIRE, seq, out, note="expired by the core at event time")
            except IllegalTransition:
                continue  # e.g. still CREATED; cannot happen for open orders today
            out.append(
                RequestCancel(
                    seq_id=seq,
                    venue=order.venue,
                    client_order_id=cid,
                    instrument=order.instrument,
                    reason=f"expired at {order.intent.expire_time_ns}",
                )
            )

    # ------------------------------------------------------------------ invariants

    def _check_invariants(self, seq: int, out: list[Output]) -> None:
        """Section 5.1 invariants on what this event touched; then the policy decides."""
        broken: list[tuple[str, str]] = []
        touched = self._touched_orders
        if touched:
            replaced = self._replaced
            for o, state, filled, remaining in touched.values():
                now_filled = o.filled_quantity
                if (
                    now_filled < filled
                    or now_filled > o.quantity
                    or (now_filled and not o.accepted)
                    or (state in TERMINAL_STATES and o.state is not state)
                    or (o.quantity - now_filled > remaining and state not in TERMINAL_STATES)
                    or (o.pending_from is None and o.state in PENDING_STATES)
                ):
                    self._diagnose_order(o, state, filled, remaining, o.client_order_id in replaced, broken)
            touched.clear()
            if replaced:
                replaced.clear()
        if self._touched_instruments:
            self._check_positions(broken)
        if self._touched_currencies:
            self._check_cash(broken)
        if not broken:
            return
        if self._policy == "raise":
            name, detail = broken[0]
            raise InvariantViolation(name, detail, seq)
        for name, detail in broken:
            out.append(InvariantBroken(seq_id=seq, invariant=name, detail=_clip(detail)))
        if self._policy == "halt" and not self.book.halted:
            self.book.halted = True
            out.append(
                RiskFlagChanged(seq_id=seq, flag=RiskFlag.HALT, enabled=True, reason="invariant broken: trading halted")
            )

    @staticmethod
    def _diagnose_order(
        o: Order, state: OrderState, filled: int, remaining: int, replaced: bool, broken: list[tuple[str, str]]
    ) -> None:
        """Name every order invariant that failed (the fast check above only says that one did)."""
        now_filled = o.filled_quantity
        if state in TERMINAL_STATES and o.state is not state:
            broken.append(("terminal_is_final", f"order {o.client_order_id!r} left terminal {state} for {o.state}"))
        if now_filled < filled:
            broken.append(("filled_monotonic", f"order {o.client_order_id!r} filled {filled} -> {now_filled}"))
        if o.quantity - now_filled > remaining and state not in TERMINAL_STATES and not replaced:
            broken.append(("remaining_monotonic", f"order {o.client_order_id!r} remaining {remaining} -> {o.remaining}"))
        if now_filled > o.quantity:
            broken.append(("fills_within_quantity", f"order {o.client_order_id!r} filled {now_filled} > {o.quantity}"))
        if now_filled and not o.accepted:
            broken.append(("no_fill_before_acceptance", f"order {o.client_order_id!r} filled but never accepted"))
        if o.pending_from is None and o.state in PENDING_STATES:
            broken.append(("pending_has_origin", f"order {o.client_order_id!r} in {o.state} without pending_from"))

    def _check_positions(self, broken: list[tuple[str, str]]) -> None:
        positions = self.book.portfolio.positions
        order_fill_net = self.book.order_fill_net
        for inst in self._touched_instruments:
            pos = positions[inst]
            through_orders = order_fill_net.get(inst, 0)
            if not (pos.quantity == pos.fill_quantity_net == through_orders):
                broken.append(
                    (
                        "position_conservation",
                        f"{inst}: position {pos.quantity}, fills {pos.fill_quantity_net}, orders {through_orders}",
                    )
                )
            if pos.quantity < 0 and not self._margin:
                broken.append(("no_short_without_margin", f"{inst}: position {pos.quantity}"))
        self._touched_instruments.clear()

    def _check_cash(self, broken: list[tuple[str, str]]) -> None:
        portfolio = self.book.portfolio
        positions = portfolio.positions
        for ccy in self._touched_currencies:
            cash = portfolio.cash[ccy]
            expected = cash.initial + cash.adjustments + cash.sold - cash.bought - cash.fees
            if cash.balance != expected:
                broken.append(("cash_conservation", f"{ccy}: balance {cash.balance} != ledger {expected}"))
            basis = 0
            for inst in self._instruments_by_quote[ccy]:
                pos = positions.get(inst)
                if pos is not None:
                    basis += pos.cost - pos.realized_pnl
            if basis != cash.bought - cash.sold:
                broken.append(
                    ("cost_conservation", f"{ccy}: cost - realized {basis} != bought - sold {cash.bought - cash.sold}")
                )
            if cash.balance < 0 and not self._margin:
                broken.append(("no_negative_balance_without_margin", f"{ccy}: balance {cash.balance}"))
        self._touched_currencies.clear()
