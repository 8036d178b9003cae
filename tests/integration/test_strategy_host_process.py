"""The strategy host as a real process against a stand-in sequencer on real ipc sockets.

The test plays the sequencer: it binds publication (PUB), sync (ROUTER) and ingress (ROUTER) at
the profile's endpoints, keeps a real `SequencerCore`, serves snapshot and range requests from it,
publishes heartbeats, `Sequenced` records and `TurnRequest`s, and reads what the host sends to
ingress. Turn requests are published again until answered (a SUB may join late and miss one);
records the host misses are fetched by its range requests. Every wait has a deadline.
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

from bus.codec import INGRESS, PUBLICATION, SYNC_REPLY, SYNC_REQUEST, FrameCodec
from bus.resync import range_replies
from bus.sockets import Socket, ingress_server, publisher, sync_server
from schemas.bus import (
    Heartbeat,
    PeerRole,
    RangeRequest,
    Sequenced,
    SnapshotReply,
    SnapshotRequest,
    TurnDone,
    TurnRequest,
)
from schemas.enums import OrderType, Side, Source
from schemas.envelope import Envelope
from schemas.lockstep import StrategyAnswer, StrategyCall, StrategyHello, StrategyHelloRequest, StrategyHook
from services.data import bar_envelopes, synthetic_bars
from services.deploy.profile import Profile, load_profile
from services.deploy.run_config import core_config_for_profile
from services.sequencer.core.engine import SequencerCore

REPO = Path(__file__).resolve().parents[2]
PEER = "strategy-t"
BTC = "BTC-USD"
DEADLINE_S = 15.0  # the host starts in about a second; everything else takes milliseconds
ENC = msgspec.msgpack.Encoder()

STRATEGY = """\
from services.strategy.api import Strategy
from services.strategy.events import BarClosed


class FirstBar(Strategy):
    params = {"size": 0.25}

    def on_event(self, ctx, event):
        if isinstance(event, BarClosed) and not ctx.position(event.instrument) and not ctx.open_orders():
            return ctx.buy(event.instrument, self.p.size)
        return None
"""


def _profile_text(sockets: Path) -> str:
    return f"""\
[group]
name = "t"
run_dir = "run"
mode = "backtest"

[endpoints]
ingress = "ipc://{sockets}/in.sock"
publication = "ipc://{sockets}/pub.sock"
sync = "ipc://{sockets}/sync.sock"

[[feeds]]
name = "btc"
kind = "synthetic"
instrument = "{BTC}"
seed = 1
count = 10

[[venues]]
name = "SIM"
kind = "paper"

[[strategies]]
name = "t"
path = "strat.py"
params = {{ size = 0.5 }}
"""


@pytest.fixture
def profile_path(tmp_path: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tb-") as sockets:  # ipc paths must be short
        (tmp_path / "strat.py").write_text(STRATEGY)
        path = tmp_path / "profile.toml"
        path.write_text(_profile_text(Path(sockets)))
        yield path


class StandIn:
    """The sequencer's sockets and core, driven by the test."""

    def __init__(self, profile: Profile) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        endpoints = profile.endpoints
        self.pub: Socket = publisher(self.ctx, endpoints.publication)
        self.sync: Socket = sync_server(self.ctx, endpoints.sync)
        self.ingress: Socket = ingress_server(self.ctx, endpoints.ingress)
        self.core = SequencerCore(core_config_for_profile(profile))
        self.published: list[Sequenced] = []
        self.pub_codec = FrameCodec(PUBLICATION)
        self.sync_in = FrameCodec(SYNC_REQUEST)
        self.sync_out = FrameCodec(SYNC_REPLY)
        self.ingress_in = FrameCodec(INGRESS)
        self.heard: list[Any] = []  # everything received on ingress
        self.snapshots_served = 0
        self.ranges_served = 0
        self._next_heartbeat = 0.0

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def apply(self, env: Envelope, *, lose: bool = False) -> Sequenced:
        """Sequence and publish `env`; `lose`: as if the PUB socket dropped it (range only)."""
        env = msgspec.structs.replace(env, seq_id=self.core.seq_id + 1, ingest_time_ns=env.event_time_ns)
        record = Sequenced(seq_id=env.seq_id, envelope=env, outputs=self.core.apply(env))
        self.published.append(record)
        if not lose:
            self.pub.send_multipart(self.pub_codec.encode(record))
        return record

    def serve(self, until: Callable[[], bool], what: str, *, repeat: TurnRequest | None = None) -> None:
        """Heartbeats, sync answers and ingress reads until `until()` holds (or fail at the deadline)."""
        deadline = time.monotonic() + DEADLINE_S
        next_repeat = 0.0
        poller = zmq.Poller()
        poller.register(self.sync, zmq.POLLIN)
        poller.register(self.ingress, zmq.POLLIN)
        while not until():
            now = time.monotonic()
            assert now < deadline, f"timed out waiting for {what}"
            if now >= self._next_heartbeat:
                beat = Heartbeat(peer="sequencer", role=PeerRole.SEQUENCER, sent_ns=time.time_ns(),
                                 last_seq_id=self.core.seq_id)  # fmt: skip
                self.pub.send_multipart(self.pub_codec.encode(beat))
                self._next_heartbeat = now + 0.2
            if repeat is not None and now >= next_repeat:
                self.pub.send_multipart(self.pub_codec.encode(repeat))
                next_repeat = now + 0.3
            ready = dict(poller.poll(20))
            if self.sync in ready:
                self._answer_sync()
            if self.ingress in ready:
                while self.ingress.poll(0, zmq.POLLIN):
                    _identity, *frames = self.ingress.recv_multipart()
                    self.heard.append(self.ingress_in.decode(frames))

    def _answer_sync(self) -> None:
        while self.sync.poll(0, zmq.POLLIN):
            identity, *frames = self.sync.recv_multipart()
            request = self.sync_in.decode(frames)
            if isinstance(request, SnapshotRequest):
                snapshot = self.core.snapshot()
                reply = SnapshotReply(request_id=request.request_id, seq_id=self.core.seq_id,
                                      state_hash=self.core.state_hash(), snapshot=snapshot)  # fmt: skip
                self.sync.send_multipart([identity, *self.sync_out.encode(reply)])
                self.snapshots_served += 1
            else:
                assert isinstance(request, RangeRequest)
                last = request.to_seq_id or self.core.seq_id
                items = [r for r in self.published if request.from_seq_id <= r.seq_id <= last]
                for chunk in range_replies(request.request_id, items):
                    self.sync.send_multipart([identity, *self.sync_out.encode(chunk)])
                self.ranges_served += 1

    def turn(self, turn: int, call: StrategyHelloRequest | StrategyCall) -> TurnDone:
        request = TurnRequest(peer=PEER, turn=turn, seq_id=self.core.seq_id, kind="strategy", payload=ENC.encode(call))
        mark = len(self.heard)

        def answered() -> bool:
            return any(isinstance(m, TurnDone) and m.turn == turn for m in self.heard[mark:])

        self.serve(answered, f"TurnDone {turn}", repeat=request)
        [done] = [m for m in self.heard[mark:] if isinstance(m, TurnDone) and m.turn == turn][:1]
        return done


