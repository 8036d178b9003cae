"""The bus backtest: the sequencer drives the in-process loop with every participant in its own process.

Theory of operation
-------------------
The sequencer runs `services.backtest.runner` itself (the same loop, the same core, the same
journal) through a `Drive`: market data comes from `FeedPull` turns, and where the in-process
run calls the simulated venue or the strategy, a proxy here publishes a `TurnRequest` and waits
for the gateway's or the strategy host's `TurnDone`. Strategies are sent references to sequenced
data, and hosts build the events from their replicas with the same code. So the journal, the
transition trace and the final state hash are the in-process ones by construction (D5), and a
test holds them equal.

Before every turn the journal buffer is written and the records it held are published, so a
peer is never asked about state the journal does not hold, and a host's replica reaches exactly
the turn's seq id before its strategy runs.

Crash-only recovery: lockstep state lives in three processes (the driver here, the strategy's
own fields, the venue's book), and the journal is a deterministic function of the inputs. So any
restart re-executes the run from the start: a restarted sequencer starts over (turn 1 tells every
peer to reset), and a restarted peer answers a turn it has no history for with an empty payload,
which makes this driver start over. The re-execution writes the same journal; the final state
hash equals the uninterrupted run's.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

from bus.heartbeat import HeartbeatMonitor, HeartbeatSchedule
from bus.limits import HEARTBEAT_INTERVAL_MS
from schemas.bus import EnvelopeBatch, Heartbeat, PeerRole, Sequenced, TurnDone, TurnRequest
from schemas.envelope import Envelope
from schemas.lockstep import (
    MAX_TURN_ITEMS,
    FeedPull,
    FeedPullDone,
    StrategyAnswer,
    StrategyCall,
    StrategyHello,
    StrategyHelloRequest,
    StrategyHook,
    VenueAnswer,
    VenueMarket,
    VenueOrderCommand,
    VenueReportEntry,
)
from services.backtest.errors import BacktestError
from services.backtest.result import BacktestResult
from services.backtest.runner import Drive, _Run
from services.deploy.profile import Profile
from services.deploy.run_config import backtest_config_for, core_config_for_profile, feed_instruments
from services.sequencer.core import SequencerCore
from services.sequencer.core.sequencing import Sequencer
from services.sequencer.endpoint import SequencerSockets

__all__ = ["LockstepSequencer", "RedriveNeeded", "TurnTimeout"]

log = logging.getLogger(__name__)

# A turn not answered in this long is published again (the request or its answer was lost, or
# the peer is restarting). Three heartbeats: the same bound as declaring a peer silent.
TURN_RESEND_MS: Final = 3 * HEARTBEAT_INTERVAL_MS
# How long the run waits for every peer's first heartbeat before refusing to start.
PEERS_READY_TIMEOUT_MS: Final = 60_000
# A run that has to start over this many times is not converging (a peer keeps dying): stop.
MAX_REDRIVES: Final = 20
PULL_BATCH: Final = MAX_TURN_ITEMS
_ROLE_BY_PREFIX: Final = {"strategy": PeerRole.STRATEGY, "gateway": PeerRole.GATEWAY, "feed": PeerRole.FEED}

_encode = msgspec.msgpack.Encoder().encode
_strategy_answer = msgspec.msgpack.Decoder(StrategyAnswer)
_strategy_hello = msgspec.msgpack.Decoder(StrategyHello)
_venue_answer = msgspec.msgpack.Decoder(VenueAnswer)
_feed_done = msgspec.msgpack.Decoder(FeedPullDone)


class RedriveNeeded(BacktestError):
    """A peer has no history for the turn it was asked (it restarted): the run starts over."""


class TurnTimeout(BacktestError):
    """A peer did not answer at all within the run's patience."""


