"""Lockstep (bus backtest): answer the sequencer's strategy turns from a replica of its core.

Theory of operation
-------------------
The sequencer runs the in-process backtest loop (`services.backtest.runner`, driven by `Drive`)
and, where that loop calls the strategy, publishes a `TurnRequest` for this host's peer id whose
payload is a `StrategyHelloRequest` or a `StrategyCall` (schemas.lockstep), then waits for the
`TurnDone`. The host is fed three things, in the order they arrive (no sockets here: the process
loop in `services.strategy_host.main` feeds it, and tests feed it directly):

- snapshots (`on_snapshot`) and records (`on_records`) of the publication stream, in seq order
  (the Clone-pattern follower makes them gap-free); records are queued, not applied at once;
- turn requests (`on_turn`); those for other peers are ignored.

`step()` answers the queued turns in order, as far as it can:

- a `StrategyHelloRequest` is answered at once with `StrategyHello` (calling the strategy's
  `bind_series` first, if it has one, with what `series_for` builds from the request's names);
- a `StrategyCall` first brings the replica to exactly the call's `seq_id`, applying queued
  records up to it and no further: the sequencer publishes every record <= seq_id before the
  request on the same socket, so they have arrived or are being fetched by the follower. If they
  are not all here yet, the turn waits (`waiting_for` names the seq id, so the process loop can
  tell the follower it exists) and `step` returns what it has. Then the hook runs with the same
  event the in-process runner would build (`services.strategy.event_builders`, from the record the
  call refers to and the replica's event time right after that record), and its intents, or its
  error, go back in a `StrategyAnswer`.

Turn rules (turns count from 1 per peer):

- turn 1: a (new) run. If turns were answered already, the sequencer restarted the run: a fresh
  strategy instance and replica replace the old ones and `resync_requested` asks the process loop
  to re-follow the stream from a new snapshot. (A repeated turn 1 is treated the same way: the
  answer is the same, and the replica cannot be trusted to belong to the current run.)
- the turn last answered, again: the reply was lost; the cached `TurnDone` is sent again.
- the turn after it: executed.
- any other turn: this host has no history for it (it was restarted mid-run); answered with an
  empty payload, which tells the sequencer to re-drive the run from turn 1. Nothing is executed.

Memory: the replica remembers applied records for calls that refer to them. A call refers to a
record applied since the last market event the strategy was called for (the runner settles every
pending event before the next market event, and its pending events are first-in first-out), so
after answering a MARKET call for record m, records before m are forgotten.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec

from bus.limits import FOLLOWER_MAX_BUFFERED, MAX_INGRESS_BYTES
from schemas.bus import Sequenced, TurnDone, TurnRequest
from schemas.intents import Intent
from schemas.lockstep import (
    MAX_TURN_ITEMS,
    StrategyAnswer,
    StrategyCall,
    StrategyHello,
    StrategyHelloRequest,
    StrategyHook,
)
from schemas.state import CoreSnapshot
from services.strategy.events import TimeSliceClosed
from services.strategy_host.session import ReplicaError, StrategyFailure, StrategySession, bounded_text

__all__ = ["MAX_QUEUED_RECORDS", "LockstepHost", "SeriesFor"]

SeriesFor = Callable[[Sequence[str]], list[Any]]
"""Builds what `bind_series` takes from a hello's instrument names (`series.profile_series`)."""

# A TurnDone frame must fit the ingress limit; the answer's payload leaves room for the TurnDone
# fields around it (peer id, turn, kind and msgpack framing: well under 1 KiB).
_MAX_ANSWER_BYTES: Final = MAX_INGRESS_BYTES - 1024

# Records queued while no turn needs them. Turns come at least once per market event, so the
# queue stays short; past this many (a sequencer that never calls this host) the oldest are
# applied anyway: every later call's seq id is at or beyond them (they were published before it).
MAX_QUEUED_RECORDS: Final = FOLLOWER_MAX_BUFFERED

_CallDecoder = msgspec.msgpack.Decoder(StrategyHelloRequest | StrategyCall)
_log = logging.getLogger("tradebus.strategy_host")


