"""Lockstep turns: what a `TurnRequest` asks of a strategy host or a venue gateway, and the answers.

In a bus backtest the sequencer drives the run exactly as the in-process backtest does, and where
the in-process one calls the strategy or the simulated venue, it publishes a `TurnRequest` whose
`payload` is one of the calls below and waits for the peer's `TurnDone` carrying the answer.

A strategy is never sent an event: it is sent a *reference* to sequenced data (the market
envelope at `seq_id`, or output `output_index` of that seq id), and the host builds the event
from its replica of the core with the same code the in-process backtest uses. So the wire holds
no floats, and both paths hand the strategy the same event by construction.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from schemas.base import Message
from schemas.intents import Intent
from schemas.market import Bar, Quote, Trade
from schemas.outputs import RequestCancel, RequestReplace, SubmitOrder
from schemas.reports import ExecutionReport
from schemas.types import InstrumentId, SeqId, StrategyId, Text, TimeNs, VenueId

__all__ = [
    "MAX_TURN_ITEMS",
    "FeedPull",
    "FeedPullDone",
    "StrategyAnswer",
    "StrategyCall",
    "StrategyHello",
    "StrategyHelloRequest",
    "StrategyHook",
    "VenueAnswer",
    "VenueCall",
    "VenueMarket",
    "VenueOrderCommand",
    "VenueReportEntry",
]

# A strategy answering one event with more intents than this, or a venue with more reports, is
# misbehaving: the turn is refused rather than letting one answer outgrow the ingress frame limit.
MAX_TURN_ITEMS = 500


class FeedPull(Message, frozen=True):
    """Send me your envelopes from position `from_position` on (1 = the first of your merged
    stream), at most `max_count`.

    The feed sends them to ingress in order, then `TurnDone` with a `FeedPullDone` payload. A pull
    names its position, so a feed holds no cursor the sequencer depends on: after any restart the
    sequencer simply pulls from where its run is.
    """

    from_position: Annotated[int, Meta(ge=1)]
    max_count: Annotated[int, Meta(ge=1, le=MAX_TURN_ITEMS)]


class FeedPullDone(Message, frozen=True):
    sent: Annotated[int, Meta(ge=0)]
    ended: bool  # nothing after the last one sent: the stream is over


class StrategyHook(StrEnum):
    START = "start"  # on_start
    STOP = "stop"  # on_stop
    MARKET = "market"  # on_event(the market event built from the envelope at seq_id)
    OUTPUT = "output"  # on_event(the order event built from outputs[output_index] of seq_id)
    SLICE = "slice"  # on_event(TimeSliceClosed(time_ns))


class StrategyHelloRequest(Message, frozen=True):
    """Before the run: tell me who you are (and the series of the run, for Backtrader-style
    strategies that bind their data feeds in order)."""

    series: Annotated[list[InstrumentId], Meta(max_length=MAX_TURN_ITEMS)] = msgspec.field(default_factory=list)


class StrategyHello(Message, frozen=True):
    strategy_id: StrategyId
    wants_time_slices: bool
    wants_order_events: bool


class StrategyCall(Message, frozen=True):
    """Call one strategy hook with the host's replica at `seq_id` (the sequencer's seq id then)."""

    hook: StrategyHook
    seq_id: SeqId
    event_seq_id: SeqId = 0  # MARKET / OUTPUT: the sequenced record the event comes from
    output_index: Annotated[int, Meta(ge=-1)] = -1  # OUTPUT: index into that record's outputs
    time_ns: TimeNs = 0  # SLICE


class StrategyAnswer(Message, frozen=True):
    """The intents the hook returned, in order; or the error it raised (the run stops)."""

    intents: Annotated[list[Intent], Meta(max_length=MAX_TURN_ITEMS)] = msgspec.field(default_factory=list)
    error: Text = ""


class VenueMarket(Message, frozen=True):
    """The venue sees a market event before the sequencer applies it."""

    instrument: InstrumentId
    time_ns: TimeNs
    data: Bar | Trade | Quote


class VenueOrderCommand(Message, frozen=True):
    """An order command reaches the venue at event time `now_ns`."""

    now_ns: TimeNs
    command: SubmitOrder | RequestCancel | RequestReplace


VenueCall = VenueMarket | VenueOrderCommand


class VenueReportEntry(Message, frozen=True):
    time_ns: TimeNs
    instrument: InstrumentId
    report: ExecutionReport


class VenueAnswer(Message, frozen=True):
    """The reports the call produced, and what the driver needs to know of the venue after it."""

    venue: VenueId
    reports: Annotated[list[VenueReportEntry], Meta(max_length=MAX_TURN_ITEMS)]
    open_order_count: Annotated[int, Meta(ge=0)]
    next_due_ns: TimeNs | None = None
    error: Text = ""
