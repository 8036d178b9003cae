"""The inbound envelope: every input to the sequencer travels in one.

Evolution rules (held by tests/contracts/test_schema_evolution.py and golden files):
new fields get defaults, fields are never renamed, reordered in meaning or retyped, tags never
change. `schema_version` is raised when a new field changes meaning for old readers; producers
then set it explicitly (a frame without it stays version 1), and readers refuse versions newer
than their own `SCHEMA_VERSION`.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from schemas.control import AdjustCash, HaltTrading, ResumeTrading, Timer
from schemas.enums import Source
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Quote, Trade
from schemas.reports import (
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
    SubmissionUnknownReport,
)
from schemas.types import MAX_ID_CHARS, Id, ProducerId, SeqId, TimeNs

__all__ = ["PAYLOAD_SOURCE", "SCHEMA_VERSION", "Envelope", "Payload"]

SCHEMA_VERSION: Final = 1

Payload = (
    Bar
    | Trade
    | Quote
    | OrderAcceptedReport
    | OrderRejectedReport
    | FillReport
    | OrderCancelledReport
    | CancelRejectedReport
    | OrderExpiredReport
    | OrderReplacedReport
    | ReplaceRejectedReport
    | SubmissionUnknownReport
    | Timer
    | HaltTrading
    | ResumeTrading
    | AdjustCash
    | PlaceOrder
    | CancelOrder
    | ReplaceOrder
    | SetRiskFlag
    | NoOp
)

# The only source allowed to carry each payload type: a strategy cannot send a fill.
PAYLOAD_SOURCE: Final[dict[type, Source]] = {
    Bar: Source.MARKET_DATA,
    Trade: Source.MARKET_DATA,
    Quote: Source.MARKET_DATA,
    OrderAcceptedReport: Source.BROKER_REPORT,
    OrderRejectedReport: Source.BROKER_REPORT,
    FillReport: Source.BROKER_REPORT,
    OrderCancelledReport: Source.BROKER_REPORT,
    CancelRejectedReport: Source.BROKER_REPORT,
    OrderExpiredReport: Source.BROKER_REPORT,
    OrderReplacedReport: Source.BROKER_REPORT,
    ReplaceRejectedReport: Source.BROKER_REPORT,
    SubmissionUnknownReport: Source.BROKER_REPORT,
    Timer: Source.TIMER,
    HaltTrading: Source.CONTROL,
    ResumeTrading: Source.CONTROL,
    AdjustCash: Source.CONTROL,
    PlaceOrder: Source.STRATEGY,
    CancelOrder: Source.STRATEGY,
    ReplaceOrder: Source.STRATEGY,
    SetRiskFlag: Source.STRATEGY,
    NoOp: Source.STRATEGY,
}


class Envelope(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, gc=False
):
    """One input to the sequencer.

    Producers fill everything but `seq_id` and `ingest_time_ns`; the sequencer assigns those.
    (`producer_id`, `producer_seq`) is the producer's own counter: the sequencer drops repeats and
    notes gaps per producer. `idempotency_key`, when set, makes a repeat with the same content a
    recorded no-op and a repeat with different content a refusal.
    """

    source: Source
    producer_id: ProducerId
    producer_seq: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    event_time_ns: TimeNs
    payload: Payload
    venue: Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS, description="Venue id, or empty")] = ""
    instrument: Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS, description="Instrument id, or empty")] = ""
    idempotency_key: Id | None = None
    seq_id: SeqId = 0
    ingest_time_ns: TimeNs = 0
    # A frame without the field is version 1, forever; a version newer than ours is refused
    # (strict decoding would refuse its new fields anyway, this says why).
    schema_version: Annotated[
        int,
        msgspec.Meta(ge=1, le=SCHEMA_VERSION, description="Wire schema version; absent means 1, newer than ours is refused"),
    ] = 1
