"""Feed processes: market data into the sequencer's ingress, one process per profile feed.

Modules, each with its own theory of operation:

    file_feed       a file feed's envelopes, exactly those the in-process backtest journals
    synthetic_feed  a seeded random-walk feed (live in paper mode, reproducible in a backtest)
    source          FeedSource: what a feed sends, however it is driven
    lockstep        backtest mode: the sequencer pulls the stream turn by turn (FeedPull)
    pump            paper / live: pushed at a pace, window flow control, StreamEnded, re-sends
    pacing          "max" or k x real time by event time
    connection      noticing a reconnect (the sequencer came back)
    main            `run_feed(profile, name)`: the process (sockets, security, signals)

Producer ids: ``file:<instrument>[:<interval>]`` (as the in-process backtest names them) and
``synthetic:<instrument>``.
"""

from __future__ import annotations

from services.feeds.file_feed import (
    FILE_PRODUCER_PREFIX,
    FileFeedStream,
    feed_producer_ids,
    file_feed_stream,
    load_feed_series,
    load_profile_series,
)
from services.feeds.lockstep import LockstepFeed, PullResponder, StreamCursor
from services.feeds.pacing import Pace, Pacer
from services.feeds.pump import EXIT_DONE, EXIT_REFUSED, FeedPump, FeedStats
from services.feeds.source import FeedSource
from services.feeds.synthetic_feed import (
    SYNTHETIC_PRODUCER_PREFIX,
    live_start_ns,
    synthetic_envelopes,
    synthetic_producer_id,
    synthetic_walk,
)

__all__ = [
    "EXIT_DONE",
    "EXIT_REFUSED",
    "FILE_PRODUCER_PREFIX",
    "SYNTHETIC_PRODUCER_PREFIX",
    "FeedPump",
    "FeedSource",
    "FeedStats",
    "FileFeedStream",
    "LockstepFeed",
    "Pace",
    "Pacer",
    "PullResponder",
    "StreamCursor",
    "feed_producer_ids",
    "file_feed_stream",
    "live_start_ns",
    "load_feed_series",
    "load_profile_series",
    "synthetic_envelopes",
    "synthetic_producer_id",
    "synthetic_walk",
]
