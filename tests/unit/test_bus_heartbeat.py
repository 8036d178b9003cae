"""Heartbeat monitor and schedule: pure, driven by integer times (no clock, no sleep)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from bus.heartbeat import HeartbeatMonitor, HeartbeatSchedule, PeerChange
from bus.limits import HEARTBEAT_INTERVAL_MS, SILENT_AFTER_HEARTBEATS
from schemas.bus import PeerRole, PeerStatus

MS = 1_000_000
IVL = HEARTBEAT_INTERVAL_MS * MS  # 1 s in ns
T0 = 1_000 * IVL


def test_defaults_are_one_second_and_three_intervals() -> None:
    assert HEARTBEAT_INTERVAL_MS == 1_000 and SILENT_AFTER_HEARTBEATS == 3


def test_first_sighting_is_reported_once() -> None:
    mon = HeartbeatMonitor()
    assert mon.check(T0) == []
    mon.seen("feed-1", PeerRole.FEED, T0)
    assert mon.check(T0) == [PeerChange("feed-1", PeerRole.FEED, True, T0, 0)]
    assert mon.check(T0 + 1) == []
    assert mon.is_alive("feed-1", T0) and not mon.is_alive("nobody", T0)


def test_silent_exactly_after_three_intervals_without_a_word() -> None:
    mon = HeartbeatMonitor()
    mon.seen("gw", PeerRole.GATEWAY, T0)
    mon.check(T0)
    assert mon.check(T0 + 3 * IVL - 1) == []  # still within the window
    assert mon.is_alive("gw", T0 + 3 * IVL - 1)
    assert mon.check(T0 + 3 * IVL) == [PeerChange("gw", PeerRole.GATEWAY, False, T0, 3)]
    assert not mon.is_alive("gw", T0 + 3 * IVL)
    assert mon.check(T0 + 10 * IVL) == []  # reported once


def test_regular_heartbeats_keep_a_peer_alive() -> None:
    mon = HeartbeatMonitor()
    t = T0
    for _ in range(20):
        mon.seen("s1", PeerRole.STRATEGY, t)
        changes = mon.check(t + IVL // 2)
        assert all(c.alive for c in changes)
        t += IVL
    assert mon.is_alive("s1", t)


def test_coming_back_is_reported_with_the_new_time() -> None:
    mon = HeartbeatMonitor()
    mon.seen("seq", PeerRole.SEQUENCER, T0)
    mon.check(T0)
    mon.check(T0 + 5 * IVL)  # silent
    mon.seen("seq", PeerRole.SEQUENCER, T0 + 6 * IVL)
    assert mon.check(T0 + 6 * IVL) == [PeerChange("seq", PeerRole.SEQUENCER, True, T0 + 6 * IVL, 0)]


def test_a_peer_silent_before_it_was_ever_checked_is_reported_silent() -> None:
    mon = HeartbeatMonitor()
    mon.seen("ctl", PeerRole.CONTROL, T0)
    assert mon.check(T0 + 4 * IVL) == [PeerChange("ctl", PeerRole.CONTROL, False, T0, 4)]


def test_old_timestamps_never_move_liveness_backwards() -> None:
    mon = HeartbeatMonitor()
    mon.seen("f", PeerRole.FEED, T0 + 2 * IVL)
    mon.seen("f", PeerRole.FEED, T0)  # fed out of order from a drained batch
    assert mon.last_seen_ns("f") == T0 + 2 * IVL
    assert mon.is_alive("f", T0 + 4 * IVL)


def test_changes_come_sorted_by_peer_and_forget_stops_tracking() -> None:
    mon = HeartbeatMonitor(interval_ms=10, silent_after=2)
    for name in ["zeta", "alpha", "mid"]:
        mon.seen(name, PeerRole.FEED, T0)
    assert [c.peer for c in mon.check(T0)] == ["alpha", "mid", "zeta"]
    mon.forget("mid")
    assert mon.peers == ["alpha", "zeta"]
    assert [c.peer for c in mon.check(T0 + 20 * MS)] == ["alpha", "zeta"]
    assert mon.last_seen_ns("mid") is None


def test_next_check_is_the_earliest_possible_silence() -> None:
    mon = HeartbeatMonitor()
    assert mon.next_check_ns() is None
    mon.seen("a", PeerRole.FEED, T0 + IVL)
    mon.seen("b", PeerRole.FEED, T0)
    assert mon.next_check_ns() == T0 + 3 * IVL
    mon.check(T0 + 3 * IVL)  # b silent: no longer a deadline
    assert mon.next_check_ns() == T0 + 4 * IVL


def test_change_becomes_the_published_status() -> None:
    change = PeerChange("gw", PeerRole.GATEWAY, False, T0, 3)
    assert change.to_status() == PeerStatus(peer="gw", role=PeerRole.GATEWAY, alive=False, last_seen_ns=T0, missed_heartbeats=3)


def test_the_peer_table_is_bounded() -> None:
    mon = HeartbeatMonitor(max_peers=2)
    assert mon.seen("a", PeerRole.FEED, T0) and mon.seen("b", PeerRole.FEED, T0)
    assert not mon.seen("c", PeerRole.FEED, T0)  # refused: the caller counts it
    assert mon.seen("a", PeerRole.FEED, T0 + 1)  # known peers still update
    assert mon.peers == ["a", "b"]


def test_role_follows_the_latest_announcement() -> None:
    mon = HeartbeatMonitor()
    mon.seen("p", PeerRole.FEED, T0)
    mon.seen("p", PeerRole.GATEWAY, T0 + 1)
    assert mon.check(T0 + 1)[0].role is PeerRole.GATEWAY


@given(gaps_ms=st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=40))
def test_reports_alternate_and_match_the_window(gaps_ms: list[int]) -> None:
    """Whatever the arrival pattern: changes alternate alive/silent, and each matches the rule."""
    mon = HeartbeatMonitor()
    t = T0
    last_seen = None
    reported: list[bool] = []
    for gap in gaps_ms:
        t += gap * MS
        # check just before this heartbeat: silent iff 3 s passed since the last one
        for change in mon.check(t):
            reported.append(change.alive)
            assert last_seen is not None
            assert change.alive is False and t - last_seen >= 3 * IVL
            assert change.missed_heartbeats == (t - last_seen) // IVL
        mon.seen("p", PeerRole.FEED, t)
        last_seen = t
        for change in mon.check(t):
            reported.append(change.alive)
            assert change.alive is True
    assert reported[0] is True
    assert all(a != b for a, b in pairwise(reported))


def test_schedule_fires_now_then_every_interval_without_bursting() -> None:
    sched = HeartbeatSchedule(start_ns=T0)
    assert sched.due(T0) and sched.timeout_ms(T0) == 0
    sched.sent(T0)
    assert not sched.due(T0 + IVL - 1)
    assert sched.timeout_ms(T0 + IVL - 1) == 1  # rounds up: never wakes before it is due
    assert sched.timeout_ms(T0 + IVL // 4) == 750
    assert sched.due(T0 + IVL)
    # A 10 s stall: one heartbeat now, the next a full interval later (no catch-up burst).
    sched.sent(T0 + 11 * IVL)
    assert sched.next_due_ns == T0 + 12 * IVL
    assert not sched.due(T0 + 11 * IVL + 1)


def test_schedule_interval_is_configurable() -> None:
    sched = HeartbeatSchedule(interval_ms=50, start_ns=0)
    sched.sent(0)
    assert sched.next_due_ns == 50 * MS and sched.timeout_ms(0) == 50
