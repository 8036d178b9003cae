"""Free-running paper gateway, without sockets (services.gateway.paper).

Records come from a real `SequencerCore` applying envelopes, as the sequencer would publish them;
the report envelopes the gateway releases go back into the same core, which must take them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from schemas import (
    PAYLOAD_SOURCE,
    CancelOrder,
    DuplicateDropped,
    Envelope,
    FillBooked,
    FillReport,
    IntentRejected,
    InvariantBroken,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderReplacedReport,
    OrderState,
    Output,
    Payload,
    PlaceOrder,
    ProducerGap,
    ReplaceOrder,
    ReportRefused,
    Source,
    SubmitOrder,
)
from schemas.bus import Sequenced
from services.gateway.paper import PaperGateway
from services.gateway.report_ids import bounded_id, epoch_trade_id
from services.gateway.venue_log import VenueLog, read_venue_log
from services.matching import MatchingConfig, SimulatedVenue
from services.sequencer.core import SequencerCore
from tests.unit.matching_support import BTC, ETH, VENUE, at, core_config, flat

WALL_LATENCY_NS = 25_000_000  # 25 ms of wall time between a cause and its reports
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(Envelope)
_SEQ_DEC = msgspec.msgpack.Decoder(Sequenced)


class Group:
    """A sequencer core and the records it would publish."""

    def __init__(self) -> None:
        self.core = SequencerCore(core_config())
        self.producer_seqs: dict[str, int] = {}
        self.records: list[Sequenced] = []

    def send(self, env: Envelope) -> Sequenced:
        """Sequence and apply one envelope, exactly as it crosses a socket; return its record."""
        env = _DEC.decode(_ENC.encode(msgspec.structs.replace(env, seq_id=self.core.seq_id + 1)))
        out = self.core.apply(env)
        record = _SEQ_DEC.decode(_ENC.encode(Sequenced(seq_id=env.seq_id, envelope=env, outputs=out)))
        self.records.append(record)
        return record

    def produce(
        self, payload: Payload, producer: str, time_ns: int, instrument: str = "", venue: str = ""
    ) -> Sequenced:
        n = self.producer_seqs.get(producer, 0) + 1
        self.producer_seqs[producer] = n
        env = Envelope(
            source=PAYLOAD_SOURCE[type(payload)],
            producer_id=producer,
            producer_seq=n,
            event_time_ns=time_ns,
            payload=payload,
            venue=venue,
            instrument=instrument,
        )
        return self.send(env)

    def bar(self, k: int, price: int = 4_200_000, instrument: str = BTC) -> Sequenced:
        return self.produce(flat(price), "feed:btc", at(k), instrument, VENUE)

    def intent(self, intent: Any, k: int) -> Sequenced:
        return self.produce(intent, f"strategy:{intent.strategy_id}", at(k), getattr(intent, "instrument", ""))

    def apply_reports(self, envelopes: list[Envelope]) -> list[Output]:
        out: list[Output] = []
        for env in envelopes:
            out.extend(self.send(env).outputs)
        return out


def place(cid: str, instrument: str = BTC, **kw: Any) -> PlaceOrder:
    fields: dict[str, Any] = dict(side="buy", order_type="market", quantity=100)
    fields.update(kw)
    return PlaceOrder(strategy_id="s1", client_order_id=cid, instrument=instrument, **fields)


def gateway(log: VenueLog | None = None, latency_ns: int = 0) -> PaperGateway:
    venue = SimulatedVenue(VENUE, core_config(), MatchingConfig(latency_ns=latency_ns))
    return PaperGateway(venue, [BTC, ETH], release_latency_ns=WALL_LATENCY_NS, log=log)


def bad_outputs(out: list[Output]) -> list[Output]:
    return [o for o in out if isinstance(o, ReportRefused | InvariantBroken | DuplicateDropped | IntentRejected)]


def test_place_order_to_fill_reports_released_after_latency_with_keys() -> None:
    group = Group()
    gw = gateway()
    gw.on_snapshot(group.core.snapshot())
    gw.on_record(group.bar(0), 1_000)
    placed = group.intent(place("o1"), 0)
    assert any(isinstance(o, SubmitOrder) for o in placed.outputs)
    gw.on_record(placed, 2_000)
    assert gw.pending == 1 and gw.next_release_ns() == 2_000 + WALL_LATENCY_NS
    assert gw.release(2_000 + WALL_LATENCY_NS - 1, ready=True) == []  # not before the latency
    [ack] = gw.release(2_000 + WALL_LATENCY_NS, ready=True)
    assert isinstance(ack.payload, OrderAcceptedReport) and ack.payload.client_order_id == "o1"
    assert (ack.source, ack.producer_id, ack.producer_seq, ack.venue, ack.instrument) == (
        Source.BROKER_REPORT,
        f"venue:{VENUE}",
        1,
        VENUE,
        BTC,
    )
    assert ack.event_time_ns == at(0) and ack.idempotency_key == f"{VENUE}:ack:o1:1"

    gw.on_record(group.bar(1), 3_000)  # opens at the order's arrival: fills at its open
    [fill] = gw.release(3_000 + WALL_LATENCY_NS, ready=True)
    assert isinstance(fill.payload, FillReport)
    assert fill.producer_seq == 2  # contiguous
    assert fill.idempotency_key == f"{VENUE}:fill:o1:{fill.payload.trade_id}" == f"{VENUE}:fill:o1:{VENUE}-T1"
    assert fill.event_time_ns == at(1)

    out = group.apply_reports([ack, fill])
    assert bad_outputs(out) == []
    assert [o.client_order_id for o in out if isinstance(o, FillBooked)] == ["o1"]
    # B1: the same reports again, under new producer counters, change nothing but the producer table.
    before = group.core.snapshot()
    again = [msgspec.structs.replace(e, producer_seq=e.producer_seq + 10) for e in (ack, fill)]
    repeat = group.apply_reports(again)
    assert sum(isinstance(o, DuplicateDropped) for o in repeat) == 2
    assert all(isinstance(o, DuplicateDropped | ProducerGap) for o in repeat), repeat
    after = group.core.snapshot()
    assert (after.orders, after.positions, after.cash) == (before.orders, before.positions, before.cash)


def test_same_records_give_the_same_envelopes() -> None:
    group = Group()
    script = [
        group.bar(0),
        group.intent(place("o1"), 0),
        group.intent(place("o2", side="sell", quantity=50), 0),
        group.bar(1),
        group.bar(2),
    ]

    def run() -> list[Envelope]:
        gw = gateway()
        gw.on_snapshot(SequencerCore(core_config()).snapshot())
        out: list[Envelope] = []
        for i, record in enumerate(script):
            gw.on_record(record, i)
            out += gw.release(i + WALL_LATENCY_NS, ready=True)
        return out

    first = run()
    assert len(first) == 4 and [e.producer_seq for e in first] == [1, 2, 3, 4]
    assert run() == first
    assert len({e.idempotency_key for e in first}) == 4


def test_nothing_is_released_while_not_ready_then_all_in_order() -> None:
    group = Group()
    gw = gateway()
    gw.on_snapshot(group.core.snapshot())
    for i, record in enumerate(
        [group.bar(0), group.intent(place("o1"), 0), group.intent(place("o2"), 0), group.bar(1)]
    ):
        gw.on_record(record, i)
    late = 10 * WALL_LATENCY_NS
    assert gw.release(late, ready=False) == []
    assert gw.pending == 4 and gw.stats.held_not_ready == 1
    released = gw.release(late, ready=True)
    assert [(type(e.payload).__name__, e.payload.client_order_id) for e in released] == [
        ("OrderAcceptedReport", "o1"),
        ("OrderAcceptedReport", "o2"),
        ("FillReport", "o1"),
        ("FillReport", "o2"),
    ]
    assert [e.producer_seq for e in released] == [1, 2, 3, 4]
    assert gw.pending == 0
    assert bad_outputs(group.apply_reports(released)) == []


def test_restarted_gateway_continues_the_counter_and_its_fills_are_booked(tmp_path: Path) -> None:
    group = Group()
    log_path = tmp_path / "venue-SIM.jsonl"
    first = gateway(VenueLog(log_path))
    first.on_snapshot(group.core.snapshot())
    assert first.epoch is None  # first incarnation in the group: the venue's own trade ids
    for record in (group.bar(0), group.intent(place("o1"), 0), group.bar(1)):
        first.on_record(record, 0)
    sent = first.release(WALL_LATENCY_NS, ready=True)
    assert bad_outputs(group.apply_reports(sent)) == []
    # A limit order reaches the old venue, which dies before its acknowledgement is released.
    first.on_record(group.intent(place("o3", order_type="limit", price=4_000_000), 1), 0)
    assert first.pending == 1

    # The gateway restarts: a new venue, whose first trade is again "SIM-T1", and no "o3".
    second = gateway(VenueLog(log_path))
    assert second.incarnation == 2
    snapshot = group.core.snapshot()
    second.on_snapshot(snapshot, 5)
    assert second.producer_seq == 2 and second.epoch == snapshot.seq_id
    assert second.stats.lost_orders == 1 and second.next_release_ns() == 5
    for record in (group.intent(place("o2"), 1), group.bar(2)):
        second.on_record(record, 0)
    assert second.release(4, ready=True) == []
    sent = second.release(WALL_LATENCY_NS, ready=True)
    assert [(type(e.payload).__name__, e.payload.client_order_id, e.producer_seq) for e in sent] == [
        ("OrderCancelledReport", "o3", 3),
        ("OrderAcceptedReport", "o2", 4),
        ("FillReport", "o2", 5),
    ]
    assert sent[0].idempotency_key == f"{VENUE}:lost:o3@{snapshot.seq_id}"
    fill = sent[2].payload
    assert isinstance(fill, FillReport) and fill.trade_id == epoch_trade_id(f"{VENUE}-T1", snapshot.seq_id)
    out = group.apply_reports(sent)
    assert bad_outputs(out) == []
    assert [o.client_order_id for o in out if isinstance(o, FillBooked)] == ["o2"]
    states = {o.intent.client_order_id: o.state for o in group.core.snapshot().orders}
    assert states == {"o1": OrderState.FILLED, "o2": OrderState.FILLED, "o3": OrderState.CANCELLED}
    # Control: the venue's own id would have been dropped as a repeat of the first incarnation's fill.
    replay = msgspec.structs.replace(
        sent[2], payload=msgspec.structs.replace(fill, trade_id=f"{VENUE}-T1"), producer_seq=99, idempotency_key=None
    )
    assert any(isinstance(o, DuplicateDropped) for o in group.apply_reports([replay]))
    # The old venue's acknowledgement of "o3", still in flight, lands late: handled, not refused.
    [late] = first.release(WALL_LATENCY_NS, ready=True)
    late_out = group.apply_reports([msgspec.structs.replace(late, producer_seq=100)])
    assert bad_outputs(late_out) == []
    assert {o.intent.client_order_id: o.state for o in group.core.snapshot().orders} == states

    entries = read_venue_log(log_path)
    assert [(e["incarnation"], e["kind"], e["client_order_id"], e["turn"]) for e in entries] == [
        (1, "submit", "o1", 0),
        (1, "submit", "o3", 0),
        (2, "submit", "o2", 0),
    ]


def test_snapshot_producer_counter_and_own_late_reports_move_the_counter() -> None:
    group = Group()
    # Reports of an earlier incarnation reach the core: producer venue:SIM is at 5.
    group.bar(0)
    group.intent(place("o1"), 0)
    for n in range(1, 6):
        group.send(
            Envelope(
                source=Source.BROKER_REPORT,
                producer_id=f"venue:{VENUE}",
                producer_seq=n,
                event_time_ns=at(0),
                payload=OrderAcceptedReport(client_order_id="o1"),
                venue=VENUE,
                instrument=BTC,
            )
        )
    gw = gateway()
    gw.on_snapshot(group.core.snapshot())
    assert gw.producer_seq == 5
    late = Envelope(
        source=Source.BROKER_REPORT,
        producer_id=f"venue:{VENUE}",
        producer_seq=9,
        event_time_ns=at(0),
        payload=OrderAcceptedReport(client_order_id="o1"),
        venue=VENUE,
        instrument=BTC,
    )
    gw.on_record(group.send(late), 0)
    assert gw.producer_seq == 9
    gw.on_record(group.intent(place("o2"), 0), 0)
    lost, ack = gw.release(WALL_LATENCY_NS, ready=True)  # "o1" was at the earlier venue: lost
    assert isinstance(lost.payload, OrderCancelledReport) and lost.payload.client_order_id == "o1"
    assert isinstance(ack.payload, OrderAcceptedReport) and ack.payload.client_order_id == "o2"
    assert (lost.producer_seq, ack.producer_seq) == (10, 11)


def test_other_venues_and_repeated_market_data_do_not_reach_the_venue() -> None:
    group = Group()
    gw = gateway()
    gw.on_snapshot(group.core.snapshot())
    other = group.intent(place("x1", instrument="ETH-OTHER"), 0)
    assert any(isinstance(o, SubmitOrder) and o.venue == "OTHER" for o in other.outputs)
    gw.on_record(other, 0)
    assert gw.stats.commands == 0 and gw.pending == 0
    gw.on_record(group.bar(0), 0)
    assert gw.stats.market_events == 1
    repeat = group.send(
        Envelope(
            source=Source.MARKET_DATA,
            producer_id="feed:btc",
            producer_seq=1,  # already applied: the core drops it
            event_time_ns=at(0),
            payload=flat(4_200_000),
            venue=VENUE,
            instrument=BTC,
        )
    )
    assert any(isinstance(o, DuplicateDropped) for o in repeat.outputs)
    gw.on_record(repeat, 0)
    assert gw.stats.market_events == 1
    gw.on_record(group.bar(1, instrument="ETH-OTHER"), 0)  # not traded here
    assert gw.stats.market_events == 1 and gw.stats.errors == 0


def test_event_time_never_goes_back_and_venue_latency_is_event_time() -> None:
    group = Group()
    gw = gateway(latency_ns=1_000)
    gw.on_snapshot(group.core.snapshot())
    gw.on_record(group.bar(3), 0)
    # An intent stamped earlier than the last bar (live arrival order): the venue is at at(3).
    gw.on_record(group.intent(place("o1"), 1), 0)
    assert gw.now_ns == at(3) and gw.pending == 0  # in flight at the venue until at(3) + 1 us
    gw.on_record(group.bar(4), 0)  # it opened before the arrival: delivers the ack only
    gw.on_record(group.bar(5), 0)  # the first bar opening after the arrival fills it
    [ack, fill] = gw.release(WALL_LATENCY_NS, ready=True)
    assert isinstance(ack.payload, OrderAcceptedReport) and ack.event_time_ns == at(3) + 1_000
    assert isinstance(fill.payload, FillReport) and fill.event_time_ns == at(5)


def test_per_order_counters_make_repeated_report_kinds_distinct() -> None:
    group = Group()
    gw = gateway()
    gw.on_snapshot(group.core.snapshot())
    gw.on_record(group.bar(0), 0)
    gw.on_record(group.intent(place("o1", order_type="limit", price=4_000_000), 0), 0)
    keys = []
    for k, price in ((1, 4_000_100), (2, 4_000_200)):
        group.apply_reports(sent := gw.release(WALL_LATENCY_NS, ready=True))
        keys += [e.idempotency_key for e in sent]
        record = group.intent(ReplaceOrder(strategy_id="s1", client_order_id="o1", price=price), k)
        assert bad_outputs(record.outputs) == []
        gw.on_record(record, 0)
    sent = gw.release(WALL_LATENCY_NS, ready=True)
    assert isinstance(sent[0].payload, OrderReplacedReport)
    keys += [e.idempotency_key for e in sent]
    assert keys == [f"{VENUE}:ack:o1:1", f"{VENUE}:rpl:o1:1", f"{VENUE}:rpl:o1:2"]
    assert bad_outputs(group.apply_reports(sent)) == []
    cancel = group.intent(CancelOrder(strategy_id="s1", client_order_id="o1"), 3)
    gw.on_record(cancel, 0)
    [cxl] = gw.release(WALL_LATENCY_NS, ready=True)
    assert cxl.idempotency_key == f"{VENUE}:cxl:o1:1"


def test_long_ids_are_hashed_to_fit() -> None:
    short = "SIM:ack:o1:1"
    assert bounded_id(short) == short
    long = "V" * 40 + ":fill:" + "c" * 64 + ":" + "t" * 64
    hashed = bounded_id(long)
    assert len(hashed) <= 64 and hashed.startswith("h:") and hashed == bounded_id(long)
    assert bounded_id(long + "x") != hashed
