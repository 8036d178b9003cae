"""The real gateway process against a stand-in sequencer (PUB + sync ROUTER + ingress ROUTER, ipc).

Lockstep: TurnRequests published to the gateway are answered with the TurnDones a SimulatedVenue
built from the same profile gives; repeated, unknown and restarted turns follow the turn rules; a
venue error is an answer and the process stays up; SIGTERM exits 0.

Free-running: the gateway installs the stand-in's snapshot, follows its records (a dropped one is
fetched by range request and its command still executed), and sends report envelopes on ingress.

Every wait has a deadline; the process is killed in `finally` whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from bus.codec import INGRESS, INGRESS_REPLY, PUBLICATION, SYNC_REPLY, SYNC_REQUEST, FrameCodec
from bus.resync import range_replies
from bus.sockets import Socket, ingress_server, publisher, sync_server
from schemas import PAYLOAD_SOURCE, Envelope, FillReport, OrderAcceptedReport, Payload, PlaceOrder
from schemas.bus import (
    EnvelopeBatch,
    Heartbeat,
    IngressAck,
    PeerRole,
    RangeRequest,
    Sequenced,
    SnapshotReply,
    SnapshotRequest,
    TurnDone,
    TurnRequest,
)
from schemas.lockstep import VenueAnswer, VenueCall, VenueMarket, VenueOrderCommand, VenueReportEntry
from schemas.market import Bar
from schemas.outputs import SubmitOrder
from services.deploy.profile import Profile, load_profile
from services.deploy.run_config import core_config_for_profile
from services.gateway.venue_log import read_venue_log, venue_log_path
from services.matching import SimulatedVenue
from services.sequencer.core import SequencerCore
from services.sequencer.core.book import state_hash_of

REPO = Path(__file__).resolve().parents[2]
VENUE = "sim"
PEER = f"gateway-{VENUE}"
BTC = "BTC-USD"
T0 = 1_704_067_200_000_000_000
MIN = 60_000_000_000
START_S = 20.0  # the process imports numpy, pydantic, ...: generous, only the first wait pays it
DEADLINE_S = 5.0  # every other wait
LATENCY_MS = 20

_ENC = msgspec.msgpack.Encoder()
_ANSWER = msgspec.msgpack.Decoder(VenueAnswer)

PROFILE = """\
[group]
name = "gw"
run_dir = "run"
mode = "{mode}"

[endpoints]
ingress = "ipc://{ipc}/in.sock"
publication = "ipc://{ipc}/pub.sock"
sync = "ipc://{ipc}/sync.sock"

[[feeds]]
name = "btc"
kind = "file"
data = ["BTC-USD_1m.csv"]

