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
   a new key is claimed once its input was acted on (a duplicate claims nothing);
6. dispatches on the payload type;
7. expires GTD orders that are due, for venues without native GTD;
8. checks the invariants of what it touched, and applies the invariant policy.

Refusals of a peer's bad input are outputs, never exceptions. Exceptions mean our bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.control import AdjustCash, HaltTrading, ResumeTrading, Timer
from schemas.enums import RefusalReason, RejectReason, RiskFlag
from schemas.envelope import PAYLOAD_SOURCE, Envelope
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Quote, Trade
from schemas.outputs import CashAdjusted, DuplicateDropped, Output, ProducerGap, RiskFlagChanged
from schemas.reports import FillReport
from schemas.state import CoreSnapshot
from services.sequencer.core.book import Book, state_hash_of
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.errors import RestoreError, SequenceError
from services.sequencer.core.intents import IntentHandler
from services.sequencer.core.invariants import InvariantChecker
from services.sequencer.core.lifecycle import OrderLifecycle, Touched
from services.sequencer.core.portfolio import Portfolio
from services.sequencer.core.refusals import differences, drop_duplicate, refuse_report, reject_intent
from services.sequencer.core.reports import REPORT_EVENTS, ReportHandler
from services.sequencer.core.risk import check_withdrawal
from services.sequencer.core.rules import compile_rules

__all__ = ["SequencerCore"]

_HALT = RiskFlag.HALT


