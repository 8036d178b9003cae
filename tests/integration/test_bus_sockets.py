"""Real ZeroMQ sockets over ipc and tcp: every role round-trips, limits hold, followers recover.

RELIABILITY E1 (malformed frames refused with a typed reason), E2 (oversized frames dropped by
the socket, nothing reaches the application), E4 (subscriber paused past the high-water mark
detects the gap and resyncs), E5 (late joiner), E6 (sequencer restarted: peers notice within
three heartbeats and resync).

Nothing here blocks: every receive is a poll with a timeout, every loop has a deadline, and the
context is destroyed with linger 0 at the end of each test.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from bus import limits
from bus.codec import INGRESS, INGRESS_REPLY, PUBLICATION, SYNC_REPLY, SYNC_REQUEST, FrameCodec, FrameError
from bus.endpoints import MAX_IPC_PATH_BYTES, EndpointError
from bus.peer import IngressBackpressure, IngressClient, Subscriber
from bus.resync import FollowerState, StreamFollower, range_replies
from bus.sockets import (
    Socket,
    bound_endpoint,
    ingress_client,
    ingress_server,
    publisher,
    subscriber,
    sync_client,
    sync_server,
)
from schemas.bus import (
    EnvelopeBatch,
    Heartbeat,
    IngressAck,
    IngressRefused,
    PeerRole,
    PeerStatus,
    RangeReply,
    RangeRequest,
    Sequenced,
    SnapshotReply,
    SnapshotRequest,
    TurnDone,
)
from schemas.envelope import Envelope
from tests.unit.wire_samples import ENVELOPES, SNAPSHOT

ENV = ENVELOPES[0]
DEADLINE_S = 1.5  # every wait in this module gives up after this long (tests stay under 2 s)


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


@pytest.fixture
def ipc_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for ipc sockets: tmp_path, unless its path is too long for a Unix socket."""
    if len(str(tmp_path)) + 24 <= MAX_IPC_PATH_BYTES:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="tb-") as short:
        yield Path(short)


class Endpoints:
    """Bind endpoints per transport, and the endpoint to connect to once bound."""

    def __init__(self, transport: str, ipc_dir: Path) -> None:
        self.transport = transport
        self.ipc_dir = ipc_dir

    def bind(self, name: str) -> str:
        return f"ipc://{self.ipc_dir / name}.sock" if self.transport == "ipc" else "tcp://127.0.0.1:0"

    @staticmethod
    def connect(bound: Socket) -> str:
        return bound_endpoint(bound)


@pytest.fixture(params=["ipc", "tcp"])
def eps(request: pytest.FixtureRequest, ipc_dir: Path) -> Endpoints:
    return Endpoints(request.param, ipc_dir)


def recv(socket: Socket, timeout_ms: int = 1000) -> list[bytes] | None:
    """One message, or None if nothing arrives within the timeout."""
    if not socket.poll(timeout_ms, zmq.POLLIN):
        return None
    return socket.recv_multipart(zmq.NOBLOCK)


