"""Every limit of the transport, named, with why it has that value and what happens at it.

Sizes are in bytes, counts in messages (ZeroMQ high-water marks count messages, not bytes: one
message is one ``[kind, body]`` pair), times in the unit their name ends with. Sockets take
their values from here (`bus.sockets`); codecs take the frame-size limits (`bus.codec`), so the
sender refuses exactly what the receiving socket would drop.

Measured sizes behind the frame limits (msgspec MessagePack, every field on the wire):

- an envelope built from the schema's worst case (every id 64 four-byte UTF-8 characters, every
  integer at its bound, the widest payload): 2,737 bytes;
- the `Sequenced` records of the full-coverage contract run (every payload type through the real
  core): mean 477 bytes, largest 854 bytes, at most 2 outputs per input;
- a worst-case `Sequenced` (the worst envelope plus two worst-case outputs): 6,052 bytes, so a
  `RangeReply` of `MAX_RANGE_ITEMS` (1,000) of them is 6.05 MB; of realistic ones 0.5-0.9 MB.
"""

from __future__ import annotations

from typing import Final

from schemas.bus import MAX_RANGE_ITEMS

__all__ = [
    "CONFLATE_MAX_KEYS",
    "FOLLOWER_MAX_BUFFERED",
    "HANDSHAKE_IVL_MS",
    "HEARTBEAT_INTERVAL_MS",
    "INGRESS_MAX_UNACKED",
    "INGRESS_RCVHWM_MSGS",
    "INGRESS_REPLY_SNDHWM_MSGS",
    "INGRESS_SNDHWM_MSGS",
    "LINGER_MS",
    "MAX_INGRESS_BYTES",
    "MAX_MESSAGE_BYTES",
    "MAX_RANGE_ITEMS",
    "MAX_SNAPSHOT_BYTES",
    "MAX_SUBSCRIPTION_BYTES",
    "MAX_SYNC_REQUEST_BYTES",
    "MAX_TRACKED_PEERS",
    "POLL_BATCH_MSGS",
    "PUBLICATION_BATCH_MAX_BYTES",
    "PUBLICATION_RCVHWM_MSGS",
    "PUBLICATION_SNDHWM_MSGS",
    "RANGE_REPLY_TARGET_BYTES",
    "RECONNECT_IVL_MAX_MS",
    "RECONNECT_IVL_MS",
    "SILENT_AFTER_HEARTBEATS",
    "SYNC_CLIENT_RCVHWM_MSGS",
    "SYNC_CLIENT_SNDHWM_MSGS",
    "SYNC_REQUEST_TIMEOUT_MS",
    "SYNC_SERVER_RCVHWM_MSGS",
    "SYNC_SERVER_SNDHWM_MSGS",
    "TCP_KEEPALIVE_CNT",
    "TCP_KEEPALIVE_IDLE_S",
    "TCP_KEEPALIVE_INTVL_S",
    "ZMTP_HEARTBEAT_TIMEOUT_MS",
]

_KIB: Final = 1024
_MIB: Final = 1024 * _KIB

# --------------------------------------------------------------------------------------------
# Frame sizes (zmq.MAXMSGSIZE on the receiving socket; the codec refuses the same on sending).
# libzmq checks each part against MAXMSGSIZE while reading it and disconnects a peer that sends
# a larger one, so an oversized body never reaches our code (RELIABILITY E2). The sender's codec
# refuses the same size with FrameError("oversized"), so our own processes learn at once instead
# of seeing the peer disconnect and reconnect forever.

# Into the sequencer: one envelope (worst case 2.7 KB), an `EnvelopeBatch` of them, or a
# heartbeat / turn-done. Equal to the journal's per-record limit: an envelope the journal could
# not hold must not cross the socket (inside a batch, each envelope is smaller than the frame).
# This is the hostile-input boundary, so it is the tightest limit: a producer cannot make the
# sequencer read megabytes to find out a frame is garbage. Batches need no more: producers cut
# them at this size, which holds 250-300 realistic envelopes (about 220 B each), enough to make
# the per-frame cost negligible; a worst-case envelope simply travels in smaller batches. Also
# bounds the replies a producer receives (acks and refusals, at most 1.6 KB).
MAX_INGRESS_BYTES: Final = 64 * _KIB

# Everything the sequencer publishes and every range reply: one `Sequenced`, or a chunk of up to
# MAX_RANGE_ITEMS of them. A chunk of 1,000 worst-case records is 6.05 MB, so 8 MiB always holds
# a full chunk; range servers also cut chunks at RANGE_REPLY_TARGET_BYTES, so in practice replies
# are around 1 MiB. A single record larger than this (an input that expires thousands of orders
# at once) cannot be published: the sequencer's codec raises FrameError("oversized"), which the
# sequencer must treat as fatal for that book (its subscribers could never receive the record).
MAX_MESSAGE_BYTES: Final = 8 * _MIB

