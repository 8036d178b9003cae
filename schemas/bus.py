"""Messages of the process group that are not core inputs: publication, sync, heartbeats, acks.

Every socket frame is two parts, ``[kind, body]``: `kind` is the ASCII name of one channel
message below (or ``b"envelope"`` for an `Envelope`), `body` its MessagePack encoding. The kind
part lets a receiver pick the typed decoder before decoding (and refuse an unknown kind without
decoding at all) while the `Envelope` wire format stays exactly what the journal and the golden
files hold.

Channels:

- ingress (producers -> sequencer): `Envelope`, `EnvelopeBatch`, `Heartbeat`, `TurnDone`,
  `StreamEnded`.
- ingress replies (sequencer -> that producer): `IngressAck` (cumulative), `IngressRefused`.
- publication (sequencer -> everyone): `Sequenced` or `SequencedBatch` (contiguous seq ids),
  `Heartbeat`, `PeerStatus`, `TurnRequest`.
- sync (request/reply): `SnapshotRequest` -> `SnapshotReply`; `RangeRequest` -> `RangeReply`
  chunks until one has `complete`; either may be answered by `SyncRefused`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from msgspec import Meta

from schemas.base import Message
from schemas.envelope import Envelope
from schemas.outputs import Output
from schemas.state import CoreSnapshot
from schemas.types import Id, ProducerId, SeqId, Text, TimeNs

__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_RANGE_ITEMS",
    "BusMessage",
    "EnvelopeBatch",
    "Heartbeat",
    "IngressAck",
    "IngressRefused",
    "PeerRole",
    "PeerStatus",
    "RangeReply",
    "RangeRequest",
    "Sequenced",
    "SequencedBatch",
    "SnapshotReply",
    "SnapshotRequest",
    "StreamEnded",
    "SyncRefused",
    "TurnDone",
    "TurnRequest",
]

# One range reply carries at most this many records: a resync of a long gap streams in chunks
# of bounded size instead of one frame that could exceed the socket's max message size.
MAX_RANGE_ITEMS: Final = 1000

# One `EnvelopeBatch` or `SequencedBatch` holds at most this many items: a bound a receiver can
# rely on whatever the byte size (the frame's byte limit, per channel in bus.limits, applies
# too). 1,000 is the sequencer's loop batch (services.sequencer.service.MAX_BATCH_ENVELOPES):
# beyond it batching saves nothing more, as per-frame costs are already amortised.
MAX_BATCH_ITEMS: Final = 1000


class PeerRole(StrEnum):
    SEQUENCER = "sequencer"
    FEED = "feed"
    GATEWAY = "gateway"
    STRATEGY = "strategy"
    CONTROL = "control"


class Heartbeat(Message, frozen=True):
    """I am alive. Sent both ways every heartbeat interval; `last_seq_id` lets an idle
    subscriber see that it missed the tail of the stream."""

    peer: Id
    role: PeerRole
    sent_ns: TimeNs  # the sender's wall clock: telemetry only, never part of trading state
    last_seq_id: SeqId = 0


class PeerStatus(Message, frozen=True):
    """The sequencer's view of a peer: published when it goes silent or comes back."""

    peer: Id
    role: PeerRole
    alive: bool
    last_seen_ns: TimeNs
    missed_heartbeats: int = 0


class IngressAck(Message, frozen=True):
    """Cumulative: every envelope of `producer_id` with a producer_seq <= `producer_seq` is done,
    and the producer may forget all of them.

    Done means journaled, or never to be: the core keeps one high-water mark per producer and
    drops (journaling a drop record) any envelope at or below it, so once the envelope
    (`producer_id`, `producer_seq`) is journaled, re-sending a lower one could only be dropped.
    The sequencer sends one ack per producer (and connection) per loop batch, for the highest
    producer_seq of that producer it journaled in the batch, after writing the journal and
    publishing the records. `seq_id` is the seq id that envelope was given; a repeat the core
    dropped is acknowledged too (with the seq id of the drop record) so the producer stops
    re-sending it. A lockstep sequencer acknowledges pulled envelopes on receipt, `seq_id` 0
    (a lost one is pulled again, not re-sent from the window).
    """

    producer_id: ProducerId
    producer_seq: int
    seq_id: SeqId


class IngressRefused(Message, frozen=True):
    """A frame from this peer was refused before sequencing (malformed, oversized, not allowed)."""

    reason: Id  # a stable code: malformed, unknown_kind, unauthorized, version, ...
    detail: Text
    producer_id: str = ""
    producer_seq: int = 0


