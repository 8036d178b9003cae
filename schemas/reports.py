"""Execution reports: what a venue (through its gateway) says happened to an order."""

from __future__ import annotations

from schemas.base import Message
from schemas.enums import Liquidity
from schemas.types import Amount, ClientOrderId, CurrencyCode, Id, Price, Quantity, Text

__all__ = [
    "CancelRejectedReport",
    "ExecutionReport",
    "FillReport",
    "OrderAcceptedReport",
    "OrderCancelledReport",
    "OrderExpiredReport",
    "OrderRejectedReport",
    "OrderReplacedReport",
    "ReplaceRejectedReport",
    "SubmissionUnknownReport",
]


class OrderAcceptedReport(Message, frozen=True):
    """The venue acknowledged the order and it is working."""

    client_order_id: ClientOrderId
    venue_order_id: Id | None = None


class OrderRejectedReport(Message, frozen=True):
    """The venue refused the order."""

    client_order_id: ClientOrderId
    reason: Text = ""


class FillReport(Message, frozen=True):
    """A (partial) execution. `trade_id` is the venue's id, unique per venue: the dedup key."""

    client_order_id: ClientOrderId
    trade_id: Id
    quantity: Quantity
    price: Price
    fee: Amount = 0
    fee_currency: CurrencyCode | None = None  # None: the instrument's quote currency
    liquidity: Liquidity = Liquidity.UNKNOWN
    venue_order_id: Id | None = None


class OrderCancelledReport(Message, frozen=True):
    """The venue cancelled the order (on request or on its own)."""

    client_order_id: ClientOrderId
    reason: Text = ""


class CancelRejectedReport(Message, frozen=True):
    """The venue refused a cancel request; the order keeps working."""

    client_order_id: ClientOrderId
    reason: Text = ""


class OrderExpiredReport(Message, frozen=True):
    """The venue expired the order (time in force ran out)."""

    client_order_id: ClientOrderId


class OrderReplacedReport(Message, frozen=True):
    """The venue applied a replace: the order now has this total quantity and price."""

    client_order_id: ClientOrderId
    quantity: Quantity
    price: Price | None = None


class ReplaceRejectedReport(Message, frozen=True):
    """The venue refused a replace request; the order keeps its old terms."""

    client_order_id: ClientOrderId
    reason: Text = ""


class SubmissionUnknownReport(Message, frozen=True):
    """The gateway sent the order but cannot tell whether the venue got it (e.g. a timeout).

    The order goes in doubt; only reconciliation (a later report about it) settles it.
    """

    client_order_id: ClientOrderId
    reason: Text = ""


ExecutionReport = (
    OrderAcceptedReport
    | OrderRejectedReport
    | FillReport
    | OrderCancelledReport
    | CancelRejectedReport
    | OrderExpiredReport
    | OrderReplacedReport
    | ReplaceRejectedReport
    | SubmissionUnknownReport
)
