"""Free-running (paper, live group with simulated venues): follow the published stream, drive the
venue, hand back its reports after a wall-clock latency. No sockets here.

Theory of operation
-------------------
The gateway follows the sequencer's publication like any subscriber (`bus.peer.Subscriber`: a
snapshot, then every `Sequenced` record exactly once, in seq order, gaps filled by range
requests). For each record, in order:

1. the venue is advanced to the record's event time (arrivals and expiries due by then);
2. a market-data envelope for one of the venue's instruments is matched (`on_bar`, `on_trade`,
   `on_quote`), unless the core dropped it as a repeat or refused its source;
3. every order command among the record's outputs for this venue goes to it
   (`submit` / `cancel` / `replace`), at that event time.

"Event time" is the core's: the largest event time seen so far (snapshot included), since the
venue's clock never goes back while a record's own event time may (live arrival order).

Every report the venue makes waits in a due-time queue and is released `release_latency_ns` of
wall time after the record that caused it was processed (the network and venue round trip a
real gateway would see); the clock is the caller's (a test passes integers). Reports are
released in the order the venue made them, and only while the follower is `ready`: a gateway
that has seen a gap sends nothing until it has resynced (ARCHITECTURE "Publishing and resync").
Commands in the records a range request recovers are executed when they arrive: they were late,
not lost.

Each released report becomes one envelope: source broker_report, producer ``venue:<venue>``,
a producer counter with no holes in this process, event time = the report's time, and an
idempotency key made from the report's identity at the venue (`report_ids`), so a report the
core has already applied is dropped as a repeat however it comes back (B1). The counter starts
after the last one the snapshot's producer table has for this producer, so a restarted gateway
is not mistaken for a repeat of its predecessor; records of this producer seen later (an earlier
incarnation's reports still in flight) move it forward too.

Restarts. The venue lives in this process: a restarted gateway starts an empty venue. Orders the
core still has working at this venue in the gateway's first snapshot cannot be at the new venue
(their commands were published before that snapshot, and the old venue's book died with it), so
each is reported cancelled ("order lost"; key ``<venue>:lost:<client_order_id>@<snapshot seq>``)
and the core stops waiting for it; the strategy sees a cancel and may place it again. A report of
the old incarnation still in flight lands after that as a late report the core's table handles
(a late fill is booked, the order stays cancelled). Trade ids of a restarted venue carry an epoch
(`report_ids`) so its fills are not taken for the old venue's. Not handled: after a divergence
later in the process's life (the follower starts over from a snapshot) commands in the records
the snapshot covers are not executed and nothing is reported for them (the venue may still hold
some of those orders, so cancelling all would be wrong); this needs real reconciliation.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

import msgspec

from schemas.bus import Sequenced
from schemas.enums import OrderState, Source
from schemas.envelope import Envelope
from schemas.market import Bar, Quote, Trade
from schemas.outputs import DuplicateDropped, RequestCancel, RequestReplace, SubmitOrder
from schemas.reports import FillReport, OrderCancelledReport
from schemas.state import CoreSnapshot
from services.gateway.report_ids import REPORT_TAGS, bounded_id, bounded_text, epoch_trade_id, fill_key, report_key
from services.gateway.turns import COMMAND_KINDS
from services.gateway.venue_log import VenueLog
from services.matching import SimulatedVenue, VenueReport
from services.matching.venue import FINISHED_WINDOW

__all__ = ["MAX_TRACKED_ORDERS", "PaperGateway", "PaperStats"]

_log = logging.getLogger(__name__)

_BROKER_REPORT = Source.BROKER_REPORT
_MARKET_DATA = Source.MARKET_DATA
# Core states of an order a venue should be holding (or answering): a new venue holds none.
# CREATED is not among them: an order leaves it in the same input that creates it.
_LOST_STATES: Final = frozenset(
    {
        OrderState.SUBMITTED,
        OrderState.IN_DOUBT,
        OrderState.ACCEPTED,
        OrderState.PARTIALLY_FILLED,
        OrderState.CANCEL_PENDING,
        OrderState.REPLACE_PENDING,
    }
)

# Orders whose per-kind report counters (the `n` of report keys) are remembered. Beyond this the
# oldest order's counters are forgotten; a later report of it would restart at 1 and could collide
# with a key the core still remembers (then dropped as a repeat). The venue itself forgets
# finished orders at the same bound (a cancel for one of them is answered "unknown order"), so
# this adds no new way to lose a report in practice.
MAX_TRACKED_ORDERS: Final = FINISHED_WINDOW


@dataclass(slots=True)
class PaperStats:
    """Counters (telemetry only).

    Attributes:
        records: records processed.
        market_events: market events the venue matched.
        commands: order commands the venue was given.
        reports: reports the venue made.
        released: reports released as envelopes.
        held_not_ready: release calls that held due reports back because the follower was not ready.
        errors: venue calls that raised (our bug; logged with the traceback).
        snapshots: snapshots installed.
        lost_orders: orders the core had working here at the first snapshot, reported cancelled.
    """

    records: int = 0
    market_events: int = 0
    commands: int = 0
    reports: int = 0
    released: int = 0
    held_not_ready: int = 0
    errors: int = 0
    snapshots: int = 0
    lost_orders: int = 0


@dataclass(frozen=True, slots=True)
class _Pending:
    due_ns: int  # the caller's (wall) clock
    report: VenueReport
    key: str


class PaperGateway:
    """The free-running logic of the module docstring.

    Args:
        venue: the venue this gateway runs (its `venue` attribute is the venue id).
        instruments: the instruments traded at it (market data for others is ignored).
        release_latency_ns: wall time between a cause and the release of its reports.
        log: the venue log (commands the venue is handed); a new incarnation is started.
    """

    def __init__(
        self,
        venue: SimulatedVenue,
        instruments: Iterable[str],
        *,
        release_latency_ns: int = 0,
        log: VenueLog | None = None,
    ) -> None:
        assert release_latency_ns >= 0
        self.venue = venue
        self.venue_name = venue.venue
        self.producer_id = f"venue:{self.venue_name}"
        self.instruments = frozenset(instruments)
        self.release_latency_ns = release_latency_ns
        self._log = log if log is not None else VenueLog(None)
        self.incarnation = self._log.new_incarnation()
        self.stats = PaperStats()
        self._producer_seq = 0  # last producer_seq used (or seen for our producer)
        self._now_ns = 0  # the core's event time as far as we know
        self._epoch: int | None = None  # trade-id epoch, set by the first snapshot (report_ids)
        self._due: deque[_Pending] = deque()
        self._counts: OrderedDict[str, dict[str, int]] = OrderedDict()  # client order id -> tag -> n

    # ------------------------------------------------------------------ reading

    @property
    def producer_seq(self) -> int:
        """The last producer counter used or seen; the next report gets this + 1."""
        return self._producer_seq

    @property
    def now_ns(self) -> int:
        """The event time the venue has been driven to."""
        return self._now_ns

    @property
    def epoch(self) -> int | None:
        """The trade-id epoch (None: the venue's trade ids are used as they are)."""
        return self._epoch

    @property
    def pending(self) -> int:
        """Reports waiting for their release time (or for the follower to be ready)."""
        return len(self._due)

    def next_release_ns(self) -> int | None:
        """When the next report is due (the caller's clock), or None."""
        return self._due[0].due_ns if self._due else None

    # ------------------------------------------------------------------ inputs

    def on_snapshot(self, snapshot: CoreSnapshot, wall_ns: int = 0) -> None:
        """The follower installed a snapshot: take the core's event time and our producer counter.

        At the first snapshot of this process, every order the core still has working at this
        venue is one this (empty) venue cannot have: its command was published before the
        snapshot. Each gets an `OrderCancelledReport` ("lost"), released from `wall_ns` on, so the
        core does not wait for it forever (see the module docstring).
        """
        self.stats.snapshots += 1
        if self.stats.snapshots == 1:
            self._report_lost_orders(snapshot, wall_ns)
        last = next((p.last_seq for p in snapshot.producers if p.producer_id == self.producer_id), 0)
        if self.stats.snapshots == 1 and last > 0:
            # An earlier incarnation of this venue reported in this group: keep our trade ids apart.
            self._epoch = snapshot.seq_id
            _log.info(
                "%s: earlier reports up to producer_seq %d; trade ids get epoch %d",
                self.producer_id,
                last,
                snapshot.seq_id,
            )
        if last > self._producer_seq:
            self._producer_seq = last
        if snapshot.event_time_ns > self._now_ns:
            self._now_ns = snapshot.event_time_ns

    def on_record(self, record: Sequenced, wall_ns: int) -> None:
        """Process one published record at wall time `wall_ns` (the clock `release` is given)."""
        self.stats.records += 1
        env = record.envelope
        if env.event_time_ns > self._now_ns:
            self._now_ns = env.event_time_ns
        now = self._now_ns
        if env.producer_id == self.producer_id and env.producer_seq > self._producer_seq:
            self._producer_seq = env.producer_seq  # an earlier incarnation's report, late
        due = wall_ns + self.release_latency_ns
        self._venue_call("advance", due, self.venue.advance, now)
        payload = env.payload
        if (
            isinstance(payload, Bar | Trade | Quote)
            and env.instrument in self.instruments
            and env.source == _MARKET_DATA
            and not any(type(o) is DuplicateDropped for o in record.outputs)
        ):
            self.stats.market_events += 1
            if isinstance(payload, Bar):
                self._venue_call("on_bar", due, self.venue.on_bar, env.instrument, payload, now)
            elif isinstance(payload, Trade):
                self._venue_call("on_trade", due, self.venue.on_trade, env.instrument, payload, now)
            else:
                self._venue_call("on_quote", due, self.venue.on_quote, env.instrument, payload, now)
        for o in record.outputs:
            if type(o) is SubmitOrder or type(o) is RequestCancel or type(o) is RequestReplace:
                if o.venue != self.venue_name:
                    continue
                self.stats.commands += 1
                kind = COMMAND_KINDS[type(o)]
                self._log.record(turn=0, seq_id=record.seq_id, kind=kind, client_order_id=o.client_order_id)
                if isinstance(o, SubmitOrder):
                    self._venue_call(kind, due, self.venue.submit, o, now)
                elif isinstance(o, RequestCancel):
                    self._venue_call(kind, due, self.venue.cancel, o, now)
                else:
                    self._venue_call(kind, due, self.venue.replace, o, now)

    def release(self, wall_ns: int, *, ready: bool) -> list[Envelope]:
        """The report envelopes due by `wall_ns`, in order, each with the next producer counter.

        Args:
            wall_ns: now, on the clock `on_record` was given.
            ready: the follower is live and the sequencer heard from; when False nothing is
                released (due reports wait).
        """
        due = self._due
        if not due or due[0].due_ns > wall_ns:
            return []
        if not ready:
            self.stats.held_not_ready += 1
            return []
        out: list[Envelope] = []
        while due and due[0].due_ns <= wall_ns:
            item = due.popleft()
            self._producer_seq += 1
            r = item.report
            out.append(
                Envelope(
                    source=_BROKER_REPORT,
                    producer_id=self.producer_id,
                    producer_seq=self._producer_seq,
                    event_time_ns=r.time_ns,
                    payload=r.report,
                    venue=self.venue_name,
                    instrument=r.instrument,
                    idempotency_key=item.key,
                )
            )
        self.stats.released += len(out)
        return out

    # ------------------------------------------------------------------ internals

    def _report_lost_orders(self, snapshot: CoreSnapshot, wall_ns: int) -> None:
        reason = bounded_text(
            f"venue {self.venue_name} restarted: order lost (gateway started from snapshot seq {snapshot.seq_id})"
        )
        for order in snapshot.orders:
            if order.venue != self.venue_name or order.state not in _LOST_STATES:
                continue
            cid = order.intent.client_order_id
            report = OrderCancelledReport(client_order_id=cid, reason=reason)
            key = bounded_id(f"{self.venue_name}:lost:{cid}@{snapshot.seq_id}")
            self._due.append(
                _Pending(wall_ns, VenueReport(snapshot.event_time_ns, order.intent.instrument, report), key)
            )
            self.stats.lost_orders += 1
        if self.stats.lost_orders:
            _log.warning(
                "%s: %d orders working in the core at snapshot seq %d are not at this new venue: reported cancelled",
                self.producer_id,
                self.stats.lost_orders,
                snapshot.seq_id,
            )

    def _venue_call(self, what: str, due_ns: int, call: Callable[..., list[VenueReport]], *args: object) -> None:
        try:
            reports = call(*args)
        except Exception:  # noqa: BLE001  (our bug: the core only routes commands it made; logged, counted)
            self.stats.errors += 1
            _log.exception("%s: venue %s raised at event time %d", self.producer_id, what, self._now_ns)
            return
        for r in reports:
            self._queue(r, due_ns)

    def _queue(self, r: VenueReport, due_ns: int) -> None:
        self.stats.reports += 1
        report = r.report
        if isinstance(report, FillReport):
            if self._epoch is not None:
                report = msgspec.structs.replace(report, trade_id=epoch_trade_id(report.trade_id, self._epoch))
                r = VenueReport(r.time_ns, r.instrument, report)
            key = fill_key(self.venue_name, report.client_order_id, report.trade_id)
        else:
            key = report_key(
                self.venue_name, report, self._next_count(report.client_order_id, REPORT_TAGS[type(report)])
            )
        self._due.append(_Pending(due_ns, r, key))

    def _next_count(self, client_order_id: str, tag: str) -> int:
        counts = self._counts.get(client_order_id)
        if counts is None:
            counts = self._counts[client_order_id] = {}
            if len(self._counts) > MAX_TRACKED_ORDERS:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(client_order_id)
        n = counts.get(tag, 0) + 1
        counts[tag] = n
        return n
