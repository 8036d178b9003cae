"""Backpressure on a live feed: with the ingress window full, due data is conflated per
instrument (the newest waits, the replaced ones are counted); nothing is conflated for a replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import zmq

from bus.codec import INGRESS, INGRESS_REPLY, FrameCodec
from bus.peer import IngressClient
from schemas.bus import EnvelopeBatch, IngressAck
from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.market import Bar
from services.feeds.pump import FeedPump
from services.feeds.source import FeedSource

WINDOW = 5
N = 40


def _envelopes() -> Iterator[Envelope]:
    for i in range(1, N + 1):
        yield Envelope(
            source=Source.MARKET_DATA, producer_id="synthetic:BTC-USD", producer_seq=i, event_time_ns=i,
            venue="SIM", instrument="BTC-USD",
            payload=Bar(open=100 + i, high=101 + i, low=99 + i, close=100 + i, volume=1, interval_ns=1),
        )  # fmt: skip


def _received(router: zmq.Socket[bytes], codec: FrameCodec) -> list[tuple[bytes, Envelope]]:  # type: ignore[type-arg]
    out = []
    while router.poll(200):
        routing, *frames = router.recv_multipart()
        message = codec.decode(frames)
        envelopes = message.envelopes if isinstance(message, EnvelopeBatch) else [message]
        out += [(routing, e) for e in envelopes if isinstance(e, Envelope)]
    return out


def _run(pump: FeedPump, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    pump.run(lambda: time.monotonic() > deadline)


def _pump(tmp_path: Path, *, conflate: bool) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes], FeedPump]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    endpoint = f"ipc://{tmp_path}/i.sock"
    router.bind(endpoint)
    client = IngressClient(ctx, endpoint, max_unacked=WINDOW)
    # Pace far above real time: every bar is due at once (a live source outrunning the sequencer).
    source = FeedSource("live", ("synthetic:BTC-USD",), _envelopes, 1e12, N)
    return ctx, router, FeedPump(client, source, peer="feed-live", conflate=conflate, log=lambda _: None)


def test_a_live_feed_conflates_per_instrument_when_the_window_is_full(tmp_path: Path) -> None:
    ctx, router, pump = _pump(tmp_path, conflate=True)
    codec = FrameCodec(INGRESS)
    try:
        _run(pump, 0.5)
        first = _received(router, codec)
        assert [e.producer_seq for _, e in first] == list(range(1, WINDOW + 1)), "the window, then nothing"
        assert pump.stats.conflated == N - WINDOW - 1  # all but the newest waiting bar
        routing = first[-1][0]
        ack = IngressAck(producer_id="synthetic:BTC-USD", producer_seq=WINDOW, seq_id=WINDOW)
        router.send_multipart([routing, *FrameCodec(INGRESS_REPLY).encode(ack)])
        _run(pump, 0.5)
        [(_, newest)] = _received(router, codec)
        assert newest.producer_seq == N, "only the newest bar of the instrument is sent"
    finally:
        pump.close()
        router.close()
        ctx.term()


def test_a_replay_never_conflates_it_waits(tmp_path: Path) -> None:
    ctx, router, pump = _pump(tmp_path, conflate=False)
    codec = FrameCodec(INGRESS)
    try:
        _run(pump, 0.5)
        assert [e.producer_seq for _, e in _received(router, codec)] == list(range(1, WINDOW + 1))
        assert pump.stats.conflated == 0
    finally:
        pump.close()
        router.close()
        ctx.term()
