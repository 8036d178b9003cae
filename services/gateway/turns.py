"""Lockstep (bus backtest): the venue driven turn by turn by the sequencer. No sockets here.

Theory of operation
-------------------
In a bus backtest the sequencer runs the in-process backtest's loop (`services.backtest.runner`)
and, where that loop calls the simulated venue, publishes a `TurnRequest` for this gateway whose
payload is the call (`VenueMarket` or `VenueOrderCommand`, schemas/lockstep.py). The gateway
makes the call on its `SimulatedVenue` and answers `TurnDone` whose payload is a `VenueAnswer`:
the reports, and the venue's open order count and next due time (the loop reads both to decide
whether to call the venue on the next bar). The sequencer turns the reports into envelopes
itself, exactly as the in-process loop does, so both paths journal the same records.

Turns count from 1 and the sequencer waits for each answer before the next request, so a turn
is executed at most once per venue incarnation:

| request                                  | answer                                                   |
|------------------------------------------|----------------------------------------------------------|
| the last answered one, byte for byte     | the cached answer (a TurnRequest re-published after a    |
|                                          | timeout: the TurnDone may have been lost)                |
| turn 1, after other turns were answered  | the sequencer restarted the run: a new venue, then run it|
| last answered + 1 (1 for a fresh venue)  | run it                                                   |
| anything else                            | `TurnDone` with an empty payload: this gateway has no    |
|                                          | history for that turn (it restarted mid-run); the        |
|                                          | sequencer re-drives the run from turn 1                  |

A call that raises inside the venue is our bug (the sequencer only sends commands the core
made): the answer carries `error` (at most 256 characters) and the gateway stays up, so the
sequencer can stop the run and say why. An answer that would not fit the ingress frame limit
(more than `MAX_TURN_ITEMS` reports, or too many bytes) is an error answer too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import msgspec

from bus.limits import MAX_INGRESS_BYTES
from schemas.bus import TurnDone, TurnRequest
from schemas.lockstep import MAX_TURN_ITEMS, VenueAnswer, VenueCall, VenueMarket, VenueOrderCommand, VenueReportEntry
from schemas.market import Bar, Quote, Trade
from schemas.outputs import RequestCancel, RequestReplace, SubmitOrder
from services.gateway.report_ids import bounded_text
from services.gateway.venue_log import VenueLog
from services.matching import SimulatedVenue, VenueReport

__all__ = ["COMMAND_KINDS", "MAX_ANSWER_BYTES", "TurnHandler", "TurnStats"]

_log = logging.getLogger(__name__)

# The venue log's name for each command.
COMMAND_KINDS: Final[dict[type, str]] = {SubmitOrder: "submit", RequestCancel: "cancel", RequestReplace: "replace"}

# A TurnDone travels on ingress, whose frames are at most MAX_INGRESS_BYTES: the answer inside it
# leaves 1 KiB for the TurnDone's own fields (peer id, turn, tags). A larger answer is refused
# here with an error the sequencer can show, rather than by the codec at send time.
MAX_ANSWER_BYTES: Final = MAX_INGRESS_BYTES - 1024

_ENCODER = msgspec.msgpack.Encoder()
_CALL_DECODER: msgspec.msgpack.Decoder[VenueCall] = msgspec.msgpack.Decoder(VenueCall)


@dataclass(slots=True)
class TurnStats:
    """Counters (telemetry only).

    Attributes:
        executed: turns run on the venue.
        repeated: repeated requests answered from the cache.
        restarts: runs restarted (turn 1 again: a new venue).
        unknown: requests answered with an empty payload (no history for that turn).
        errors: answers carrying an error.
        ignored: requests for another peer.
    """

    executed: int = 0
    repeated: int = 0
    restarts: int = 0
    unknown: int = 0
    errors: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class _Answered:
    request: TurnRequest
    done: TurnDone


class TurnHandler:
    """The turn rules of the module docstring, for one gateway.

    Args:
        peer: this gateway's peer id (``gateway-<venue>``): requests for other peers are ignored.
        new_venue: makes a fresh `SimulatedVenue` (at start and when the run restarts).
        log: the venue log; each incarnation gets the log's next number.
    """

    def __init__(self, peer: str, new_venue: Callable[[], SimulatedVenue], log: VenueLog | None = None) -> None:
        self.peer = peer
        self._new_venue = new_venue
        self._log = log if log is not None else VenueLog(None)
        self.venue = new_venue()
        self.incarnation = self._log.new_incarnation()
        self.stats = TurnStats()
        self._last: _Answered | None = None

    @property
    def last_turn(self) -> int:
        """The last turn answered from the venue (0: none in this process)."""
        return 0 if self._last is None else self._last.request.turn

    def handle(self, request: TurnRequest) -> TurnDone | None:
        """Answer one turn request.

        Returns:
            The TurnDone to send, or None if the request is for another peer.
        """
        if request.peer != self.peer:
            self.stats.ignored += 1
            return None
        last = self._last
        if last is not None and request == last.request:
            self.stats.repeated += 1
            return last.done
        if request.turn == 1 and last is not None:
            self._restart()
        elif request.turn != self.last_turn + 1:
            self.stats.unknown += 1
            _log.warning(
                "turn %d (seq %d) without history (last answered: %d): empty answer, the run restarts",
                request.turn,
                request.seq_id,
                self.last_turn,
            )
            return TurnDone(peer=self.peer, turn=request.turn, payload=b"")
        done = TurnDone(peer=self.peer, turn=request.turn, payload=self._execute(request))
        self._last = _Answered(request, done)
        self.stats.executed += 1
        return done

    # ------------------------------------------------------------------------------------------

    def _restart(self) -> None:
        self.venue = self._new_venue()
        self.incarnation = self._log.new_incarnation()
        self._last = None
        self.stats.restarts += 1
        _log.info("turn 1 again: the run restarted; venue incarnation %d", self.incarnation)

    def _execute(self, request: TurnRequest) -> bytes:
        try:
            call = _CALL_DECODER.decode(request.payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            answer = self._error(f"turn {request.turn}: payload is not a venue call: {exc}")
        else:
            answer = self._call(call, request)
        payload = _ENCODER.encode(answer)
        if len(payload) > MAX_ANSWER_BYTES:
            answer = self._error(
                f"turn {request.turn}: answer of {len(answer.reports)} reports is {len(payload)} bytes, "
                f"over the {MAX_ANSWER_BYTES}-byte limit"
            )
            payload = _ENCODER.encode(answer)
        return payload

    def _call(self, call: VenueCall, request: TurnRequest) -> VenueAnswer:
        venue = self.venue
        reports: list[VenueReport]
        try:
            if isinstance(call, VenueMarket):
                data = call.data
                if isinstance(data, Bar):
                    reports = venue.on_bar(call.instrument, data, call.time_ns)
                elif isinstance(data, Trade):
                    reports = venue.on_trade(call.instrument, data, call.time_ns)
                else:
                    assert isinstance(data, Quote)
                    reports = venue.on_quote(call.instrument, data, call.time_ns)
            else:
                assert isinstance(call, VenueOrderCommand)
                cmd = call.command
                self._log.record(
                    turn=request.turn,
                    seq_id=cmd.seq_id,
                    kind=COMMAND_KINDS[type(cmd)],
                    client_order_id=cmd.client_order_id,
                )
                if isinstance(cmd, SubmitOrder):
                    reports = venue.submit(cmd, call.now_ns)
                elif isinstance(cmd, RequestCancel):
                    reports = venue.cancel(cmd, call.now_ns)
                else:
                    reports = venue.replace(cmd, call.now_ns)
        except Exception as exc:  # noqa: BLE001  (our bug: told to the sequencer, which stops the run)
            _log.exception("turn %d (seq %d): the venue raised", request.turn, request.seq_id)
            return self._error(f"turn {request.turn}: {type(exc).__name__}: {exc}")
        if len(reports) > MAX_TURN_ITEMS:
            return self._error(f"turn {request.turn}: {len(reports)} reports, more than {MAX_TURN_ITEMS} per turn")
        return VenueAnswer(
            venue=venue.venue,
            reports=[VenueReportEntry(time_ns=r.time_ns, instrument=r.instrument, report=r.report) for r in reports],
            open_order_count=venue.open_order_count,
            next_due_ns=venue.next_due_ns,
        )

    def _error(self, text: str) -> VenueAnswer:
        self.stats.errors += 1
        text = bounded_text(text)
        venue = self.venue
        return VenueAnswer(
            venue=venue.venue,
            reports=[],
            open_order_count=venue.open_order_count,
            next_due_ns=venue.next_due_ns,
            error=text,
        )
