"""Lockstep turns of the paper gateway, without sockets (services.gateway.turns)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from schemas.bus import TurnDone, TurnRequest
from schemas.lockstep import VenueAnswer, VenueCall, VenueMarket, VenueOrderCommand, VenueReportEntry
from schemas.market import Bar
from schemas.outputs import RequestCancel, SubmitOrder
from schemas.reports import OrderAcceptedReport
from services.gateway.turns import MAX_ANSWER_BYTES, TurnHandler
from services.gateway.venue_log import VenueLog, read_venue_log
from services.matching import SimulatedVenue
from tests.unit.matching_support import BTC, MIN, T0, VENUE, at, bar, cancel, flat, order, venue

PEER = f"gateway-{VENUE}"
LATENCY_NS = 5_000_000
_ENC = msgspec.msgpack.Encoder()
_ANSWER = msgspec.msgpack.Decoder(VenueAnswer)


def new_venue() -> SimulatedVenue:
    return venue(latency_ns=LATENCY_NS)


def request(turn: int, call: VenueCall, seq_id: int = 0, peer: str = PEER) -> TurnRequest:
    return TurnRequest(peer=peer, turn=turn, seq_id=seq_id or turn, kind="venue", payload=_ENC.encode(call))


def answer_of(done: TurnDone | None) -> VenueAnswer:
    assert done is not None and done.payload
    return _ANSWER.decode(done.payload)


# The script both sides run: a bar, a market order, the next bar (it arrives during it: accepted),
# the bar after (which opens after the arrival: filled), a cancel that comes too late, a bar that
# delivers the cancel's refusal.
SCRIPT: list[VenueCall] = [
    VenueMarket(instrument=BTC, time_ns=at(0), data=flat(4_200_000)),
    VenueOrderCommand(now_ns=at(0), command=order("o1", quantity=100)),
    VenueMarket(instrument=BTC, time_ns=at(1), data=flat(4_200_100)),
    VenueMarket(instrument=BTC, time_ns=at(2), data=bar(4_200_100, 4_200_500, 4_199_900, 4_200_200)),
    VenueOrderCommand(now_ns=at(2), command=cancel("o1")),
    VenueMarket(instrument=BTC, time_ns=at(3), data=flat(4_200_300)),
]


def direct(calls: list[VenueCall]) -> list[VenueAnswer]:
    """What the in-process runner gets from a SimulatedVenue for the same calls."""
    v = new_venue()
    out = []
    for call in calls:
        if isinstance(call, VenueMarket):
            assert isinstance(call.data, Bar)
            reports = v.on_bar(call.instrument, call.data, call.time_ns)
        elif isinstance(call.command, SubmitOrder):
            reports = v.submit(call.command, call.now_ns)
        else:
            assert isinstance(call.command, RequestCancel)
            reports = v.cancel(call.command, call.now_ns)
        out.append(
            VenueAnswer(
                venue=VENUE,
                reports=[
                    VenueReportEntry(time_ns=r.time_ns, instrument=r.instrument, report=r.report) for r in reports
                ],
                open_order_count=v.open_order_count,
                next_due_ns=v.next_due_ns,
            )
        )
    return out


def run_script(handler: TurnHandler, first_turn: int = 1) -> list[VenueAnswer]:
    return [answer_of(handler.handle(request(first_turn + i, call))) for i, call in enumerate(SCRIPT)]


def test_turns_give_the_reports_the_venue_gives_directly() -> None:
    handler = TurnHandler(PEER, new_venue)
    answers = run_script(handler)
    assert answers == direct(SCRIPT)
    # The script did something worth comparing: accepted after the latency, filled, cancel refused.
    kinds = [[type(e.report).__name__ for e in a.reports] for a in answers]
    assert kinds[1] == [] and answers[1].next_due_ns == at(0) + LATENCY_NS and answers[1].open_order_count == 0
    assert kinds[2] == ["OrderAcceptedReport"] and answers[2].open_order_count == 1
    assert kinds[3] == ["FillReport"] and answers[3].open_order_count == 0
    assert kinds[5] == ["CancelRejectedReport"]
    assert all(a.error == "" for a in answers)
    assert handler.last_turn == len(SCRIPT)
    assert handler.stats.executed == len(SCRIPT)


def test_repeated_turn_gets_the_cached_answer_without_running_again() -> None:
    handler = TurnHandler(PEER, new_venue)
    handler.handle(request(1, SCRIPT[0]))
    first = handler.handle(request(2, SCRIPT[1]))
    again = handler.handle(request(2, SCRIPT[1]))
    assert again is first  # the same answer, not a second submit
    assert handler.stats.repeated == 1 and handler.stats.executed == 2
    # Had it run again, the venue would have refused the repeat or held it twice; it holds one.
    third = answer_of(handler.handle(request(3, SCRIPT[2])))
    assert [type(e.report) for e in third.reports] == [OrderAcceptedReport]
    assert third.open_order_count == 1


def test_turn_one_again_starts_a_fresh_venue() -> None:
    handler = TurnHandler(PEER, new_venue)
    first_run = run_script(handler)
    before = handler.venue
    assert handler.incarnation == 1
    second_run = run_script(handler)  # the sequencer restarted its run: turn 1 again
    assert handler.venue is not before
    assert handler.incarnation == 2
    assert handler.stats.restarts == 1
    # A fresh venue: the same answers (a reused one would refuse "o1" or answer differently).
    assert second_run == first_run


def test_turn_one_again_with_other_content_after_only_turn_one_restarts() -> None:
    handler = TurnHandler(PEER, new_venue)
    handler.handle(request(1, SCRIPT[1]))  # an order in flight
    done = handler.handle(request(1, SCRIPT[0], seq_id=7))  # a different turn 1: a new run
    assert handler.stats.restarts == 1
    assert answer_of(done).next_due_ns is None  # the fresh venue has nothing in flight


def test_unknown_turn_gets_an_empty_payload() -> None:
    handler = TurnHandler(PEER, new_venue)
    done = handler.handle(request(5, SCRIPT[0]))  # no history: this process restarted mid-run
    assert done == TurnDone(peer=PEER, turn=5, payload=b"")
    assert handler.last_turn == 0 and handler.stats.unknown == 1
    # The sequencer re-drives from turn 1, and the venue (never used) answers as a fresh one.
    assert run_script(handler) == direct(SCRIPT)
    # Past turns, and turns further ahead, get no answer from the venue either.
    for turn in (2, len(SCRIPT) + 2):
        assert handler.handle(request(turn, SCRIPT[0])) == TurnDone(peer=PEER, turn=turn, payload=b"")
    # ... and the last answered turn changed in content is not answered from the cache.
    changed = request(len(SCRIPT), SCRIPT[0])
    assert handler.handle(changed) == TurnDone(peer=PEER, turn=len(SCRIPT), payload=b"")


def test_requests_for_other_peers_are_ignored() -> None:
    handler = TurnHandler(PEER, new_venue)
    assert handler.handle(request(1, SCRIPT[0], peer="gateway-OTHER")) is None
    assert handler.last_turn == 0 and handler.stats.ignored == 1


def test_venue_error_is_an_answer_and_the_handler_carries_on() -> None:
    handler = TurnHandler(PEER, new_venue)
    bad = VenueOrderCommand(now_ns=T0, command=order("o1", instrument="NOT-TRADED"))
    answer = answer_of(handler.handle(request(1, bad)))
    assert answer.reports == [] and "ValueError" in answer.error and "NOT-TRADED" in answer.error
    assert len(answer.error) <= 256
    # A payload that is not a venue call is refused the same way.
    garbage = TurnRequest(peer=PEER, turn=2, seq_id=2, kind="venue", payload=b"\xc1nonsense")
    assert "not a venue call" in answer_of(handler.handle(garbage)).error
    # The next turn works.
    ok = answer_of(handler.handle(request(3, SCRIPT[1])))
    assert ok.error == "" and ok.next_due_ns == T0 + LATENCY_NS
    assert handler.stats.errors == 2


def test_oversized_answer_is_an_error_not_a_frame_the_sequencer_cannot_read() -> None:
    handler = TurnHandler(PEER, lambda: venue(latency_ns=0))
    long_id = "x" * 60
    turn = 0
    for i in range(400):  # 400 orders with long ids: their fills cannot fit one ingress frame
        turn += 1
        handler.handle(request(turn, VenueOrderCommand(now_ns=T0, command=order(f"{long_id}{i:04d}", quantity=1))))
    turn += 1
    answer = answer_of(
        handler.handle(request(turn, VenueMarket(instrument=BTC, time_ns=T0 + MIN, data=flat(4_200_000))))
    )
    assert "limit" in answer.error and answer.reports == []
    assert len(_ENC.encode(answer)) <= MAX_ANSWER_BYTES


def test_venue_log_records_each_order_once_per_incarnation(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "venue-SIM.jsonl"
    log = VenueLog(path)
    handler = TurnHandler(PEER, new_venue, log)
    run_script(handler)
    handler.handle(request(len(SCRIPT), SCRIPT[-1]))  # a repeat: answered from the cache, not logged
    run_script(handler)  # restarted run: incarnation 2
    log.close()
    entries = read_venue_log(path)
    assert [(e["incarnation"], e["turn"], e["kind"], e["client_order_id"]) for e in entries] == [
        (1, 2, "submit", "o1"),
        (1, 5, "cancel", "o1"),
        (2, 2, "submit", "o1"),
        (2, 5, "cancel", "o1"),
    ]
    submits = [(e["incarnation"], e["client_order_id"]) for e in entries if e["kind"] == "submit"]
    assert len(submits) == len(set(submits))
    # A new process continues the numbering, even after a torn last line.
    with open(path, "ab") as f:
        f.write(b'{"incarnation": 2, "tu')
    log = VenueLog(path)
    handler = TurnHandler(PEER, new_venue, log)
    assert handler.incarnation == 3
    handler.handle(request(1, SCRIPT[1]))
    log.close()
    entries = read_venue_log(path)
    assert (entries[-1]["incarnation"], entries[-1]["client_order_id"]) == (3, "o1")
    assert len(entries) == 5  # the torn line is skipped, nothing was glued to it
