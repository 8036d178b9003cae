"""The real-time sequencer in this process (SequencerService.step), over ipc: batches and acks.

A producer's `send_batch` reaches the core as its envelopes; the sequencer acknowledges with one
cumulative `IngressAck` per producer per loop batch (far fewer acks than envelopes), publishes
`SequencedBatch` frames that a `Subscriber` expands into every record, in order, and writes
checkpoints whose hash is that of the state it holds, from a single snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from bus.peer import IngressClient, Subscriber
from schemas.bus import IngressAck, Sequenced
from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.market import Bar
from services.deploy.profile import load_profile
from services.sequencer.checkpoint import read_checkpoint
from services.sequencer.core import SequencerCore
from services.sequencer.service import SequencerService

DEADLINE_S = 20.0
N = 3_000  # per producer: several loop batches of the sequencer


def _profile(tmp_path: Path) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(
        """
[group]
name = "batches"
run_dir = "run"
mode = "paper"

[journal]
fsync = "never"

[checkpoint]
every_events = 2500

[[feeds]]
name = "btc"
kind = "synthetic"
instrument = "BTC-USD"
seed = 1

[[venues]]
name = "SIM"
kind = "paper"
"""
    )
    return path


def _bar(producer: str, seq: int) -> Envelope:
    return Envelope(
        source=Source.MARKET_DATA, producer_id=producer, producer_seq=seq,
        event_time_ns=1_700_000_000_000_000_000 + seq, venue="SIM", instrument="BTC-USD",
        payload=Bar(open=100, high=101, low=99, close=100, volume=1, interval_ns=60_000_000_000),
    )  # fmt: skip


@pytest.fixture
def service(tmp_path: Path) -> Iterator[SequencerService]:
    svc = SequencerService(load_profile(_profile(tmp_path)))
    try:
        yield svc
    finally:
        svc.close()


def test_batches_in_cumulative_acks_and_batched_publication_out(service: SequencerService) -> None:
    profile = service.profile
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        replica = SequencerCore(service.config)
        records: list[Sequenced] = []
        sub = Subscriber(
            ctx, profile.endpoints.publication, profile.endpoints.sync,
            on_snapshot=lambda reply: replica.restore(reply.snapshot),
        )  # fmt: skip
        client = IngressClient(ctx, profile.endpoints.ingress)
        deadline = time.monotonic() + DEADLINE_S
        while not sub.ready:
            service.step(10)
            sub.poll(0)
            assert time.monotonic() < deadline, "the subscriber never became ready"

        envelopes = [_bar(p, n) for n in range(1, N + 1) for p in ("synthetic:BTC-USD", "synthetic:ETH-USD")]
        sent = 0
        acks: list[IngressAck] = []
        while sent < len(envelopes) or client.unacked or service.core.seq_id > len(records):
            assert time.monotonic() < deadline, (sent, client.unacked, service.core.seq_id, len(records))
            if sent < len(envelopes) and not client.unsent:
                chunk = envelopes[sent : sent + min(500, client.max_unacked - client.unacked)]
                client.send_batch(chunk)
                sent += len(chunk)
            service.step(5)
            acks.extend(r for r in client.poll(0) if isinstance(r, IngressAck))
            records.extend(sub.poll(0))
        assert service.refused == 0 and service.core.seq_id == 2 * N
        # Everything acknowledged with far fewer acks than envelopes; per producer they ascend.
        assert len(acks) < len(envelopes) // 10
        for producer in ("synthetic:BTC-USD", "synthetic:ETH-USD"):
            seqs = [a.producer_seq for a in acks if a.producer_id == producer]
            assert seqs == sorted(set(seqs)) and seqs[-1] == N
        # The subscriber saw every record once, in order, mostly in batches.
        assert [r.seq_id for r in records] == list(range(1, 2 * N + 1))
        assert service.sockets.counters.frames_out < len(envelopes) // 10
        for record in records:
            replica.apply(record.envelope)
        assert replica.state_hash() == service.core.state_hash()
        sub.close()
        client.close()
    finally:
        ctx.destroy(linger=0)


def test_a_checkpoint_builds_one_snapshot_and_holds_its_hash(
    service: SequencerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = service.core
    for n in range(1, 4):
        env = service.sequencer.stamp(_bar("synthetic:BTC-USD", n), 1)
        service.journal.append_batch([env])
        core.apply(env)
    built = 0
    snapshot = core.snapshot

    def counting() -> Any:
        nonlocal built
        built += 1
        return snapshot()

    monkeypatch.setattr(core, "snapshot", counting)
    path = service.checkpoint()
    assert built == 1
    checkpoint = read_checkpoint(path)
    assert checkpoint.seq_id == 3 and checkpoint.state_hash == core.state_hash()
    assert checkpoint.snapshot == snapshot()
