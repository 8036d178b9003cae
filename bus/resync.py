"""Following the sequencer's published stream without loss: the ZeroMQ guide's Clone pattern.

Theory of operation. The sequencer publishes one `Sequenced` per seq id, in order (alone, or
several in one `SequencedBatch` frame: `on_records`), on a PUB socket, which may drop records for a slow subscriber (its high-water mark) and misses everything
sent before a subscriber's connection is up. A follower therefore:

1. subscribes first, then asks the sync endpoint for a snapshot, buffering live records meanwhile
   (AWAITING_SNAPSHOT);
2. on the snapshot at seq `s`: discards buffered records <= s (the snapshot covers them), applies
   the rest in order, and is LIVE when nothing is missing;
3. applies each live record whose seq id is exactly one past the last applied; a record further
   ahead is a gap: it is buffered, the follower is RESYNCING and asks for the missing range
   (`RangeRequest` from last+1 to the last missing record);
4. applies range items as they arrive, then the buffered records they make contiguous, and is
   LIVE again when nothing known is missing;
5. discards (and counts) any record it has already applied or buffered: PUB never duplicates, but
   a range reply overlaps live records, and a retried request may be answered twice;
6. treats a sequencer heartbeat with `last_seq_id` above what it applied as a gap at the tail (an
   idle stream whose last records were dropped), and one below a seq id already seen on the
   publication socket as divergence (the sequencer lost records it had published): back to
   step 1, from a fresh snapshot.

"Known" is the highest seq id the follower has evidence of (a record, a buffered record, a
heartbeat); the follower is LIVE exactly when it has applied everything known. A gateway must not
send while the follower is not `ready`: it might act on a stale view (ARCHITECTURE "Publishing and
resync").

`StreamFollower` is pure: no sockets, no clock. The caller feeds it what arrives, applies what it
returns, sends what `next_request` returns, and calls `abandon_request` when a request timed out
or could not be sent (`bus.peer.Subscriber` does all of that over real sockets). Request ids
distinguish answers; a late answer to an abandoned request is still used, since published records
are immutable, but only the answer to the current request completes it.

`range_replies` is the server's half: it cuts the records of a range into `RangeReply` chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import msgspec

from bus.limits import FOLLOWER_MAX_BUFFERED, MAX_RANGE_ITEMS, RANGE_REPLY_TARGET_BYTES
from schemas.bus import RangeReply, RangeRequest, Sequenced, SnapshotRequest, SyncRefused

__all__ = [
    "UNPRODUCTIVE_RANGES_BEFORE_SNAPSHOT",
    "FollowerState",
    "FollowerStats",
    "StreamFollower",
    "range_replies",
]

# A range request answered `complete` that filled nothing, this many times in a row, means the
# server cannot serve that range (a pruned journal, a bug): fall back to a snapshot, which covers
# any range, instead of asking for the same records forever.
UNPRODUCTIVE_RANGES_BEFORE_SNAPSHOT: Final = 3

# Sizes records for range chunking when the server has no encoded copy at hand.
_SIZE_ENCODER = msgspec.msgpack.Encoder()


class FollowerState(StrEnum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"
    RESYNCING = "resyncing"


@dataclass(slots=True)
class FollowerStats:
    """Counters of one follower (telemetry; never read by the logic).

    Attributes:
        applied: records returned for the application to apply.
        duplicates: records discarded as already applied or already buffered.
        covered: buffered records discarded because a snapshot covered them.
        gaps: times the follower went from LIVE to RESYNCING.
        overflow: live records not buffered because the buffer was full (fetched by range later).
        requests: sync requests issued.
        stale_replies: replies to a request that was no longer current.
        refusals: SyncRefused answers to the current request.
        snapshots: snapshots installed.
        diverged: times a heartbeat showed the sequencer behind what we had applied.
    """

    applied: int = 0
    duplicates: int = 0
    covered: int = 0
    gaps: int = 0
    overflow: int = 0
    requests: int = 0
    stale_replies: int = 0
    refusals: int = 0
    snapshots: int = 0
    diverged: int = 0


class StreamFollower:
    """The subscriber's state machine of the Clone pattern (see the module docstring).

    Args:
        applied_seq_id: None (the default) to start by asking for a snapshot; an integer to start
            as if everything up to it had been applied (0 to follow the stream from its first
            record, with no snapshot: a recorder, a test).
        max_buffered: most records held while waiting; beyond it the newest are dropped and
            fetched by range later (`limits.FOLLOWER_MAX_BUFFERED`).
        first_request_id: id of the first request (then +1 per request).
    """

    __slots__ = (
        "_applied",
        "_buffer",
        "_known",
        "_next_request_id",
        "_outstanding",
        "_pub_high",
        "_range_start",
        "_state",
        "_unproductive",
        "max_buffered",
        "stats",
    )

    def __init__(
        self,
        *,
        applied_seq_id: int | None = None,
        max_buffered: int = FOLLOWER_MAX_BUFFERED,
        first_request_id: int = 1,
    ) -> None:
        assert max_buffered >= 1 and first_request_id >= 0
        assert applied_seq_id is None or applied_seq_id >= 0
        self.max_buffered = max_buffered
        self.stats = FollowerStats()
        self._buffer: dict[int, Sequenced] = {}
        self._outstanding: SnapshotRequest | RangeRequest | None = None
        self._next_request_id = first_request_id
        self._unproductive = 0
        self._range_start = 0  # applied seq id when the current range request was issued
        self._pub_high = 0  # highest seq id seen on the publication socket (records, heartbeats)
        if applied_seq_id is None:
            self._state = FollowerState.AWAITING_SNAPSHOT
            self._applied = 0
            self._known = 0
        else:
            self._state = FollowerState.LIVE
            self._applied = applied_seq_id
            self._known = applied_seq_id

    # ----------------------------------------------------------------------------------------
    # what the caller reads

    @property
    def state(self) -> FollowerState:
        return self._state

    @property
    def ready(self) -> bool:
        """True when everything known to be published has been applied (LIVE)."""
        return self._state is FollowerState.LIVE

    @property
    def applied_seq_id(self) -> int:
        """The last seq id applied (or installed by a snapshot); 0 before the first snapshot."""
        return self._applied

    @property
    def known_seq_id(self) -> int:
        """The highest seq id known to exist (from records or heartbeats)."""
        return self._known

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def next_request_id(self) -> int:
        """The id the next request will carry (a successor follower starts from it)."""
        return self._next_request_id

    @property
    def outstanding(self) -> SnapshotRequest | RangeRequest | None:
        """The request in flight, if any."""
        return self._outstanding

    # ----------------------------------------------------------------------------------------
    # inputs

    def on_record(self, record: Sequenced) -> list[Sequenced]:
        """A live record from the publication socket.

        Returns:
            The records to apply now, in seq order (empty while waiting or after a gap).
        """
        if record.seq_id > self._pub_high:
            self._pub_high = record.seq_id
        out: list[Sequenced] = []
        self._accept(record, out)
        self._settle_state()
        return out

    def on_records(self, records: Sequence[Sequenced]) -> list[Sequenced]:
        """Live records from one publication frame (a `SequencedBatch`), in order: the same as
        `on_record` for each, with a fast path for the usual case (LIVE, and the batch starts
        right after the last applied record; its seq ids are contiguous, which the batch's
        decoder checked).

        Returns:
            The records to apply now, in seq order.
        """
        if not records:
            return []
        last = records[-1].seq_id
        if (
            self._state is FollowerState.LIVE
            and records[0].seq_id == self._applied + 1
            and last - records[0].seq_id == len(records) - 1
        ):
            # LIVE means nothing is buffered or known beyond what was applied.
            self._applied = last
            if last > self._known:
                self._known = last
            if last > self._pub_high:
                self._pub_high = last
            self.stats.applied += len(records)
            return list(records)
        out: list[Sequenced] = []
        for record in records:
            out.extend(self.on_record(record))
        return out

    def on_heartbeat(self, last_seq_id: int) -> None:
        """A sequencer heartbeat: it has published everything up to `last_seq_id`.

        Only the sequencer's heartbeats, from the same publication socket as its records: PUB
        keeps order, so a heartbeat is never behind a record or heartbeat received before it,
        unless the sequencer went backwards (lost records it had published). That is
        divergence: what we applied may not be the truth, so the follower starts over from a
        snapshot. (The comparison is with the publication stream only, not with a snapshot's
        seq id: a heartbeat sent before a snapshot was taken may arrive after it. Across a
        sequencer restart, unread messages of the old connection may interleave with the new
        one's; a false alarm then costs one snapshot, never a wrong state.)
        """
        if last_seq_id < self._pub_high:
            self.stats.diverged += 1
            self._buffer.clear()  # records of a history the sequencer no longer has
            self._known = self._pub_high = last_seq_id
            self._restart()
            return
        self._pub_high = last_seq_id
        if last_seq_id > self._known:
            self._known = last_seq_id
        self._settle_state()

    def on_snapshot(self, seq_id: int) -> list[Sequenced]:
        """The caller installed a snapshot taken at `seq_id`.

        Call only while `state` is AWAITING_SNAPSHOT (check first: a late snapshot reply
        arriving after another snapshot was installed must be ignored, not installed).

        Returns:
            Buffered records after the snapshot that are now contiguous, to apply in order.
        """
        assert self._state is FollowerState.AWAITING_SNAPSHOT, f"snapshot while {self._state}"
        assert seq_id >= 0
        self.stats.snapshots += 1
        self._applied = seq_id
        self._known = max(self._known, seq_id)
        self._outstanding = None
        self._unproductive = 0
        for seq in [s for s in self._buffer if s <= seq_id]:
            del self._buffer[seq]
            self.stats.covered += 1
        self._state = FollowerState.RESYNCING  # _settle_state decides between LIVE and RESYNCING
        out: list[Sequenced] = []
        self._drain(out)
        self._settle_state()
        return out

    def on_range(self, reply: RangeReply) -> list[Sequenced]:
        """One chunk of a range reply (any request id: records are immutable, so all are usable).

        Returns:
            The records to apply now, in seq order.
        """
        out: list[Sequenced] = []
        for item in reply.items:
            self._accept(item, out)
        current = self._outstanding
        if isinstance(current, RangeRequest) and reply.request_id == current.request_id:
            if reply.complete:
                self._outstanding = None
                self._unproductive = self._unproductive + 1 if self._applied == self._range_start else 0
        else:
            self.stats.stale_replies += 1
        self._settle_state()
        if self._unproductive >= UNPRODUCTIVE_RANGES_BEFORE_SNAPSHOT:
            self._restart()
        return out

    def on_refused(self, reply: SyncRefused) -> None:
        """The sync endpoint refused a request.

        A refused range falls back to a snapshot (which covers any range). A refused snapshot
        stays outstanding until the caller's timeout calls `abandon_request`, so a refusing
        server is not asked again in a tight loop.
        """
        current = self._outstanding
        if current is None or reply.request_id != current.request_id:
            self.stats.stale_replies += 1
            return
        self.stats.refusals += 1
        if isinstance(current, RangeRequest):
            self._restart()

    # ----------------------------------------------------------------------------------------
    # requests

    def next_request(self) -> SnapshotRequest | RangeRequest | None:
        """The request to send now, if one is needed and none is in flight.

        The returned request becomes the outstanding one until answered (`complete`), refused,
        or abandoned.
        """
        if self._outstanding is not None or self._state is FollowerState.LIVE:
            return None
        request_id = self._next_request_id
        request: SnapshotRequest | RangeRequest
        if self._state is FollowerState.AWAITING_SNAPSHOT:
            request = SnapshotRequest(request_id=request_id)
        else:
            # One request covers every hole up to the last missing record; the contiguous run
            # of buffered records at the top (the usual case: live records since the gap) is
            # not fetched again. Buffered records inside the range come back as duplicates,
            # which is cheaper than a round trip per hole when a PUB dropped records sparsely.
            start = self._applied + 1
            end = self._known
            while end in self._buffer:
                end -= 1
            assert start <= end, (start, end)
            request = RangeRequest(request_id=request_id, from_seq_id=start, to_seq_id=end)
            self._range_start = self._applied
        self._next_request_id += 1
        self._outstanding = request
        self.stats.requests += 1
        return request

    def abandon_request(self) -> None:
        """The outstanding request timed out or could not be sent: `next_request` asks again."""
        self._outstanding = None

    # ----------------------------------------------------------------------------------------
    # internals

    def _accept(self, record: Sequenced, out: list[Sequenced]) -> None:
        """Take one record from anywhere: apply it (with what it makes contiguous) or buffer it.

        The next record to apply is never buffered, so a full buffer cannot block progress.
        """
        seq = record.seq_id
        if seq > self._known:
            self._known = seq
        if seq in self._buffer or (self._state is not FollowerState.AWAITING_SNAPSHOT and seq <= self._applied):
            self.stats.duplicates += 1
            return
        if self._state is not FollowerState.AWAITING_SNAPSHOT and seq == self._applied + 1:
            out.append(record)
            self._applied = seq
            self.stats.applied += 1
            self._drain(out)
            return
        if len(self._buffer) >= self.max_buffered:
            self.stats.overflow += 1  # `_known` still counts it: a range request will fetch it
            return
        self._buffer[seq] = record

    def _drain(self, out: list[Sequenced]) -> None:
        """Apply buffered records that follow the last applied one without a gap."""
        buffer = self._buffer
        nxt = self._applied + 1
        while nxt in buffer:
            out.append(buffer.pop(nxt))
            nxt += 1
        self.stats.applied += nxt - 1 - self._applied
        self._applied = nxt - 1

    def _settle_state(self) -> None:
        if self._state is FollowerState.AWAITING_SNAPSHOT:
            return
        if self._known > self._applied:
            if self._state is FollowerState.LIVE:
                self.stats.gaps += 1
                self._state = FollowerState.RESYNCING
        else:
            self._state = FollowerState.LIVE
            self._outstanding = None  # a late answer only brings duplicates
            self._unproductive = 0

    def _restart(self) -> None:
        """Start over from a snapshot. Buffered records stay: the snapshot may predate them."""
        self._state = FollowerState.AWAITING_SNAPSHOT
        self._outstanding = None
        self._unproductive = 0


def range_replies(
    request_id: int,
    records: Iterable[Sequenced],
    *,
    max_items: int = MAX_RANGE_ITEMS,
    target_bytes: int = RANGE_REPLY_TARGET_BYTES,
    size_of: Callable[[Sequenced], int] | None = None,
) -> Iterator[RangeReply]:
    """Cut the records of one range request into reply chunks (the sync server's half).

    Each chunk holds at most `max_items` records and stops growing once it reaches
    `target_bytes` (a single larger record goes alone). The last chunk has ``complete=True``;
    an empty range yields one empty complete chunk, so the client always learns the end.

    Args:
        request_id: the request being answered.
        records: the records `from_seq_id`..`to_seq_id` the server has, in seq order.
        size_of: encoded size of one record; by default it is encoded to measure it (pass the
            length of an encoding the server already holds to skip that).

    Yields:
        RangeReply chunks, in order.
    """
    assert 1 <= max_items <= MAX_RANGE_ITEMS and target_bytes > 0
    measure = size_of if size_of is not None else (lambda rec: len(_SIZE_ENCODER.encode(rec)))
    chunk: list[Sequenced] = []
    size = 0
    for record in records:
        if chunk and (len(chunk) >= max_items or size >= target_bytes):
            yield RangeReply(request_id=request_id, items=chunk, complete=False)
            chunk, size = [], 0
        chunk.append(record)
        size += measure(record)
    yield RangeReply(request_id=request_id, items=chunk, complete=True)