# The sequencer stops adding records to a `SequencedBatch` before it would pass this size (and at
# schemas.bus.MAX_BATCH_ITEMS records); a single larger record goes alone. 32 KiB is 60-150
# realistic records, which amortises the per-frame cost of PUB and SUB; it is kept small because
# the publication high-water marks count frames: PUBLICATION_SNDHWM_MSGS full batches must stay
# a bounded amount of memory per subscriber.
PUBLICATION_BATCH_MAX_BYTES: Final = 32 * _KIB

# Range servers stop adding records to a reply chunk once it reaches this size (besides the
# MAX_RANGE_ITEMS count), so a resync streams in chunks a subscriber can decode between polls
# without stalling its live stream. A single larger record still goes out, alone in its chunk.
RANGE_REPLY_TARGET_BYTES: Final = 1 * _MIB

# A snapshot reply holds the core's whole state, which the schema does not bound (orders, dedup
# tables). 256 MiB is about a million orders at a few hundred bytes each; a book larger than that
# cannot be synced over the bus: the sync server's codec refuses to encode it (it should answer
# SyncRefused instead), and a sync client drops a larger frame from anyone else.
MAX_SNAPSHOT_BYTES: Final = 256 * _MIB

# Sync requests are a few dozen bytes (a request id and two seq ids). Anything bigger is not a
# request: 4 KiB leaves room for schema growth and refuses abuse at the socket.
MAX_SYNC_REQUEST_BYTES: Final = 4 * _KIB

# A PUB socket only ever reads subscription frames; ours subscribe to everything (a 1-byte frame).
# A peer sending more than this to a publisher is misbehaving and is disconnected.
MAX_SUBSCRIPTION_BYTES: Final = 256

# --------------------------------------------------------------------------------------------
# High-water marks (messages, per peer connection). What happens at each is the policy of
# ARCHITECTURE "Backpressure": intents, reports and commands are never dropped; published
# records may be dropped by the PUB socket and are then recovered through the sync endpoint.

# Sequencer's ingress ROUTER, receive side, per producer. At the mark libzmq stops reading that
# producer's connection: TCP / IPC flow control pushes back into the producer (nothing is
# dropped). 10,000 realistic envelopes are about 5 MB per producer, several batches of the
# sequencer's drain loop; a producer further ahead than that should wait. The mark counts frames
# (an EnvelopeBatch is one); a well-behaved producer has at most INGRESS_MAX_UNACKED envelopes in
# flight however it frames them, and any producer at most this many frames of MAX_INGRESS_BYTES.
INGRESS_RCVHWM_MSGS: Final = 10_000

# Producer's DEALER, send side. At the mark a send raises zmq.Again (sockets never block, see
# bus.sockets); the envelope stays in the producer's unacknowledged window, unsent, and goes out
# on the next flush (several waiting envelopes go as one EnvelopeBatch). Kept below
# INGRESS_MAX_UNACKED so the window, not libzmq, is the buffer a producer can see and count.
INGRESS_SNDHWM_MSGS: Final = 1_000

# Sequencer's ingress ROUTER, send side (acks and refusals to one producer). With
# ROUTER_MANDATORY a full queue raises zmq.Again instead of dropping silently; the sequencer counts
# the lost ack, and the producer simply re-sends that envelope later and is acked again (the core
# drops the repeat by producer_seq).
INGRESS_REPLY_SNDHWM_MSGS: Final = 10_000

# How many envelopes a producer may have sent but not yet seen acknowledged. At the limit
# `IngressClient.send` refuses with IngressBackpressure: the producer must poll for acks before
# sending more (a feed may conflate meanwhile; intents and reports wait). 10,000 covers several
# seconds of a busy feed while the sequencer journals, and ten of the sequencer's loop batches
# (acks are cumulative, one per producer per batch): enough to keep it busy at full rate.
INGRESS_MAX_UNACKED: Final = 10_000

# Sequencer's PUB, per subscriber. At the mark PUB drops for that subscriber only (ZeroMQ's PUB
# never blocks): the subscriber sees a gap in seq ids and resyncs from the sync endpoint (E4).
# The mark counts frames, and a frame is one record or a batch of up to
# PUBLICATION_BATCH_MAX_BYTES: 10,000 frames are 10,000 records (about 5 MB) when the stream is
# quiet (one record per loop turn), at most about 320 MiB when every frame is a full batch, which
# is a few seconds of a stream at 150,000 records/s (~4 s of 500 B records). A subscriber further
# behind than that is better served by a range resync than by the sequencer buffering for it.
PUBLICATION_SNDHWM_MSGS: Final = 10_000

# Subscriber's SUB. At the mark libzmq stops reading the connection and the publisher's queue for
# this subscriber fills, then drops (as above). Same size as the publisher side.
PUBLICATION_RCVHWM_MSGS: Final = PUBLICATION_SNDHWM_MSGS

# Sync ROUTER, send side, per client: replies queued for one client (range chunks of about
# RANGE_REPLY_TARGET_BYTES, so up to about 100 MiB). At the mark a send raises zmq.Again
# (ROUTER_MANDATORY): the server abandons that stream; the client times out and asks again from
# where it got to.
SYNC_SERVER_SNDHWM_MSGS: Final = 100

