"""Per-key conflation: latest value per key, replaced ones counted, bounded keys, stable order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bus.conflate import Conflator
from bus.limits import CONFLATE_MAX_KEYS


def test_latest_value_per_key_in_first_arrival_order() -> None:
    c: Conflator[str, int] = Conflator()
    for key, value in [("BTC", 1), ("ETH", 2), ("BTC", 3), ("SOL", 4), ("BTC", 5), ("ETH", 6)]:
        assert c.offer(key, value)
    assert len(c) == 3 and "BTC" in c
    assert c.drain() == [("BTC", 5), ("ETH", 6), ("SOL", 4)]
    assert c.conflated == 3
    assert len(c) == 0 and c.drain() == []


def test_order_restarts_after_a_drain() -> None:
    c: Conflator[str, int] = Conflator()
    c.offer("a", 1)
    c.offer("b", 2)
    c.drain()
    c.offer("b", 3)
    c.offer("a", 4)
    assert c.drain() == [("b", 3), ("a", 4)]
    assert c.conflated == 0  # nothing was replaced before being drained


def test_new_keys_beyond_the_bound_are_refused_and_counted() -> None:
    c: Conflator[str, int] = Conflator(max_keys=2)
    assert c.offer("a", 1) and c.offer("b", 2)
    assert not c.offer("c", 3)
    assert c.offer("a", 9)  # a held key still updates
    assert c.refused == 1 and c.conflated == 1
    assert c.drain() == [("a", 9), ("b", 2)]
    assert c.offer("c", 3)  # room again after the drain


def test_default_bound_is_the_named_limit() -> None:
    assert Conflator().max_keys == CONFLATE_MAX_KEYS


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers()), max_size=200), st.integers(1, 8))
def test_against_a_model(updates: list[tuple[str, int]], max_keys: int) -> None:
    c: Conflator[str, int] = Conflator(max_keys=max_keys)
    model: dict[str, int] = {}
    order: list[str] = []
    refused = conflated = 0
    for key, value in updates:
        if key in model:
            conflated += 1
        elif len(model) >= max_keys:
            assert not c.offer(key, value)
            refused += 1
            continue
        else:
            order.append(key)
        model[key] = value
        assert c.offer(key, value)
    assert c.drain() == [(k, model[k]) for k in order]
    assert (c.refused, c.conflated) == (refused, conflated)
    # Nothing is lost silently: every update was held, replaced (counted) or refused (counted).
    assert len(order) + conflated + refused == len(updates)
