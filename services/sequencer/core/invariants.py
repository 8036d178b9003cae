"""Invariants checked after every committed event (reference design 5.1, plus ours).

Only what the event touched is checked, so the cost follows the event, not the book size:
orders (terminal is final, fills monotonic and within quantity, remaining never grows except by
a replace, no fill before acceptance, pending states know their origin), positions (position ==
signed fills booked == signed fills through orders) and cash (balance == its ledger; cost basis -
realized == bought - sold).

Policy for those: `raise` (tests; a broken invariant is our bug and the process stops), `halt`
(publish, then refuse new orders), `log` (publish and carry on).

Exposure checks are different: no short and no negative holdings without margin. The pre-trade
guards keep our own intents inside them, so a breach means a venue's fill took the account there
(a late fill after a cancel, a fee the reserve did not cover). A fill is a fact, so it is booked;
the breach is published and trading halts, whatever the policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.enums import OrderState, RiskFlag
from schemas.outputs import InvariantBroken, Output, RiskFlagChanged
from services.sequencer.core.book import Book
from services.sequencer.core.config import InvariantPolicy
from services.sequencer.core.errors import InvariantViolation
from services.sequencer.core.lifecycle import Touched
from services.sequencer.core.order_machine import PENDING_STATES, TERMINAL_STATES
from services.sequencer.core.orders import Order
from services.sequencer.core.refusals import clip
from services.sequencer.core.rules import InstrumentRules

_HALT = RiskFlag.HALT

__all__ = ["InvariantChecker"]


class InvariantChecker:
    """Checks what `Touched` names, clears it, and applies the policy."""

    __slots__ = ("_book", "_instruments_by_base", "_instruments_by_quote", "_margin", "_policy", "_touched")

    def __init__(
        self,
        book: Book,
        touched: Touched,
        policy: InvariantPolicy,
        margin: bool,
        rules: dict[str, InstrumentRules],
    ) -> None:
        self._book = book
        self._touched = touched
        self._policy = policy
        self._margin = margin
        currencies = sorted(book.portfolio.cash)
        self._instruments_by_quote: dict[str, list[str]] = {c: [] for c in currencies}
        self._instruments_by_base: dict[str, list[tuple[str, int]]] = {c: [] for c in currencies}
        for name, r in rules.items():
            self._instruments_by_quote[r.quote].append(name)
            self._instruments_by_base[r.base].append((name, r.base_unit_scale))

    def check(self, seq: int, out: list[Output]) -> None:
        """Section 5.1 invariants on what this event touched; then the policy decides.

        Runs after every event that touched anything, so it is written for speed: the common
        all-good case allocates nothing and calls nothing.
        """
        broken: list[tuple[str, str]] = []  # our bug: the policy decides
        exposed: list[tuple[str, str]] = []  # a venue's fill took the account where it may not go
        touched = self._touched
        orders = touched.orders
        if orders:
            for o, state, filled, remaining in orders:
                now_filled = o.filled_quantity
                if (
                    now_filled < filled
                    or now_filled > o.quantity
                    or (now_filled and not o.accepted)
                    or (state in TERMINAL_STATES and o.state is not state)
                    or (o.quantity - now_filled > remaining and state not in TERMINAL_STATES)
                    or (o.pending_from is None and o.state in PENDING_STATES)
                ):
                    replaced = o.client_order_id in touched.replaced
                    self._diagnose_order(o, state, filled, remaining, replaced, broken)
            orders.clear()
            if touched.replaced:
                touched.replaced.clear()
        instruments = touched.instruments
        if instruments:
            self._check_positions(instruments if len(instruments) == 1 else sorted(instruments), broken, exposed)
            instruments.clear()
        currencies = touched.currencies
        if currencies:
            self._check_cash(currencies if len(currencies) == 1 else sorted(currencies), broken, exposed)
            currencies.clear()
        if exposed:
            self._halt_on_exposure(seq, exposed, out)
        if not broken:
            return
        if self._policy == "raise":
            name, detail = broken[0]
            raise InvariantViolation(name, detail, seq)
        for name, detail in broken:
            out.append(InvariantBroken(seq_id=seq, invariant=name, detail=clip(detail)))
        if self._policy == "halt":
            self._halt(seq, "invariant broken: trading halted", out)

    def _halt_on_exposure(self, seq: int, exposed: list[tuple[str, str]], out: list[Output]) -> None:
        """A fill is a fact at the venue, so it is booked, never refused or raised over: raising
        would stop the sequencer on the same journal record at every restart. The account is
        somewhere a no-margin account may not be, so trading halts until an operator resumes it."""
        for name, detail in exposed:
            out.append(InvariantBroken(seq_id=seq, invariant=name, detail=clip(detail)))
        self._halt(seq, "exposure without margin: trading halted", out)

    def _halt(self, seq: int, reason: str, out: list[Output]) -> None:
        if not self._book.halted:
            self._book.halted = True
            out.append(RiskFlagChanged(seq_id=seq, flag=_HALT, enabled=True, reason=reason))

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

    def _check_positions(
        self, instruments: Iterable[str], broken: list[tuple[str, str]], exposed: list[tuple[str, str]]
    ) -> None:
        """`instruments` in sorted order: output order must not follow hashing."""
        positions = self._book.portfolio.positions
        order_fill_net = self._book.order_fill_net
        for inst in instruments:
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
                exposed.append(("no_short_without_margin", f"{inst}: position {pos.quantity}"))

    def _check_cash(
        self, currencies: Iterable[str], broken: list[tuple[str, str]], exposed: list[tuple[str, str]]
    ) -> None:
        """`currencies` in sorted order: output order must not follow hashing."""
        portfolio = self._book.portfolio
        positions = portfolio.positions
        for ccy in currencies:
            cash = portfolio.cash[ccy]
            balance, bought, sold = cash.balance, cash.bought, cash.sold
            expected = cash.initial + cash.adjustments + sold - bought - cash.fees
            if balance != expected:
                broken.append(("cash_conservation", f"{ccy}: balance {balance} != ledger {expected}"))
            quoted = self._instruments_by_quote[ccy]
            if quoted:
                basis = 0
                for inst in quoted:
                    pos = positions.get(inst)
                    if pos is not None:
                        basis += pos.cost - pos.realized_pnl
                if basis != bought - sold:
                    broken.append(("cost_conservation", f"{ccy}: cost - realized {basis} != bought - sold {bought - sold}"))
            if not self._margin:
                # A currency that is some instrument's base is also held as that position.
                held = balance
                for inst, unit in self._instruments_by_base[ccy]:
                    pos = positions.get(inst)
                    if pos is not None:
                        held += pos.quantity * unit
                if held < 0:
                    exposed.append(("no_negative_balance_without_margin", f"{ccy}: holdings {held}"))