# Sync ROUTER, receive side, per client. A follower has one request outstanding at a time; 100
# tolerates retries piling up while the server is busy, and stops a client that floods requests.
SYNC_SERVER_RCVHWM_MSGS: Final = 100

# Sync DEALER: a follower has one request outstanding at a time, so 10 is plenty; at the mark a
# send raises zmq.Again and the follower asks again after SYNC_REQUEST_TIMEOUT_MS.
SYNC_CLIENT_SNDHWM_MSGS: Final = 10

# Sync DEALER, receive side: room for every chunk the server may queue for us.
SYNC_CLIENT_RCVHWM_MSGS: Final = SYNC_SERVER_SNDHWM_MSGS

# --------------------------------------------------------------------------------------------
# Time.

# Heartbeats both ways every second: a silent peer becomes visible within
# SILENT_AFTER_HEARTBEATS seconds (RELIABILITY E6), at a cost of one tiny frame per second.
HEARTBEAT_INTERVAL_MS: Final = 1_000

# A peer is silent after this many intervals without a heartbeat or any other message. One
# missed heartbeat is normal jitter (a GC pause, a busy loop); three is a peer that is gone,
# hung or cut off. What happens: HeartbeatMonitor reports it silent (the sequencer publishes
# PeerStatus(alive=False)); a subscriber whose sequencer went silent is not `ready`.
SILENT_AFTER_HEARTBEATS: Final = 3

# How long a subscriber waits for a complete answer to a sync request before asking again (with
# a new request id; a late answer to the old one is still used, as records are immutable). Two
# heartbeat intervals: a live sequencer answers in milliseconds, a dead one is caught by the
# heartbeat monitor first.
SYNC_REQUEST_TIMEOUT_MS: Final = 2 * HEARTBEAT_INTERVAL_MS

# ZMTP-level PING/PONG on every connection (zmq.HEARTBEAT_IVL / HEARTBEAT_TIMEOUT): libzmq tears
# down a connection whose peer stopped answering (a host that vanished without closing TCP) and a
# connecting socket then reconnects on its own. Independent of our Heartbeat messages, which say
# whether the peer's *process* is alive and where its stream is.
ZMTP_HEARTBEAT_TIMEOUT_MS: Final = SILENT_AFTER_HEARTBEATS * HEARTBEAT_INTERVAL_MS

# A connection that has not finished its handshake (e.g. failing CURVE) within 5 s is closed,
# instead of libzmq's default 30 s: a half-open peer holds resources on the sequencer.
HANDSHAKE_IVL_MS: Final = 5_000

# Reconnect after 100 ms, backing off to 5 s: a restarted sequencer is found within 100 ms, a
# sequencer that stays down is not hammered by every peer 10 times a second.
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 5_000

# Closing a socket discards what it has not sent, at once. Nothing relies on libzmq flushing at
# close: producers keep unacknowledged envelopes and re-send them, subscribers resync, and a
# non-zero linger can hang process exit on a dead peer (the supervisor then has to kill -9).
LINGER_MS: Final = 0

# OS TCP keepalive: probes after 30 s idle, every 5 s, 3 failures close the connection. Catches
# dead TCP connections behind NAT or firewalls that silently drop idle flows, even on a socket
# that sends no ZMTP heartbeats yet (mid-handshake).
TCP_KEEPALIVE_IDLE_S: Final = 30
TCP_KEEPALIVE_INTVL_S: Final = 5
TCP_KEEPALIVE_CNT: Final = 3

# --------------------------------------------------------------------------------------------
# In-process buffers.

# Live records a StreamFollower keeps while it waits for a snapshot or a range (about 25 MB of
# realistic records; a few seconds of a busy stream, a snapshot's round trip many times over).
# At the limit the newest live records are dropped (counted) and fetched by the range request
# instead: memory stays bounded, nothing is lost.
FOLLOWER_MAX_BUFFERED: Final = 50_000

# Most messages (frames) one `poll` call of a peer helper (bus.peer) takes from one socket. The rest stay
# queued for the next call, so one busy socket cannot starve the caller's other work (sending
# heartbeats, serving its own loop) and a call's latency stays bounded.
POLL_BATCH_MSGS: Final = 1_000

# Peers a HeartbeatMonitor tracks. A process group has a handful to a few dozen peers; the bound
# only stops a misbehaving (authenticated) producer from growing the table by sending heartbeats
# under ever new peer ids: beyond it a new peer is not tracked (`seen` returns False; count it).
MAX_TRACKED_PEERS: Final = 1_024

# Distinct keys (instruments) a Conflator holds between drains. A feed drains every loop, so this
# only bounds memory against an unbounded key space (a venue listing thousands of symbols): at
# the limit a new key is refused (counted) until the next drain.
CONFLATE_MAX_KEYS: Final = 10_000

assert RANGE_REPLY_TARGET_BYTES < MAX_MESSAGE_BYTES
assert PUBLICATION_BATCH_MAX_BYTES < MAX_MESSAGE_BYTES
assert INGRESS_SNDHWM_MSGS < INGRESS_MAX_UNACKED
