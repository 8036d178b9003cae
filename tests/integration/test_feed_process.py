"""A feed as a real process: pushed in real time against a stand-in, pulled in lockstep by the sequencer's own code.

Real time (paper): the stand-in is a ROUTER bound where the profile's ingress is. It decodes
frames with the INGRESS codec (an `EnvelopeBatch` as its envelopes in order), keeps each envelope once (like the sequencer, it drops repeats by
producer id and seq and acknowledges them again), acknowledges on demand, and records the
`StreamEnded`s. Lockstep (backtest): the sequencer's sockets and its `pulled_feed` turn loop
(`services.sequencer.lockstep`) pull the stream from the feed process.

Every wait has a deadline; a feed process a test leaves running is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq

from bus.codec import INGRESS, INGRESS_REPLY, FrameCodec
from bus.sockets import Socket, ingress_server
from schemas.bus import EnvelopeBatch, Heartbeat, IngressAck, StreamEnded, TurnDone
from schemas.envelope import Envelope
from services.backtest.config import instrument_spec_for
from services.deploy.profile import FileFeed, Profile, SyntheticFeed, load_profile
from services.deploy.run_config import backtest_config_for, core_config_for_profile
from services.feeds.file_feed import file_feed_stream
from services.feeds.synthetic_feed import synthetic_envelopes
from services.sequencer.core import SequencerCore
from services.sequencer.endpoint import SequencerSockets
from services.sequencer.lockstep import TurnLink, pulled_feed

REPO = Path(__file__).resolve().parents[2]
MINUTE_S = 60
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
EXIT_DEADLINE_S = 30.0  # a feed of a few hundred bars exits in well under a second


def _write_bars(path: Path, n: int, base: int) -> None:
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(n):
        price = base + (i * 7) % 50
        rows.append(f"{T0 + i * MINUTE_S},{price}.00,{price + 3}.50,{price - 2}.25,{price + 1}.00,{1 + i % 5}.5")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _profile(tmp_path: Path, *, mode: str, pace: str, files: dict[str, int]) -> Path:
    data = []
    for i, (instrument, n) in enumerate(files.items()):
        path = tmp_path / f"{instrument}_1m.csv"
        _write_bars(path, n, 100 * (i + 1))
        data.append(f'"{path}"')
    path = tmp_path / "profile.toml"
    path.write_text(
        f"""\
[group]
name = "t"
run_dir = "run"
mode = "{mode}"

[[feeds]]
name = "f"
kind = "file"
data = [{", ".join(data)}]
pace = {pace}

