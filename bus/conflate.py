"""Per-key conflation: under load, keep only the latest update per key (instrument), counted.

ARCHITECTURE "Backpressure": live market data may be conflated per instrument; intents, venue
reports and order commands are never conflated, dropped or reordered. The bus does not know what
a message means, so the policy of *what* may go through a `Conflator` is the producer's (a feed
conflates quotes and trades per instrument; a gateway or a strategy host never uses one). Only
state-like data qualifies: a newer value of the same key makes the older one worthless (the
latest quote). Event-like data (each fill, each intent, each report) must never be conflated,
since every one of them changes state.

Why not ZeroMQ's own CONFLATE option: it keeps one message per *socket*, not per key, and does
not support multipart messages (our frames are ``[kind, body]``).

Order is deterministic: `drain` returns keys in the order each key first arrived since the
previous drain; a replaced value keeps its key's place (a busy instrument cannot push a quiet
one back, and never jumps ahead of it either).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

from bus.limits import CONFLATE_MAX_KEYS

__all__ = ["Conflator"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Conflator(Generic[K, V]):
    """Holds the latest value per key between drains.

    Args:
        max_keys: most distinct keys held (`limits.CONFLATE_MAX_KEYS`); a new key beyond it is
            refused (`offer` returns False, counted in `refused`) until the next drain.

    Attributes:
        conflated: values replaced by a newer one for the same key before being drained.
        refused: values refused because `max_keys` distinct keys were already held.
    """

    __slots__ = ("_latest", "conflated", "max_keys", "refused")

    def __init__(self, max_keys: int = CONFLATE_MAX_KEYS) -> None:
        assert max_keys >= 1
        self.max_keys = max_keys
        self._latest: dict[K, V] = {}
        self.conflated = 0
        self.refused = 0

    def offer(self, key: K, value: V) -> bool:
        """Hold `value` as the latest for `key`, replacing (and counting) an undrained older one.

        Returns:
            True if held; False if `key` is new and `max_keys` keys are already held (the caller
            drains and offers again, or counts the update as dropped).
        """
        latest = self._latest
        if key in latest:
            self.conflated += 1
        elif len(latest) >= self.max_keys:
            self.refused += 1
            return False
        latest[key] = value  # replacing keeps the key's position in the dict
        return True

    def drain(self) -> list[tuple[K, V]]:
        """Take every held value, in first-arrival order of keys; the conflator is empty after."""
        items = list(self._latest.items())
        self._latest.clear()
        return items

    def __len__(self) -> int:
        """Keys currently held."""
        return len(self._latest)

    def __contains__(self, key: object) -> bool:
        return key in self._latest