class SequencerCore:
    """The only code that changes trading state. Pure: no I/O, no clock, no randomness.

    Args:
        config: the validated core configuration (its hash is part of every checkpoint).
    """

    def __init__(self, config: CoreConfig) -> None:
        self.config = config
        self.config_hash = config.config_hash()
        self._rules = compile_rules(config)
        self._margin = config.account.margin
        self._window = config.dedup_window
        portfolio = Portfolio(
            dict(config.account.initial_cash),
            list(config.currencies),
            {name: r.notional_scale for name, r in self._rules.items()},
        )
        self.book = Book(portfolio)
        self._touched = Touched()
        self._lifecycle = OrderLifecycle(self.book, self._rules, self._touched)
        self._expiry_heap = self._lifecycle.expiry_heap
        self._invariants = InvariantChecker(
            self.book, self._touched, config.invariant_policy, self._margin, self._rules
        )
        intents = IntentHandler(self.book, self._rules, config, self._lifecycle)
        reports = ReportHandler(self.book, self._rules, self._window, self._lifecycle)
        self._handlers: dict[type, Callable[[Envelope, Any, list[Output]], None]] = {
            Bar: self._on_bar,
            Trade: self._on_trade,
            Quote: self._on_quote,
            Timer: self._on_timer,
            HaltTrading: self._on_halt,
            ResumeTrading: self._on_resume,
            AdjustCash: self._on_adjust_cash,
            PlaceOrder: intents.place,
            CancelOrder: intents.cancel,
            ReplaceOrder: intents.replace,
            SetRiskFlag: intents.set_risk_flag,
            NoOp: intents.noop,
            FillReport: reports.fill,
        }
        for report_type in REPORT_EVENTS:
            self._handlers[report_type] = reports.report

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
        if env.event_time_ns > book.event_time_ns:  # a branch, not max(): this is the hot path
            book.event_time_ns = env.event_time_ns
        pid = env.producer_id
        pseq = env.producer_seq
        last = book.producers.get(pid, 0)
        if pseq <= last:
            dropped: list[Output] = []
            drop_duplicate(env, f"{pid}#{pseq}", f"producer_seq {pseq} <= last applied {last}", dropped)
            return dropped
        book.producers[pid] = pseq
        out: list[Output] = []
        if pseq != last + 1:
            out.append(ProducerGap(seq_id=seq, producer_id=pid, expected_seq=last + 1, received_seq=pseq))
        payload = env.payload
        ptype = type(payload)
        if PAYLOAD_SOURCE[ptype] != env.source:
            self._refuse_source(env, out)
        elif env.idempotency_key is None:
            self._handlers[ptype](env, payload, out)
        elif self._admit_idempotency_key(env, env.idempotency_key, out):
            mark = len(out)
            self._handlers[ptype](env, payload, out)
            # A duplicate (e.g. a known trade id under a fresh key) changes nothing, not even
            # the key table: only an input that was acted on claims its key.
            if not any(type(o) is DuplicateDropped for o in out[mark:]):
                self._remember_idempotency_key(env.idempotency_key, payload)
        expiry = self._expiry_heap
        if expiry and expiry[0][0] <= book.event_time_ns:
            self._lifecycle.expire_due(seq, out)
        touched = self._touched
        if touched.orders or touched.instruments or touched.currencies:
            self._invariants.check(seq, out)
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
        self._lifecycle.rebuild_expiry()

    # ------------------------------------------------------------------ admission

    def _refuse_source(self, env: Envelope, out: list[Output]) -> None:
        payload = env.payload
        expected = PAYLOAD_SOURCE[type(payload)]
        detail = f"source {str(env.source)!r} cannot carry {payload.__struct_config__.tag!r} (needs {str(expected)!r})"
        if hasattr(payload, "strategy_id"):  # an intent, sent by someone who may not send intents
            reject_intent(env, payload, RejectReason.SOURCE_MISMATCH, detail, out)
        else:
            refuse_report(env, RefusalReason.SOURCE_MISMATCH, detail, out)

    def _remember_idempotency_key(self, key: str, payload: Any) -> None:
        seen = self.book.idempotency
        seen[key] = payload
        if len(seen) > self._window:  # FIFO eviction: insertion order is deterministic
            del seen[next(iter(seen))]

    def _admit_idempotency_key(self, env: Envelope, key: str, out: list[Output]) -> bool:
        """True when the key is new. A repeat is dropped (same content) or refused (other content)."""
        seen = self.book.idempotency
        previous = seen.get(key)
        payload = env.payload
        if previous is None:
            return True
        if previous == payload:
            drop_duplicate(env, key, "idempotency key already applied with the same content", out)
            return False
        detail = f"idempotency key {key!r} reused with different content: {differences(previous, payload)}"
        if env.source == "strategy":  # the source was checked first: this payload is an intent
            reject_intent(env, payload, RejectReason.IDEMPOTENCY_CONFLICT, detail, out)
        else:
            refuse_report(env, RefusalReason.CONFLICTING_DUPLICATE, detail, out)
        return False

    # ------------------------------------------------------------------ market data and time

    def _on_bar(self, env: Envelope, bar: Bar, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = bar.close
        else:
            refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_trade(self, env: Envelope, trade: Trade, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = trade.price
        else:
            refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_quote(self, env: Envelope, quote: Quote, out: list[Output]) -> None:
        if env.instrument in self._rules:
            self.book.last_prices[env.instrument] = (quote.bid_price + quote.ask_price) // 2
        else:
            refuse_report(env, RefusalReason.UNKNOWN_INSTRUMENT, f"instrument {env.instrument!r}", out)

    def _on_timer(self, env: Envelope, timer: Timer, out: list[Output]) -> None:
        """Time already advanced in `apply`; expiry runs after every envelope."""

    # ------------------------------------------------------------------ control

    def _on_halt(self, env: Envelope, cmd: HaltTrading, out: list[Output]) -> None:
        self.book.halted = True
        out.append(RiskFlagChanged(seq_id=env.seq_id, flag=_HALT, enabled=True, reason=cmd.reason))

    def _on_resume(self, env: Envelope, cmd: ResumeTrading, out: list[Output]) -> None:
        self.book.halted = False
        out.append(RiskFlagChanged(seq_id=env.seq_id, flag=_HALT, enabled=False, reason=cmd.reason))

    def _on_adjust_cash(self, env: Envelope, cmd: AdjustCash, out: list[Output]) -> None:
        cash = self.book.portfolio.cash.get(cmd.currency)
        if cash is None:
            refuse_report(env, RefusalReason.UNKNOWN_CURRENCY, f"currency {cmd.currency!r}", out)
            return
        if not self._margin:
            refusal = check_withdrawal(self.book, self._rules, self.config.risk, cmd.currency, cmd.amount)
            if refusal is not None:
                refuse_report(env, RefusalReason.INSUFFICIENT_CASH, refusal[1], out)
                return
        balance = self.book.portfolio.adjust_cash(cmd.currency, cmd.amount)
        self._touched.currencies.add(cmd.currency)
        out.append(CashAdjusted(seq_id=env.seq_id, currency=cmd.currency, amount=cmd.amount, balance=balance))

    # ------------------------------------------------------------------ intents
