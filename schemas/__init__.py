"""The wire contract of tradebus: every message is a strict, tagged msgspec Struct defined here.

Nothing here imports anything else of ours. JSON Schema for other languages is generated from
these structs (`tradebus schema export`), never written by hand.
"""

from schemas.control import AdjustCash, ControlCommand, HaltTrading, ResumeTrading, Timer
from schemas.enums import (
    Liquidity,
    OrderEvent,
    OrderState,
    OrderType,
    RefusalReason,
    RejectReason,
    RiskFlag,
    Side,
    Source,
    TimeInForce,
)
from schemas.envelope import PAYLOAD_SOURCE, SCHEMA_VERSION, Envelope, Payload
from schemas.intents import CancelOrder, Intent, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Quote, Trade
from schemas.outputs import (
    CashAdjusted,
    DuplicateDropped,
    FillBooked,
    IntentRejected,
    InvariantBroken,
    OrderCommand,
    OrderTransitioned,
    Output,
    ProducerGap,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    RiskFlagChanged,
    SubmitOrder,
)
from schemas.reports import (
    CancelRejectedReport,
    ExecutionReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
    SubmissionUnknownReport,
)
from schemas.state import (
    CashSnapshot,
    CoreSnapshot,
    IdempotencyEntry,
    OrderSnapshot,
    PositionSnapshot,
    ProducerSnapshot,
    StrategyRiskSnapshot,
    TradeIdEntry,
)

__all__ = [
    "AdjustCash", "Bar", "CancelOrder", "CancelRejectedReport", "CashAdjusted", "CashSnapshot",
    "ControlCommand", "CoreSnapshot", "DuplicateDropped", "Envelope", "ExecutionReport",
    "FillBooked", "FillReport", "HaltTrading", "IdempotencyEntry", "Intent", "IntentRejected",
    "InvariantBroken", "Liquidity", "NoOp", "OrderAcceptedReport", "OrderCancelledReport",
    "OrderCommand", "OrderEvent", "OrderExpiredReport", "OrderRejectedReport",
    "OrderReplacedReport", "OrderSnapshot", "OrderState", "OrderTransitioned", "OrderType",
    "Output", "PAYLOAD_SOURCE", "Payload", "PlaceOrder", "PositionSnapshot", "ProducerGap",
    "ProducerSnapshot", "Quote", "RefusalReason", "RejectReason", "ReplaceOrder",
    "ReplaceRejectedReport", "ReportRefused", "RequestCancel", "RequestReplace", "ResumeTrading",
    "RiskFlag", "RiskFlagChanged", "SCHEMA_VERSION", "SetRiskFlag", "Side", "Source",
    "StrategyRiskSnapshot", "SubmissionUnknownReport", "SubmitOrder", "TimeInForce", "Timer",
    "Trade", "TradeIdEntry",
]
