"""Enumerations shared by every message. Values are short lowercase strings on the wire."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Liquidity",
    "OrderEvent",
    "OrderState",
    "OrderType",
    "RefusalReason",
    "RejectReason",
    "RiskFlag",
    "Side",
    "Source",
    "TimeInForce",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"
    GTD = "gtd"


class OrderState(StrEnum):
    """Order lifecycle states; the legal moves live in services/sequencer/core/order_machine.py."""

    CREATED = "created"
    SUBMITTED = "submitted"
    IN_DOUBT = "in_doubt"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCEL_PENDING = "cancel_pending"
    REPLACE_PENDING = "replace_pending"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OrderEvent(StrEnum):
    """What happened to an order: the column of the transition table."""

    SUBMIT = "submit"
    SUBMISSION_UNKNOWN = "submission_unknown"
    ACCEPT = "accept"
    REJECT = "reject"
    PARTIAL_FILL = "partial_fill"
    FULL_FILL = "full_fill"
    CANCEL_REQUEST = "cancel_request"
    CANCEL_ACK = "cancel_ack"
    CANCEL_REJECT = "cancel_reject"
    REPLACE_REQUEST = "replace_request"
    REPLACE_ACK = "replace_ack"
    REPLACE_REJECT = "replace_reject"
    EXPIRE = "expire"


class Source(StrEnum):
    """Who produced an envelope; also the first key of the live tie-break."""

    MARKET_DATA = "market_data"
    BROKER_REPORT = "broker_report"
    TIMER = "timer"
    CONTROL = "control"
    STRATEGY = "strategy"


class RiskFlag(StrEnum):
    HALT = "halt"  # kill switch: no new orders, cancels still allowed
    REDUCE_ONLY = "reduce_only"  # only orders that shrink a position


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"
    UNKNOWN = "unknown"


class RejectReason(StrEnum):
    """Why the core refused an intent. Stable codes: strategies and dashboards match on them."""

    SOURCE_MISMATCH = "source_mismatch"
    ENVELOPE_MISMATCH = "envelope_mismatch"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_ORDER = "unknown_order"
    DUPLICATE_CLIENT_ORDER_ID = "duplicate_client_order_id"
    NOT_OWNER = "not_owner"
    MISSING_PRICE = "missing_price"
    UNEXPECTED_PRICE = "unexpected_price"
    MISSING_EXPIRE_TIME = "missing_expire_time"
    UNEXPECTED_EXPIRE_TIME = "unexpected_expire_time"
    ALREADY_EXPIRED = "already_expired"
    ORDER_TYPE_UNSUPPORTED = "order_type_unsupported"
    TIME_IN_FORCE_UNSUPPORTED = "time_in_force_unsupported"
    POST_ONLY_UNSUPPORTED = "post_only_unsupported"
    REPLACE_UNSUPPORTED = "replace_unsupported"
    TICK_SIZE = "tick_size"
    LOT_SIZE = "lot_size"
    MIN_NOTIONAL = "min_notional"
    PRICE_OUT_OF_BOUNDS = "price_out_of_bounds"
    MAX_ORDER_QUANTITY = "max_order_quantity"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    MAX_OPEN_ORDERS = "max_open_orders"
    PRICE_BAND = "price_band"
    NO_REFERENCE_PRICE = "no_reference_price"
    ORDER_RATE = "order_rate"
    REDUCE_ONLY = "reduce_only"
    INSUFFICIENT_CASH = "insufficient_cash"
    INSUFFICIENT_POSITION = "insufficient_position"
    HALTED = "halted"
    ILLEGAL_TRANSITION = "illegal_transition"
    NOTHING_TO_CHANGE = "nothing_to_change"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    LINKED_ORDERS_UNSUPPORTED = "linked_orders_unsupported"
    INVALID_LINK = "invalid_link"


class RefusalReason(StrEnum):
    """Why the core refused a venue report or a control message (not a strategy's intent)."""

    SOURCE_MISMATCH = "source_mismatch"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    UNKNOWN_ORDER = "unknown_order"
    VENUE_MISMATCH = "venue_mismatch"
    ILLEGAL_TRANSITION = "illegal_transition"
    OVERFILL = "overfill"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    UNKNOWN_CURRENCY = "unknown_currency"
    INSUFFICIENT_CASH = "insufficient_cash"
    OUT_OF_ORDER_SEQ = "out_of_order_seq"
