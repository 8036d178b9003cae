"""Typed errors of the core. Each names what it is about so a log line alone is enough."""

from __future__ import annotations

from schemas.enums import OrderEvent, OrderState

__all__ = ["CoreError", "IllegalTransition", "InvariantViolation", "RestoreError", "SequenceError"]


class CoreError(Exception):
    """Base of the core's errors."""


class IllegalTransition(CoreError):
    """An event the transition table does not allow from the order's state. State is unchanged."""

    def __init__(self, client_order_id: str, state: OrderState, event: OrderEvent, seq_id: int) -> None:
        self.machine = "order"
        self.client_order_id = client_order_id
        self.state = state
        self.event = event
        self.seq_id = seq_id
        super().__init__(
            f"order machine: order {client_order_id!r} in state {state.value!r} cannot take event "
            f"{event.value!r} (seq {seq_id})"
        )


class InvariantViolation(CoreError):
    """An invariant failed after an event: under the `raise` policy this stops the process."""

    def __init__(self, invariant: str, detail: str, seq_id: int) -> None:
        self.invariant = invariant
        self.detail = detail
        self.seq_id = seq_id
        super().__init__(f"invariant {invariant!r} broken at seq {seq_id}: {detail}")


class SequenceError(CoreError):
    """The caller broke the sequencing contract (seq ids must be contiguous). Our bug: stop."""


class RestoreError(CoreError):
    """A snapshot cannot be restored into this core (config hash or content mismatch)."""
