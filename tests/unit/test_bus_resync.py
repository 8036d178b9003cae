"""The Clone-pattern follower (E4, E5 without sockets): gaps, duplicates, snapshots, ranges.

The property test drives a `StreamFollower` through a simulated network that drops, duplicates,
delays and reorders live records and heartbeats, loses or delays sync answers, and a server that
answers snapshot and range requests from the true stream; whatever happens, the application sees
the snapshot and then every later record exactly once, in order, and ends ready and up to date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from bus.limits import FOLLOWER_MAX_BUFFERED, MAX_RANGE_ITEMS
from bus.resync import UNPRODUCTIVE_RANGES_BEFORE_SNAPSHOT, FollowerState, StreamFollower, range_replies
from schemas.bus import RangeReply, RangeRequest, Sequenced, SnapshotRequest, SyncRefused
from tests.unit.wire_samples import ENVELOPES

ENV = ENVELOPES[0]


def rec(seq: int) -> Sequenced:
    return Sequenced(seq_id=seq, envelope=msgspec.structs.replace(ENV, seq_id=seq), outputs=[])


def seqs(records: list[Sequenced]) -> list[int]:
    return [r.seq_id for r in records]


def reply(request: Any, first: int, last: int, *, complete: bool = True) -> RangeReply:
    return RangeReply(request_id=request.request_id, items=[rec(s) for s in range(first, last + 1)], complete=complete)


def live_at(seq: int, **kwargs: Any) -> StreamFollower:
    """A follower that has applied everything up to `seq` (from a snapshot) and is LIVE."""
    f = StreamFollower(**kwargs)
    assert isinstance(f.next_request(), SnapshotRequest)
    assert f.on_snapshot(seq) == []
    assert f.ready
    return f


# --------------------------------------------------------------------------------------------
# start-up: subscribe, buffer, snapshot (E5)


def test_starts_by_asking_for_a_snapshot_and_is_not_ready() -> None:
    f = StreamFollower()
    assert f.state is FollowerState.AWAITING_SNAPSHOT and not f.ready
    assert f.next_request() == SnapshotRequest(request_id=1)
    assert f.next_request() is None  # one request in flight at a time
    assert f.max_buffered == FOLLOWER_MAX_BUFFERED


def test_late_joiner_discards_what_the_snapshot_covers() -> None:
    f = StreamFollower()
    f.next_request()
    for s in (5, 6, 7, 8):
        assert f.on_record(rec(s)) == []
    assert f.buffered == 4
    assert seqs(f.on_snapshot(6)) == [7, 8]
    assert f.ready and f.applied_seq_id == 8 and f.buffered == 0
    assert f.stats.covered == 2 and f.stats.applied == 2 and f.stats.snapshots == 1
    assert seqs(f.on_record(rec(9))) == [9]


def test_snapshot_older_than_the_buffer_asks_for_the_range_between() -> None:
    f = StreamFollower()
    f.next_request()
    f.on_record(rec(10))
    f.on_record(rec(11))
    assert f.on_snapshot(6) == []
    assert f.state is FollowerState.RESYNCING and not f.ready
    req = f.next_request()
    assert req == RangeRequest(request_id=2, from_seq_id=7, to_seq_id=9)
    assert seqs(f.on_range(reply(req, 7, 9))) == [7, 8, 9, 10, 11]
    assert f.ready and f.next_request() is None


def test_snapshot_may_be_newer_than_anything_seen() -> None:
    f = StreamFollower()
    f.next_request()
    assert f.on_snapshot(50) == [] and f.ready
    assert f.on_record(rec(50)) == [] and f.stats.duplicates == 1
    assert seqs(f.on_record(rec(51))) == [51]


def test_installing_a_snapshot_while_live_is_a_caller_bug() -> None:
    f = live_at(3)
    with pytest.raises(AssertionError, match="snapshot while live"):
        f.on_snapshot(3)


def test_following_from_the_first_record_needs_no_snapshot() -> None:
    f = StreamFollower(applied_seq_id=0)
    assert f.ready and f.next_request() is None
    assert seqs(f.on_record(rec(1))) == [1]
    assert seqs(f.on_record(rec(2))) == [2]


# --------------------------------------------------------------------------------------------
# gaps and ranges (E4)


def test_a_gap_stops_applying_and_asks_for_exactly_the_missing_range() -> None:
    f = live_at(10)
    assert seqs(f.on_record(rec(11))) == [11]
    assert f.on_record(rec(14)) == []
    assert f.state is FollowerState.RESYNCING and f.stats.gaps == 1
    assert f.on_record(rec(15)) == []  # buffered meanwhile
    req = f.next_request()
    assert req == RangeRequest(request_id=2, from_seq_id=12, to_seq_id=13)
    assert seqs(f.on_range(reply(req, 12, 13))) == [12, 13, 14, 15]
    assert f.ready and f.applied_seq_id == 15 and f.outstanding is None


def test_range_chunks_apply_as_they_come_and_only_complete_ends_the_request() -> None:
    f = live_at(0)
    f.on_record(rec(7))
    req = f.next_request()
    assert req == RangeRequest(request_id=2, from_seq_id=1, to_seq_id=6)
    assert seqs(f.on_range(reply(req, 1, 3, complete=False))) == [1, 2, 3]
    assert f.outstanding == req and not f.ready
    assert seqs(f.on_range(reply(req, 4, 6, complete=True))) == [4, 5, 6, 7]
    assert f.ready


def test_live_record_filling_the_gap_first_makes_the_range_answer_duplicates() -> None:
    f = live_at(10)
    f.on_record(rec(12))
    req = f.next_request()
    assert seqs(f.on_record(rec(11))) == [11, 12]  # the "lost" one arrived after all
    assert f.ready and f.outstanding is None
    assert f.on_range(reply(req, 11, 11)) == []
    assert f.stats.duplicates == 1 and f.stats.stale_replies == 1


def test_duplicates_are_discarded_and_counted() -> None:
    f = live_at(5)
    f.on_record(rec(6))
    assert f.on_record(rec(6)) == [] and f.on_record(rec(3)) == []
    f.on_record(rec(9))
    assert f.on_record(rec(9)) == []  # already buffered
    assert f.stats.duplicates == 3


def test_a_batch_of_records_is_the_same_as_its_records_one_by_one() -> None:
    # Fast path: live, and the batch follows the last applied record.
    f = live_at(10)
    assert seqs(f.on_records([rec(s) for s in range(11, 16)])) == [11, 12, 13, 14, 15]
    assert f.ready and f.applied_seq_id == f.known_seq_id == 15 and f.stats.applied == 5
    assert f.on_records([]) == []
    # Anything else goes record by record: a batch after a gap is buffered and asks for the gap,
    # a batch overlapping what was applied has its duplicates discarded.
    assert f.on_records([rec(18), rec(19)]) == []
    assert f.state is FollowerState.RESYNCING
    req = f.next_request()
    assert req == RangeRequest(request_id=2, from_seq_id=16, to_seq_id=17)
    assert seqs(f.on_records([rec(s) for s in range(14, 18)])) == [16, 17, 18, 19]
    assert f.ready and f.stats.duplicates == 2
    # Before the snapshot: buffered; the snapshot drops what it covers.
    g = StreamFollower()
    assert g.next_request() == SnapshotRequest(request_id=1)
    assert g.on_records([rec(s) for s in range(3, 7)]) == []
    assert seqs(g.on_snapshot(4)) == [5, 6]
    # The same outcome as feeding the records one at a time, statistics included.
    one, many = live_at(0), live_at(0)
    batches = [[rec(1), rec(2)], [rec(5), rec(6)], [rec(2), rec(3), rec(4)], [rec(7)]]
    singles = [r for b in batches for r in b]
    assert seqs([r for b in batches for r in many.on_records(b)]) == seqs([r for x in singles for r in one.on_record(x)])
    assert many.stats == one.stats and many.applied_seq_id == one.applied_seq_id == 7


def test_heartbeat_ahead_of_the_stream_is_a_tail_gap() -> None:
    f = live_at(10)
    f.on_heartbeat(10)
    assert f.ready
    f.on_heartbeat(12)
    assert f.state is FollowerState.RESYNCING and f.known_seq_id == 12
    req = f.next_request()
    assert req == RangeRequest(request_id=2, from_seq_id=11, to_seq_id=12)
    assert seqs(f.on_range(reply(req, 11, 12))) == [11, 12]
    assert f.ready


def test_heartbeat_behind_the_publication_stream_is_divergence() -> None:
    f = live_at(10)
    f.on_record(rec(11))
    f.on_record(rec(13))  # buffered
    f.on_heartbeat(9)  # the sequencer says it published less than we received from it
    assert f.state is FollowerState.AWAITING_SNAPSHOT and f.stats.diverged == 1
    assert f.buffered == 0 and f.known_seq_id == 9
    assert isinstance(f.next_request(), SnapshotRequest)
    assert f.on_snapshot(9) == [] and f.ready  # the restarted sequencer's truth
    assert seqs(f.on_record(rec(10))) == [10]


def test_heartbeat_sent_before_the_snapshot_was_taken_is_not_divergence() -> None:
    # The sync reply (another socket) can overtake a heartbeat queued on the publication socket.
    f = StreamFollower()
    f.next_request()
    f.on_snapshot(20)
    f.on_heartbeat(15)
    assert f.ready and f.stats.diverged == 0 and f.applied_seq_id == 20


def test_request_ids_increase_and_abandon_asks_again() -> None:
    f = live_at(1)
    f.on_record(rec(5))
    first = f.next_request()
    f.abandon_request()
    second = f.next_request()
    assert isinstance(first, RangeRequest) and isinstance(second, RangeRequest)
    assert second.request_id == first.request_id + 1
    assert (second.from_seq_id, second.to_seq_id) == (2, 4)
    # A late answer to the abandoned request is still used (records are immutable) ...
    assert seqs(f.on_range(reply(first, 2, 4))) == [2, 3, 4, 5]
    assert f.stats.stale_replies == 1 and f.ready


def test_refused_range_falls_back_to_a_snapshot() -> None:
    f = live_at(1)
    f.on_record(rec(5))
    req = f.next_request()
    assert req is not None
    f.on_refused(SyncRefused(request_id=req.request_id + 7, reason="x", detail=""))  # not ours
    assert f.outstanding == req and f.stats.stale_replies == 1
    f.on_refused(SyncRefused(request_id=req.request_id, reason="pruned", detail="journal starts at 3"))
    assert f.state is FollowerState.AWAITING_SNAPSHOT and f.stats.refusals == 1
    assert isinstance(f.next_request(), SnapshotRequest)
    assert seqs(f.on_snapshot(4)) == [5]  # the buffered record survived the restart
    assert f.ready


def test_refused_snapshot_waits_for_the_callers_timeout() -> None:
    f = StreamFollower()
    req = f.next_request()
    assert req is not None
    f.on_refused(SyncRefused(request_id=req.request_id, reason="busy", detail=""))
    assert f.next_request() is None  # no tight loop against a refusing server
    f.abandon_request()
    assert f.next_request() == SnapshotRequest(request_id=2)


def test_ranges_that_fill_nothing_fall_back_to_a_snapshot() -> None:
    f = live_at(1)
    f.on_record(rec(5))
    for _ in range(UNPRODUCTIVE_RANGES_BEFORE_SNAPSHOT):
        assert f.state is FollowerState.RESYNCING
        req = f.next_request()
        f.on_range(RangeReply(request_id=req.request_id, items=[], complete=True))  # type: ignore[union-attr]
    assert f.state is FollowerState.AWAITING_SNAPSHOT


def test_buffer_overflow_drops_newest_and_fetches_them_later() -> None:
    f = live_at(0, max_buffered=2)
    for s in range(3, 9):  # 1 and 2 lost; 3..8 arrive, only 3 and 4 fit
        f.on_record(rec(s))
    assert f.buffered == 2 and f.stats.overflow == 4 and f.known_seq_id == 8
    req = f.next_request()
    assert (req.from_seq_id, req.to_seq_id) == (1, 8)  # type: ignore[union-attr]
    # The range arrives while the buffer is still full: the next record is never refused for room.
    assert seqs(f.on_range(reply(req, 1, 8))) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert f.stats.duplicates == 2 and f.ready


def test_one_request_covers_every_hole_but_not_the_buffered_tail() -> None:
    f = live_at(10)
    for s in (13, 16, 20, 21, 22):
        f.on_record(rec(s))
    req = f.next_request()
    assert (req.from_seq_id, req.to_seq_id) == (11, 19)  # type: ignore[union-attr]
    assert seqs(f.on_range(reply(req, 11, 19))) == list(range(11, 23))
    assert f.stats.duplicates == 2 and f.ready  # 13 and 16 came twice


# --------------------------------------------------------------------------------------------
# the server's half


def test_range_replies_chunk_by_count_and_mark_the_last() -> None:
    chunks = list(range_replies(4, [rec(s) for s in range(1, 8)], max_items=3))
    assert [seqs(c.items) for c in chunks] == [[1, 2, 3], [4, 5, 6], [7]]
    assert [c.complete for c in chunks] == [False, False, True]
    assert {c.request_id for c in chunks} == {4}


def test_range_replies_chunk_by_size_and_send_a_big_record_alone() -> None:
    sizes = {1: 10, 2: 10, 3: 500, 4: 10}
    chunks = list(range_replies(1, [rec(s) for s in sizes], target_bytes=20, size_of=lambda r: sizes[r.seq_id]))
    assert [seqs(c.items) for c in chunks] == [[1, 2], [3], [4]]


def test_an_empty_range_still_completes() -> None:
    assert list(range_replies(9, [])) == [RangeReply(request_id=9, items=[], complete=True)]


def test_default_chunks_respect_the_schema_limit() -> None:
    chunks = list(range_replies(1, (rec(s) for s in range(1, 2 * MAX_RANGE_ITEMS + 2))))
    assert [len(c.items) for c in chunks] == [MAX_RANGE_ITEMS, MAX_RANGE_ITEMS, 1]


# --------------------------------------------------------------------------------------------
# property: any loss, duplication, delay and reorder, plus resync == the stream, once, in order


@dataclass
class Net:
    """One randomised run: what the network and the server do."""

    n: int  # records the sequencer publishes: 1..n
    join: int  # records <= join were published before we subscribed (never arrive live)
    copies: list[list[int]]  # per live record: arrival delay (ticks) of each copy; [] = dropped
    heartbeats: list[bool]  # per tick: does the sequencer heartbeat reach us
    request_fates: list[str]  # per request, in order: answer / lose / late (then: answer)
    serve_delay: int
    chunk: int
    max_buffered: int
    timeout: int = 4
    late_by: int = 9
    log: list[str] = field(default_factory=list)


@st.composite
def nets(draw: st.DrawFn) -> Net:
    n = draw(st.integers(1, 60))
    join = draw(st.integers(0, n))
    copies = draw(
        st.lists(st.lists(st.integers(0, 6), max_size=3), min_size=n - join, max_size=n - join)
    )
    return Net(
        n=n,
        join=join,
        copies=copies,
        heartbeats=draw(st.lists(st.booleans(), max_size=80)),
        request_fates=draw(st.lists(st.sampled_from(["answer", "lose", "late"]), max_size=12)),
        serve_delay=draw(st.integers(0, 3)),
        chunk=draw(st.integers(1, 7)),
        max_buffered=draw(st.integers(1, 40)),
    )


def simulate(net: Net) -> None:
    f = StreamFollower(max_buffered=net.max_buffered)
    arrivals: dict[int, list[int]] = {}
    for i, delays in enumerate(net.copies):
        seq = net.join + 1 + i
        for delay in delays:
            arrivals.setdefault(seq - net.join + delay, []).append(seq)  # published at tick seq - join
    published = net.join
    state_seq: int | None = None  # the application's view: None until a snapshot is installed
    applied: list[int] = []
    inbox: list[tuple[int, SnapshotRequest | RangeRequest]] = []
    issued_at: dict[int, int] = {}
    fates = list(net.request_fates)

    def take(records: list[Sequenced]) -> None:
        nonlocal state_seq
        for r in records:
            assert state_seq is not None, "record applied before any snapshot"
            assert r.seq_id == state_seq + 1, f"applied {r.seq_id} after {state_seq}"
            state_seq = r.seq_id
            applied.append(r.seq_id)

    horizon = (net.n - net.join) + 8 + 200
    for t in range(1, horizon):
        draining = t > (net.n - net.join) + 8
        if published < net.n:
            published += 1
        for seq in arrivals.pop(t, []):
            take(f.on_record(rec(seq)))
        if draining or (t - 1 < len(net.heartbeats) and net.heartbeats[t - 1]):
            f.on_heartbeat(published)
        for due, asked in [item for item in inbox if item[0] <= t]:
            inbox.remove((due, asked))
            if isinstance(asked, SnapshotRequest):
                if f.state is FollowerState.AWAITING_SNAPSHOT:  # as bus.peer.Subscriber does
                    state_seq = published
                    net.log.append(f"t{t} snapshot@{published}")
                    take(f.on_snapshot(published))
            else:
                last = min(asked.to_seq_id or published, published)
                for chunk in range_replies(
                    asked.request_id, [rec(s) for s in range(asked.from_seq_id, last + 1)], max_items=net.chunk
                ):
                    take(f.on_range(chunk))
        current = f.outstanding
        if current is not None and t - issued_at[current.request_id] >= net.timeout:
            f.abandon_request()
        request = f.next_request()
        if request is not None:
            issued_at[request.request_id] = t
            fate = fates.pop(0) if fates else "answer"
            net.log.append(f"t{t} {type(request).__name__} {request} -> {fate}")
            if fate == "answer":
                inbox.append((t + net.serve_delay, request))
            elif fate == "late":
                inbox.append((t + net.timeout + net.late_by, request))
        # Invariants at every step: ready means nothing known is missing and nothing is buffered.
        if f.ready:
            assert f.applied_seq_id == f.known_seq_id == state_seq and f.buffered == 0
        if draining and f.ready and state_seq == net.n and not arrivals:
            break
    assert f.ready, f"not ready: {f.state} applied {f.applied_seq_id} known {f.known_seq_id}"
    assert state_seq == net.n
    assert f.stats.snapshots == 1 and f.stats.diverged == 0
    first = applied[0] if applied else net.n + 1
    assert applied == list(range(first, net.n + 1))  # every record after the snapshot, once, in order
    assert f.stats.applied == len(applied)


@given(nets())
def test_any_loss_duplication_and_reorder_plus_resync_yields_the_stream_once_in_order(net: Net) -> None:
    try:
        simulate(net)
    finally:
        note("\n".join(net.log))  # shown with the failing example: what was asked and when


def test_simulation_regression_everything_dropped_and_every_answer_late() -> None:
    simulate(
        Net(n=20, join=3, copies=[[]] * 17, heartbeats=[], request_fates=["late"] * 6, serve_delay=2, chunk=1, max_buffered=1)
    )


def test_simulation_regression_heavy_duplication_and_reordering() -> None:
    simulate(
        Net(
            n=30,
            join=0,
            copies=[[6, 0, 3], [5], [], [4, 4], [0], [2, 1, 0]] * 5,
            heartbeats=[True, False] * 20,
            request_fates=["lose", "answer", "late"],
            serve_delay=1,
            chunk=2,
            max_buffered=3,
        )
    )