class TurnLink:
    """Publishes turn requests and waits for their answers, serving sync and heartbeats meanwhile."""

    def __init__(self, sockets: SequencerSockets, seq_of: Callable[[], int], clock_ns: Callable[[], int]) -> None:
        self.sockets = sockets
        self.seq_of = seq_of
        self.clock_ns = clock_ns
        self.turns: dict[str, int] = {}
        self.before_turn: Callable[[], None] = lambda: None
        self.monitor = HeartbeatMonitor()
        self.schedule = HeartbeatSchedule(start_ns=clock_ns())
        self.collected: list[Envelope] = []
        self.patience_ms = 30 * TURN_RESEND_MS

    def reset(self) -> None:
        self.turns.clear()
        self.collected.clear()

    def call(self, peer: str, kind: str, payload: bytes) -> TurnDone:
        """Ask `peer`; return its answer. Envelopes it sends meanwhile land in `collected`.

        Raises:
            RedriveNeeded: the peer answered with an empty payload (no history for this turn).
            TurnTimeout: no answer within `patience_ms` despite resends.
        """
        self.before_turn()
        turn = self.turns.get(peer, 0) + 1
        self.turns[peer] = turn
        request = TurnRequest(peer=peer, turn=turn, seq_id=self.seq_of(), kind=kind, payload=payload)
        self.sockets.publish(request)
        started = self.clock_ns()
        resend_at = started + TURN_RESEND_MS * 1_000_000
        while True:
            answer = self._wait(peer, turn, 50)
            if answer is not None:
                if not answer.payload:
                    raise RedriveNeeded(f"{peer} has no history for turn {turn}: starting the run over")
                return answer
            now = self.clock_ns()
            if now >= resend_at:
                if now - started > self.patience_ms * 1_000_000:
                    raise TurnTimeout(f"{peer} did not answer turn {turn} ({kind}) in {self.patience_ms} ms")
                log.info("turn %d to %s unanswered: publishing it again", turn, peer)
                self.sockets.publish(request)
                resend_at = now + TURN_RESEND_MS * 1_000_000

    def wait_for_peers(self, peers: list[str], timeout_ms: int = PEERS_READY_TIMEOUT_MS) -> None:
        """Until every peer has sent a heartbeat (it is connected and subscribed)."""
        deadline = self.clock_ns() + timeout_ms * 1_000_000
        while True:
            self._wait(None, 0, 100)
            now = self.clock_ns()
            missing = [p for p in peers if not self.monitor.is_alive(p, now)]
            if not missing:
                return
            if now > deadline:
                raise BacktestError(f"lockstep run: no heartbeat from {', '.join(missing)} within {timeout_ms} ms")

    def _wait(self, peer: str | None, turn: int, timeout_ms: int) -> TurnDone | None:
        sockets = self.sockets
        ingress_ready, sync_ready = sockets.poll(timeout_ms)
        if sync_ready:
            sockets.serve_sync()
        found: TurnDone | None = None
        if ingress_ready:
            now = self.clock_ns()
            for item in sockets.receive():
                message = item.message
                if isinstance(message, (Envelope, EnvelopeBatch)):
                    # Only feeds send envelopes in lockstep (pulled, in order); the run journals them
                    # when it reaches them, and a lost one is pulled again: acknowledged on receipt
                    # (cumulative: once per producer in the frame, for its highest producer_seq).
                    envelopes = message.envelopes if isinstance(message, EnvelopeBatch) else [message]
                    highest: dict[str, Envelope] = {}
                    for env in envelopes:
                        self.collected.append(env)
                        top = highest.get(env.producer_id)
                        if top is None or env.producer_seq > top.producer_seq:
                            highest[env.producer_id] = env
                    for env in highest.values():
                        sockets.acknowledge(item.routing_id, env, 0)
                elif isinstance(message, Heartbeat):
                    self.monitor.seen(message.peer, message.role, now)
                elif isinstance(message, TurnDone):
                    self.monitor.seen(message.peer, self.monitor_role(message.peer), now)
                    if message.peer == peer and message.turn == turn and found is None:
                        found = message
        now = self.clock_ns()
        if self.schedule.due(now):
            sockets.heartbeat(now)
            self.schedule.sent(now)
        return found

    @staticmethod
    def monitor_role(peer: str) -> PeerRole:
        """The role a peer id names (``strategy-x``, ``gateway-x``, ``feed-x``)."""
        return _ROLE_BY_PREFIX.get(peer.split("-", 1)[0], PeerRole.CONTROL)