def send_when_connected(socket: Socket, frames: list[bytes]) -> None:
    """Send on a DEALER made with IMMEDIATE: it refuses (zmq.Again) until connected."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            socket.send_multipart(frames, zmq.NOBLOCK)
            return
        except zmq.Again:
            if time.monotonic() > deadline:
                raise
            socket.poll(10, zmq.POLLOUT)


def wait_until(condition: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        step()


def rec(seq: int) -> Sequenced:
    return Sequenced(seq_id=seq, envelope=msgspec.structs.replace(ENV, seq_id=seq), outputs=[])


def envelope(producer_seq: int) -> Envelope:
    return msgspec.structs.replace(ENV, producer_id="feed-1", producer_seq=producer_seq, seq_id=0)


# --------------------------------------------------------------------------------------------
# round trips through each role


def test_ingress_round_trip(ctx: zmq.Context[Any], eps: Endpoints) -> None:
    server = ingress_server(ctx, eps.bind("ingress"))
    client = IngressClient(ctx, eps.connect(server))
    inbound, outbound = FrameCodec(INGRESS), FrameCodec(INGRESS_REPLY)

    client.send(envelope(1))  # may wait in the window until the connection is up
    client.send_turn_done(TurnDone(peer="strategy-s1", turn=1, envelopes=1))
    got: list[Any] = []
    wait_until(lambda: len(got) == 2, lambda: _collect(server, inbound, got, client), "two frames at ingress")
    (identity, first), (_, second) = got
    assert first == envelope(1)
    assert second == TurnDone(peer="strategy-s1", turn=1, envelopes=1)  # after its turn's envelope
    assert client.unacked == 1

    server.send_multipart([identity, *outbound.encode(IngressAck(producer_id="feed-1", producer_seq=1, seq_id=7))])
    replies: list[Any] = []
    wait_until(lambda: bool(replies), lambda: replies.extend(client.poll(20)), "the ack")
    assert replies == [IngressAck(producer_id="feed-1", producer_seq=1, seq_id=7)]
    assert client.unacked == 0
    assert client.counters.frames_out == 2 and client.counters.frames_in == 1


def _collect(server: Socket, codec: FrameCodec[Any], got: list[Any], client: IngressClient | None = None) -> None:
    if client is not None:
        client.flush()
    frames = recv(server, 20)
    if frames is not None:
        got.append((frames[0], codec.decode(frames[1:])))


def _count_envelopes(got: list[Any]) -> int:
    return sum(len(m.envelopes) if isinstance(m, EnvelopeBatch) else 1 for _, m in got)


def test_publication_round_trip(ctx: zmq.Context[Any], eps: Endpoints) -> None:
    pub = publisher(ctx, eps.bind("pub"))
    sub = subscriber(ctx, eps.connect(pub))
    codec = FrameCodec(PUBLICATION)
    hb = Heartbeat(peer="sequencer", role=PeerRole.SEQUENCER, sent_ns=1, last_seq_id=0)
    # Slow joiner: the subscription reaches the publisher some time after connecting.
    wait_until(lambda: recv(sub, 10) is not None, lambda: pub.send_multipart(codec.encode(hb)), "the subscription")
    for message in (rec(1), PeerStatus(peer="gw", role=PeerRole.GATEWAY, alive=False, last_seen_ns=5)):
        pub.send_multipart(codec.encode(message))
        received = hb
        while received == hb:  # skip heartbeats still in flight from the join loop
            frames = recv(sub)
            assert frames is not None
            received = codec.decode(frames)
        assert received == message


def test_sync_round_trip(ctx: zmq.Context[Any], eps: Endpoints) -> None:
    server = sync_server(ctx, eps.bind("sync"))
    client = sync_client(ctx, eps.connect(server))
    request = RangeRequest(request_id=3, from_seq_id=1, to_seq_id=2)
    send_when_connected(client, FrameCodec(SYNC_REQUEST).encode(request))
    frames = recv(server)
    assert frames is not None
    identity, body = frames[0], frames[1:]
    assert FrameCodec(SYNC_REQUEST).decode(body) == request
    answer = RangeReply(request_id=3, items=[rec(1), rec(2)], complete=True)
    server.send_multipart([identity, *FrameCodec(SYNC_REPLY).encode(answer)])
    reply = recv(client)
    assert reply is not None and FrameCodec(SYNC_REPLY).decode(reply) == answer


# --------------------------------------------------------------------------------------------
# options and hooks


def test_every_role_gets_its_options(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    eps = Endpoints("ipc", ipc_dir)
    ingress = ingress_server(ctx, eps.bind("i"))
    pub = publisher(ctx, eps.bind("p"))
    sync = sync_server(ctx, eps.bind("s"))
    roles = {
        "ingress_server": (ingress, limits.MAX_INGRESS_BYTES, limits.INGRESS_REPLY_SNDHWM_MSGS, limits.INGRESS_RCVHWM_MSGS),
        "ingress_client": (
            ingress_client(ctx, bound_endpoint(ingress)),
            limits.MAX_INGRESS_BYTES,
            limits.INGRESS_SNDHWM_MSGS,
            limits.INGRESS_SNDHWM_MSGS,
        ),
        "publisher": (pub, limits.MAX_SUBSCRIPTION_BYTES, limits.PUBLICATION_SNDHWM_MSGS, limits.PUBLICATION_SNDHWM_MSGS),
        "subscriber": (
            subscriber(ctx, bound_endpoint(pub)),
            limits.MAX_MESSAGE_BYTES,
            limits.PUBLICATION_RCVHWM_MSGS,
            limits.PUBLICATION_RCVHWM_MSGS,
        ),
        "sync_server": (sync, limits.MAX_SYNC_REQUEST_BYTES, limits.SYNC_SERVER_SNDHWM_MSGS, limits.SYNC_SERVER_RCVHWM_MSGS),
        "sync_client": (
            sync_client(ctx, bound_endpoint(sync)),
            limits.MAX_SNAPSHOT_BYTES,
            limits.SYNC_CLIENT_SNDHWM_MSGS,
            limits.SYNC_CLIENT_RCVHWM_MSGS,
        ),
    }
    for role, (sock, max_bytes, sndhwm, rcvhwm) in roles.items():
        got = {
            "max": sock.getsockopt(zmq.MAXMSGSIZE),
            "sndhwm": sock.getsockopt(zmq.SNDHWM),
            "rcvhwm": sock.getsockopt(zmq.RCVHWM),
            "linger": sock.getsockopt(zmq.LINGER),
            "sndtimeo": sock.getsockopt(zmq.SNDTIMEO),
            "rcvtimeo": sock.getsockopt(zmq.RCVTIMEO),
            "hb": sock.getsockopt(zmq.HEARTBEAT_IVL),
            "keepalive": sock.getsockopt(zmq.TCP_KEEPALIVE),
            "reconnect": sock.getsockopt(zmq.RECONNECT_IVL_MAX),
            "handshake": sock.getsockopt(zmq.HANDSHAKE_IVL),
        }
        assert got == {
            "max": max_bytes,
            "sndhwm": sndhwm,
            "rcvhwm": rcvhwm,
            "linger": limits.LINGER_MS,
            "sndtimeo": 0,
            "rcvtimeo": 0,
            "hb": limits.HEARTBEAT_INTERVAL_MS,
            "keepalive": 1,
            "reconnect": limits.RECONNECT_IVL_MAX_MS,
            "handshake": limits.HANDSHAKE_IVL_MS,
        }, role
    assert roles["ingress_client"][0].getsockopt(zmq.IMMEDIATE) == 1
    assert roles["sync_client"][0].getsockopt(zmq.IMMEDIATE) == 1


def test_router_mandatory_makes_a_reply_to_a_gone_peer_an_error(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    server = ingress_server(ctx, Endpoints("ipc", ipc_dir).bind("i"))
    with pytest.raises(zmq.ZMQError) as caught:
        server.send_multipart([b"\x00nobody", *FrameCodec(INGRESS_REPLY).encode(IngressAck(producer_id="p", producer_seq=1, seq_id=1))])
    assert caught.value.errno == zmq.EHOSTUNREACH


class RecordingSecurity:
    """Stands in for bus.security: records each call and whether the socket was already in use."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def apply_server(self, socket: Socket) -> None:
        self.calls.append(("server", bound_endpoint(socket)))

    def apply_client(self, socket: Socket) -> None:
        self.calls.append(("client", bound_endpoint(socket)))


