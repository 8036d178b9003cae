"""The sequencer process in real time (paper, live): ingress -> sequence -> journal -> apply -> publish.

Theory of operation
-------------------
One loop, no threads (the ZAP handler aside):

1. Poll ingress and sync, at most until the next heartbeat is due.
2. Drain ingress (up to MAX_BATCH_ENVELOPES envelopes, an `EnvelopeBatch` frame counting its
   envelopes): frames that do not decode are refused (`IngressRefused` to the sender, counted);
   heartbeats feed the peer monitor; envelopes pass `IngressPolicy` (who may send what) or are
   refused likewise. Nothing refused reaches the journal or the core.
3. The batch is ordered by the tie-break key and stamped with seq ids and the ingest time, then
   journaled in one group commit (fsync per the profile), THEN applied, published (one
   `SequencedBatch` frame, or a few when large; a lone record as `Sequenced`) and acknowledged:
   one cumulative `IngressAck` per producer and connection, for its highest producer_seq in the
   batch (`schemas.bus.IngressAck`). A producer forgets an envelope only once it is journaled
   (C1, S4).
4. Snapshot and range requests are served between batches; heartbeats and peer status changes
   are published; a checkpoint is written every `checkpoint.every_events` envelopes.

At start the core is recovered from the latest valid checkpoint and the journal (torn tail cut);
peers notice the restart through the heartbeat and resync (E6). Lockstep backtests use
`services.sequencer.lockstep` instead, on the same sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bus.heartbeat import HeartbeatMonitor, HeartbeatSchedule
from schemas.bus import EnvelopeBatch, Heartbeat, IngressRefused, PeerRole, Sequenced
from schemas.envelope import Envelope
from services.deploy.profile import FileFeed, Profile
from services.deploy.run_config import core_config_for_profile
from services.sequencer.authz import IngressPolicy, PeerGrant, Refusal
from services.sequencer.checkpoint import prune_checkpoints, write_checkpoint
from services.sequencer.core import SequencerCore
from services.sequencer.core.sequencing import Sequencer
from services.sequencer.endpoint import Inbound, SequencerSockets
from services.sequencer.journal import JournalWriter
from services.sequencer.recovery import recover

__all__ = ["SequencerService", "checkpoint_dir", "ingress_policy_for", "journal_path"]

log = logging.getLogger(__name__)

# Envelopes sequenced per loop turn: one group commit, one publication batch and one ack per
# producer each. Large enough to amortise the fsync and the per-frame costs, small enough that
# heartbeats and sync requests are never starved for long (a turn of 1,000 takes about 5 ms).
# The drain stops once it reaches this many; an `EnvelopeBatch` frame is never split, so a turn
# may hold up to one frame's envelopes more (a 64 KiB frame: about 300 realistic ones).
MAX_BATCH_ENVELOPES: Final = 1_000


def journal_path(profile: Profile) -> Path:
    return profile.group.run_dir / "journal.tbj"


def checkpoint_dir(profile: Profile) -> Path:
    return profile.group.run_dir / "checkpoints"


def ingress_policy_for(profile: Profile, *, require_identity: bool) -> IngressPolicy:
    """Grants by peer identity (key name): each process may send only for what it owns (F4)."""
    grants: dict[str, PeerGrant] = {}
    for strategy in profile.strategies:
        grants[f"strategy-{strategy.name}"] = PeerGrant(role=PeerRole.STRATEGY, ids=(strategy.strategy_id,))
    for venue in profile.venues:
        grants[f"gateway-{venue.name}"] = PeerGrant(role=PeerRole.GATEWAY, ids=(venue.name,))
    for feed in profile.feeds:
        if isinstance(feed, FileFeed):
            ids = tuple(sorted({f"file:{spec.instrument}" for spec in feed.data}))
        else:
            ids = (f"synthetic:{feed.instrument}",)
        grants[f"feed-{feed.name}"] = PeerGrant(role=PeerRole.FEED, ids=ids)
    return IngressPolicy(grants, require_identity=require_identity)


class SequencerService:
    """The real-time sequencer: owns the journal, the core, checkpoints and the three sockets.

    Args:
        profile: the group's profile (mode paper or live).
        clock_ns: wall clock for ingest times, heartbeats and fsync intervals (injectable).
    """

    def __init__(self, profile: Profile, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.profile = profile
        self.clock_ns = clock_ns
        self.config = core_config_for_profile(profile)
        run_dir = profile.group.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        path = journal_path(profile)
        fsync = profile.journal.fsync
        interval_ms = profile.journal.fsync_interval_ms
        if path.exists():
            recovery = recover(path, checkpoint_dir(profile), self.config)
            self.core = recovery.core
            log.info(
                "recovered seq %d (checkpoint %s, %d replayed, %d torn bytes cut)",
                self.core.seq_id, recovery.checkpoint_seq_id, recovery.replayed, recovery.tail_bytes_cut,
            )  # fmt: skip
            self.journal = JournalWriter.open_for_append(path, fsync=fsync, fsync_interval_ms=interval_ms)
        else:
            self.core = SequencerCore(self.config)
            self.journal = JournalWriter.create(path, self.config, fsync=fsync, fsync_interval_ms=interval_ms)
        self.sequencer = Sequencer(last_seq_id=self.core.seq_id)
        self.sockets = SequencerSockets(profile, lambda: self.core)
        # Identities exist only where ingress itself runs CURVE; there a frame without one fails closed.
        self.policy = ingress_policy_for(
            profile, require_identity=self.sockets.secured and profile.endpoints.ingress.startswith("tcp://")
        )
        now = clock_ns()
        self.monitor = HeartbeatMonitor()
        self.schedule = HeartbeatSchedule(start_ns=now)
        self.since_checkpoint = 0
        self.refused = 0

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Serve until `should_stop()` is true (checked at least once per heartbeat interval)."""
        try:
            while not should_stop():
                self.step(self.schedule.timeout_ms(self.clock_ns()))
        finally:
            self.close()

    def step(self, timeout_ms: int) -> int:
        """One loop turn; returns how many envelopes were sequenced."""
        sockets = self.sockets
        ingress_ready, sync_ready = sockets.poll(timeout_ms)
        sequenced = self._sequence(sockets.receive(MAX_BATCH_ENVELOPES)) if ingress_ready else 0
        if sync_ready:
            sockets.serve_sync()
        now = self.clock_ns()
        if self.schedule.due(now):
            sockets.heartbeat(now)
            self.schedule.sent(now)
            for change in self.monitor.check(now):
                sockets.publish(change.to_status())
        return sequenced

    def _sequence(self, inbound: list[Inbound]) -> int:
        sockets = self.sockets
        now = self.clock_ns()
        batch: list[Envelope] = []
        # Who sent envelopes of which producer in this batch: each gets one cumulative ack.
        senders: dict[tuple[bytes, str], None] = {}
        check = self.policy.check
        for item in inbound:
            message = item.message
            if type(message) is EnvelopeBatch:
                routing_id, identity = item.routing_id, item.identity
                for env in message.envelopes:
                    refusal = check(identity, env)
                    if refusal is not None:
                        self._refuse(routing_id, env, refusal)
                        continue
                    batch.append(env)
                    senders[routing_id, env.producer_id] = None
            elif isinstance(message, Envelope):
                refusal = check(item.identity, message)
                if refusal is not None:
                    self._refuse(item.routing_id, message, refusal)
                    continue
                batch.append(message)
                senders[item.routing_id, message.producer_id] = None
            elif isinstance(message, Heartbeat):
                self.monitor.seen(message.peer, message.role, now)
            # TurnDone outside a lockstep run: nothing is waiting for it.
        if not batch:
            return 0
        stamped = self.sequencer.assign(batch, now)
        # Written before anything is published or acknowledged. Every envelope here was decoded by
        # ingress's strict typed decoder (schema limits checked) and stamped with a seq id and our
        # clock's time, so the journal's decode-back check of market data would check it again.
        self.journal.append_batch(stamped, prechecked_market_data=True)
        apply = self.core.apply
        records: list[Sequenced] = []
        # The highest producer_seq of each producer in the batch, and its seq id.
        highest: dict[str, Envelope] = {}
        for env in stamped:
            records.append(Sequenced(seq_id=env.seq_id, envelope=env, outputs=apply(env)))
            top = highest.get(env.producer_id)
            if top is None or env.producer_seq > top.producer_seq:
                highest[env.producer_id] = env
        sockets.publish_records(records)  # one SequencedBatch (or a few, by size), or one Sequenced
        # One ack per producer and connection: the core keeps a per-producer high-water mark, so
        # every envelope of it up to that producer_seq is journaled or will be dropped as a repeat.
        for routing_id, producer_id in senders:
            top = highest[producer_id]
            sockets.acknowledge(routing_id, top, top.seq_id)
        self.since_checkpoint += len(stamped)
        if self.since_checkpoint >= self.profile.checkpoint.every_events:
            self.checkpoint()
        return len(stamped)

    def _refuse(self, routing_id: bytes, message: Envelope, refusal: Refusal) -> None:
        self.refused += 1
        self.sockets.counters.refuse(str(refusal.reason))
        self.sockets.reply(
            routing_id,
            IngressRefused(
                reason=str(refusal.reason), detail=refusal.detail[:256],
                producer_id=message.producer_id, producer_seq=message.producer_seq,
            ),
        )  # fmt: skip

    def checkpoint(self) -> Path:
        """Write a checkpoint now (the journal is synced first: a checkpoint never runs ahead of it)."""
        self.journal.sync()
        path = write_checkpoint(checkpoint_dir(self.profile), self.core)
        prune_checkpoints(checkpoint_dir(self.profile), self.profile.checkpoint.keep)
        self.since_checkpoint = 0
        return path

    def close(self) -> None:
        self.journal.close()
        self.sockets.close()
