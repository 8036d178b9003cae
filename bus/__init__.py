"""The ZeroMQ transport of tradebus: framing, sockets, heartbeats, resync, conflation.

It moves `schemas` messages between processes and knows nothing of trading: no import from
`services`, no reading of payloads. Every frame is ``[kind, body]`` (`bus.codec`); every limit is
in `bus.limits`; the Clone-pattern follower (`bus.resync`) and the heartbeat monitor
(`bus.heartbeat`) are pure, so they are tested without sockets.
"""

from bus.codec import (
    INGRESS,
    INGRESS_REPLY,
    PUBLICATION,
    SYNC_REPLY,
    SYNC_REQUEST,
    Channel,
    FrameCodec,
    FrameError,
    kind_of,
)
from bus.conflate import Conflator
from bus.endpoints import Endpoint, EndpointError, is_tcp, parse_endpoint
from bus.heartbeat import HeartbeatMonitor, HeartbeatSchedule, PeerChange
from bus.peer import IngressBackpressure, IngressClient, Subscriber
from bus.resync import FollowerState, StreamFollower, range_replies
from bus.sockets import (
    Counters,
    Security,
    bound_endpoint,
    ingress_client,
    ingress_server,
    publisher,
    subscriber,
    sync_client,
    sync_server,
)

__all__ = [
    "INGRESS",
    "INGRESS_REPLY",
    "PUBLICATION",
    "SYNC_REPLY",
    "SYNC_REQUEST",
    "Channel",
    "Conflator",
    "Counters",
    "Endpoint",
    "EndpointError",
    "FollowerState",
    "FrameCodec",
    "FrameError",
    "HeartbeatMonitor",
    "HeartbeatSchedule",
    "IngressBackpressure",
    "IngressClient",
    "PeerChange",
    "Security",
    "StreamFollower",
    "Subscriber",
    "bound_endpoint",
    "ingress_client",
    "ingress_server",
    "is_tcp",
    "kind_of",
    "parse_endpoint",
    "publisher",
    "range_replies",
    "subscriber",
    "sync_client",
    "sync_server",
]
