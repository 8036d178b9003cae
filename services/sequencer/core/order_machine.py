"""The order state machine, held as one explicit transition table.

Theory of operation
-------------------
`TRANSITIONS[(state, event)]` is the only place legal moves are written. A missing pair is
illegal: `OrderStateMachine.next_state` raises `IllegalTransition` and the order is unchanged.

Why the table is shaped so:

* Fill before acknowledgement (SUBMITTED or IN_DOUBT + fill). Venues do send a fill first. A fill
  proves the order was accepted, so the core first applies ACCEPT and then the fill; the trace
  shows both rows and the invariant "no fill before acceptance" holds.
* Pending states shadow a working state. CANCEL_PENDING and REPLACE_PENDING remember the state
  they came from (`pending_from`). Events that move a working order (ack, partial fill) arrive
  while a request is pending: the visible state stays pending (`STAY`) and `pending_from`
  advances through this same table. A rejected request returns to `pending_from` (`PREVIOUS`).
* Cancel ack racing a fill: a full fill while CANCEL_PENDING ends FILLED; the cancel ack or
  cancel reject that follows is a recorded no-op on a FILLED order.
* Late fill after cancel or expiry: money moved at the venue, so the fill is booked to the
  portfolio, while the order stays terminal (`STAY`, marked late). Terminal never reopens.
* A fill on a REJECTED order has no entry: the venue contradicts itself; the report is refused
  and reconciliation must settle it.
* IN_DOUBT: the gateway sent the order but does not know whether the venue has it. Nothing is
  resent; any later report about the order settles it (ack, reject, fill, cancel).
* Expiry: a venue report, or the core itself at event time for venues without native GTD.
"""

from __future__ import annotations

from typing import Final

from schemas.enums import OrderEvent, OrderState
from services.sequencer.core.errors import IllegalTransition

__all__ = [
    "PENDING_STATES",
    "PREVIOUS",
    "STAY",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "WORKING_STATES",
    "OrderStateMachine",
    "transition_table_markdown",
]

S = OrderState
E = OrderEvent


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STAY: Final = _Marker("STAY")  # deliberate no-op: recorded in the trace, state unchanged
PREVIOUS: Final = _Marker("PREVIOUS")  # back to the state before the pending request

Target = OrderState | _Marker

TERMINAL_STATES: Final = frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED})
PENDING_STATES: Final = frozenset({S.CANCEL_PENDING, S.REPLACE_PENDING})
WORKING_STATES: Final = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED})

