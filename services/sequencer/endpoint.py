"""The sequencer's sockets: ingress (ROUTER), publication (PUB) and sync (ROUTER), with their codecs.

Everything that touches a socket in the sequencer process goes through `SequencerSockets`, so the
service and the lockstep driver share one place where frames are decoded, refused and counted,
published, and where snapshots and ranges are served.

The ZAP handler starts before any socket binds when an endpoint is TCP (RELIABILITY F2); without
security configured a TCP endpoint is refused by the profile (unless explicitly allowed plaintext).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec
import zmq

from bus import limits
from bus.codec import (
    INGRESS,
    INGRESS_REPLY,
    PUBLICATION,
    SEQUENCED_KIND,
    SYNC_REPLY,
    SYNC_REQUEST,
    FrameCodec,
    FrameError,
    encode_sequenced_batch,
)
from bus.resync import range_replies
from bus.security import CurveServer, ZapAuthenticator, peer_identity, public_key_path, secret_key_path
from bus.sockets import Counters, ingress_server, publisher, sync_server
from schemas.bus import (
    MAX_BATCH_ITEMS,
    EnvelopeBatch,
    Heartbeat,
    IngressAck,
    IngressRefused,
    PeerRole,
    RangeRequest,
    Sequenced,
    SnapshotReply,
    SnapshotRequest,
    SyncRefused,
)
from schemas.envelope import Envelope
from services.deploy.profile import Profile
from services.sequencer.core import SequencerCore
from services.sequencer.core.book import state_hash_of

__all__ = ["PUBLISHED_RING_RECORDS", "Inbound", "PublishedRing", "SequencerSockets"]

log = logging.getLogger(__name__)

# Records kept in memory to answer range requests. A subscriber further behind than this gets a
# snapshot instead (the Clone pattern's fallback): 100k records is ~50 MB at the ~500 B a record
# measures, and covers minutes of a live feed or a whole small backtest.
PUBLISHED_RING_RECORDS: Final = 100_000
SEQUENCER_PEER: Final = "sequencer"

_NOBLOCK: Final = int(zmq.NOBLOCK)
_NOBLOCK_MORE: Final = int(zmq.NOBLOCK | zmq.SNDMORE)


class Inbound(NamedTuple):
    """One decoded ingress message and who sent it (routing id; authenticated name, if any).

    A named tuple, not a frozen dataclass: one is built per ingress frame, and a frozen
    dataclass's __init__ costs several times more."""

    routing_id: bytes
    identity: str | None
    message: object


class PublishedRing:
    """The last PUBLISHED_RING_RECORDS records published, for range requests."""

    def __init__(self, capacity: int = PUBLISHED_RING_RECORDS) -> None:
        self._records: deque[Sequenced] = deque(maxlen=capacity)

    def append(self, record: Sequenced) -> None:
        self._records.append(record)

    def extend(self, records: Iterable[Sequenced]) -> None:
        self._records.extend(records)

    def clear(self) -> None:
        self._records.clear()

    def range(self, first: int, last: int) -> list[Sequenced] | None:
        """Records first..last inclusive, or None when the ring no longer (or never) held first."""
        records = self._records
        if not records or first < records[0].seq_id or first > records[-1].seq_id + 1:
            return None
        start = first - records[0].seq_id
        stop = min(last, records[-1].seq_id) - records[0].seq_id + 1
        return [records[i] for i in range(start, max(start, stop))]