class RemoteStrategy:
    """The strategy host, seen from the run: hooks become `StrategyCall` turns."""

    def __init__(self, link: TurnLink, peer: str, hello: StrategyHello) -> None:
        self.link = link
        self.peer = peer
        self.strategy_id = hello.strategy_id
        self.wants_time_slices = hello.wants_time_slices
        self.wants_order_events = hello.wants_order_events
        self.param_values: dict[str, Any] = {}

    def on_start(self, ctx: Any) -> list[Any]:
        return self._call(StrategyCall(hook=StrategyHook.START, seq_id=0))

    def on_stop(self, ctx: Any) -> list[Any]:
        return self._call(StrategyCall(hook=StrategyHook.STOP, seq_id=0))

    def on_event(self, ctx: Any, call: StrategyCall) -> list[Any]:
        return self._call(call)

    def _call(self, call: StrategyCall) -> list[Any]:
        call = msgspec.structs.replace(call, seq_id=self.link.seq_of())
        done = self.link.call(self.peer, "strategy", _encode(call))
        answer = _strategy_answer.decode(done.payload)
        if answer.error:
            raise BacktestError(f"strategy {self.strategy_id} ({self.peer}): {answer.error}")
        return list(answer.intents)


class RemoteVenue:
    """The gateway, seen from the run: SimulatedVenue's calls become `VenueCall` turns."""

    def __init__(self, link: TurnLink, peer: str, venue: str) -> None:
        self.link = link
        self.peer = peer
        self.venue = venue
        self.open_order_count = 0
        self.next_due_ns: int | None = None

    def on_bar(self, instrument: str, bar: Any, time_ns: int) -> list[VenueReportEntry]:
        return self._call(VenueMarket(instrument=instrument, time_ns=time_ns, data=bar))

    on_trade = on_bar
    on_quote = on_bar

    def submit(self, command: Any, now_ns: int) -> list[VenueReportEntry]:
        return self._call(VenueOrderCommand(now_ns=now_ns, command=command))

    cancel = submit
    replace = submit

    def _call(self, call: VenueMarket | VenueOrderCommand) -> list[VenueReportEntry]:
        done = self.link.call(self.peer, "venue", _encode(call))
        answer = _venue_answer.decode(done.payload)
        if answer.error:
            raise BacktestError(f"venue {self.venue} ({self.peer}): {answer.error}")
        self.open_order_count = answer.open_order_count
        self.next_due_ns = answer.next_due_ns
        return list(answer.reports)


def pulled_feed(link: TurnLink, peer: str) -> Iterator[Envelope]:
    """One feed's merged stream, pulled PULL_BATCH envelopes at a time."""
    position = 1
    last: dict[str, int] = {}  # producer id -> last producer_seq taken
    while True:
        link.collected.clear()
        done = link.call(peer, "feed", _encode(FeedPull(from_position=position, max_count=PULL_BATCH)))
        pulled = _feed_done.decode(done.payload)
        # A turn published twice (its answer was slow) is answered twice: the second copy of the
        # envelopes arrives during a later pull. Each producer's counter only moves forward.
        envelopes = []
        for env in link.collected:
            if env.producer_seq > last.get(env.producer_id, 0):
                last[env.producer_id] = env.producer_seq
                envelopes.append(env)
        link.collected.clear()
        if len(envelopes) != pulled.sent:
            raise BacktestError(f"{peer}: said it sent {pulled.sent} envelopes from position {position}, {len(envelopes)} arrived")
        yield from envelopes
        position += len(envelopes)
        if pulled.ended:
            return
        if not envelopes:
            raise BacktestError(f"{peer}: sent nothing from position {position} and did not end its stream")


