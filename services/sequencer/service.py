"""The sequencer process in real time (paper, live): ingress -> sequence -> journal -> apply -> publish.

Theory of operation
-------------------
One loop, no threads (the ZAP handler aside):

1. Poll ingress and sync, at most until the next heartbeat is due.
2. Drain ingress: frames that do not decode are refused (`IngressRefused` to the sender, counted);
   heartbeats feed the peer monitor; envelopes pass `IngressPolicy` (who may send what) or are
   refused likewise. Nothing refused reaches the journal or the core.
3. The batch is ordered by the tie-break key and stamped with seq ids and the ingest time, then
   journaled in one group commit (fsync per the profile), THEN applied, published and
   acknowledged. A producer forgets an envelope only once it is journaled (C1, S4).
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
from schemas.bus import Heartbeat, IngressRefused, PeerRole, Sequenced
from schemas.envelope import Envelope
from services.deploy.profile import FileFeed, Profile
from services.deploy.run_config import core_config_for_profile
from services.sequencer.authz import IngressPolicy, PeerGrant
from services.sequencer.checkpoint import prune_checkpoints, write_checkpoint
from services.sequencer.core import SequencerCore
from services.sequencer.core.sequencing import Sequencer
from services.sequencer.endpoint import SequencerSockets
from services.sequencer.journal import JournalWriter
from services.sequencer.recovery import recover

__all__ = ["SequencerService", "checkpoint_dir", "ingress_policy_for", "journal_path"]

log = logging.getLogger(__name__)

# Envelopes sequenced per loop turn at most: one group commit each. Large enough to amortise the
# fsync, small enough that heartbeats and sync requests are never starved for long.
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

    def _sequence(self, inbound: list) -> int:  # type: ignore[type-arg]
        sockets = self.sockets
        now = self.clock_ns()
        batch: list[tuple[bytes, Envelope]] = []
        for item in inbound:
            message = item.message
            if isinstance(message, Envelope):
                refusal = self.policy.check(item.identity, message)
                if refusal is not None:
                    self.refused += 1
                    sockets.counters.refuse(str(refusal.reason))
                    sockets.reply(
                        item.routing_id,
                        IngressRefused(
                            reason=str(refusal.reason), detail=refusal.detail[:256],
                            producer_id=message.producer_id, producer_seq=message.producer_seq,
                        ),
                    )  # fmt: skip
                    continue
                batch.append((item.routing_id, message))
            elif isinstance(message, Heartbeat):
                self.monitor.seen(message.peer, message.role, now)
            # TurnDone outside a lockstep run: nothing is waiting for it.
        if not batch:
            return 0
        order = {id(env): routing for routing, env in batch}
        stamped_pairs = []
        for env in self.sequencer.order_batch(env for _, env in batch):
            stamped_pairs.append((order[id(env)], self.sequencer.stamp(env, now)))
        self.journal.append_batch([env for _, env in stamped_pairs])
        for routing_id, env in stamped_pairs:
            outputs = self.core.apply(env)
            sockets.publish(Sequenced(seq_id=env.seq_id, envelope=env, outputs=outputs))
            sockets.acknowledge(routing_id, env, env.seq_id)
        self.since_checkpoint += len(stamped_pairs)
        if self.since_checkpoint >= self.profile.checkpoint.every_events:
            self.checkpoint()
        return len(stamped_pairs)

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