# (state, event) -> (target, note). The note is written into the trace row.
TRANSITIONS: Final[dict[tuple[OrderState, OrderEvent], tuple[Target, str]]] = {
    # creation
    (S.CREATED, E.SUBMIT): (S.SUBMITTED, ""),
    # submitted, outcome not yet known
    (S.SUBMITTED, E.ACCEPT): (S.ACCEPTED, ""),
    (S.SUBMITTED, E.REJECT): (S.REJECTED, ""),
    (S.SUBMITTED, E.SUBMISSION_UNKNOWN): (S.IN_DOUBT, "gateway cannot tell whether the venue has it"),
    (S.SUBMITTED, E.CANCEL_REQUEST): (S.CANCEL_PENDING, "cancel before acknowledgement"),
    (S.SUBMITTED, E.CANCEL_ACK): (S.CANCELLED, "cancelled before acknowledgement"),
    (S.SUBMITTED, E.EXPIRE): (S.EXPIRED, ""),
    # in doubt: settled by whatever the venue says next
    (S.IN_DOUBT, E.ACCEPT): (S.ACCEPTED, "in-doubt order settled: venue has it"),
    (S.IN_DOUBT, E.REJECT): (S.REJECTED, "in-doubt order settled: venue refused it"),
    (S.IN_DOUBT, E.CANCEL_ACK): (S.CANCELLED, "in-doubt order settled: cancelled"),
    (S.IN_DOUBT, E.CANCEL_REQUEST): (S.CANCEL_PENDING, "cancel of an in-doubt order"),
    (S.IN_DOUBT, E.SUBMISSION_UNKNOWN): (STAY, "still in doubt"),
    (S.IN_DOUBT, E.EXPIRE): (S.EXPIRED, ""),
    # working
    (S.ACCEPTED, E.ACCEPT): (STAY, "duplicate acknowledgement"),
    (S.ACCEPTED, E.PARTIAL_FILL): (S.PARTIALLY_FILLED, ""),
    (S.ACCEPTED, E.FULL_FILL): (S.FILLED, ""),
    (S.ACCEPTED, E.CANCEL_REQUEST): (S.CANCEL_PENDING, ""),
    (S.ACCEPTED, E.CANCEL_ACK): (S.CANCELLED, "unsolicited cancel by the venue"),
    (S.ACCEPTED, E.REPLACE_REQUEST): (S.REPLACE_PENDING, ""),
    (S.ACCEPTED, E.EXPIRE): (S.EXPIRED, ""),
    (S.ACCEPTED, E.REPLACE_ACK): (STAY, "unsolicited replace by the venue (a bracket child resized)"),
    (S.PARTIALLY_FILLED, E.ACCEPT): (STAY, "late acknowledgement after a fill"),
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): (S.PARTIALLY_FILLED, ""),
    (S.PARTIALLY_FILLED, E.FULL_FILL): (S.FILLED, ""),
    (S.PARTIALLY_FILLED, E.CANCEL_REQUEST): (S.CANCEL_PENDING, ""),
    (S.PARTIALLY_FILLED, E.CANCEL_ACK): (S.CANCELLED, "unsolicited cancel by the venue"),
    (S.PARTIALLY_FILLED, E.REPLACE_REQUEST): (S.REPLACE_PENDING, ""),
    (S.PARTIALLY_FILLED, E.EXPIRE): (S.EXPIRED, ""),
    (S.PARTIALLY_FILLED, E.REPLACE_ACK): (STAY, "unsolicited replace by the venue (a bracket child resized)"),
    # cancel pending: working events advance pending_from; the request resolves it
    (S.CANCEL_PENDING, E.ACCEPT): (STAY, "acknowledgement while cancel pending"),
    (S.CANCEL_PENDING, E.PARTIAL_FILL): (STAY, "fill while cancel pending"),
    (S.CANCEL_PENDING, E.FULL_FILL): (S.FILLED, "filled before the cancel landed"),
    (S.CANCEL_PENDING, E.CANCEL_ACK): (S.CANCELLED, ""),
    (S.CANCEL_PENDING, E.CANCEL_REJECT): (PREVIOUS, "cancel refused; order keeps working"),
    (S.CANCEL_PENDING, E.REJECT): (S.REJECTED, "venue refused the order itself"),
    (S.CANCEL_PENDING, E.EXPIRE): (S.EXPIRED, ""),
    (S.CANCEL_PENDING, E.SUBMISSION_UNKNOWN): (STAY, "outcome of submission unknown; cancel pending"),
    # replace pending
    (S.REPLACE_PENDING, E.ACCEPT): (STAY, "duplicate acknowledgement"),
    (S.REPLACE_PENDING, E.PARTIAL_FILL): (STAY, "fill while replace pending"),
    (S.REPLACE_PENDING, E.FULL_FILL): (S.FILLED, "filled before the replace landed"),
    (S.REPLACE_PENDING, E.REPLACE_ACK): (PREVIOUS, "replaced"),
    (S.REPLACE_PENDING, E.REPLACE_REJECT): (PREVIOUS, "replace refused; old terms stand"),
    (S.REPLACE_PENDING, E.CANCEL_ACK): (S.CANCELLED, "unsolicited cancel while replace pending"),
    (S.REPLACE_PENDING, E.EXPIRE): (S.EXPIRED, ""),
    # terminal: late and duplicate reports are deliberate no-ops, fills are booked as late
    (S.FILLED, E.ACCEPT): (STAY, "late acknowledgement of a filled order"),
    (S.FILLED, E.CANCEL_ACK): (STAY, "cancel acknowledgement raced the fill; filled stands"),
    (S.FILLED, E.CANCEL_REJECT): (STAY, "cancel refused: already filled"),
    (S.FILLED, E.REPLACE_REJECT): (STAY, "replace refused: already filled"),
    (S.FILLED, E.EXPIRE): (STAY, "expiry of a filled order ignored"),
    (S.CANCELLED, E.PARTIAL_FILL): (STAY, "late fill after cancel: booked, order stays cancelled"),
    (S.CANCELLED, E.FULL_FILL): (STAY, "late fill after cancel: booked, order stays cancelled"),
    (S.CANCELLED, E.CANCEL_ACK): (STAY, "duplicate cancel acknowledgement"),
    (S.CANCELLED, E.CANCEL_REJECT): (STAY, "cancel refused: already cancelled"),
    (S.CANCELLED, E.EXPIRE): (STAY, "expiry of a cancelled order ignored"),
    (S.CANCELLED, E.ACCEPT): (STAY, "late acknowledgement of a cancelled order"),
    (S.CANCELLED, E.REPLACE_REJECT): (STAY, "replace refused: already cancelled"),
    (S.EXPIRED, E.PARTIAL_FILL): (STAY, "late fill after expiry: booked, order stays expired"),
    (S.EXPIRED, E.FULL_FILL): (STAY, "late fill after expiry: booked, order stays expired"),
    (S.EXPIRED, E.CANCEL_ACK): (STAY, "cancel acknowledgement of an expired order"),
    (S.EXPIRED, E.CANCEL_REJECT): (STAY, "cancel refused: already expired"),
    (S.EXPIRED, E.EXPIRE): (STAY, "duplicate expiry"),
    (S.EXPIRED, E.ACCEPT): (STAY, "late acknowledgement of an expired order"),
    (S.EXPIRED, E.REPLACE_REJECT): (STAY, "replace refused: already expired"),
    (S.REJECTED, E.REJECT): (STAY, "duplicate rejection"),
    (S.REJECTED, E.CANCEL_ACK): (STAY, "cancel acknowledgement of a rejected order"),
    (S.REJECTED, E.CANCEL_REJECT): (STAY, "cancel refused: order was rejected"),
    (S.REJECTED, E.REPLACE_REJECT): (STAY, "replace refused: order was rejected"),
}


