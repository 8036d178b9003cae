"""The real sequencer process against hostile ingress (RELIABILITY E1, E2, F1, F4).

Malformed frames, unknown kinds, wrong field types and oversized frames are refused and counted;
the sequencer stays up and its state is unchanged. Over TCP with CURVE, a peer without a key or
with a key not on the allow-list gets nothing in, and a strategy host sending an intent for
another strategy's id is refused. An `EnvelopeBatch` is sequenced as its envelopes (a malformed one refused whole).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq

from bus.codec import INGRESS_REPLY, SYNC_REPLY, SYNC_REQUEST, FrameCodec
from bus.security import CurveClient, load_public_key, load_secret_key, public_key_path, secret_key_path, write_keypair
from schemas.bus import IngressAck, IngressRefused, SnapshotReply, SnapshotRequest
from schemas.enums import OrderType, Side, Source
from schemas.envelope import Envelope
from schemas.intents import PlaceOrder
from schemas.market import Bar
from tests.integration.group_support import REPO, STRATEGY

_ENCODE = msgspec.msgpack.Encoder().encode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(tmp_path: Path, *, tcp: bool) -> Path:
    endpoints = ""
    security = ""
    if tcp:
        ports = [_free_port() for _ in range(3)]
        endpoints = (
            f'[endpoints]\ningress = "tcp://127.0.0.1:{ports[0]}"\n'
            f'publication = "tcp://127.0.0.1:{ports[1]}"\nsync = "tcp://127.0.0.1:{ports[2]}"\n'
        )
        keys = tmp_path / "keys"
        for name in ("sequencer", "strategy-a", "strategy-b"):
            write_keypair(keys, name)
        security = f'[security]\nkeys_dir = "{keys}"\nserver_key = "sequencer"\n'
    path = tmp_path / "profile.toml"
    path.write_text(
        f"""
[group]
name = "ingress"
run_dir = "run"
mode = "paper"
{endpoints}{security}
[journal]
fsync = "never"

[[feeds]]
name = "btc"
kind = "synthetic"
instrument = "BTC-USD"
seed = 1

[[venues]]
name = "SIM"
kind = "paper"

[[strategies]]
name = "a"
path = "{STRATEGY}"

