"""Free-running (paper / live): follow the published stream, call the strategy, send its intents.

Theory of operation
-------------------
The host's replica applies every published record in seq order. For each record it derives the
events the in-process runner would give the strategy for it (`StrategySession.events_of`: the
record's order outputs for this strategy, then its market event), calls `on_event` for each, and
turns the intents returned into envelopes for the sequencer's ingress:

- source STRATEGY, producer ``strategy:<strategy_id>`` (what ingress authorization expects);
- `producer_seq` one past the larger of the last one this host used and the replica's producer
  table for that producer, so a restarted host continues from the snapshot's ``last_seq`` and
  never reuses a number the sequencer has applied;
- `event_time_ns` the replica's event time; `instrument` the intent's, if it has one (as the
  runner's `_deliver_intents` does).

What is never acted on: the state a snapshot installs (a restarted host re-follows the stream
and answers only records published after its snapshot, so it sends no duplicates of what its
previous life answered), and nothing at all while the follower is not ready (resyncing, or the
sequencer silent): records are still applied and their events queued (bounded), and the strategy
hears them once the follower is ready again. `on_start` is called the first time the host is
ready, `on_stop` when it shuts down.

The context's client order id counter (`<strategy_id>-<n>`) starts at 0 in a new process; after a
snapshot it is moved past the highest id of this strategy's orders in the replica, so a restarted
host does not reuse client order ids the core already knows.

A strategy that raises is logged and counted; the event's intents are lost, the host carries on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Final

from schemas.bus import Sequenced
from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.intents import Intent
from schemas.state import CoreSnapshot
from services.strategy.events import Event
from services.strategy_host.session import StrategyFailure, StrategySession

__all__ = ["MAX_PENDING_EVENTS", "FreeRunningHost"]

_log = logging.getLogger("tradebus.strategy_host")

# Events held while the follower is not ready. A resync takes a round trip or two; beyond this
# many events the oldest are dropped (counted): the strategy then reads the world from `ctx`.
MAX_PENDING_EVENTS: Final = 10_000


class FreeRunningHost:
    """The free-running logic of a strategy host, without sockets.

    Args:
        session: the strategy and its replica (history 0: nothing refers to past records here).
        max_pending: events held while not ready.
    """

    def __init__(self, session: StrategySession, *, max_pending: int = MAX_PENDING_EVENTS) -> None:
        assert max_pending >= 1
        self.session = session
        self.producer_id = f"strategy:{session.strategy_id}"
        self.started = False
        self.stopped = False
        self.errors = 0
        self.dropped_events = 0
        self.max_pending = max_pending
        self._last_producer_seq = 0
        self._pending: deque[Event] = deque()

    # ------------------------------------------------------------------ inputs

    def on_snapshot(self, snapshot: CoreSnapshot) -> None:
        """Install the sequencer's state; nothing in it is acted on."""
        session = self.session
        session.replica.restore(snapshot)
        self._skip_used_client_order_ids()

    def on_records(self, records: Iterable[Sequenced], *, ready: bool) -> list[Envelope]:
        """Apply records in order; if `ready`, call the strategy for each right after applying it.

        Returns:
            The envelopes of the intents the strategy answered, in order.

        Raises:
            ReplicaError: the replica cannot follow the stream (fatal for the host).
        """
        session = self.session
        replica = session.replica
        out: list[Envelope] = []
        if ready:
            out += self.pump()
        for record in records:
            replica.apply(record)
            events = session.events_of(record, replica.event_time_ns)
            if not events:
                continue
            if ready and not self._pending:
                for event in events:
                    out += self._deliver(event)
            else:
                self._hold(events)
        return out

    def pump(self) -> list[Envelope]:
        """The follower is ready: start the strategy if needed and deliver held events."""
        out: list[Envelope] = []
        if self.stopped:
            return out
        if not self.started:
            self.started = True
            out += self._envelopes(self._call_hook("on_start"))
        while self._pending:
            out += self._deliver(self._pending.popleft())
        return out

    def stop(self) -> list[Envelope]:
        """The host shuts down: `on_stop` (if the strategy was started). Returns its envelopes."""
        if not self.started or self.stopped:
            self.stopped = True
            return []
        self.stopped = True
        return self._envelopes(self._call_hook("on_stop"))

    @property
    def pending_events(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ internals

    def _hold(self, events: list[Event]) -> None:
        pending = self._pending
        pending.extend(events)
        while len(pending) > self.max_pending:
            pending.popleft()
            self.dropped_events += 1

    def _deliver(self, event: Event) -> list[Envelope]:
        session = self.session
        try:
            intents = session.call(session.strategy.on_event, session.ctx, event)
        except StrategyFailure as exc:
            self._failed(exc)
            return []
        return self._envelopes(intents)

    def _call_hook(self, name: str) -> list[Intent]:
        session = self.session
        try:
            return session.call(getattr(session.strategy, name), session.ctx)
        except StrategyFailure as exc:
            self._failed(exc)
            return []

    def _failed(self, exc: StrategyFailure) -> None:
        self.errors += 1
        cause = exc.__cause__
        _log.error("%s", exc, exc_info=cause if isinstance(cause, Exception) else None)

    def _envelopes(self, intents: list[Intent]) -> list[Envelope]:
        if not intents:
            return []
        replica = self.session.replica
        pid = self.producer_id
        t = replica.event_time_ns
        seq = max(self._last_producer_seq, replica.book.producers.get(pid, 0))
        out = []
        for intent in intents:
            seq += 1
            out.append(
                Envelope(
                    source=Source.STRATEGY,
                    producer_id=pid,
                    producer_seq=seq,
                    event_time_ns=t,
                    payload=intent,
                    instrument=getattr(intent, "instrument", ""),
                )
            )
        self._last_producer_seq = seq
        return out

    def _skip_used_client_order_ids(self) -> None:
        """Move the context's id counter past `<strategy_id>-<n>` ids the replica's orders use."""
        ctx = self.session.ctx
        prefix = f"{ctx.strategy_id}-"
        highest = 0
        for cid in self.session.replica.book.orders:
            if cid.startswith(prefix):
                tail = cid[len(prefix) :]
                if tail.isdigit() and int(tail) > highest:
                    highest = int(tail)
        # The context's public API only hands out the next id; drawing ids moves the counter.
        n = 0
        while n < highest:
            last = ctx.next_client_order_id()
            n = int(last[len(prefix) :])