class OrderStateMachine:
    """Looks up transitions. Stateless: the order's state lives on the order."""

    __slots__ = ()

    @staticmethod
    def next_state(
        client_order_id: str,
        state: OrderState,
        pending_from: OrderState | None,
        event: OrderEvent,
        seq_id: int,
    ) -> tuple[OrderState, OrderState | None, str]:
        """Return (new state, new pending_from, note) or raise IllegalTransition.

        Raises:
            IllegalTransition: the table has no entry for (state, event).
        """
        entry = TRANSITIONS.get((state, event))
        if entry is None:
            raise IllegalTransition(client_order_id, state, event, seq_id)
        target, note = entry
        if target is STAY:
            if state in PENDING_STATES and pending_from is not None:
                # Advance the shadowed working state through the same table.
                shadow = TRANSITIONS.get((pending_from, event))
                if shadow is not None and isinstance(shadow[0], OrderState):
                    pending_from = shadow[0]
            return state, pending_from, note
        if target is PREVIOUS:
            if pending_from is None:
                raise IllegalTransition(client_order_id, state, event, seq_id)
            return pending_from, None, note
        assert isinstance(target, OrderState)
        if target in PENDING_STATES:
            return target, state, note
        return target, None, note


DOC_HEADER: Final = """# Order state machine

Generated from `services/sequencer/core/order_machine.py` (`TRANSITIONS`) by
`python docs/generate.py`; do not edit by hand. `STAY` is a deliberate, recorded no-op;
`PREVIOUS` returns to the state before the pending request. Any pair not listed is refused with
`IllegalTransition` and leaves the order unchanged.

"""


def transition_table_markdown() -> str:
    """The table as Markdown, for docs: generated, never written by hand."""
    lines = ["| from | event | to | note |", "|---|---|---|---|"]
    for (state, event), (target, note) in TRANSITIONS.items():
        to = target.value if isinstance(target, OrderState) else repr(target)
        lines.append(f"| {state.value} | {event.value} | {to} | {note} |")
    return "\n".join(lines) + "\n"

