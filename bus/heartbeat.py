"""Heartbeats: when to send the next one, and which peers have gone silent.

Both are pure: no clock inside, the caller passes `now_ns` (monotonic nanoseconds) to every
call, so the logic is tested with plain integers and behaves the same under a virtual clock.

A peer is *alive* while it has been heard from (a heartbeat or any other message) within
`silent_after` intervals, and *silent* after that. `HeartbeatMonitor.check` reports each change
once: a peer seen for the first time, a peer that went silent, a peer that came back. The
sequencer publishes these as `PeerStatus`; a subscriber uses one monitor for its sequencer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bus.limits import HEARTBEAT_INTERVAL_MS, MAX_TRACKED_PEERS, SILENT_AFTER_HEARTBEATS
from schemas.bus import PeerRole, PeerStatus

__all__ = ["HeartbeatMonitor", "HeartbeatSchedule", "PeerChange"]

_NS_PER_MS = 1_000_000


@dataclass(frozen=True, slots=True)
class PeerChange:
    """A peer's liveness changed.

    Attributes:
        peer: the peer's id (`Heartbeat.peer`).
        role: its role as last announced.
        alive: True: first seen or came back; False: went silent.
        last_seen_ns: when it was last heard from (the caller's clock).
        missed_heartbeats: whole intervals since then (0 when it is alive).
    """

    peer: str
    role: PeerRole
    alive: bool
    last_seen_ns: int
    missed_heartbeats: int

    def to_status(self) -> PeerStatus:
        """The message the sequencer publishes for this change."""
        return PeerStatus(
            peer=self.peer,
            role=self.role,
            alive=self.alive,
            last_seen_ns=self.last_seen_ns,
            missed_heartbeats=self.missed_heartbeats,
        )


@dataclass(slots=True)
class _Peer:
    role: PeerRole
    last_seen_ns: int
    reported_alive: bool | None  # None: never reported (first sighting pending)


class HeartbeatMonitor:
    """Tracks when each peer was last heard from and reports liveness changes.

    Args:
        interval_ms: the heartbeat interval peers use.
        silent_after: intervals without a word after which a peer counts as silent.
        max_peers: most peers tracked (`limits.MAX_TRACKED_PEERS`).
    """

    __slots__ = ("_interval_ns", "_peers", "_silent_ns", "max_peers")

    def __init__(
        self,
        interval_ms: int = HEARTBEAT_INTERVAL_MS,
        silent_after: int = SILENT_AFTER_HEARTBEATS,
        max_peers: int = MAX_TRACKED_PEERS,
    ) -> None:
        assert interval_ms > 0 and silent_after > 0 and max_peers > 0
        self._interval_ns = interval_ms * _NS_PER_MS
        self._silent_ns = silent_after * self._interval_ns
        self._peers: dict[str, _Peer] = {}
        self.max_peers = max_peers

    def seen(self, peer: str, role: PeerRole, now_ns: int) -> bool:
        """Record that `peer` was heard from at `now_ns` (a heartbeat or any other message).

        A timestamp older than the last one recorded is ignored (messages drained in a batch may
        be fed out of order), so liveness never moves backwards.

        Returns:
            False if `peer` is new and `max_peers` peers are already tracked (not recorded).
        """
        known = self._peers.get(peer)
        if known is None:
            if len(self._peers) >= self.max_peers:
                return False
            self._peers[peer] = _Peer(role, now_ns, None)
            return True
        known.role = role
        if now_ns > known.last_seen_ns:
            known.last_seen_ns = now_ns
        return True

    def check(self, now_ns: int) -> list[PeerChange]:
        """The liveness changes since the last check, by peer id (deterministic order).

        Returns:
            One `PeerChange` per peer that was seen for the first time, went silent, or came
            back since the previous call; nothing for peers whose state did not change.
        """
        changes: list[PeerChange] = []
        for name in sorted(self._peers):
            state = self._peers[name]
            alive = self._is_alive(state, now_ns)
            if alive == state.reported_alive:
                continue
            state.reported_alive = alive
            missed = 0 if alive else (now_ns - state.last_seen_ns) // self._interval_ns
            changes.append(PeerChange(name, state.role, alive, state.last_seen_ns, missed))
        return changes

    def is_alive(self, peer: str, now_ns: int) -> bool:
        """True if `peer` has been heard from within the silence window (False if never seen)."""
        state = self._peers.get(peer)
        return state is not None and self._is_alive(state, now_ns)

    def last_seen_ns(self, peer: str) -> int | None:
        state = self._peers.get(peer)
        return None if state is None else state.last_seen_ns

    def forget(self, peer: str) -> None:
        """Stop tracking `peer` (it left cleanly); no change is reported for it."""
        self._peers.pop(peer, None)

    @property
    def peers(self) -> list[str]:
        """Ids of every tracked peer, sorted."""
        return sorted(self._peers)

    def next_check_ns(self) -> int | None:
        """The earliest time at which a live peer could turn silent (to size a poll timeout)."""
        deadlines = [p.last_seen_ns + self._silent_ns for p in self._peers.values() if p.reported_alive is not False]
        return min(deadlines) if deadlines else None

    def _is_alive(self, state: _Peer, now_ns: int) -> bool:
        return now_ns - state.last_seen_ns < self._silent_ns


class HeartbeatSchedule:
    """When to send our own next heartbeat.

    A fixed cadence, independent of other traffic: a heartbeat also carries the sender's
    `last_seq_id`, which an idle subscriber needs to see the tail of the stream. After a stall
    (a long GC, a blocked loop) the schedule does not burst to catch up: the next heartbeat is one
    interval after the one actually sent.

    Args:
        interval_ms: the interval.
        start_ns: the time the first heartbeat is due (usually "now": announce ourselves at once).
    """

    __slots__ = ("_interval_ns", "next_due_ns")

    def __init__(self, interval_ms: int = HEARTBEAT_INTERVAL_MS, start_ns: int = 0) -> None:
        assert interval_ms > 0
        self._interval_ns = interval_ms * _NS_PER_MS
        self.next_due_ns = start_ns

    def due(self, now_ns: int) -> bool:
        return now_ns >= self.next_due_ns

    def sent(self, now_ns: int) -> None:
        """Record that a heartbeat went out at `now_ns`."""
        self.next_due_ns = now_ns + self._interval_ns

    def timeout_ms(self, now_ns: int) -> int:
        """How long a poll may wait before the next heartbeat is due (0 if it is due now)."""
        remaining = self.next_due_ns - now_ns
        return 0 if remaining <= 0 else -(-remaining // _NS_PER_MS)