class SequencerSockets:
    """Ingress, publication and sync for one sequencer, with ZAP when any endpoint is TCP.

    Args:
        profile: endpoints and security.
        core_of: returns the core whose state sync serves (the lockstep driver swaps cores).
    """

    def __init__(self, profile: Profile, core_of: Callable[[], SequencerCore]) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.core_of = core_of
        self.counters = Counters()
        self.ring = PublishedRing()
        self.zap: ZapAuthenticator | None = None
        security = None
        endpoints = profile.endpoints
        secured = profile.security.curve and any(e.startswith("tcp://") for _, e in endpoints.named())
        if secured:
            keys_dir = profile.security.keys_dir
            assert keys_dir is not None and profile.security.server_key is not None
            server = CurveServer.from_files(
                secret_key_path(keys_dir, profile.security.server_key),
                _peer_key_files(keys_dir, profile.security.server_key),
            )
            self.zap = ZapAuthenticator(self.ctx, server)
            self.zap.start()  # before any bind: without it libzmq lets every CURVE client in (F2)
            security = server
        self.secured = secured
        # Identities (ZAP User-Id) exist only where ingress itself runs CURVE. Elsewhere a frame
        # is received as bytes (copy=True is cheaper than a zmq.Frame for small messages) and
        # its metadata is never asked for (on ipc `Frame.get("User-Id")` raises per frame).
        self.ingress_secured = secured and _tcp(endpoints.ingress)
        self.ingress = ingress_server(self.ctx, endpoints.ingress, security=security if _tcp(endpoints.ingress) else None)
        self.pub = publisher(self.ctx, endpoints.publication, security=security if _tcp(endpoints.publication) else None)
        self.sync = sync_server(self.ctx, endpoints.sync, security=security if _tcp(endpoints.sync) else None)
        self.ingress_codec = FrameCodec(INGRESS)
        self.reply_codec = FrameCodec(INGRESS_REPLY)
        self.pub_codec = FrameCodec(PUBLICATION)
        self._record_encoder = msgspec.msgpack.Encoder()  # one Sequenced at a time, for batches
        self.sync_request_codec = FrameCodec(SYNC_REQUEST)
        self.sync_reply_codec = FrameCodec(SYNC_REPLY)
        self.poller = zmq.Poller()
        self.poller.register(self.ingress, zmq.POLLIN)
        self.poller.register(self.sync, zmq.POLLIN)

    # ------------------------------------------------------------------ ingress

    def poll(self, timeout_ms: int) -> tuple[bool, bool]:
        """Wait up to `timeout_ms`; (ingress readable, sync readable)."""
        ready = dict(self.poller.poll(timeout_ms))
        return self.ingress in ready, self.sync in ready

    def receive(self, max_messages: int = limits.POLL_BATCH_MSGS) -> list[Inbound]:
        """Decode what ingress holds; refuse and count what does not decode.

        Stops once `max_messages` messages are taken, counting each envelope of an
        `EnvelopeBatch` (returned whole, as one `Inbound`) as one: so at most `max_messages`
        plus one batch's envelopes less one (schemas.bus.MAX_BATCH_ITEMS - 1).
        """
        received: list[Inbound] = []
        recv_multipart = self.ingress.recv_multipart
        secured = self.ingress_secured
        counters = self.counters
        identity: str | None = None
        taken = 0
        while taken < max_messages:
            try:
                if secured:
                    parts = recv_multipart(_NOBLOCK, copy=False)
                    routing_id = parts[0].bytes
                    identity = peer_identity(parts[1]) if len(parts) > 1 else None
                    frames: list[Any] = parts
                else:
                    frames = recv_multipart(_NOBLOCK)
                    routing_id = frames[0]
            except zmq.Again:
                break
            counters.frames_in += 1
            try:
                message = self.ingress_codec.decode(frames[1:])
            except FrameError as exc:
                self.counters.refuse(exc.reason)
                log.warning("ingress: refused a frame from %s: %s %s", identity or routing_id.hex(), exc.reason, exc.detail)
                self.reply(routing_id, IngressRefused(reason=exc.reason, detail=exc.detail))
                taken += 1
                continue
            received.append(Inbound(routing_id, identity, message))
            taken += len(message.envelopes) if type(message) is EnvelopeBatch else 1
        return received

    def reply(self, routing_id: bytes, message: IngressAck | IngressRefused) -> None:
        kind, body = self.reply_codec.encode(message)
        send = self.ingress.send
        try:
            # Part by part: send_multipart's per-call overhead is measurable at 100k+ messages/s.
            # ROUTER_MANDATORY refuses on the routing-id part, before anything is queued.
            send(routing_id, _NOBLOCK_MORE)
            send(kind, _NOBLOCK_MORE)
            send(body, _NOBLOCK)
            self.counters.frames_out += 1
        except (zmq.Again, zmq.ZMQError):  # peer gone (ROUTER_MANDATORY) or its queue full: it re-sends
            self.counters.drop("reply_undeliverable")

    def acknowledge(self, routing_id: bytes, env: Envelope, seq_id: int) -> None:
        self.reply(routing_id, IngressAck(producer_id=env.producer_id, producer_seq=env.producer_seq, seq_id=seq_id))

    # ------------------------------------------------------------------ publication

    def publish(self, message: Sequenced | Heartbeat | object) -> None:
        """Publish; a `Sequenced` is also kept for range requests. PUB drops at its HWM per
        subscriber (which then resyncs): never blocks."""
        if isinstance(message, Sequenced):
            self.ring.append(message)
        kind, body = self.pub_codec.encode(message)  # type: ignore[arg-type]
        send = self.pub.send
        send(kind, _NOBLOCK_MORE)
        send(body, _NOBLOCK)
        self.counters.frames_out += 1

    def publish_records(self, records: Sequence[Sequenced]) -> None:
        """Publish consecutive records (contiguous seq ids, ascending), kept for range requests.

        As few frames as the limits allow: a `SequencedBatch` of up to MAX_BATCH_ITEMS records
        cut before it would pass limits.PUBLICATION_BATCH_MAX_BYTES, or a lone `Sequenced`.
        Each record is encoded once. Never blocks (PUB drops at its HWM, see `publish`).

        Raises:
            FrameError: ``oversized``: one record is larger than the publication channel allows
                (the records before it were published; as with `publish`, fatal for the book).
        """
        self.ring.extend(records)
        encode = self._record_encoder.encode
        max_record = PUBLICATION.max_bytes
        max_batch = limits.PUBLICATION_BATCH_MAX_BYTES
        chunk: list[bytes] = []
        size = 0
        for record in records:
            body = encode(record)
            n = len(body)
            if n > max_record:
                if chunk:
                    self._send_records(chunk)
                raise FrameError("oversized", f"sequenced body is {n} bytes, channel publication allows {max_record}")
            if chunk and (size + n > max_batch or len(chunk) >= MAX_BATCH_ITEMS):
                self._send_records(chunk)
                chunk, size = [], 0
            chunk.append(body)
            size += n
        if chunk:
            self._send_records(chunk)

    def _send_records(self, bodies: list[bytes]) -> None:
        kind, body = (SEQUENCED_KIND, bodies[0]) if len(bodies) == 1 else encode_sequenced_batch(bodies)
        send = self.pub.send
        send(kind, _NOBLOCK_MORE)
        send(body, _NOBLOCK)
        self.counters.frames_out += 1

    def heartbeat(self, now_ns: int) -> None:
        self.publish(
            Heartbeat(peer=SEQUENCER_PEER, role=PeerRole.SEQUENCER, sent_ns=now_ns, last_seq_id=self.core_of().seq_id)
        )

    # ------------------------------------------------------------------ sync

    def serve_sync(self, max_requests: int = 16) -> None:
        """Answer snapshot and range requests waiting on the sync socket."""
        for _ in range(max_requests):
            try:
                frames = self.sync.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            routing_id = frames[0]
            try:
                request = self.sync_request_codec.decode(frames[1:])
            except FrameError as exc:
                self.counters.refuse(f"sync_{exc.reason}")
                continue
            if isinstance(request, SnapshotRequest):
                core = self.core_of()
                snapshot = core.snapshot()
                self._send_sync(
                    routing_id,
                    SnapshotReply(
                        request_id=request.request_id,
                        seq_id=snapshot.seq_id,
                        state_hash=state_hash_of(snapshot),
                        snapshot=snapshot,
                    ),
                )
            else:
                assert isinstance(request, RangeRequest)
                self._serve_range(routing_id, request)

    def _serve_range(self, routing_id: bytes, request: RangeRequest) -> None:
        last = request.to_seq_id or self.core_of().seq_id
        records = self.ring.range(request.from_seq_id, last)
        if records is None:
            self._send_sync(
                routing_id,
                SyncRefused(
                    request_id=request.request_id,
                    reason="range_unavailable",
                    detail=f"seq {request.from_seq_id}..{last} is not held (ask for a snapshot)",
                ),
            )
            return
        for reply in range_replies(request.request_id, records):
            self._send_sync(routing_id, reply)

    def _send_sync(self, routing_id: bytes, message: object) -> None:
        try:
            self.sync.send_multipart([routing_id, *self.sync_reply_codec.encode(message)], zmq.NOBLOCK)  # type: ignore[arg-type]
        except (zmq.Again, zmq.ZMQError):
            self.counters.drop("sync_undeliverable")  # the follower times out and asks again

    def close(self) -> None:
        for socket in (self.ingress, self.pub, self.sync):
            socket.close(linger=0)
        if self.zap is not None:
            self.zap.stop()
        self.ctx.term()


def _tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def _peer_key_files(keys_dir: Path, server_name: str) -> list[str]:
    """Every public key in keys_dir but the server's own: the peers allowed in, by name."""
    server = public_key_path(keys_dir, server_name)
    return [str(p) for p in sorted(keys_dir.glob("*.key")) if p != server]
