"""Seq id assignment and the deterministic tie-break.

Live: arrival order is the truth between batches; inside one batch drained from the sockets,
envelopes are ordered by (source priority, venue, instrument, producer, producer counter).
Backtest: sources are merged by event time first, then the same key. Replay: journal order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from schemas.enums import Source
from schemas.envelope import Envelope
from services.sequencer.core.config import DEFAULT_SOURCE_PRIORITY

__all__ = ["Sequencer"]

_replace = msgspec.structs.replace


class Sequencer:
    """Assigns strictly increasing seq ids to batches of envelopes, in tie-break order.

    Args:
        source_priority: sources from first to last within a batch.
        last_seq_id: the last id already used (the core's `seq_id` after recovery).
    """

    __slots__ = ("_priority", "last_seq_id")

    def __init__(self, source_priority: Sequence[Source] = DEFAULT_SOURCE_PRIORITY, last_seq_id: int = 0) -> None:
        self._priority = {source: rank for rank, source in enumerate(source_priority)}
        self.last_seq_id = last_seq_id

    def batch_key(self, env: Envelope) -> tuple[int, str, str, str, int]:
        """Order within one live batch."""
        return (self._priority[env.source], env.venue, env.instrument, env.producer_id, env.producer_seq)

    def merge_key(self, env: Envelope) -> tuple[int, int, str, str, str, int]:
        """Order of a backtest merge: event time, then the batch key."""
        return (env.event_time_ns, self._priority[env.source], env.venue, env.instrument, env.producer_id, env.producer_seq)

    def order_batch(self, batch: Iterable[Envelope]) -> list[Envelope]:
        return sorted(batch, key=self.batch_key)

    def assign(self, batch: Iterable[Envelope], ingest_time_ns: int, *, ordered: bool = False) -> list[Envelope]:
        """Order a batch (unless already `ordered`) and stamp seq ids and the ingest time.

        `ingest_time_ns` comes from the caller's clock: the core never reads one.
        """
        items = list(batch) if ordered else self.order_batch(batch)
        seq = self.last_seq_id
        stamped = []
        for env in items:
            seq += 1
            stamped.append(_replace(env, seq_id=seq, ingest_time_ns=ingest_time_ns))
        self.last_seq_id = seq
        return stamped

    def stamp(self, env: Envelope, ingest_time_ns: int) -> Envelope:
        """Assign the next seq id to one envelope (the fast path for a batch of one)."""
        self.last_seq_id += 1
        return _replace(env, seq_id=self.last_seq_id, ingest_time_ns=ingest_time_ns)
