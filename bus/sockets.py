"""Socket factories: one per role, every option set on purpose, plus transport telemetry.

| role | type | does | peer |
|---|---|---|---|
| ingress server (sequencer) | ROUTER | bind | producers' `ingress_client` (DEALER, connect) |
| publisher (sequencer) | PUB | bind | `subscriber` (SUB, connect, subscribed to everything) |
| sync server (sequencer) | ROUTER | bind | `sync_client` (DEALER, connect) |

Options every socket gets, and why:

- MAXMSGSIZE from the channel the socket *receives* (`bus.codec`): libzmq disconnects a peer
  that sends a larger part, before our code sees any of it (RELIABILITY E2).
- SNDHWM / RCVHWM per role from `bus.limits`, which says what happens at each mark.
- SNDTIMEO = RCVTIMEO = 0: the bus is poll-driven (zmq.Poller with a timeout); a send or receive
  that cannot complete at once raises zmq.Again instead of blocking the process on a stuck peer.
- LINGER = 0: closing never waits on a dead peer (see `limits.LINGER_MS`).
- ZMTP heartbeats (HEARTBEAT_IVL / TIMEOUT / TTL): dead connections are torn down and re-dialled.
- HANDSHAKE_IVL: a peer that never finishes its handshake is dropped after 5 s.
- TCP keepalive: dead TCP flows behind middleboxes are noticed by the OS too.
- RECONNECT_IVL / RECONNECT_IVL_MAX on connecting sockets: fast first retry, backing off.
- ROUTER_MANDATORY on ROUTERs: a reply to a peer that is gone raises EHOSTUNREACH and a reply to
  a peer whose queue is full raises zmq.Again, rather than vanishing; callers count both.
- IMMEDIATE on DEALERs: while no connection is complete a send raises zmq.Again instead of
  queueing into a pipe we cannot see; the producer keeps the envelope in its unacknowledged
  window (`bus.peer.IngressClient`) and sends it once connected.

Security: a factory given a `security` object calls its `apply_server` / `apply_client` on the
socket before bind / connect (CURVE keys, ZAP domain; `bus.security` implements it). Without one
the socket uses the NULL mechanism: fine for ipc and inproc, not for tcp across hosts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq

from bus import limits
from bus.codec import INGRESS, INGRESS_REPLY, PUBLICATION, SYNC_REPLY, SYNC_REQUEST
from bus.endpoints import parse_endpoint

__all__ = [
    "Counters",
    "Security",
    "Socket",
    "bound_endpoint",
    "ingress_client",
    "ingress_server",
    "publisher",
    "subscriber",
    "sync_client",
    "sync_server",
]

Socket = zmq.Socket[bytes]
Context = zmq.Context[Any]


class Security(Protocol):
    """Applies authentication to a socket before it binds or connects (see `bus.security`)."""

    def apply_server(self, socket: Socket) -> None:
        """Configure a binding socket (e.g. CURVE server key, ZAP domain)."""

    def apply_client(self, socket: Socket) -> None:
        """Configure a connecting socket (e.g. CURVE client keys and the server's public key)."""


@dataclass
class Counters:
    """Transport telemetry of one socket or one peer helper. Plain integers, cheap to bump.

    Attributes:
        frames_in: messages received and decoded.
        frames_out: messages sent.
        refused: received messages refused, by `FrameError.reason` (or another stable code).
        dropped: messages we meant to send and could not (peer gone, queue full), by cause.
        conflated: market-data updates replaced by a newer one before being sent.
    """

    frames_in: int = 0
    frames_out: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    conflated: int = 0

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def drop(self, cause: str) -> None:
        self.dropped[cause] = self.dropped.get(cause, 0) + 1

    def as_dict(self) -> dict[str, int]:
        """Flat, sorted by name: ``refused.malformed``, ``dropped.unroutable``, ... for telemetry."""
        flat = {"frames_in": self.frames_in, "frames_out": self.frames_out, "conflated": self.conflated}
        flat.update({f"refused.{k}": v for k, v in self.refused.items()})
        flat.update({f"dropped.{k}": v for k, v in self.dropped.items()})
        return dict(sorted(flat.items()))


def bound_endpoint(socket: Socket) -> str:
    """The endpoint a socket last bound or connected, with the real port after ``tcp://host:0``."""
    value = socket.getsockopt(zmq.LAST_ENDPOINT)
    assert isinstance(value, bytes)
    return value.decode("utf-8", "surrogateescape")


def ingress_server(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    rcvhwm_msgs: int = limits.INGRESS_RCVHWM_MSGS,
    sndhwm_msgs: int = limits.INGRESS_REPLY_SNDHWM_MSGS,
) -> Socket:
    """The sequencer's ingress: ROUTER, bound. Receives ``[identity, kind, body]``.

    Receives channel `bus.codec.INGRESS`, replies on `bus.codec.INGRESS_REPLY` by prefixing the
    identity part.
    """
    socket = _new(ctx, zmq.ROUTER, max_bytes=INGRESS.max_bytes, sndhwm_msgs=sndhwm_msgs, rcvhwm_msgs=rcvhwm_msgs)
    socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
    return _bind(socket, endpoint, security)


def ingress_client(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    routing_id: bytes | None = None,
    sndhwm_msgs: int = limits.INGRESS_SNDHWM_MSGS,
) -> Socket:
    """A producer's connection to ingress: DEALER, connected. Sends ``[kind, body]``.

    Args:
        routing_id: optional stable identity (at most 255 bytes, not starting with a zero byte),
            so the sequencer's logs name the peer; by default libzmq picks a random one.
    """
    socket = _new(
        ctx, zmq.DEALER, max_bytes=INGRESS_REPLY.max_bytes, sndhwm_msgs=sndhwm_msgs, rcvhwm_msgs=limits.INGRESS_SNDHWM_MSGS
    )
    socket.setsockopt(zmq.IMMEDIATE, 1)
    if routing_id is not None:
        socket.setsockopt(zmq.ROUTING_ID, routing_id)
    return _connect(socket, endpoint, security)


def publisher(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    sndhwm_msgs: int = limits.PUBLICATION_SNDHWM_MSGS,
) -> Socket:
    """The sequencer's publication: PUB, bound. Sends channel `bus.codec.PUBLICATION`.

    At the high-water mark PUB drops for that subscriber only; the subscriber resyncs (E4).
    """
    # A PUB only reads subscription frames, so its receive limit is tiny (and its RCVHWM moot).
    socket = _new(
        ctx, zmq.PUB, max_bytes=limits.MAX_SUBSCRIPTION_BYTES, sndhwm_msgs=sndhwm_msgs, rcvhwm_msgs=sndhwm_msgs
    )
    return _bind(socket, endpoint, security)


def subscriber(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    rcvhwm_msgs: int = limits.PUBLICATION_RCVHWM_MSGS,
) -> Socket:
    """A subscriber: SUB, connected, subscribed to every kind.

    A follower needs every `Sequenced` and every sequencer `Heartbeat` (tail-gap detection), so
    filtering by kind prefix would save little. The subscription is set before connecting, so it
    goes out with the handshake; records published before it reaches the publisher are missed
    (ZeroMQ's slow joiner) and recovered by the follower's snapshot and range requests.
    """
    socket = _new(ctx, zmq.SUB, max_bytes=PUBLICATION.max_bytes, sndhwm_msgs=rcvhwm_msgs, rcvhwm_msgs=rcvhwm_msgs)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    return _connect(socket, endpoint, security)


def sync_server(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    sndhwm_msgs: int = limits.SYNC_SERVER_SNDHWM_MSGS,
    rcvhwm_msgs: int = limits.SYNC_SERVER_RCVHWM_MSGS,
) -> Socket:
    """The sequencer's sync endpoint: ROUTER, bound. Receives `SYNC_REQUEST`, replies `SYNC_REPLY`."""
    socket = _new(ctx, zmq.ROUTER, max_bytes=SYNC_REQUEST.max_bytes, sndhwm_msgs=sndhwm_msgs, rcvhwm_msgs=rcvhwm_msgs)
    socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
    return _bind(socket, endpoint, security)


def sync_client(
    ctx: Context,
    endpoint: str,
    *,
    security: Security | None = None,
    rcvhwm_msgs: int = limits.SYNC_CLIENT_RCVHWM_MSGS,
) -> Socket:
    """A follower's sync connection: DEALER, connected. Sends `SYNC_REQUEST`, receives `SYNC_REPLY`."""
    socket = _new(
        ctx, zmq.DEALER, max_bytes=SYNC_REPLY.max_bytes, sndhwm_msgs=limits.SYNC_CLIENT_SNDHWM_MSGS, rcvhwm_msgs=rcvhwm_msgs
    )
    socket.setsockopt(zmq.IMMEDIATE, 1)
    return _connect(socket, endpoint, security)


def _new(ctx: Context, kind: int, *, max_bytes: int, sndhwm_msgs: int, rcvhwm_msgs: int) -> Socket:
    """A socket of `kind` with the options every role shares."""
    assert sndhwm_msgs >= 0 and rcvhwm_msgs >= 0 and max_bytes > 0
    socket: Socket = ctx.socket(kind)
    try:
        socket.setsockopt(zmq.MAXMSGSIZE, max_bytes)
        socket.setsockopt(zmq.SNDHWM, sndhwm_msgs)
        socket.setsockopt(zmq.RCVHWM, rcvhwm_msgs)
        socket.setsockopt(zmq.SNDTIMEO, 0)
        socket.setsockopt(zmq.RCVTIMEO, 0)
        socket.setsockopt(zmq.LINGER, limits.LINGER_MS)
        socket.setsockopt(zmq.HEARTBEAT_IVL, limits.HEARTBEAT_INTERVAL_MS)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, limits.ZMTP_HEARTBEAT_TIMEOUT_MS)
        # TTL: the peer may drop us if our pings stop for this long (rounded to 100 ms by libzmq).
        socket.setsockopt(zmq.HEARTBEAT_TTL, limits.ZMTP_HEARTBEAT_TIMEOUT_MS)
        socket.setsockopt(zmq.HANDSHAKE_IVL, limits.HANDSHAKE_IVL_MS)
        socket.setsockopt(zmq.RECONNECT_IVL, limits.RECONNECT_IVL_MS)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, limits.RECONNECT_IVL_MAX_MS)
        socket.setsockopt(zmq.TCP_KEEPALIVE, 1)
        socket.setsockopt(zmq.TCP_KEEPALIVE_IDLE, limits.TCP_KEEPALIVE_IDLE_S)
        socket.setsockopt(zmq.TCP_KEEPALIVE_INTVL, limits.TCP_KEEPALIVE_INTVL_S)
        socket.setsockopt(zmq.TCP_KEEPALIVE_CNT, limits.TCP_KEEPALIVE_CNT)
    except BaseException:
        socket.close(linger=0)
        raise
    return socket


def _bind(socket: Socket, endpoint: str, security: Security | None) -> Socket:
    try:
        parse_endpoint(endpoint, bind=True)  # a clear error before libzmq's "Invalid argument"
        if security is not None:
            security.apply_server(socket)
        socket.bind(endpoint)
    except BaseException:
        socket.close(linger=0)
        raise
    return socket


def _connect(socket: Socket, endpoint: str, security: Security | None) -> Socket:
    try:
        parse_endpoint(endpoint, bind=False)
        if security is not None:
            security.apply_client(socket)
        socket.connect(endpoint)
    except BaseException:
        socket.close(linger=0)
        raise
    return socket