[[venues]]
name = "sim"
kind = "paper"
latency_ms = {latency}
"""


@pytest.fixture
def ipc_dir(tmp_path: Path) -> Iterator[Path]:
    """A short directory for ipc sockets (tmp_path may be too long for a unix socket path)."""
    with tempfile.TemporaryDirectory(prefix="tbgw-") as short:
        yield Path(short)


def write_profile(tmp_path: Path, ipc_dir: Path, mode: str) -> Path:
    (tmp_path / "BTC-USD_1m.csv").write_text("timestamp,open,high,low,close,volume\n")
    path = tmp_path / "profile.toml"
    path.write_text(PROFILE.format(mode=mode, ipc=ipc_dir, latency=LATENCY_MS))
    return path


def flat(price: int) -> Bar:
    return Bar(open=price, high=price, low=price, close=price, volume=1_000_000, interval_ns=MIN)


def submit(cid: str, instrument: str = BTC) -> SubmitOrder:
    return SubmitOrder(
        seq_id=2,
        venue=VENUE,
        strategy_id="s1",
        client_order_id=cid,
        instrument=instrument,
        side="buy",
        order_type="market",
        quantity=100,
    )


class StandIn:
    """The sequencer's three sockets, driven by the test."""

    def __init__(self, ipc_dir: Path) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.ingress: Socket = ingress_server(self.ctx, f"ipc://{ipc_dir}/in.sock")
        self.pub: Socket = publisher(self.ctx, f"ipc://{ipc_dir}/pub.sock")
        self.sync: Socket = sync_server(self.ctx, f"ipc://{ipc_dir}/sync.sock")
        self.codecs = {
            "in": FrameCodec(INGRESS),
            "reply": FrameCodec(INGRESS_REPLY),
            "pub": FrameCodec(PUBLICATION),
            "sync_in": FrameCodec(SYNC_REQUEST),
            "sync_out": FrameCodec(SYNC_REPLY),
        }
        self.poller = zmq.Poller()
        self.poller.register(self.ingress, zmq.POLLIN)
        self.poller.register(self.sync, zmq.POLLIN)
        self.heartbeats: list[Heartbeat] = []
        self.turn_dones: list[TurnDone] = []
        self.envelopes: list[Envelope] = []
        self.sync_requests: list[Any] = []
        self.withhold_acks: set[int] = set()  # producer_seqs whose first copy is not acknowledged
        # Free-running: what sync serves and the heartbeat announces.
        self.core: SequencerCore | None = None
        self.published: list[Sequenced] = []
        self.next_heartbeat = 0.0

    def publish(self, message: Any) -> None:
        self.pub.send_multipart(self.codecs["pub"].encode(message), zmq.NOBLOCK)

    def pump(self, timeout_ms: int = 20) -> None:
        """Receive what arrived on ingress and sync (answering sync and acking envelopes)."""
        ready = dict(self.poller.poll(timeout_ms))
        if self.ingress in ready:
            while True:
                try:
                    frames = self.ingress.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                message = self.codecs["in"].decode(frames[1:])
                if isinstance(message, Heartbeat):
                    self.heartbeats.append(message)
                elif isinstance(message, TurnDone):
                    self.turn_dones.append(message)
                elif isinstance(message, (Envelope, EnvelopeBatch)):
                    batch = message.envelopes if isinstance(message, EnvelopeBatch) else [message]
                    for env in batch:
                        self.envelopes.append(env)
                        if env.producer_seq in self.withhold_acks:
                            self.withhold_acks.discard(env.producer_seq)  # "lost" by a sequencer: once
                            continue
                        ack = IngressAck(producer_id=env.producer_id, producer_seq=env.producer_seq, seq_id=1)
                        self.ingress.send_multipart([frames[0], *self.codecs["reply"].encode(ack)], zmq.NOBLOCK)
        if self.sync in ready:
            while True:
                try:
                    frames = self.sync.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                request = self.codecs["sync_in"].decode(frames[1:])
                self.sync_requests.append(request)
                for reply in self._answer(request):
                    self.sync.send_multipart([frames[0], *self.codecs["sync_out"].encode(reply)], zmq.NOBLOCK)
        if self.core is not None and time.monotonic() >= self.next_heartbeat:
            self.publish(
                Heartbeat(
                    peer="sequencer", role=PeerRole.SEQUENCER, sent_ns=time.time_ns(), last_seq_id=self.core.seq_id
                )
            )
            self.next_heartbeat = time.monotonic() + 0.2

    def _answer(self, request: Any) -> list[Any]:
        assert self.core is not None, "sync request in lockstep"
        if isinstance(request, SnapshotRequest):
            snapshot = self.core.snapshot()
            return [
                SnapshotReply(
                    request_id=request.request_id,
                    seq_id=snapshot.seq_id,
                    state_hash=state_hash_of(snapshot),
                    snapshot=snapshot,
                )
            ]
        assert isinstance(request, RangeRequest)
        last = request.to_seq_id or self.core.seq_id
        return list(
            range_replies(request.request_id, [r for r in self.published if request.from_seq_id <= r.seq_id <= last])
        )

    def wait_for(self, condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
        deadline = time.monotonic() + deadline_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.pump()

    def close(self) -> None:
        self.ctx.destroy(linger=0)


@pytest.fixture
def stand_in(ipc_dir: Path) -> Iterator[StandIn]:
    s = StandIn(ipc_dir)
    try:
        yield s
    finally:
        s.close()


def start_gateway(profile: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.gateway.main", VENUE, "--profile", str(profile)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM; the exit code (killed and failed if it does not stop in time)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=DEADLINE_S)
        raise AssertionError("gateway did not stop on SIGTERM") from None


def output_of(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


# ------------------------------------------------------------------------------------------------
# lockstep


class Turns:
    def __init__(self, stand_in: StandIn) -> None:
        self.s = stand_in

    def ask(self, turn: int, call: VenueCall | bytes, seq_id: int = 0) -> TurnDone:
        """Publish the request (again every 200 ms: slow joiner) until its TurnDone arrives."""
        payload = call if isinstance(call, bytes) else _ENC.encode(call)
        request = TurnRequest(peer=PEER, turn=turn, seq_id=seq_id or turn, kind="venue", payload=payload)
        self.s.turn_dones.clear()
        deadline = time.monotonic() + DEADLINE_S
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"no TurnDone for turn {turn}")
            if now >= next_send:
                self.s.publish(TurnRequest(peer="gateway-other", turn=turn, seq_id=0, kind="venue", payload=b""))
                self.s.publish(request)
                next_send = now + 0.2
            self.s.pump()
            for done in self.s.turn_dones:
                if done.turn == turn:
                    assert done.peer == PEER
                    return done


def expected_answers(profile: Profile, calls: list[VenueCall]) -> list[VenueAnswer]:
    venue = SimulatedVenue(VENUE, core_config_for_profile(profile), profile.venue(VENUE).matching_config())
    out = []
    for call in calls:
        if isinstance(call, VenueMarket):
            assert isinstance(call.data, Bar)
            reports = venue.on_bar(call.instrument, call.data, call.time_ns)
        else:
            assert isinstance(call.command, SubmitOrder)
            reports = venue.submit(call.command, call.now_ns)
        out.append(
            VenueAnswer(
                venue=VENUE,
                reports=[
                    VenueReportEntry(time_ns=r.time_ns, instrument=r.instrument, report=r.report) for r in reports
                ],
                open_order_count=venue.open_order_count,
                next_due_ns=venue.next_due_ns,
            )
        )
    return out


def test_lockstep_turns_against_the_real_process(tmp_path: Path, ipc_dir: Path, stand_in: StandIn) -> None:
    profile_path = write_profile(tmp_path, ipc_dir, "backtest")
    profile = load_profile(profile_path)
    log = tmp_path / "gateway.log"
    process = start_gateway(profile_path, log)
    try:
        stand_in.wait_for(lambda: any(h.peer == PEER for h in stand_in.heartbeats), "the gateway's heartbeat", START_S)
        heartbeat = next(h for h in stand_in.heartbeats if h.peer == PEER)
        assert heartbeat.role is PeerRole.GATEWAY
        turns = Turns(stand_in)
        script: list[VenueCall] = [
            VenueMarket(instrument=BTC, time_ns=T0, data=flat(4_200_000)),
            VenueOrderCommand(now_ns=T0, command=submit("o1")),
            VenueMarket(instrument=BTC, time_ns=T0 + MIN, data=flat(4_200_100)),
            VenueMarket(instrument=BTC, time_ns=T0 + 2 * MIN, data=flat(4_200_200)),
        ]
        expected = expected_answers(profile, script)
        dones = [turns.ask(i + 1, call) for i, call in enumerate(script)]
        answers = [_ANSWER.decode(d.payload) for d in dones]
        assert answers == expected
        assert [type(e.report) for a in answers for e in a.reports] == [OrderAcceptedReport, FillReport]

        # The last turn again: the cached answer, byte for byte.
        assert turns.ask(4, script[3]).payload == dones[3].payload
        # A turn it has no history for: empty payload.
        assert turns.ask(9, script[0]).payload == b""
        # Turn 1 again: the sequencer restarted the run; a fresh venue answers as the first did.
        again = [turns.ask(i + 1, call) for i, call in enumerate(script)]
        assert [d.payload for d in again] == [d.payload for d in dones]

        # A venue error is an answer; the process stays up and answers the next turn.
        bad = _ANSWER.decode(
            turns.ask(5, VenueOrderCommand(now_ns=T0 + 3 * MIN, command=submit("o2", "ETH-USD"))).payload
        )
        assert "ETH-USD" in bad.error and bad.reports == []
        assert turns.ask(6, b"\x01\x02").payload  # not a venue call: an error answer, not silence
        ok = _ANSWER.decode(
            turns.ask(7, VenueMarket(instrument=BTC, time_ns=T0 + 3 * MIN, data=flat(4_200_300))).payload
        )
        assert ok.error == ""
        assert process.poll() is None

        assert stop(process) == 0, output_of(log)
        entries = read_venue_log(venue_log_path(profile.group.run_dir, VENUE))
        assert [(e["incarnation"], e["turn"], e["client_order_id"], e["kind"]) for e in entries] == [
            (1, 2, "o1", "submit"),
            (2, 2, "o1", "submit"),
            (2, 5, "o2", "submit"),
        ]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=DEADLINE_S)


# ------------------------------------------------------------------------------------------------
# free-running


class Book:
    """The stand-in's core: applies envelopes and returns the records it would publish."""

    def __init__(self, stand_in: StandIn, profile: Profile) -> None:
        self.s = stand_in
        self.core = SequencerCore(core_config_for_profile(profile))
        stand_in.core = self.core
        self.counters: dict[str, int] = {}

    def apply(self, payload: Payload, producer: str, time_ns: int, instrument: str = "") -> Sequenced:
        n = self.counters.get(producer, 0) + 1
        self.counters[producer] = n
        env = Envelope(
            source=PAYLOAD_SOURCE[type(payload)],
            producer_id=producer,
            producer_seq=n,
            event_time_ns=time_ns,
            payload=payload,
            venue=VENUE,
            instrument=instrument,
            seq_id=self.core.seq_id + 1,
        )
        return self.record(env)

    def record(self, env: Envelope) -> Sequenced:
        record = Sequenced(seq_id=env.seq_id, envelope=env, outputs=self.core.apply(env))
        self.s.published.append(record)
        return record


def test_free_running_follows_the_stream_and_sends_reports(tmp_path: Path, ipc_dir: Path, stand_in: StandIn) -> None:
    profile_path = write_profile(tmp_path, ipc_dir, "paper")
    profile = load_profile(profile_path)
    book = Book(stand_in, profile)
    book.apply(flat(4_200_000), "feed:btc", T0, BTC)  # before the gateway: the snapshot covers it
    # Acks are cumulative: a sequencer that lost the acceptance (#1) acknowledges neither it nor
    # the fill behind it (an ack of #2 would say #1 is journaled too).
    stand_in.withhold_acks.update({1, 2})
    log = tmp_path / "gateway.log"
    process = start_gateway(profile_path, log)
    try:
        stand_in.wait_for(
            lambda: any(isinstance(r, SnapshotRequest) for r in stand_in.sync_requests), "a snapshot request", START_S
        )
        stand_in.wait_for(
            lambda: any(h.peer == PEER and h.last_seq_id == 1 for h in stand_in.heartbeats), "the snapshot installed"
        )

        # The order's record is "dropped" by PUB: only the next one is published live. The gateway
        # sees the gap, fetches the record by range, and executes its command.
        placed = book.apply(
            PlaceOrder(
                strategy_id="s1", client_order_id="o1", instrument=BTC, side="buy", order_type="market", quantity=100
            ),
            "strategy:s1",
            T0,
            BTC,
        )
        assert any(isinstance(o, SubmitOrder) for o in placed.outputs)
        started = time.monotonic()
        stand_in.publish(book.apply(flat(4_200_100), "feed:btc", T0 + MIN, BTC))
        stand_in.wait_for(lambda: any(isinstance(r, RangeRequest) for r in stand_in.sync_requests), "a range request")
        stand_in.wait_for(lambda: len(stand_in.envelopes) >= 1, "the acceptance")
        assert time.monotonic() - started >= LATENCY_MS / 1000  # released after the wall latency
        stand_in.publish(book.apply(flat(4_200_200), "feed:btc", T0 + 2 * MIN, BTC))
        stand_in.wait_for(lambda: len(stand_in.envelopes) >= 2, "the fill")

        ack, fill = stand_in.envelopes[:2]
        assert isinstance(ack.payload, OrderAcceptedReport) and isinstance(fill.payload, FillReport)
        assert [(e.producer_id, e.producer_seq) for e in (ack, fill)] == [(f"venue:{VENUE}", 1), (f"venue:{VENUE}", 2)]
        assert ack.idempotency_key == f"{VENUE}:ack:o1:1"
        assert fill.idempotency_key == f"{VENUE}:fill:o1:{VENUE}-T1"
        # The core takes them.
        for env in (ack, fill):
            out = book.record(msgspec.structs.replace(env, seq_id=book.core.seq_id + 1))
            assert not [o for o in out.outputs if type(o).__name__ in ("ReportRefused", "DuplicateDropped")]
        # Neither was acknowledged (lost with a sequencer, say): both sent again, the same, in order.
        stand_in.wait_for(lambda: len(stand_in.envelopes) >= 4, "the unacknowledged reports sent again", 2 * DEADLINE_S)
        assert stand_in.envelopes[2:4] == [ack, fill]
        assert process.poll() is None
        assert stop(process) == 0, output_of(log)
        entries = read_venue_log(venue_log_path(profile.group.run_dir, VENUE))
        assert [(e["incarnation"], e["seq_id"], e["client_order_id"]) for e in entries] == [(1, placed.seq_id, "o1")]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=DEADLINE_S)