def test_security_is_applied_before_bind_and_connect(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    sec = RecordingSecurity()
    eps = Endpoints("ipc", ipc_dir)
    pub = publisher(ctx, eps.bind("p"), security=sec)
    subscriber(ctx, bound_endpoint(pub), security=sec)
    srv = sync_server(ctx, eps.bind("s"), security=sec)
    sync_client(ctx, bound_endpoint(srv), security=sec)
    ing = ingress_server(ctx, eps.bind("i"), security=sec)
    ingress_client(ctx, bound_endpoint(ing), security=sec)
    # LAST_ENDPOINT is empty until the first bind/connect: every call came before it.
    assert sec.calls == [("server", ""), ("client", "")] * 3


def test_a_failing_security_hook_closes_the_socket(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    class Broken(RecordingSecurity):
        def apply_server(self, socket: Socket) -> None:
            self.socket = socket
            raise RuntimeError("no key")

    broken = Broken()
    with pytest.raises(RuntimeError, match="no key"):
        publisher(ctx, Endpoints("ipc", ipc_dir).bind("p"), security=broken)
    assert broken.socket.closed


@pytest.mark.parametrize(
    ("factory", "endpoint", "problem"),
    [
        (ingress_server, "tcp://127.0.0.1", "expected tcp://host:port"),
        (publisher, "udp://127.0.0.1:5", "unsupported transport"),
        (subscriber, "tcp://*:7001", "only valid for bind"),
        (sync_client, "tcp://127.0.0.1:0", "only valid for bind"),
    ],
)
def test_bad_endpoints_fail_before_libzmq_sees_them(
    ctx: zmq.Context[Any], factory: Callable[..., Socket], endpoint: str, problem: str
) -> None:
    with pytest.raises(EndpointError, match=problem):
        factory(ctx, endpoint)


# --------------------------------------------------------------------------------------------
# E2: oversized frames never reach the application


def test_oversized_frame_is_dropped_by_the_socket(ctx: zmq.Context[Any], eps: Endpoints) -> None:
    server = ingress_server(ctx, eps.bind("ingress"))
    monitor = server.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    rogue: Socket = ctx.socket(zmq.DEALER)  # no MAXMSGSIZE of its own: sends whatever it likes
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(eps.connect(server))
    _wait_event(monitor, zmq.EVENT_HANDSHAKE_SUCCEEDED)

    rogue.send_multipart([b"envelope", b"\x00" * (limits.MAX_INGRESS_BYTES + 1)])
    _wait_event(monitor, zmq.EVENT_DISCONNECTED)  # libzmq dropped the peer mid-frame
    assert recv(server, 200) is None  # ... and nothing reached the application

    # A body of exactly the limit passes the socket; the codec then judges it (garbage here).
    edge: Socket = ctx.socket(zmq.DEALER)
    edge.setsockopt(zmq.LINGER, 0)
    edge.connect(eps.connect(server))
    edge.send_multipart([b"envelope", b"\x00" * limits.MAX_INGRESS_BYTES])
    frames = recv(server)
    assert frames is not None and len(frames[2]) == limits.MAX_INGRESS_BYTES
    with pytest.raises(FrameError) as caught:
        FrameCodec(INGRESS).decode(frames[1:])
    assert caught.value.reason == "malformed"

    # Well-behaved producers are unaffected.
    client = IngressClient(ctx, eps.connect(server))
    client.send(envelope(1))
    got: list[Any] = []
    wait_until(lambda: bool(got), lambda: _collect(server, FrameCodec(INGRESS), got, client), "a good envelope")
    assert got[0][1] == envelope(1)


def _wait_event(monitor: Socket, event: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if monitor.poll(50, zmq.POLLIN) and recv_monitor_message(monitor, zmq.NOBLOCK)["event"] == event:
            return
    raise AssertionError(f"no monitor event {event}")


def test_publisher_codec_refuses_what_subscribers_would_drop() -> None:
    huge = Sequenced(seq_id=1, envelope=ENV, outputs=[])
    tiny = FrameCodec(type(PUBLICATION)("publication", PUBLICATION.kinds, 100))
    with pytest.raises(FrameError) as caught:
        tiny.encode(huge)
    assert caught.value.reason == "oversized"


# --------------------------------------------------------------------------------------------
# E1: malformed frames over a real socket


def test_malformed_frames_are_refused_with_their_reason(ctx: zmq.Context[Any], eps: Endpoints) -> None:
    server = ingress_server(ctx, eps.bind("ingress"))
    rogue: Socket = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(eps.connect(server))
    cases: list[tuple[list[bytes], str]] = [
        ([b"envelope", b"\xc1"], "malformed"),
        ([b"envelope", msgspec.msgpack.encode(ENV)[:-2]], "malformed"),
        ([b"envelope", msgspec.msgpack.encode({**msgspec.to_builtins(ENV), "producer_seq": -1})], "malformed"),
        ([b"heartbeat", msgspec.msgpack.encode(TurnDone(peer="p", turn=1))], "malformed"),
        ([b"sequenced", msgspec.msgpack.encode(rec(1))], "unknown_kind"),
        ([b"envelope"], "parts"),
        ([b"envelope", b"", b""], "parts"),
        ([b"envelope", msgspec.msgpack.encode(envelope(1))], "ok"),
    ]
    for frames, _ in cases:
        rogue.send_multipart(frames)
    codec = FrameCodec(INGRESS)
    outcomes: list[str] = []
    for _ in cases:
        got = recv(server)
        assert got is not None
        try:
            codec.decode(got[1:])
            outcomes.append("ok")
        except FrameError as exc:
            outcomes.append(exc.reason)
    assert outcomes == [reason for _, reason in cases]


# --------------------------------------------------------------------------------------------
# followers over real sockets: a tiny sequencer serving publication and sync


class TinySequencer:
    """Publishes records and heartbeats, and answers snapshot and range requests from its history."""

    def __init__(self, ctx: zmq.Context[Any], pub_endpoint: str, sync_endpoint: str, *, sndhwm_msgs: int = 1000) -> None:
        self.pub = publisher(ctx, pub_endpoint, sndhwm_msgs=sndhwm_msgs)
        self.sync = sync_server(ctx, sync_endpoint)
        self.history: list[Sequenced] = []
        self.served: Counter[str] = Counter()
        self._pub = FrameCodec(PUBLICATION)
        self._in = FrameCodec(SYNC_REQUEST)
        self._out = FrameCodec(SYNC_REPLY)

    @property
    def last(self) -> int:
        return len(self.history)

    def publish(self, count: int) -> None:
        for _ in range(count):
            record = rec(self.last + 1)
            self.history.append(record)
            self.pub.send_multipart(self._pub.encode(record))  # PUB never blocks: drops at HWM

    def heartbeat(self) -> None:
        hb = Heartbeat(peer="sequencer", role=PeerRole.SEQUENCER, sent_ns=time.time_ns(), last_seq_id=self.last)
        self.pub.send_multipart(self._pub.encode(hb))

    def serve(self) -> None:
        while True:
            try:
                identity, *frames = self.sync.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            request = self._in.decode(frames)
            self.served[type(request).__name__] += 1
            if isinstance(request, SnapshotRequest):
                replies: list[Any] = [
                    SnapshotReply(request_id=request.request_id, seq_id=self.last, state_hash="0" * 64, snapshot=SNAPSHOT)
                ]
            else:
                last = min(request.to_seq_id or self.last, self.last)
                replies = list(range_replies(request.request_id, self.history[request.from_seq_id - 1 : last], max_items=250))
            for reply in replies:
                self.sync.send_multipart([identity, *self._out.encode(reply)], zmq.NOBLOCK)

    def close(self) -> None:
        self.pub.close(linger=0)
        self.sync.close(linger=0)


class App:
    """What a service does with a Subscriber: install snapshots, apply records, check order."""

    def __init__(self) -> None:
        self.state_seq: int | None = None
        self.applied: list[int] = []
        self.snapshots: list[int] = []

    def on_snapshot(self, reply: SnapshotReply) -> None:
        self.snapshots.append(reply.seq_id)
        self.state_seq = reply.seq_id

    def apply(self, records: list[Sequenced]) -> None:
        for r in records:
            assert self.state_seq is not None and r.seq_id == self.state_seq + 1, (self.state_seq, r.seq_id)
            self.state_seq = r.seq_id
            self.applied.append(r.seq_id)


def make_subscriber(ctx: zmq.Context[Any], seqr: TinySequencer, app: App, **kwargs: Any) -> Subscriber:
    return Subscriber(
        ctx,
        bound_endpoint(seqr.pub),
        bound_endpoint(seqr.sync),
        on_snapshot=app.on_snapshot,
        heartbeat_interval_ms=50,
        request_timeout_ms=200,
        **kwargs,
    )


def pump(seqr: TinySequencer, sub: Subscriber, app: App, until: Callable[[], bool], what: str, *, beat: bool = True) -> None:
    """Run sequencer and subscriber side by side (heartbeat every 20 ms) until `until()`."""
    next_beat = 0.0
    deadline = time.monotonic() + DEADLINE_S

    def step() -> None:
        nonlocal next_beat
        if beat and time.monotonic() >= next_beat:
            seqr.heartbeat()
            next_beat = time.monotonic() + 0.02
        seqr.serve()
        app.apply(sub.poll(5))

    while not until():
        if time.monotonic() > deadline:
            f = sub.follower
            raise AssertionError(
                f"timed out waiting for {what}: {f.state} applied {f.applied_seq_id} known {f.known_seq_id} "
                f"stats {f.stats} served {dict(seqr.served)} counters {sub.counters}"
            )
        step()


def test_late_joiner_applies_exactly_what_follows_its_snapshot(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    eps = Endpoints("ipc", ipc_dir)
    seqr = TinySequencer(ctx, eps.bind("pub"), eps.bind("sync"))
    seqr.publish(50)  # before anyone listens
    app = App()
    sub = make_subscriber(ctx, seqr, app)
    assert not sub.ready
    pump(seqr, sub, app, lambda: sub.ready, "the late joiner to be ready")
    assert app.snapshots and app.snapshots[0] >= 50
    seqr.publish(10)
    pump(seqr, sub, app, lambda: app.state_seq == seqr.last and sub.ready, "the next ten records")
    assert app.applied == list(range(app.snapshots[0] + 1, seqr.last + 1))
    assert app.snapshots == [50]
    sub.close()


def test_subscriber_paused_past_its_hwm_detects_the_gap_and_recovers(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    eps = Endpoints("ipc", ipc_dir)
    seqr = TinySequencer(ctx, eps.bind("pub"), eps.bind("sync"), sndhwm_msgs=10)
    app = App()
    sub = make_subscriber(ctx, seqr, app, rcvhwm_msgs=10)
    pump(seqr, sub, app, lambda: sub.ready, "the subscriber to be live")
    seqr.publish(5)
    pump(seqr, sub, app, lambda: app.state_seq == 5, "records 1-5")
    assert sub.follower.stats.gaps == 0

    # Paused: the subscriber does not read while the sequencer publishes far past both HWMs.
    seqr.publish(4000)
    seqr.publish(1)  # ... and one more once the queue is full: certainly dropped
    pump(seqr, sub, app, lambda: app.state_seq == seqr.last and sub.ready, "recovery")

    assert app.applied == list(range(1, seqr.last + 1))  # each once, in order, none missing
    assert sub.follower.stats.gaps >= 1
    assert seqr.served["RangeRequest"] >= 1
    assert app.snapshots == [0]  # recovered by ranges, not by starting over
    sub.close()


def test_sequencer_restart_is_noticed_within_three_heartbeats_and_resynced(
    ctx: zmq.Context[Any], ipc_dir: Path
) -> None:
    eps = Endpoints("ipc", ipc_dir)
    pub_ep, sync_ep = eps.bind("pub"), eps.bind("sync")
    seqr = TinySequencer(ctx, pub_ep, sync_ep)
    app = App()
    statuses: list[Any] = []
    sub = make_subscriber(ctx, seqr, app, on_message=statuses.append)
    pump(seqr, sub, app, lambda: sub.ready, "live")
    seqr.publish(3)
    pump(seqr, sub, app, lambda: sub.ready and app.state_seq == 3, "live at 3")
    history = seqr.history

    seqr.close()  # the sequencer dies
    died = time.monotonic()
    wait_until(lambda: not sub.sequencer_alive, lambda: app.apply(sub.poll(5)), "silence to be noticed")
    noticed_after = time.monotonic() - died
    assert not sub.ready
    assert noticed_after < 1.0  # three 50 ms heartbeats (0.15 s), plus generous scheduling slack
    silent = [s for s in statuses if isinstance(s, PeerStatus) and not s.alive]
    assert len(silent) == 1 and silent[0].peer == "sequencer" and silent[0].missed_heartbeats >= 3

    # It comes back from its journal with records the subscriber never saw.
    seqr = _rebind(ctx, pub_ep, sync_ep)
    seqr.history = [*history, rec(4), rec(5)]
    pump(seqr, sub, app, lambda: sub.ready and app.state_seq == 5, "resync after the restart")
    assert app.applied == [1, 2, 3, 4, 5] and app.snapshots == [0]
    assert sub.sequencer_alive
    sub.close()


def _rebind(ctx: zmq.Context[Any], pub_ep: str, sync_ep: str) -> TinySequencer:
    """Bind again on the same ipc paths (the closed sockets release them asynchronously)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return TinySequencer(ctx, pub_ep, sync_ep)
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_following_from_the_first_record_needs_no_snapshot(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    eps = Endpoints("ipc", ipc_dir)
    seqr = TinySequencer(ctx, eps.bind("pub"), eps.bind("sync"))
    seqr.publish(2)  # missed (slow joiner), fetched by range
    app = App()
    app.state_seq = 0  # a recorder: everything from seq 1
    sub = Subscriber(
        ctx,
        bound_endpoint(seqr.pub),
        bound_endpoint(seqr.sync),
        follower=StreamFollower(applied_seq_id=0),
        heartbeat_interval_ms=50,
        request_timeout_ms=200,
    )
    pump(seqr, sub, app, lambda: sub.ready and app.state_seq == 2, "records 1-2")
    seqr.publish(1)
    pump(seqr, sub, app, lambda: app.state_seq == 3, "record 3")
    assert app.applied == [1, 2, 3] and app.snapshots == []
    assert sub.follower.state is FollowerState.LIVE
    sub.close()


# --------------------------------------------------------------------------------------------
# the producer's window


def test_envelopes_wait_for_the_sequencer_and_go_out_in_order(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    endpoint = Endpoints("ipc", ipc_dir).bind("ingress")
    client = IngressClient(ctx, endpoint)  # nothing bound there yet
    for n in (1, 2, 3):
        assert client.send(envelope(n)) is False  # IMMEDIATE: no connection, so it waits
    assert client.unsent == 3 and client.unacked == 3

    server = ingress_server(ctx, endpoint)
    got: list[Any] = []

    def step() -> None:
        client.poll(5)
        _collect(server, FrameCodec(INGRESS), got)

    wait_until(lambda: len(got) == 1, step, "3 envelopes")
    # They waited side by side, so they go in one frame, in order.
    assert isinstance(got[0][1], EnvelopeBatch)
    assert [e.producer_seq for e in got[0][1].envelopes] == [1, 2, 3]
    assert client.unsent == 0 and client.unacked == 3


def test_window_is_bounded_and_refusals_leave_it(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    server = ingress_server(ctx, Endpoints("ipc", ipc_dir).bind("ingress"))
    client = IngressClient(ctx, bound_endpoint(server), max_unacked=2)
    client.send(envelope(1))
    client.send(envelope(2))
    with pytest.raises(IngressBackpressure):
        client.send(envelope(3))
    assert client.unacked == 2

    got: list[Any] = []
    wait_until(lambda: _count_envelopes(got) == 2, lambda: _collect(server, FrameCodec(INGRESS), got, client), "2 envelopes")
    identity = got[0][0]
    out = FrameCodec(INGRESS_REPLY)
    server.send_multipart([identity, *out.encode(IngressAck(producer_id="feed-1", producer_seq=1, seq_id=1))])
    server.send_multipart(
        [identity, *out.encode(IngressRefused(reason="version", detail="no", producer_id="feed-1", producer_seq=2))]
    )
    server.send_multipart([identity, b"junk", b""])  # counted, not fatal
    replies: list[Any] = []
    wait_until(
        lambda: len(replies) == 2 and bool(client.counters.refused),
        lambda: replies.extend(client.poll(20)),
        "ack, refusal and junk",
    )
    assert client.unacked == 0
    assert client.counters.refused == {"unknown_kind": 1}
    assert client.counters.frames_in == 2
    client.send(envelope(3))  # room again


def test_resend_after_reconnect_repeats_every_unacked_envelope_in_order(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    endpoint = Endpoints("ipc", ipc_dir).bind("ingress")
    server = ingress_server(ctx, endpoint)
    client = IngressClient(ctx, endpoint)
    for n in (1, 2, 3):
        client.send(envelope(n))  # one frame each, or batched while the connection is not up yet
    got: list[Any] = []
    codec = FrameCodec(INGRESS)
    wait_until(lambda: _count_envelopes(got) == 3, lambda: _collect(server, codec, got, client), "first copies")
    identity = got[0][0]
    server.send_multipart([identity, *FrameCodec(INGRESS_REPLY).encode(IngressAck(producer_id="feed-1", producer_seq=1, seq_id=9))])
    wait_until(lambda: client.unacked == 2, lambda: client.poll(10), "the ack of #1")

    assert client.resend_unacked() == 2
    again: list[Any] = []
    wait_until(lambda: len(again) == 1, lambda: _collect(server, codec, again, client), "the re-sent copies")
    assert [e.producer_seq for e in again[0][1].envelopes] == [2, 3]  # in order, one frame
    # Acks are cumulative: the ack of #3 covers #2 as well.
    server.send_multipart([identity, *FrameCodec(INGRESS_REPLY).encode(IngressAck(producer_id="feed-1", producer_seq=3, seq_id=11))])
    wait_until(lambda: client.unacked == 0, lambda: client.poll(10), "the ack of #3")


def test_heartbeats_never_overtake_waiting_envelopes(ctx: zmq.Context[Any], ipc_dir: Path) -> None:
    client = IngressClient(ctx, Endpoints("ipc", ipc_dir).bind("nobody"))
    hb = Heartbeat(peer="feed-1", role=PeerRole.FEED, sent_ns=1)
    assert client.send_heartbeat(hb) is False  # not connected: dropped, counted
    client.send(envelope(1))
    assert client.send_heartbeat(hb) is False
    assert client.counters.dropped == {"heartbeat": 2}
    assert client.unsent == 1
