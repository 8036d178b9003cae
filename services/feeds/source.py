"""What a feed process sends, whatever drives it (pushed in real time, pulled in lockstep)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from schemas.envelope import Envelope
from services.feeds.pacing import Pace

__all__ = ["FeedSource"]


@dataclass(frozen=True)
class FeedSource:
    """A feed's stream.

    Attributes:
        name: the feed's name (for logs).
        producers: every producer id its envelopes use (in real time each gets a `StreamEnded`,
            even one that had no envelope: ``last_producer_seq`` 0).
        open: makes a new iterator over the envelopes in send order (per producer, producer_seq
            1, 2, 3, ...), the same envelopes every time: a lockstep run may start over.
        pace: "max" or k x real time by event time (real time only: lockstep pulls).
        total: how many envelopes, if known (progress lines).
    """

    name: str
    producers: tuple[str, ...]
    open: Callable[[], Iterator[Envelope]]
    pace: Pace = "max"
    total: int | None = None
