"""The order transition table: complete where it must be, closed everywhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import OrderEvent, OrderState
from services.sequencer.core import (
    TRANSITIONS,
    IllegalTransition,
    OrderStateMachine,
    transition_table_markdown,
)
from services.sequencer.core.order_machine import (
    DOC_HEADER,
    PENDING_STATES,
    PREVIOUS,
    STAY,
    TERMINAL_STATES,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "order_state_machine.md"
ALL_PAIRS = [(s, e) for s in OrderState for e in OrderEvent]


@pytest.mark.parametrize(("state", "event"), [p for p in ALL_PAIRS if p not in TRANSITIONS])
def test_every_pair_outside_the_table_is_refused_with_a_diagnostic(state: OrderState, event: OrderEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        OrderStateMachine.next_state("o-42", state, None, event, seq_id=7)
    err = info.value
    assert (err.client_order_id, err.state, err.event, err.seq_id) == ("o-42", state, event, 7)
    assert "o-42" in str(err) and state.value in str(err) and event.value in str(err) and "seq 7" in str(err)


def test_the_reference_minimum_path_is_in_the_table() -> None:
    S, E = OrderState, OrderEvent
    path = [
        (S.CREATED, E.SUBMIT, S.SUBMITTED),
        (S.SUBMITTED, E.ACCEPT, S.ACCEPTED),
        (S.ACCEPTED, E.PARTIAL_FILL, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, E.FULL_FILL, S.FILLED),
        (S.ACCEPTED, E.CANCEL_REQUEST, S.CANCEL_PENDING),
        (S.PARTIALLY_FILLED, E.CANCEL_REQUEST, S.CANCEL_PENDING),
        (S.CANCEL_PENDING, E.CANCEL_ACK, S.CANCELLED),
        (S.SUBMITTED, E.REJECT, S.REJECTED),
        (S.ACCEPTED, E.EXPIRE, S.EXPIRED),
        (S.SUBMITTED, E.SUBMISSION_UNKNOWN, S.IN_DOUBT),
    ]
    for state, event, target in path:
        assert OrderStateMachine.next_state("o", state, None, event, 1)[0] is target


@pytest.mark.parametrize(("state", "event"), [p for p in TRANSITIONS if p[0] in TERMINAL_STATES])
def test_terminal_states_never_reopen(state: OrderState, event: OrderEvent) -> None:
    assert TRANSITIONS[(state, event)][0] is STAY
    assert OrderStateMachine.next_state("o", state, None, event, 1)[0] is state


def test_pending_states_remember_and_restore_where_they_came_from() -> None:
    S, E = OrderState, OrderEvent
    state, origin, _ = OrderStateMachine.next_state("o", S.PARTIALLY_FILLED, None, E.CANCEL_REQUEST, 1)
    assert (state, origin) == (S.CANCEL_PENDING, S.PARTIALLY_FILLED)
    assert OrderStateMachine.next_state("o", state, origin, E.CANCEL_REJECT, 2)[:2] == (S.PARTIALLY_FILLED, None)
    # a fill while pending advances the shadowed state
    state, origin, _ = OrderStateMachine.next_state("o", S.CANCEL_PENDING, S.ACCEPTED, E.PARTIAL_FILL, 3)
    assert (state, origin) == (S.CANCEL_PENDING, S.PARTIALLY_FILLED)


def test_previous_without_an_origin_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        OrderStateMachine.next_state("o", OrderState.CANCEL_PENDING, None, OrderEvent.CANCEL_REJECT, 1)


def test_every_pending_entry_into_a_pending_state_comes_from_a_live_state() -> None:
    for (state, _event), (target, _note) in TRANSITIONS.items():
        if target in PENDING_STATES:
            assert state not in TERMINAL_STATES
        if target is PREVIOUS:
            assert state in PENDING_STATES


def test_the_state_machine_doc_is_generated_from_the_table() -> None:
    text = transition_table_markdown()
    assert f"| {OrderState.SUBMITTED.value} | {OrderEvent.ACCEPT.value} | {OrderState.ACCEPTED.value} |" in text
    assert len(text.strip().splitlines()) == len(TRANSITIONS) + 2
    assert DOC.read_text() == DOC_HEADER + text, "docs/order_state_machine.md is stale: run python docs/generate.py"
