"""Scalar types of the wire contract, with their limits.

Money and quantities are exact integers. A price is an integer count of the instrument's price
unit (10**-price_decimals); a quantity is a count of its size unit (10**-size_decimals); cash and
fees are counts of the currency's unit (10**-currency decimals). No binary floats anywhere, so
conservation checks are exact and replays agree bit for bit.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

__all__ = [
    "MAX_ABS_AMOUNT",
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "Amount",
    "ClientOrderId",
    "CurrencyCode",
    "Id",
    "InstrumentId",
    "NonNegQuantity",
    "Price",
    "ProducerId",
    "Quantity",
    "SeqId",
    "StrategyId",
    "Text",
    "TimeNs",
    "VenueId",
]

# Ids are keys in dedup tables and on every published record: 64 characters is room for a UUID
# with a prefix and keeps a hostile producer from growing state through long keys.
MAX_ID_CHARS = 64
# Free text (reasons, notes). Bounded so one message cannot carry a megabyte of "reason".
MAX_TEXT_CHARS = 256
# Integers stay well inside int64 so other languages can hold every value we accept, and the
# product of a price and a quantity still fits 2**126 (Python ints are exact either way).
MAX_ABS_AMOUNT = 2**62

Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
ClientOrderId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS, description="Client order id, unique per strategy's book")]
StrategyId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS, description="Strategy id")]
InstrumentId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS, description="Instrument id as configured in the core")]
VenueId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS, description="Venue id as configured in the core")]
ProducerId = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS, description="Id of the process that produced an envelope")]
CurrencyCode = Annotated[str, Meta(min_length=1, max_length=16, description="Currency code, e.g. USD")]
Text = Annotated[str, Meta(max_length=MAX_TEXT_CHARS)]

TimeNs = Annotated[int, Meta(ge=0, le=2**63 - 1, description="Nanoseconds since the Unix epoch, UTC")]
SeqId = Annotated[int, Meta(ge=0, le=2**63 - 1, description="Sequencer-assigned id; 0 before sequencing")]
Quantity = Annotated[int, Meta(gt=0, le=MAX_ABS_AMOUNT, description="Positive count of the instrument's size unit")]
NonNegQuantity = Annotated[int, Meta(ge=0, le=MAX_ABS_AMOUNT, description="Count of the instrument's size unit")]
Price = Annotated[int, Meta(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT, description="Count of the instrument's price unit")]
Amount = Annotated[int, Meta(ge=-MAX_ABS_AMOUNT, le=MAX_ABS_AMOUNT, description="Count of the currency's unit")]