@pytest.fixture
def host_process(profile_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.strategy_host", str(profile_path), "t"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_the_host_process_answers_turns_from_its_replica(
    profile_path: Path, host_process: subprocess.Popen[bytes]
) -> None:
    profile = load_profile(profile_path)
    seq = StandIn(profile)
    try:
        # The host says hello on ingress and asks for a snapshot (taken before any record).
        seq.serve(lambda: seq.snapshots_served > 0 and any(isinstance(m, Heartbeat) for m in seq.heard), "start-up")
        beat = next(m for m in seq.heard if isinstance(m, Heartbeat))
        assert beat.peer == PEER and beat.role is PeerRole.STRATEGY

        spec = seq.core.config.instruments[BTC]
        bars = list(bar_envelopes(synthetic_bars(3, BTC, spec, seed=1), "feed:btc"))
        for i, env in enumerate(bars):
            seq.apply(env, lose=i == 0)  # the host must fetch record 1 by a range request
        assert seq.core.seq_id == 3

        hello = seq.turn(1, StrategyHelloRequest(series=[BTC]))
        assert msgspec.msgpack.decode(hello.payload, type=StrategyHello) == StrategyHello(
            strategy_id="t", wants_time_slices=False, wants_order_events=True
        )
        start = seq.turn(2, StrategyCall(hook=StrategyHook.START, seq_id=3))
        assert msgspec.msgpack.decode(start.payload, type=StrategyAnswer) == StrategyAnswer()

        market = seq.turn(3, StrategyCall(hook=StrategyHook.MARKET, seq_id=3, event_seq_id=3))
        answer = msgspec.msgpack.decode(market.payload, type=StrategyAnswer)
        assert not answer.error, answer.error
        [order] = answer.intents
        assert (order.strategy_id, order.client_order_id, order.instrument) == ("t", "t-1", BTC)  # type: ignore[union-attr]
        assert (order.side, order.order_type, order.quantity) == (Side.BUY, OrderType.MARKET, 5_000)  # type: ignore[union-attr]

        again = seq.turn(3, StrategyCall(hook=StrategyHook.MARKET, seq_id=3, event_seq_id=3))
        assert again == market  # the cached answer, not a second call (it would be t-2)

        # The sequencer applies the intent; the next call sees the order in the replica.
        t = bars[-1].event_time_ns
        seq.apply(Envelope(source=Source.STRATEGY, producer_id="strategy:t", producer_seq=1, event_time_ns=t,
                           payload=order, instrument=BTC))  # fmt: skip
        quiet = seq.turn(4, StrategyCall(hook=StrategyHook.MARKET, seq_id=4, event_seq_id=3))
        assert msgspec.msgpack.decode(quiet.payload, type=StrategyAnswer) == StrategyAnswer()  # has an open order

        unknown = seq.turn(9, StrategyCall(hook=StrategyHook.STOP, seq_id=4))
        assert unknown.payload == b""

        assert seq.ranges_served >= 1 and seq.snapshots_served == 1

        host_process.send_signal(signal.SIGTERM)
        assert host_process.wait(timeout=DEADLINE_S) == 0
    finally:
        seq.close()
    if host_process.stderr is not None:
        log = host_process.stderr.read().decode(errors="replace")
        assert "Traceback" not in log and "ERROR" not in log, log
        assert "lockstep mode, strategy t" in log and "stopping" in log, log