class LockstepHost:
    """The turn logic of a lockstep strategy host, without sockets.

    Args:
        peer: this host's peer id (``strategy-<name>``): only its turn requests are answered.
        new_session: makes a fresh `StrategySession` (new strategy instance, new replica); called
            now and again whenever the sequencer restarts the run.
        series_for: builds what a strategy with `bind_series` (the Backtrader-style layer) is bound
            to, from the hello's instrument names; None: such a strategy's hello is answered with
            an error.
    """

    def __init__(
        self,
        peer: str,
        new_session: Callable[[], StrategySession],
        *,
        series_for: SeriesFor | None = None,
    ) -> None:
        self.peer = peer
        self._new_session = new_session
        self._series_for = series_for
        self.session = new_session()
        self._records: deque[Sequenced] = deque()
        self._turns: deque[TurnRequest] = deque()
        self.last_turn = 0
        self._last_answer: TurnDone | None = None
        self.resync_requested = False
        self.resets = 0
        self._encode = msgspec.msgpack.Encoder().encode

    # ------------------------------------------------------------------ inputs

    def on_snapshot(self, snapshot: CoreSnapshot) -> None:
        """Install the sequencer's state (the follower started over, or this host did)."""
        self.session.replica.restore(snapshot)
        records = self._records
        while records and records[0].seq_id <= snapshot.seq_id:
            records.popleft()

    def on_records(self, records: Iterable[Sequenced]) -> None:
        """Published records, in seq order. Applied only as far as a call needs them.

        Raises:
            ReplicaError: the replica could not apply a record it had to (queue over its bound).
        """
        queue = self._records
        queue.extend(records)
        if len(queue) > MAX_QUEUED_RECORDS and not self._turns and self.session.replica.synced:
            self._advance(queue[-1 - MAX_QUEUED_RECORDS].seq_id)

    def on_turn(self, request: TurnRequest) -> None:
        """A turn request from the publication stream (ignored unless it is for this peer)."""
        if request.peer == self.peer:
            self._turns.append(request)

    # ------------------------------------------------------------------ progress

    @property
    def waiting_for(self) -> int | None:
        """The seq id the replica must reach before the next queued turn can run, if it is behind.

        It is the request's `seq_id`, the sequencer's seq id when it asked: every record up to it
        was published before the request. The process loop passes it to the follower, so a lost
        tail record is fetched even though no later record or heartbeat reveals it.
        """
        if not self._turns:
            return None
        request = self._turns[0]
        target = request.seq_id
        if target > self.session.replica.seq_id:
            return target
        return None

    @property
    def pending_turns(self) -> int:
        return len(self._turns)

    def step(self) -> list[TurnDone]:
        """Answer queued turns in order until one must wait for records. Returns the answers."""
        answers: list[TurnDone] = []
        while self._turns:
            answer = self._handle(self._turns[0])
            if answer is None:
                break
            self._turns.popleft()
            answers.append(answer)
        return answers

    # ------------------------------------------------------------------ turns

    def _handle(self, request: TurnRequest) -> TurnDone | None:
        turn = request.turn
        # Turn 1 starts a run. Reset if we answered turns of another run, or if our replica is
        # ahead of the new run (this process started while an older run was being driven).
        if turn == 1 and (self.last_turn != 0 or self.session.replica.seq_id > request.seq_id):
            self._reset()
        if turn == self.last_turn and self._last_answer is not None:
            return self._last_answer
        if turn != self.last_turn + 1:
            return TurnDone(peer=self.peer, turn=turn, payload=b"")  # unknown: re-drive from turn 1
        payload = self._execute(request)
        if payload is None:
            return None
        answer = TurnDone(peer=self.peer, turn=turn, payload=payload)
        self.last_turn = turn
        self._last_answer = answer
        return answer

    def _reset(self) -> None:
        """The sequencer (re)started the run: a fresh strategy and replica, re-synced."""
        self.session = self._new_session()
        self._records.clear()
        self.last_turn = 0
        self._last_answer = None
        self.resync_requested = True
        self.resets += 1

    def _execute(self, request: TurnRequest) -> bytes | None:
        try:
            call = _CallDecoder.decode(request.payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            return self._error(bounded_text(f"turn {request.turn}: payload is not a strategy call: ", str(exc)))
        if isinstance(call, StrategyHelloRequest):
            return self._hello(call)
        return self._call(request, call)

    def _hello(self, request: StrategyHelloRequest) -> bytes:
        session = self.session
        strategy = session.strategy
        bind_series = getattr(strategy, "bind_series", None)
        if bind_series is not None:
            if self._series_for is None:
                return self._error(
                    f"strategy {session.strategy_id}: binds series but this host cannot build them from names"
                )
            try:
                series = self._series_for(request.series)
            except ValueError as exc:
                return self._error(bounded_text(f"strategy {session.strategy_id}: series: ", str(exc)))
            try:
                session.call(bind_series, series)
            except StrategyFailure as exc:
                return self._error(str(exc))
        hello = StrategyHello(
            strategy_id=session.strategy_id,
            wants_time_slices=session.wants_time_slices,
            wants_order_events=session.wants_order_events,
        )
        return self._encode(hello)

    def _call(self, request: TurnRequest, call: StrategyCall) -> bytes | None:
        session = self.session
        replica = session.replica
        target = call.seq_id or request.seq_id
        if not replica.synced:
            return None  # the snapshot has not come yet
        try:
            self._advance(target)
        except ReplicaError as exc:
            return self._error(bounded_text("replica: ", str(exc)))
        if replica.seq_id < target:
            return None
        if replica.seq_id > target:
            return self._error(f"replica is at seq {replica.seq_id}, past the call's seq {target}")
        try:
            intents = self._run_hook(call)
        except StrategyFailure as exc:
            cause = exc.__cause__
            _log.error("turn %d: %s", request.turn, exc, exc_info=cause if isinstance(cause, Exception) else None)
            return self._error(str(exc))
        if len(intents) > MAX_TURN_ITEMS:
            return self._error(
                f"strategy {session.strategy_id}: returned {len(intents)} intents for one call, "
                f"more than {MAX_TURN_ITEMS}"
            )
        payload = self._encode(StrategyAnswer(intents=intents))
        if len(payload) > _MAX_ANSWER_BYTES:
            return self._error(
                f"strategy {session.strategy_id}: its {len(intents)} intents encode to {len(payload)} bytes, "
                f"more than a turn answer may carry ({_MAX_ANSWER_BYTES})"
            )
        return payload

    def _advance(self, target: int) -> None:
        """Apply queued records up to `target` (never beyond)."""
        replica = self.session.replica
        records = self._records
        while records and replica.seq_id < target:
            record = records[0]
            if record.seq_id <= replica.seq_id:
                records.popleft()  # covered by the snapshot
                continue
            records.popleft()
            replica.apply(record)

    def _run_hook(self, call: StrategyCall) -> list[Intent]:
        session = self.session
        strategy = session.strategy
        ctx = session.ctx
        hook = call.hook
        if hook is StrategyHook.START:
            return session.call(strategy.on_start, ctx)
        if hook is StrategyHook.STOP:
            return session.call(strategy.on_stop, ctx)
        if hook is StrategyHook.SLICE:
            return session.call(strategy.on_event, ctx, TimeSliceClosed(call.time_ns))
        held = session.replica.held(call.event_seq_id)
        if held is None:
            raise StrategyFailure(f"{hook} call: record {call.event_seq_id} is not held by the host's replica")
        record, time_ns = held
        if hook is StrategyHook.MARKET:
            event = session.market_event(record)
            if event is None:
                raise StrategyFailure(
                    f"market call: record {call.event_seq_id} is a {type(record.envelope.payload).__name__} "
                    f"of instrument {record.envelope.instrument!r}, not market data of a configured instrument"
                )
            intents = session.call(strategy.on_event, ctx, event)
            # Nothing after this call refers to records before this one (see the module doc).
            session.replica.forget_before(call.event_seq_id)
            return intents
        assert hook is StrategyHook.OUTPUT
        outputs = record.outputs
        index = call.output_index
        if not 0 <= index < len(outputs):
            raise StrategyFailure(
                f"output call: record {call.event_seq_id} has {len(outputs)} outputs, no index {index}"
            )
        event = session.output_event(outputs[index], time_ns)
        if event is None:
            raise StrategyFailure(
                f"output call: output {index} of record {call.event_seq_id} is a "
                f"{type(outputs[index]).__name__}, not an order event"
            )
        return session.call(strategy.on_event, ctx, event)

    def _error(self, message: str) -> bytes:
        return self._encode(StrategyAnswer(error=bounded_text("", message)))
