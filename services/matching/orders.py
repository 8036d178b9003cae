"""The venue's own record of an order, and the report it hands back.

The venue keeps its own view of every order (what it has filled, whether it is active, which
linked orders it belongs to), separate from the core's: the two agree only through reports,
exactly as a real venue and the core would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from schemas.enums import OrderType, TimeInForce
from schemas.outputs import SubmitOrder
from schemas.reports import (
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
)
from services.matching.config import DAY_NS

__all__ = [
    "ORDER_TYPES",
    "TIMES_IN_FORCE",
    "OrderStatus",
    "SimOrder",
    "VenueReport",
    "VenueReportPayload",
    "day_end_ns",
]

# Wire value -> enum member. A StrEnum member hashes and compares as its value, so these take
# either; a dict lookup is ~20x cheaper than calling the Enum class (~1 us) on every order.
ORDER_TYPES: dict[str, OrderType] = {t.value: t for t in OrderType}
TIMES_IN_FORCE: dict[str, TimeInForce] = {t.value: t for t in TimeInForce}

VenueReportPayload = (
    OrderAcceptedReport
    | OrderRejectedReport
    | FillReport
    | OrderCancelledReport
    | CancelRejectedReport
    | OrderExpiredReport
    | OrderReplacedReport
    | ReplaceRejectedReport
)
"""Every report the simulated venue emits (it never loses an order, so never `SubmissionUnknown`)."""


@dataclass(slots=True, init=False, unsafe_hash=True)  # hand-written __init__: see SimOrder (mypyc)
class VenueReport:
    """One report from the venue: `time_ns` is the event time at which it happened (an arrival,
    a market event, an expiry), `instrument` the order's instrument. A value: never changed."""

    time_ns: int
    instrument: str
    report: VenueReportPayload

    def __init__(self, time_ns: int, instrument: str, report: VenueReportPayload) -> None:
        self.time_ns = time_ns
        self.instrument = instrument
        self.report = report


class OrderStatus:
    """Where an order stands at the venue. Plain strings: they also word the cancel-reject reason."""

    WORKING: Final = "working"
    FILLED: Final = "filled"
    CANCELLED: Final = "cancelled"
    EXPIRED: Final = "expired"
    REJECTED: Final = "rejected"


def day_end_ns(arrival_ns: int, offset_ns: int) -> int:
    """When a DAY order that arrived at `arrival_ns` expires: the first instant of the form
    UTC midnight + `offset_ns` strictly after arrival (so always within one day of it)."""
    return ((arrival_ns - offset_ns) // DAY_NS + 1) * DAY_NS + offset_ns


@dataclass(slots=True, eq=False, init=False)
class SimOrder:
    """A live (or recently finished) order at the simulated venue. Mutated only by the venue.

    `eq=False`: orders are compared by identity (two orders are never the same order because
    their fields agree), and identity hashing keeps list membership checks cheap. `init=False`
    and a hand-written __init__: one is made per order, and under mypyc the __init__ @dataclass
    generates stays interpreted (~20x the cost of a compiled one).
    """

    cmd: SubmitOrder
    client_order_id: str
    instrument: str
    is_buy: bool
    order_type: OrderType
    tif: TimeInForce
    quantity: int
    price: int | None  # limit price (limit, stop_limit)
    stop_price: int | None  # trigger (stop, stop_limit)
    rank: int  # arrival order at the venue: the tie-break everywhere
    arrival_ns: int  # matched only against events at or after it (bars: opening at or after it)
    expire_ns: int | None  # DAY and GTD: live through this instant, expired after it
    venue_order_id: str
    active: bool = True  # False: a bracket child waiting for its parent to fill
    triggered: bool = False  # a stop or stop-limit whose trigger was touched
    filled: int = 0
    status: str = OrderStatus.WORKING
    parent: SimOrder | None = None  # bracket child: its parent
    children: list[SimOrder] | None = None  # bracket parent: its children (shared with them as siblings)
    oco: list[SimOrder] | None = None  # members of its OCO group still working, itself included

    def __init__(
        self,
        cmd: SubmitOrder,
        client_order_id: str,
        instrument: str,
        is_buy: bool,
        order_type: OrderType,
        tif: TimeInForce,
        quantity: int,
        price: int | None,
        stop_price: int | None,
        rank: int,
        arrival_ns: int,
        expire_ns: int | None,
        venue_order_id: str,
        active: bool = True,
        triggered: bool = False,
        filled: int = 0,
        status: str = OrderStatus.WORKING,
        parent: SimOrder | None = None,
        children: list[SimOrder] | None = None,
        oco: list[SimOrder] | None = None,
    ) -> None:
        self.cmd = cmd
        self.client_order_id = client_order_id
        self.instrument = instrument
        self.is_buy = is_buy
        self.order_type = order_type
        self.tif = tif
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.rank = rank
        self.arrival_ns = arrival_ns
        self.expire_ns = expire_ns
        self.venue_order_id = venue_order_id
        self.active = active
        self.triggered = triggered
        self.filled = filled
        self.status = status
        self.parent = parent
        self.children = children
        self.oco = oco

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        return self.status == OrderStatus.WORKING