[[strategies]]
name = "b"
path = "{STRATEGY}"
"""
    )
    return path


@pytest.fixture
def sequencer(request: Any, tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    from services.deploy.profile import load_profile

    path = _profile(tmp_path, tcp=request.param)
    log = (tmp_path / "sequencer.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "serve", "sequencer", "--profile", str(path)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield path, load_profile(path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert proc.returncode in (0, -15), (tmp_path / "sequencer.log").read_text()


def _bar_envelope(seq: int = 1) -> Envelope:
    return Envelope(
        source=Source.MARKET_DATA, producer_id="synthetic:BTC-USD", producer_seq=seq,
        event_time_ns=1_700_000_000_000_000_000 + seq, venue="SIM", instrument="BTC-USD",
        payload=Bar(open=100, high=101, low=99, close=100, volume=1, interval_ns=60_000_000_000),
    )  # fmt: skip


def _replies(sock: zmq.Socket[bytes], want: int, timeout_s: float = 10) -> list[Any]:
    codec = FrameCodec(INGRESS_REPLY)
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        if sock.poll(100):
            out.append(codec.decode(sock.recv_multipart()))
    return out


def _replies_until(sock: zmq.Socket[bytes], last: Callable[[Any], bool], timeout_s: float) -> list[Any]:
    """Replies until one satisfies `last` (that one included); fails after `timeout_s`."""
    codec = FrameCodec(INGRESS_REPLY)
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while not out or not last(out[-1]):
        assert time.monotonic() < deadline, f"no such reply within {timeout_s} s: {out[-3:]}"
        if sock.poll(100):
            out.append(codec.decode(sock.recv_multipart()))
    return out


def _state(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, security: Any = None) -> SnapshotReply:
    sync = ctx.socket(zmq.DEALER)
    sync.linger = 0
    if security is not None:
        security.apply_client(sync)
    sync.connect(endpoint)
    sync.send_multipart(FrameCodec(SYNC_REQUEST).encode(SnapshotRequest(request_id=7)))
    assert sync.poll(10_000), "no snapshot from the sequencer"
    reply = FrameCodec(SYNC_REPLY).decode(sync.recv_multipart())
    sync.close()
    assert isinstance(reply, SnapshotReply)
    return reply


@pytest.mark.parametrize("sequencer", [False], indirect=True)
def test_malformed_frames_are_refused_counted_and_change_nothing(sequencer: tuple[Path, Any]) -> None:
    _, profile = sequencer
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        dealer = ctx.socket(zmq.DEALER)
        dealer.linger = 0
        dealer.connect(profile.endpoints.ingress)
        time.sleep(0.3)  # the sequencer binds after start-up
        before = _state(ctx, profile.endpoints.sync)
        good = _ENCODE(_bar_envelope())
        bad_frames = [
            [b"\x00\xff garbage"],  # one part
            [b"envelope", b"\xc1\xc1\xc1"],  # not msgpack
            [b"envelope", good[: len(good) // 2]],  # truncated
            [b"no_such_kind", good],  # unknown kind
            [b"envelope", good.replace(b"BTC-USD", b"BTC-US\xff")],  # invalid utf-8 in an id
            [b"envelope", _ENCODE({**msgspec.to_builtins(_bar_envelope()), "producer_seq": "one"})],  # wrong type
            [b"envelope", _ENCODE({**msgspec.to_builtins(_bar_envelope()), "producer_seq": -5})],  # out of range
            [b"heartbeat", _ENCODE({"type": "heartbeat", "peer": "x"})],  # missing fields
        ]
        for frames in bad_frames:
            dealer.send_multipart(frames)
        replies = _replies(dealer, len(bad_frames))
        assert len(replies) == len(bad_frames)
        assert all(isinstance(r, IngressRefused) for r in replies)
        assert {r.reason for r in replies} >= {"parts", "malformed", "unknown_kind"}
        after = _state(ctx, profile.endpoints.sync)
        assert after.state_hash == before.state_hash and after.seq_id == before.seq_id == 0
        # Oversized: the socket drops the frame and the connection (MAXMSGSIZE); nothing applied.
        big = ctx.socket(zmq.DEALER)
        big.linger = 0
        big.connect(profile.endpoints.ingress)
        big.send_multipart([b"envelope", b"\x00" * (65 * 1024)])
        time.sleep(0.5)
        assert _state(ctx, profile.endpoints.sync).state_hash == before.state_hash
        # Still up and serving: a valid envelope is sequenced and acknowledged.
        dealer.send_multipart([b"envelope", good])
        [ack] = _replies(dealer, 1)
        assert isinstance(ack, IngressAck) and ack.seq_id == 1
        assert _state(ctx, profile.endpoints.sync).seq_id == 1
    finally:
        ctx.destroy(linger=0)


def _client(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, security: Any) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    if security is not None:
        security.apply_client(sock)
    sock.connect(endpoint)
    return sock


def _intent(strategy_id: str, cid: str) -> Envelope:
    return Envelope(
        source=Source.STRATEGY, producer_id=f"strategy:{strategy_id}", producer_seq=1, event_time_ns=1,
        instrument="BTC-USD",
        payload=PlaceOrder(
            strategy_id=strategy_id, client_order_id=cid, instrument="BTC-USD", side=Side.BUY,
            order_type=OrderType.LIMIT, quantity=1, price=100,
        ),
    )  # fmt: skip


@pytest.mark.parametrize("sequencer", [True], indirect=True)
def test_tcp_peers_without_a_valid_key_get_nothing_in_and_strategies_only_send_for_themselves(
    sequencer: tuple[Path, Any], tmp_path: Path
) -> None:
    _, profile = sequencer
    keys = tmp_path / "keys"
    server_key = load_public_key(public_key_path(keys, "sequencer"))
    as_a = CurveClient(load_secret_key(secret_key_path(keys, "strategy-a")), server_key)
    stranger_dir = tmp_path / "stranger"
    write_keypair(stranger_dir, "stranger")
    as_stranger = CurveClient(load_secret_key(secret_key_path(stranger_dir, "stranger")), server_key)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        time.sleep(0.5)
        plain = _client(ctx, profile.endpoints.ingress, None)
        stranger = _client(ctx, profile.endpoints.ingress, as_stranger)
        a = _client(ctx, profile.endpoints.ingress, as_a)
        for sock in (plain, stranger):
            sock.send_multipart([b"envelope", _ENCODE(_intent("a", "a-1"))], zmq.NOBLOCK) if sock.poll(
                0, zmq.POLLOUT
            ) else None
        # Strategy a's identity, sending for b: refused; for itself: acknowledged.
        a.send_multipart([b"envelope", _ENCODE(_intent("b", "b-1"))])
        [refused] = _replies(a, 1)
        assert isinstance(refused, IngressRefused) and refused.reason == "not_owner", refused
        assert "strategy-a" in refused.detail and "'b'" in refused.detail
        a.send_multipart([b"envelope", _ENCODE(_intent("a", "a-1"))])
        [ack] = _replies(a, 1)
        assert isinstance(ack, IngressAck) and ack.seq_id == 1
        # Nothing from the keyless or unknown peers reached the core.
        assert not _replies(plain, 1, timeout_s=0.5) and not _replies(stranger, 1, timeout_s=0.5)
        assert _state(ctx, profile.endpoints.sync, as_a).seq_id == 1
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("sequencer", [False], indirect=True)
def test_a_paused_subscriber_past_its_hwm_resyncs_to_the_sequencers_state(sequencer: tuple[Path, Any]) -> None:
    """E4 against the real sequencer: records dropped at a tiny HWM are fetched by range, and a
    replica fed by the subscriber ends with the sequencer's state hash."""
    from bus.peer import Subscriber
    from services.deploy.run_config import core_config_for_profile
    from services.sequencer.core import SequencerCore

    _, profile = sequencer
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    replica = SequencerCore(core_config_for_profile(profile))
    try:
        sub = Subscriber(
            ctx, profile.endpoints.publication, profile.endpoints.sync,
            on_snapshot=lambda reply: replica.restore(reply.snapshot), rcvhwm_msgs=10,
        )  # fmt: skip
        feed = ctx.socket(zmq.DEALER)
        feed.linger = 0
        feed.connect(profile.endpoints.ingress)
        deadline = time.monotonic() + 10
        while not sub.ready:  # subscribed and synced before the flood
            for record in sub.poll(50):
                replica.apply(record.envelope)
            assert time.monotonic() < deadline, "the subscriber never became ready"
        n = 3_000
        for i in range(1, n + 1):  # the subscriber does not read meanwhile: its HWM of 10 overflows
            feed.send_multipart([b"envelope", _ENCODE(_bar_envelope(i))])
        # Acks are cumulative (one per batch the sequencer journaled): wait for the one covering n.
        acks = _replies_until(feed, lambda r: isinstance(r, IngressAck) and r.producer_seq >= n, timeout_s=30)
        assert all(isinstance(r, IngressAck) for r in acks) and acks[-1].producer_seq == n
        assert [r.producer_seq for r in acks] == sorted({r.producer_seq for r in acks})  # ascending
        deadline = time.monotonic() + 20
        while replica.seq_id < n:
            for record in sub.poll(50):
                replica.apply(record.envelope)
            assert time.monotonic() < deadline, f"replica stuck at seq {replica.seq_id} of {n}"
        # Records beyond the snapshot came by range requests: the HWM really dropped some.
        assert sub.follower.stats.requests > sub.follower.stats.snapshots, "the test must overflow the subscriber"
        assert replica.state_hash() == _state(ctx, profile.endpoints.sync).state_hash
        sub.close()
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("sequencer", [False], indirect=True)
def test_a_silent_peer_is_published_as_silent_within_three_heartbeats(sequencer: tuple[Path, Any]) -> None:
    from bus.codec import PUBLICATION
    from schemas.bus import Heartbeat, PeerRole, PeerStatus

    _, profile = sequencer
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(profile.endpoints.publication)
        peer = ctx.socket(zmq.DEALER)
        peer.linger = 0
        peer.connect(profile.endpoints.ingress)
        codec = FrameCodec(PUBLICATION)
        for _ in range(3):  # alive for a while, then silent
            peer.send_multipart([b"heartbeat", _ENCODE(Heartbeat(peer="gw", role=PeerRole.GATEWAY, sent_ns=1))])
            time.sleep(0.5)
        silent_since = time.monotonic()
        deadline = silent_since + 8
        statuses: list[PeerStatus] = []
        while not any(not s.alive for s in statuses):
            assert time.monotonic() < deadline, f"no silent status published: {statuses}"
            if sub.poll(100):
                message = codec.decode(sub.recv_multipart())
                if isinstance(message, PeerStatus) and message.peer == "gw":
                    statuses.append(message)
        # Three intervals of 1 s, checked once per heartbeat: published within four.
        assert time.monotonic() - silent_since < 4.5
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize("sequencer", [False], indirect=True)
def test_an_envelope_batch_is_sequenced_as_its_envelopes_with_one_ack_per_producer(sequencer: tuple[Path, Any]) -> None:
    """An `EnvelopeBatch` frame: an envelope the policy refuses is refused alone, the rest are
    journaled in one loop batch, published as one `SequencedBatch` (contiguous seq ids, in the
    tie-break order) and acknowledged with one cumulative ack per producer, for its highest
    producer_seq. A batch with one malformed envelope is refused whole and changes nothing."""
    from bus.codec import PUBLICATION
    from schemas.bus import EnvelopeBatch, SequencedBatch

    _, profile = sequencer
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(profile.endpoints.publication)
        publication = FrameCodec(PUBLICATION)
        deadline = time.monotonic() + 10
        while not (sub.poll(100) and sub.recv_multipart()[0] == b"heartbeat"):  # subscribed
            assert time.monotonic() < deadline, "no heartbeat from the sequencer"
        feed = ctx.socket(zmq.DEALER)
        feed.linger = 0
        feed.connect(profile.endpoints.ingress)

        def bar(producer: str, seq: int) -> Envelope:
            return msgspec.structs.replace(_bar_envelope(seq), producer_id=producer)

        mismatched = msgspec.structs.replace(bar("synthetic:BTC-USD", 9), source=Source.STRATEGY)
        envelopes = [bar("synthetic:BTC-USD", 1), bar("synthetic:ETH-USD", 1), bar("synthetic:BTC-USD", 2),
                     mismatched, bar("synthetic:BTC-USD", 3), bar("synthetic:ETH-USD", 2)]  # fmt: skip
        bad = {"type": "envelope_batch", "envelopes": [msgspec.to_builtins(envelopes[0]), {"producer_seq": 0}]}
        feed.send_multipart([b"envelope_batch", _ENCODE(bad)])
        [whole] = _replies(feed, 1)
        assert isinstance(whole, IngressRefused) and whole.reason == "malformed" and not whole.producer_id
        assert _state(ctx, profile.endpoints.sync).seq_id == 0

        feed.send_multipart([b"envelope_batch", _ENCODE(EnvelopeBatch(envelopes=envelopes))])
        replies = _replies(feed, 3)
        [refused] = [r for r in replies if isinstance(r, IngressRefused)]
        assert (refused.reason, refused.producer_id, refused.producer_seq) == ("source_mismatch", "synthetic:BTC-USD", 9)
        acks = {(r.producer_id, r.producer_seq) for r in replies if isinstance(r, IngressAck)}
        assert acks == {("synthetic:BTC-USD", 3), ("synthetic:ETH-USD", 2)}
        assert not _replies(feed, 1, timeout_s=0.3)  # one ack per producer, nothing more

        deadline = time.monotonic() + 10
        batch = None
        while batch is None:
            assert time.monotonic() < deadline, "no sequenced_batch published"
            if sub.poll(100):
                message = publication.decode(sub.recv_multipart())
                assert type(message).__name__ != "Sequenced", "the batch must go out as one frame"
                if isinstance(message, SequencedBatch):
                    batch = message
        assert [r.seq_id for r in batch.records] == [1, 2, 3, 4, 5]
        # Tie-break order within the batch: (source, venue, instrument, producer, producer_seq).
        assert [(r.envelope.producer_id, r.envelope.producer_seq) for r in batch.records] == [
            ("synthetic:BTC-USD", 1), ("synthetic:BTC-USD", 2), ("synthetic:BTC-USD", 3),
            ("synthetic:ETH-USD", 1), ("synthetic:ETH-USD", 2),
        ]  # fmt: skip
        assert _state(ctx, profile.endpoints.sync).seq_id == 5
    finally:
        ctx.destroy(linger=0)