class LockstepSequencer:
    """The sequencer of a bus backtest (profile mode "backtest").

    Args:
        profile: the group; exactly one strategy (the in-process loop hosts one).
        clock_ns: wall clock for heartbeats and turn timeouts, never for trading state.
    """

    def __init__(self, profile: Profile, clock_ns: Callable[[], int] = time.time_ns) -> None:
        if len(profile.strategies) != 1:
            raise BacktestError(
                f"strategies: a lockstep backtest runs exactly one strategy, the profile has {len(profile.strategies)}"
            )
        self.profile = profile
        self.config = backtest_config_for(profile)
        self.run_dir: Path = profile.group.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.active: _Run | None = None
        self._idle_core = SequencerCore(core_config_for_profile(profile))
        self.sockets = SequencerSockets(profile, self._core)
        self.link = TurnLink(self.sockets, lambda: self._core().seq_id, clock_ns)
        self.pending: list[Sequenced] = []
        self.link.before_turn = self._publish_journaled
        self.redrives = 0

    def _core(self) -> SequencerCore:
        return self.active.core if self.active is not None else self._idle_core

    @property
    def peers(self) -> list[str]:
        p = self.profile
        return (
            [f"feed-{f.name}" for f in p.feeds]
            + [f"gateway-{v.name}" for v in p.venues]
            + [f"strategy-{s.name}" for s in p.strategies]
        )

    def run(self) -> BacktestResult:
        """Wait for every peer, drive the run (starting over when a peer restarted), return the result."""
        self.link.wait_for_peers(self.peers)
        while True:
            try:
                return self._drive()
            except RedriveNeeded as exc:
                self.redrives += 1
                if self.redrives > MAX_REDRIVES:
                    raise BacktestError(f"lockstep run restarted {MAX_REDRIVES} times; giving up: {exc}") from exc
                log.warning("%s (restart %d)", exc, self.redrives)
                self.link.wait_for_peers(self.peers)

    def _drive(self) -> BacktestResult:
        link = self.link
        link.reset()
        self.pending.clear()
        self.sockets.ring.clear()
        self.active = None
        strategy = self.profile.strategies[0]
        host = f"strategy-{strategy.name}"
        instruments = feed_instruments(self.profile)
        hello = _strategy_hello.decode(
            link.call(host, "strategy", _encode(StrategyHelloRequest(series=instruments))).payload
        )
        venues = {v.name: RemoteVenue(link, f"gateway-{v.name}", v.name) for v in self.profile.venues}
        feeds = [pulled_feed(link, f"feed-{f.name}") for f in self.profile.feeds]
        key = Sequencer().merge_key
        source = feeds[0] if len(feeds) == 1 else heapq.merge(*feeds, key=key)
        drive = Drive(instruments, source, venues, self._sink)
        remote = RemoteStrategy(link, host, hello)
        run = _Run(remote, [], self.config, self.run_dir, False, drive)  # type: ignore[arg-type]
        self.active = run
        result = run.execute()
        self._publish_journaled()
        return result

    def _sink(self, env: Envelope, outputs: list[Any]) -> None:
        self.pending.append(Sequenced(seq_id=env.seq_id, envelope=env, outputs=outputs))

    def _publish_journaled(self) -> None:
        """Write the journal buffer, then publish what it held: never publish what could be lost."""
        run = self.active
        if run is not None:
            run._flush_journal()
        for record in self.pending:
            self.sockets.publish(record)
        self.pending.clear()

    def serve_idle(self, should_stop: Callable[[], bool]) -> None:
        """After the run: keep answering sync and heartbeating until stopped (status readers)."""
        while not should_stop():
            self.link._wait(None, 0, 200)

    def close(self) -> None:
        self.sockets.close()