[[venues]]
name = "sim"
kind = "paper"
""",
        encoding="utf-8",
    )
    return path


def _bind(ctx: zmq.Context[Any], profile: Profile) -> Socket:
    """The stand-in's ROUTER where the profile's ingress is (the run directory made, as the sequencer does)."""
    profile.group.run_dir.mkdir(parents=True, exist_ok=True)
    return ingress_server(ctx, profile.endpoints.ingress)


def _expected(profile: Profile) -> list[Envelope]:
    feed = profile.feed("f")
    assert isinstance(feed, FileFeed)
    return list(file_feed_stream(profile, feed, backtest_config_for(profile)).envelopes())


@dataclass
class StandIn:
    """The sequencer's ingress, reduced to what a feed sees: journal once, acknowledge."""

    socket: Socket
    acking: bool = True
    events: list[Envelope | StreamEnded] = field(default_factory=list)  # first copies, arrival order
    repeats: int = 0
    heartbeats: int = 0
    batches: int = 0  # EnvelopeBatch frames received
    arrival_s: list[float] = field(default_factory=list)  # of each first copy of an envelope
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)  # -> our "seq id"
    _unacked: list[tuple[bytes, str, int]] = field(default_factory=list)
    _in: FrameCodec[Any] = field(default_factory=lambda: FrameCodec(INGRESS))
    _out: FrameCodec[Any] = field(default_factory=lambda: FrameCodec(INGRESS_REPLY))

    @property
    def envelopes(self) -> list[Envelope]:
        return [e for e in self.events if isinstance(e, Envelope)]

    @property
    def stream_ends(self) -> list[StreamEnded]:
        return [e for e in self.events if isinstance(e, StreamEnded)]

    def serve(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """Receive and answer for up to `seconds`, or until `until()` holds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            if self.socket.poll(20, zmq.POLLIN):
                for _ in range(1000):
                    try:
                        frames = self.socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on(frames[0], self._in.decode(frames[1:]))
            self._answer()

    def _on(self, peer: bytes, message: Envelope | EnvelopeBatch | Heartbeat | TurnDone | StreamEnded) -> None:
        if isinstance(message, EnvelopeBatch):  # as if each had come alone, in order
            self.batches += 1
            for env in message.envelopes:
                self._on(peer, env)
        elif isinstance(message, Heartbeat):
            self.heartbeats += 1
        elif isinstance(message, Envelope):
            key = (message.producer_id, message.producer_seq)
            if key in self._seen:
                self.repeats += 1
            else:
                self._seen[key] = len(self._seen) + 1
                self.events.append(message)
                self.arrival_s.append(time.monotonic())
            self._unacked.append((peer, *key))
        elif isinstance(message, StreamEnded):
            if message not in self.events:
                self.events.append(message)
        else:
            raise TypeError(f"a feed sent {message!r}")

    def _answer(self) -> None:
        if not self.acking:
            return
        for peer, pid, seq in self._unacked:
            self._send(peer, IngressAck(producer_id=pid, producer_seq=seq, seq_id=self._seen[(pid, seq)]))
        self._unacked.clear()

    def _send(self, peer: bytes, ack: IngressAck) -> None:
        self.socket.send_multipart([peer, *self._out.encode(ack)], zmq.NOBLOCK)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


class FeedProcess:
    def __init__(self, profile: Path, tmp_path: Path, *extra: str) -> None:
        self.log = tmp_path / "feed.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.feeds.main", "f", "--profile", str(profile), *extra],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def feeds() -> Iterator[list[FeedProcess]]:
    started: list[FeedProcess] = []
    try:
        yield started
    finally:
        for feed in started:
            feed.close()


def _run(profile: Path, tmp_path: Path, feeds: list[FeedProcess], *extra: str) -> FeedProcess:
    feed = FeedProcess(profile, tmp_path, *extra)
    feeds.append(feed)
    return feed


def _wait_exit(stand_in: StandIn, feed: FeedProcess) -> int:
    stand_in.serve(EXIT_DEADLINE_S, until=feed.exited)
    assert feed.exited(), f"feed still running after {EXIT_DEADLINE_S} s:\n{feed.stderr()}"
    code = feed.proc.wait(timeout=5)
    return code


# --------------------------------------------------------------------------------------------


def test_everything_arrives_once_in_order_then_stream_end_then_exit_0(
    ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]
) -> None:
    path = _profile(tmp_path, mode="paper", pace='"max"', files={"BTC-USD": 300, "ETH-USD": 200})
    profile = load_profile(path)
    stand_in = StandIn(_bind(ctx, profile))
    feed = _run(path, tmp_path, feeds)

    code = _wait_exit(stand_in, feed)

    assert code == 0, feed.stderr()
    assert stand_in.envelopes == _expected(profile)
    assert stand_in.repeats == 0
    # Unpaced, everything is due at once: it went in EnvelopeBatch frames, far fewer than envelopes.
    assert 0 < stand_in.batches < len(stand_in.envelopes) // 10
    # One stream end per producer, after all its envelopes, naming its last producer_seq.
    assert stand_in.stream_ends == [
        StreamEnded(producer_id="file:BTC-USD", last_producer_seq=300),
        StreamEnded(producer_id="file:ETH-USD", last_producer_seq=200),
    ]
    assert all(isinstance(e, StreamEnded) for e in stand_in.events[-2:])
    assert "done, everything acknowledged" in feed.stderr()


def test_pace_1000x_takes_the_scaled_event_time_span(
    ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]
) -> None:
    bars = 31  # 30 minutes from first to last bar: 1.8 s at 1000x
    path = _profile(tmp_path, mode="paper", pace="1000.0", files={"BTC-USD": bars})
    profile = load_profile(path)
    stand_in = StandIn(_bind(ctx, profile))
    feed = _run(path, tmp_path, feeds)

    assert _wait_exit(stand_in, feed) == 0, feed.stderr()

    assert len(stand_in.envelopes) == bars
    assert stand_in.heartbeats >= 1  # the run takes about two heartbeat intervals
    expected_s = (bars - 1) * MINUTE_S / 1000
    took_s = stand_in.arrival_s[-1] - stand_in.arrival_s[0]
    assert 0.8 <= took_s / expected_s <= 3.0, (took_s, expected_s)
    # Spread out, not a burst at the end: the middle bar arrives around the middle.
    middle_s = stand_in.arrival_s[bars // 2] - stand_in.arrival_s[0]
    assert 0.25 <= middle_s / took_s <= 0.75, (middle_s, took_s)


def test_the_window_stops_the_feed_until_acks_resume(
    ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]
) -> None:
    window = 25
    path = _profile(tmp_path, mode="paper", pace='"max"', files={"BTC-USD": 200})
    profile = load_profile(path)
    stand_in = StandIn(_bind(ctx, profile), acking=False)
    feed = _run(path, tmp_path, feeds, "--max-unacked", str(window))

    stand_in.serve(10.0, until=lambda: len(stand_in.envelopes) >= window)
    assert len(stand_in.envelopes) == window, feed.stderr()
    stand_in.serve(1.0)  # the feed is connected and has more: it must still wait
    assert len(stand_in.envelopes) == window
    assert stand_in.repeats == 0 and not stand_in.stream_ends
    assert not feed.exited()

    stand_in.acking = True
    assert _wait_exit(stand_in, feed) == 0, feed.stderr()
    assert stand_in.envelopes == _expected(profile)
    assert stand_in.stream_ends == [StreamEnded(producer_id="file:BTC-USD", last_producer_seq=200)]
    assert stand_in.repeats == 0  # a short stall is not a reason to re-send


def test_a_restarted_sequencer_gets_the_unacknowledged_window_again(
    ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]
) -> None:
    window = 30
    path = _profile(tmp_path, mode="paper", pace='"max"', files={"BTC-USD": 100})
    profile = load_profile(path)
    endpoint = profile.endpoints.ingress
    first = StandIn(_bind(ctx, profile), acking=False)
    feed = _run(path, tmp_path, feeds, "--max-unacked", str(window))
    first.serve(10.0, until=lambda: len(first.envelopes) >= window)
    assert len(first.envelopes) == window, feed.stderr()
    first.socket.close(linger=0)  # the sequencer dies with nothing journaled

    second = StandIn(ingress_server(ctx, endpoint))
    assert _wait_exit(second, feed) == 0, feed.stderr()
    assert second.envelopes == _expected(profile)  # from producer_seq 1, each once
    assert "reconnected" in feed.stderr()


def test_sigterm_stops_the_feed_cleanly(ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]) -> None:
    path = _profile(tmp_path, mode="paper", pace="1.0", files={"BTC-USD": 10})  # a bar a minute
    profile = load_profile(path)
    stand_in = StandIn(_bind(ctx, profile))
    feed = _run(path, tmp_path, feeds)
    stand_in.serve(10.0, until=lambda: len(stand_in.envelopes) >= 1)
    assert len(stand_in.envelopes) == 1, feed.stderr()

    feed.proc.send_signal(signal.SIGTERM)
    stand_in.serve(5.0, until=feed.exited)
    assert feed.exited(), "SIGTERM did not stop the feed within 5 s"
    assert feed.proc.wait(timeout=5) == 0
    assert "stopping on request" in feed.stderr()
    assert len(stand_in.envelopes) == 1


def test_a_synthetic_feed_sends_its_seeded_walk(
    ctx: zmq.Context[Any], tmp_path: Path, feeds: list[FeedProcess]
) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(
        """\
[group]
name = "t"
run_dir = "run"
mode = "paper"

[[feeds]]
name = "f"
kind = "synthetic"
instrument = "ETH-USD"
seed = 5
interval = "1h"
count = 50

[[venues]]
name = "sim"
kind = "paper"
""",
        encoding="utf-8",
    )
    profile = load_profile(path)
    stand_in = StandIn(_bind(ctx, profile))
    feed = _run(path, tmp_path, feeds, "--start-ns", str(T0 * 10**9))

    assert _wait_exit(stand_in, feed) == 0, feed.stderr()
    synthetic = profile.feed("f")
    assert isinstance(synthetic, SyntheticFeed)
    spec = instrument_spec_for("ETH-USD", backtest_config_for(profile))
    assert stand_in.envelopes == list(synthetic_envelopes(synthetic, spec, start_ns=T0 * 10**9))
    assert stand_in.stream_ends == [StreamEnded(producer_id="synthetic:ETH-USD", last_producer_seq=50)]


def test_lockstep_the_sequencer_pulls_the_stream_and_may_start_over(tmp_path: Path, feeds: list[FeedProcess]) -> None:
    """The feed against the lockstep sequencer's own sockets and pull loop (no stand-in)."""
    path = _profile(tmp_path, mode="backtest", pace="1.0", files={"BTC-USD": 700, "ETH-USD": 600})
    profile = load_profile(path)
    profile.group.run_dir.mkdir(parents=True, exist_ok=True)
    core = SequencerCore(core_config_for_profile(profile))
    sockets = SequencerSockets(profile, lambda: core)
    try:
        link = TurnLink(sockets, lambda: core.seq_id, time.time_ns)
        feed = _run(path, tmp_path, feeds)
        link.wait_for_peers(["feed-f"], timeout_ms=int(EXIT_DEADLINE_S * 1000))
        expected = _expected(profile)

        assert list(pulled_feed(link, "feed-f")) == expected  # 1,300 envelopes: three pulls
        link.reset()  # the run starts over: turn 1, position 1
        assert list(pulled_feed(link, "feed-f")) == expected
        assert not feed.exited(), feed.stderr()  # a lockstep feed waits for more pulls

        feed.proc.send_signal(signal.SIGTERM)
        assert feed.proc.wait(timeout=10) == 0
    finally:
        sockets.close()
    log = feed.stderr()
    assert "pace 1.0 does not apply" in log
    assert "starts over" in log and "stopping on request" in log