class Sequenced(Message, frozen=True):
    """One sequenced input and what the core made of it. Published once per seq id, in order."""

    seq_id: SeqId
    envelope: Envelope
    outputs: list[Output]


class EnvelopeBatch(Message, frozen=True):
    """Several envelopes in one ingress frame, in the order the producer sent them.

    Exactly as if each had been sent alone in that order (each is acknowledged or refused on its
    own terms); it only saves per-frame costs. The frame as a whole is bounded by the ingress
    frame limit (bus.limits.MAX_INGRESS_BYTES), so a producer cuts its batches by bytes as well
    as by count; a frame that does not decode is refused whole (no envelope of it enters).
    """

    envelopes: Annotated[list[Envelope], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


class SequencedBatch(Message, frozen=True):
    """Consecutive records in one publication frame: seq ids contiguous and ascending.

    Equivalent to publishing each record alone, in order (a subscriber expands it); the
    sequencer sends one per loop batch when the batch sequenced more than one envelope. Range
    replies and the sync endpoint stay per record (`RangeReply.items`).
    """

    records: Annotated[list[Sequenced], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]

    def __post_init__(self) -> None:
        records = self.records
        first = records[0].seq_id
        if records[-1].seq_id - first != len(records) - 1 or any(
            r.seq_id != first + i for i, r in enumerate(records)
        ):
            raise ValueError(f"records are not contiguous seq ids from {first}")


class SnapshotRequest(Message, frozen=True):
    request_id: Annotated[int, Meta(ge=0)]


class SnapshotReply(Message, frozen=True):
    """The core's whole state at `seq_id` (the Clone pattern's snapshot)."""

    request_id: int
    seq_id: SeqId
    state_hash: str
    snapshot: CoreSnapshot


class RangeRequest(Message, frozen=True):
    """Ask for the published records `from_seq_id`..`to_seq_id` inclusive (0: up to the latest)."""

    request_id: Annotated[int, Meta(ge=0)]
    from_seq_id: Annotated[int, Meta(ge=1)]
    to_seq_id: SeqId = 0


class RangeReply(Message, frozen=True):
    request_id: int
    items: Annotated[list[Sequenced], Meta(max_length=MAX_RANGE_ITEMS)]
    complete: bool


class SyncRefused(Message, frozen=True):
    request_id: int
    reason: Id
    detail: Text


class TurnRequest(Message, frozen=True):
    """Lockstep: the sequencer waits for `peer` to answer for everything up to `seq_id`.

    `turn` counts the sequencer's requests; the peer sends its envelopes for the turn to ingress,
    then `TurnDone` with the same numbers. `payload` is the turn's subject, msgpack-encoded by
    the caller's channel (a strategy event, or a venue command): the bus does not read it.
    """

    peer: Id
    turn: Annotated[int, Meta(ge=1)]
    seq_id: SeqId
    kind: Id
    payload: bytes = b""


class TurnDone(Message, frozen=True):
    peer: Id
    turn: Annotated[int, Meta(ge=1)]
    envelopes: int = 0  # how many envelopes the peer sent for this turn, before this message
    payload: bytes = b""


class StreamEnded(Message, frozen=True):
    """The producer `producer_id` has sent its last envelope: `last_producer_seq` (0: none at all).

    A producer that pushes a finite stream (a file or synthetic feed in real time) sends it once,
    right behind that envelope on the same connection, so it arrives after every envelope it
    counts; it sends it again behind its window when it re-sends the window after a reconnect.
    It needs no reply: the envelopes' own acknowledgements tell the producer when it is done.
    The sequencer may note the producer as finished (a gap-free end, or a missing tail if
    envelopes up to `last_producer_seq` never arrived). Lockstep backtests pull feeds instead
    (`schemas.lockstep.FeedPull`), whose answers say when a stream ended.
    """

    producer_id: ProducerId
    last_producer_seq: Annotated[int, Meta(ge=0, le=2**63 - 1)]


BusMessage = (
    Heartbeat
    | PeerStatus
    | IngressAck
    | IngressRefused
    | EnvelopeBatch
    | Sequenced
    | SequencedBatch
    | SnapshotRequest
    | SnapshotReply
    | RangeRequest
    | RangeReply
    | SyncRefused
    | TurnRequest
    | TurnDone
    | StreamEnded
)
"""Every transport message; the frame's kind part names which (see the module docstring)."""
