"""What the sequencer core emits: the transition trace, refusals, venue commands, bookings.

Every output carries the `seq_id` of the input that caused it, so subscribers can detect gaps and
a trace can be compared line by line across execution paths.
"""

from __future__ import annotations

from schemas.base import Message
from schemas.enums import (
    OrderEvent,
    OrderState,
    OrderType,
    RefusalReason,
    RejectReason,
    RiskFlag,
    Side,
    TimeInForce,
)
from schemas.types import (
    Amount,
    ClientOrderId,
    CurrencyCode,
    Id,
    InstrumentId,
    Price,
    Quantity,
    SeqId,
    StrategyId,
    Text,
    TimeNs,
    VenueId,
)

__all__ = [
    "CashAdjusted",
    "DuplicateDropped",
    "FillBooked",
    "IntentRejected",
    "InvariantBroken",
    "OrderCommand",
    "OrderTransitioned",
    "Output",
    "ProducerGap",
    "ReportRefused",
    "RequestCancel",
    "RequestReplace",
    "RiskFlagChanged",
    "SubmitOrder",
]


class OrderTransitioned(Message, frozen=True):
    """One row of the transition trace: an order moved (or deliberately stayed) on an event."""

    seq_id: SeqId
    client_order_id: ClientOrderId
    strategy_id: StrategyId
    instrument: InstrumentId
    event: OrderEvent
    from_state: OrderState
    to_state: OrderState
    quantity: int
    filled_quantity: int
    note: Text = ""


class IntentRejected(Message, frozen=True):
    """A strategy's intent was refused; `reason` is a stable code, `detail` names field and value."""

    seq_id: SeqId
    strategy_id: StrategyId
    intent: Id
    reason: RejectReason
    detail: Text
    client_order_id: ClientOrderId | None = None


class ReportRefused(Message, frozen=True):
    """A venue report or control message the core could not apply; state is unchanged."""

    seq_id: SeqId
    report: Id
    reason: RefusalReason
    detail: Text
    venue: str = ""
    client_order_id: ClientOrderId | None = None


class DuplicateDropped(Message, frozen=True):
    """An input already applied (same producer counter, idempotency key or venue trade id)."""

    seq_id: SeqId
    producer_id: Id
    producer_seq: int
    key: Text
    detail: Text


class ProducerGap(Message, frozen=True):
    """A producer's counter skipped: some of its messages never arrived (telemetry, not refusal)."""

    seq_id: SeqId
    producer_id: Id
    expected_seq: int
    received_seq: int


class SubmitOrder(Message, frozen=True):
    """Command to a venue gateway: place this order."""

    seq_id: SeqId
    venue: VenueId
    strategy_id: StrategyId
    client_order_id: ClientOrderId
    instrument: InstrumentId
    side: Side
    order_type: OrderType
    quantity: Quantity
    price: Price | None = None
    stop_price: Price | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: TimeNs | None = None
    reduce_only: bool = False
    post_only: bool = False
    parent_client_order_id: ClientOrderId | None = None  # linked orders: see PlaceOrder
    oco_group: Id | None = None


class RequestCancel(Message, frozen=True):
    """Command to a venue gateway: cancel this order."""

    seq_id: SeqId
    venue: VenueId
    client_order_id: ClientOrderId
    instrument: InstrumentId
    reason: Text = ""


class RequestReplace(Message, frozen=True):
    """Command to a venue gateway: change this order's total quantity and/or price."""

    seq_id: SeqId
    venue: VenueId
    client_order_id: ClientOrderId
    instrument: InstrumentId
    quantity: Quantity
    price: Price | None = None


OrderCommand = SubmitOrder | RequestCancel | RequestReplace


class FillBooked(Message, frozen=True):
    """A fill was applied to the portfolio. Amounts are exact integers (see schemas.types)."""

    seq_id: SeqId
    strategy_id: StrategyId
    client_order_id: ClientOrderId
    instrument: InstrumentId
    side: Side
    trade_id: Id
    quantity: Quantity
    price: Price
    fee: Amount
    fee_currency: CurrencyCode
    position_quantity: int
    realized_pnl: Amount
    cash_balance: Amount
    late: bool = False  # the order was already terminal: the venue's fill still moved money


class RiskFlagChanged(Message, frozen=True):
    """A risk flag changed. `strategy_id` None means the global kill switch."""

    seq_id: SeqId
    flag: RiskFlag
    enabled: bool
    reason: Text = ""
    strategy_id: StrategyId | None = None


class CashAdjusted(Message, frozen=True):
    """Cash was deposited or withdrawn through the control plane."""

    seq_id: SeqId
    currency: CurrencyCode
    amount: Amount
    balance: Amount


class InvariantBroken(Message, frozen=True):
    """An invariant failed after an event (published when the policy is `halt` or `log`)."""

    seq_id: SeqId
    invariant: Id
    detail: Text


Output = (
    OrderTransitioned
    | IntentRejected
    | ReportRefused
    | DuplicateDropped
    | ProducerGap
    | SubmitOrder
    | RequestCancel
    | RequestReplace
    | FillBooked
    | RiskFlagChanged
    | CashAdjusted
    | InvariantBroken
)
