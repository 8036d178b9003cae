"""Two helpers that keep service code short: a producer's ingress connection and a subscriber.

Both are synchronous and poll-driven: `poll(timeout_ms)` waits at most that long, handles what
arrived and returns. Nothing here blocks without a timeout (sockets are made with SNDTIMEO =
RCVTIMEO = 0; every send and receive is non-blocking), so a service loop stays in charge of time.

`IngressClient` (producer side of ARCHITECTURE "Backpressure": envelopes are never dropped):
every envelope sent stays in a bounded window, keyed by (producer_id, producer_seq), until the
sequencer acknowledges it or refuses it. Acknowledgements are cumulative (`IngressAck`, sent once
journaled, covers every envelope of its producer up to its producer_seq), so the window also
keeps, per producer, its producer_seqs in ascending order and forgets a prefix per ack. Envelopes
the socket would not take yet (no connection, queue full), or handed over together
(`send_batch`), wait in order and go out on the next `poll`/`flush`, side by side ones as one
`EnvelopeBatch` frame. After a reconnect (the sequencer restarted: its heartbeat came back) the
producer calls `resend_unacked`; the core drops repeats by producer_seq, so re-sending is always
safe.

`Subscriber`: a SUB socket, a sync DEALER and a `StreamFollower` (`bus.resync`), plus a
`HeartbeatMonitor` for the sequencer. `poll` returns the records to apply, in seq order, each
exactly once (a `SequencedBatch` is expanded into its records); snapshots go to a callback
before the records that follow them. `ready` is False while the follower resyncs or the
sequencer is silent.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final

import zmq

from bus import limits
from bus.codec import (
    ENVELOPE_BATCH_OVERHEAD_BYTES,
    ENVELOPE_KIND,
    INGRESS,
    INGRESS_REPLY,
    PUBLICATION,
    SYNC_REPLY,
    SYNC_REQUEST,
    FrameCodec,
    FrameError,
    encode_envelope_batch,
)
from bus.heartbeat import HeartbeatMonitor
from bus.resync import FollowerState, StreamFollower
from bus.sockets import Context, Counters, Security, Socket, ingress_client, subscriber, sync_client
from schemas.bus import (
    MAX_BATCH_ITEMS,
    Heartbeat,
    IngressAck,
    IngressRefused,
    PeerRole,
    PeerStatus,
    RangeReply,
    Sequenced,
    SequencedBatch,
    SnapshotReply,
    SnapshotRequest,
    SyncRefused,
    TurnDone,
    TurnRequest,
)
from schemas.envelope import Envelope

__all__ = ["IngressBackpressure", "IngressClient", "Subscriber"]

_NS_PER_MS: Final = 1_000_000

_Key = tuple[str, int]  # (producer_id, producer_seq)


class IngressBackpressure(Exception):
    """The unacknowledged window is full: poll for acknowledgements before sending more."""


class IngressClient:
    """A producer's connection to the sequencer's ingress (DEALER).

    Envelopes that wait together in the queue (`send_batch`, or a socket that could not take
    them yet) go out as one `EnvelopeBatch` frame of up to `MAX_BATCH_ITEMS` envelopes and
    `MAX_INGRESS_BYTES`; one envelope alone goes as a plain `envelope` frame, at once.

    Args:
        ctx: the ZeroMQ context.
        endpoint: the sequencer's ingress endpoint.
        security: applied before connecting (`bus.sockets.Security`).
        routing_id: optional stable identity for the sequencer's logs.
        max_unacked: window size (`limits.INGRESS_MAX_UNACKED`).
    """

    def __init__(
        self,
        ctx: Context,
        endpoint: str,
        *,
        security: Security | None = None,
        routing_id: bytes | None = None,
        max_unacked: int = limits.INGRESS_MAX_UNACKED,
    ) -> None:
        assert max_unacked >= 1
        self.socket: Socket = ingress_client(ctx, endpoint, security=security, routing_id=routing_id)
        self.counters = Counters()
        self.max_unacked = max_unacked
        self._out = FrameCodec(INGRESS)
        self._in = FrameCodec(INGRESS_REPLY)
        # Envelope bodies (encoded once) by key; insertion order = first-send order.
        self._unacked: dict[_Key, bytes] = {}
        # Per producer, the producer_seqs in the window, ascending: a cumulative ack forgets a
        # prefix of it (see `IngressAck`). A refused entry lingers until an ack passes it.
        self._window: dict[str, deque[int]] = {}
        # Not yet written to the socket, in order: the key of an envelope (skipped if acked
        # meanwhile), or the frames of a TurnDone, which must follow its turn's envelopes.
        self._queue: deque[_Key | list[bytes]] = deque()

    @property
    def unacked(self) -> int:
        """Envelopes sent (or waiting to be) and not yet acknowledged or refused."""
        return len(self._unacked)

    @property
    def unsent(self) -> int:
        """Messages waiting for the socket to take them (an envelope counts one)."""
        return len(self._queue)

    def send(self, envelope: Envelope) -> bool:
        """Send an envelope; it stays in the window until acknowledged.

        Returns:
            True if it was written to the socket now; False if it waits (no connection yet, or
            the socket's queue is full): the next `poll` or `flush` sends it.

        Raises:
            IngressBackpressure: the window is full (nothing was queued).
            FrameError: ``oversized``: the envelope is larger than ingress accepts (not queued).
        """
        key = (envelope.producer_id, envelope.producer_seq)
        unacked = self._unacked
        new = key not in unacked
        if new and len(unacked) >= self.max_unacked:
            raise IngressBackpressure(f"{len(unacked)} envelopes unacknowledged (limit {self.max_unacked})")
        body = self._out.encode(envelope)[1]
        if new:
            self._track(key)
        unacked[key] = body
        self._queue.append(key)
        self.flush()
        return not self._queue  # FIFO: if anything still waits, this envelope (the last) does

    def send_batch(self, envelopes: Sequence[Envelope]) -> bool:
        """Send several envelopes, in order, in as few frames as the limits allow.

        Each stays in the window until acknowledged, as with `send`.

        Returns:
            True if all were written to the socket now; False if some wait (see `send`).

        Raises:
            IngressBackpressure: the window has no room for all of them (nothing was queued).
            FrameError: ``oversized``: one envelope is larger than ingress accepts (nothing was
                queued).
        """
        unacked = self._unacked
        encode = self._out.encode
        keyed = [((env.producer_id, env.producer_seq), encode(env)[1]) for env in envelopes]
        new = len({key for key, _ in keyed if key not in unacked})
        if len(unacked) + new > self.max_unacked:
            raise IngressBackpressure(
                f"{len(unacked)} envelopes unacknowledged, {new} more would pass the limit {self.max_unacked}"
            )
        queue = self._queue
        for key, body in keyed:
            if key not in unacked:
                self._track(key)
            unacked[key] = body
            queue.append(key)
        self.flush()
        return not queue

    def send_turn_done(self, message: TurnDone) -> bool:
        """Queue a TurnDone behind every envelope already queued (lockstep order). Never dropped."""
        self._queue.append(self._out.encode(message))
        self.flush()
        return not self._queue

    def send_heartbeat(self, heartbeat: Heartbeat) -> bool:
        """Send a heartbeat now if the socket takes it; a heartbeat that cannot go is dropped
        (counted as ``dropped.heartbeat``): the next one carries fresher news.

        Returns:
            True if it was sent.
        """
        if self._queue:  # never overtake waiting envelopes; they show we are alive anyway
            self.counters.drop("heartbeat")
            return False
        return self._write(self._out.encode(heartbeat), drop_cause="heartbeat")

    def flush(self) -> int:
        """Write waiting messages until the socket refuses one; envelopes waiting side by side
        go as one `EnvelopeBatch` frame (within the ingress limits).

        Returns:
            How many queued messages were written (an envelope counts one, batched or not).
        """
        written = 0
        queue = self._queue
        unacked = self._unacked
        max_bytes = INGRESS.max_bytes
        while queue:
            head = queue[0]
            if type(head) is list:  # a TurnDone's frames
                if not self._write(head, drop_cause=None):
                    break
                queue.popleft()
                written += 1
                continue
            # A run of envelopes: as many as one frame may hold.
            bodies: list[bytes] = []
            size = ENVELOPE_BATCH_OVERHEAD_BYTES
            taken = 0
            for entry in queue:
                if type(entry) is list:
                    break
                body = unacked.get(entry)  # type: ignore[arg-type]
                if body is not None:
                    if bodies and (len(bodies) >= MAX_BATCH_ITEMS or size + len(body) > max_bytes):
                        break
                    bodies.append(body)
                    size += len(body)
                # else: acknowledged (an earlier copy arrived) before it went out again
                taken += 1
            if bodies:
                frames = [ENVELOPE_KIND, bodies[0]] if len(bodies) == 1 else encode_envelope_batch(bodies)
                if not self._write(frames, drop_cause=None):
                    break
            for _ in range(taken):
                queue.popleft()
            written += len(bodies)
        return written

    def resend_unacked(self) -> int:
        """Queue again every unacknowledged envelope already written (after a reconnect).

        Their copies may have died with the old connection; the sequencer drops repeats.

        Returns:
            How many envelopes were queued again.
        """
        waiting = {entry for entry in self._queue if type(entry) is tuple}
        again = [key for key in self._unacked if key not in waiting]
        self._queue.extendleft(reversed(again))  # they precede anything still waiting
        self.flush()
        return len(again)

    def poll(self, timeout_ms: int) -> list[IngressAck | IngressRefused]:
        """Flush, wait up to `timeout_ms` for replies, and apply them to the window.

        Returns:
            The acknowledgements and refusals received, in arrival order. A refusal naming an
            envelope removes it from the window too: re-sending would be refused again.
        """
        self.flush()
        events = zmq.POLLIN | (zmq.POLLOUT if self._queue else 0)
        if self.socket.poll(timeout_ms, events):
            self.flush()
        replies: list[IngressAck | IngressRefused] = []
        for _ in range(limits.POLL_BATCH_MSGS):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                reply = self._in.decode(frames)
            except FrameError as exc:
                self.counters.refuse(exc.reason)
                continue
            self.counters.frames_in += 1
            if type(reply) is IngressAck:
                self._forget_through(reply.producer_id, reply.producer_seq)
            elif reply.producer_id:  # an IngressRefused of a frame it could not read names nobody
                self._forget(reply.producer_id, reply.producer_seq)
            replies.append(reply)
        return replies

    def close(self) -> None:
        """Close the socket at once (linger 0). Poll until `unacked` is 0 first to be sure."""
        self.socket.close(linger=0)

    def _track(self, key: _Key) -> None:
        """Note a new window entry in its producer's ascending list."""
        producer_id, producer_seq = key
        seqs = self._window.get(producer_id)
        if seqs is None:
            self._window[producer_id] = deque((producer_seq,))
        elif not seqs or producer_seq > seqs[-1]:
            seqs.append(producer_seq)  # the usual case: a producer counts up
        else:
            bisect.insort(seqs, producer_seq)

    def _forget_through(self, producer_id: str, producer_seq: int) -> None:
        """A cumulative ack: drop every envelope of `producer_id` up to `producer_seq`."""
        seqs = self._window.get(producer_id)
        if seqs is None:
            return
        unacked = self._unacked
        while seqs and seqs[0] <= producer_seq:
            unacked.pop((producer_id, seqs.popleft()), None)
        if not seqs:
            del self._window[producer_id]

    def _forget(self, producer_id: str, producer_seq: int) -> None:
        """A refusal: drop that one envelope (its place in the window list goes when passed)."""
        if self._unacked.pop((producer_id, producer_seq), None) is None:
            return
        seqs = self._window.get(producer_id)
        if seqs is None:
            return
        while seqs and (producer_id, seqs[0]) not in self._unacked:
            seqs.popleft()
        if not seqs:
            del self._window[producer_id]

    def _write(self, frames: list[bytes], *, drop_cause: str | None) -> bool:
        try:
            self.socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            if drop_cause is not None:
                self.counters.drop(drop_cause)
            return False
        self.counters.frames_out += 1
        return True


OnSnapshot = Callable[[SnapshotReply], None]
OnMessage = Callable[[Heartbeat | PeerStatus | TurnRequest], None]


class Subscriber:
    """Follows the sequencer's publication without loss (SUB + sync DEALER + StreamFollower).

    Args:
        ctx: the ZeroMQ context.
        publication_endpoint: the sequencer's PUB endpoint.
        sync_endpoint: the sequencer's sync endpoint.
        on_snapshot: installs a snapshot; called before any record that follows it is returned.
            Required unless `follower` starts from a known seq id (then it is only called after
            a divergence, and the default refuses with an AssertionError).
        on_message: receives every other publication message (heartbeats, peer status, turn
            requests), in arrival order.
        follower: the state machine (default: a new one that starts from a snapshot).
        heartbeat_interval_ms: the sequencer's heartbeat interval (silence after 3 of them).
        request_timeout_ms: a sync request unanswered for this long is asked again.
        clock_ns: a monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        ctx: Context,
        publication_endpoint: str,
        sync_endpoint: str,
        *,
        on_snapshot: OnSnapshot | None = None,
        on_message: OnMessage | None = None,
        follower: StreamFollower | None = None,
        security: Security | None = None,
        heartbeat_interval_ms: int = limits.HEARTBEAT_INTERVAL_MS,
        request_timeout_ms: int = limits.SYNC_REQUEST_TIMEOUT_MS,
        rcvhwm_msgs: int = limits.PUBLICATION_RCVHWM_MSGS,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.follower = follower if follower is not None else StreamFollower()
        assert on_snapshot is not None or self.follower.state is not FollowerState.AWAITING_SNAPSHOT
        self._on_snapshot = on_snapshot if on_snapshot is not None else _no_snapshot
        self._on_message = on_message
        self._clock = clock_ns
        self._request_timeout_ns = request_timeout_ms * _NS_PER_MS
        self.monitor = HeartbeatMonitor(heartbeat_interval_ms)
        self.counters = Counters()
        # Subscribe first (Clone pattern): records published while the snapshot is fetched are
        # buffered, not missed.
        self.sub: Socket = subscriber(ctx, publication_endpoint, security=security, rcvhwm_msgs=rcvhwm_msgs)
        try:
            self.sync: Socket = sync_client(ctx, sync_endpoint, security=security)
        except BaseException:
            self.sub.close(linger=0)
            raise
        self._pub_codec = FrameCodec(PUBLICATION)
        self._sync_in = FrameCodec(SYNC_REPLY)
        self._sync_out = FrameCodec(SYNC_REQUEST)
        self._poller = zmq.Poller()
        self._poller.register(self.sub, zmq.POLLIN)
        self._poller.register(self.sync, zmq.POLLIN)
        self._sequencer: str | None = None  # the sequencer's peer id, from its first heartbeat
        self._sequencer_alive = False
        self._request_sent_ns = 0
        self._stashed_snapshot: SnapshotReply | None = None

    @property
    def ready(self) -> bool:
        """True when every record known to be published has been applied and the sequencer is
        heard from: a gateway may act on what it has applied."""
        return self._sequencer_alive and self.follower.ready

    @property
    def sequencer_alive(self) -> bool:
        return self._sequencer_alive

    def poll(self, timeout_ms: int) -> list[Sequenced]:
        """Wait up to `timeout_ms`, handle what arrived, and return the records to apply.

        Returns:
            Records in seq order, each exactly once across calls. A snapshot is passed to
            `on_snapshot` before the records that follow it are returned.
        """
        now = self._clock()
        out: list[Sequenced] = []
        if self._stashed_snapshot is not None:
            reply, self._stashed_snapshot = self._stashed_snapshot, None
            self._install(reply, out)
        self._request(now)
        ready = dict(self._poller.poll(timeout_ms))
        now = self._clock()
        if self.sync in ready:
            self._drain_sync(out)
        if self.sub in ready:
            self._drain_publication(out, now)
        for change in self.monitor.check(now):
            if change.peer == self._sequencer:
                self._sequencer_alive = change.alive
                if not change.alive:
                    # A request to a sequencer that went silent is lost with it.
                    self.follower.abandon_request()
            if self._on_message is not None:
                self._on_message(change.to_status())
        self._request(now)
        return out

    def close(self) -> None:
        self._poller.unregister(self.sub)
        self._poller.unregister(self.sync)
        self.sub.close(linger=0)
        self.sync.close(linger=0)

    # ----------------------------------------------------------------------------------------

    def _request(self, now: int) -> None:
        """Send the follower's next request, or ask again after a timeout."""
        follower = self.follower
        if follower.outstanding is not None and now - self._request_sent_ns >= self._request_timeout_ns:
            self.counters.drop("sync_timeout")
            follower.abandon_request()
        if not self._sequencer_alive and self._sequencer is not None:
            return  # it is silent: wait for its heartbeat rather than queue requests for nobody
        request = follower.next_request()
        if request is None:
            return
        try:
            self.sync.send_multipart(self._sync_out.encode(request), zmq.NOBLOCK)
        except zmq.Again:  # no connection yet (IMMEDIATE) or queue full: ask again next poll
            self.counters.drop("sync_unsent")
            follower.abandon_request()
            return
        self.counters.frames_out += 1
        self._request_sent_ns = now

    def _drain_sync(self, out: list[Sequenced]) -> None:
        for _ in range(limits.POLL_BATCH_MSGS):
            try:
                frames = self.sync.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self._sync_in.decode(frames)
            except FrameError as exc:
                self.counters.refuse(exc.reason)
                continue
            self.counters.frames_in += 1
            if isinstance(reply, RangeReply):
                out.extend(self.follower.on_range(reply))
            elif isinstance(reply, SyncRefused):
                self.follower.on_refused(reply)
            elif out:
                # Records before it must reach the application before the snapshot replaces
                # its state: hand them over now, install the snapshot at the next poll.
                self._stashed_snapshot = reply
                return
            else:
                self._install(reply, out)

    def _install(self, reply: SnapshotReply, out: list[Sequenced]) -> None:
        outstanding = self.follower.outstanding
        if (
            self.follower.state is not FollowerState.AWAITING_SNAPSHOT
            or not isinstance(outstanding, SnapshotRequest)
            or reply.request_id != outstanding.request_id
        ):
            self.follower.stats.stale_replies += 1  # a second answer; one snapshot was enough
            return
        self._on_snapshot(reply)
        out.extend(self.follower.on_snapshot(reply.seq_id))

    def _drain_publication(self, out: list[Sequenced], now: int) -> None:
        """Up to POLL_BATCH_MSGS messages, a `SequencedBatch` counting its records (one frame is
        never split, so a call may take a batch's records more): a call's work stays bounded."""
        follower = self.follower
        taken = 0
        while taken < limits.POLL_BATCH_MSGS:
            taken += 1
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message = self._pub_codec.decode(frames)
            except FrameError as exc:
                self.counters.refuse(exc.reason)
                continue
            self.counters.frames_in += 1
            if isinstance(message, SequencedBatch):  # records in order, each as if published alone
                taken += len(message.records) - 1
                if self._sequencer is not None:
                    self.monitor.seen(self._sequencer, PeerRole.SEQUENCER, now)
                out.extend(follower.on_records(message.records))
                continue
            if isinstance(message, Sequenced):
                if self._sequencer is not None:
                    self.monitor.seen(self._sequencer, PeerRole.SEQUENCER, now)
                out.extend(follower.on_record(message))
                continue
            if isinstance(message, Heartbeat) and message.role is PeerRole.SEQUENCER:
                if self._sequencer is None:
                    self._sequencer = message.peer
                if message.peer == self._sequencer:
                    self.monitor.seen(message.peer, message.role, now)
                    follower.on_heartbeat(message.last_seq_id)
            if self._on_message is not None:
                self._on_message(message)


def _no_snapshot(reply: SnapshotReply) -> None:
    raise AssertionError(f"snapshot at seq {reply.seq_id} received but no on_snapshot callback was given")
