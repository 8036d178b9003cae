"""Orders and trades as a Backtrader strategy sees them: `Order`, its `OrderData`, and `Trade`.

An `Order` is created (status Created) the moment `self.buy(...)` returns; its PlaceOrder intent
reaches the core when the callback returns. From then on the object only changes when a
notification about it is delivered (`status`, and `executed` with the fills that notification
covers), so inside `notify_order(order)` it reads as Backtrader's snapshot of that moment would,
and it stays the same object across notifications (`self.order is order` holds).

`executed` follows Backtrader's bookkeeping: `size` is signed (negative for sells), `price` the
average fill price, `comm` the commissions, `pnl` the realised profit, and `value` the cost basis
of what the order moved (opened size x fill price + closed size x the position's previous
average price, Backtrader's `shortcash` convention).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple

from services.strategy.btcompat.lines import num2date

__all__ = ["ExecutionBit", "Order", "OrderData", "Trade"]


class ExecutionBit(NamedTuple):
    """One fill of an order, split like Backtrader's: the part that closed position, the part that opened.

    A NamedTuple: built once per fill on the event path, where a tuple is the cheapest record.
    """

    dt: float
    size: float
    price: float
    closed: float
    closedvalue: float
    closedcomm: float
    opened: float
    openedvalue: float
    openedcomm: float
    pnl: float
    psize: float
    pprice: float
    units: int  # |size| in size units: exact accounting of what a notification covers

    @property
    def value(self) -> float:
        return self.closedvalue + self.openedvalue

    @property
    def comm(self) -> float:
        return self.closedcomm + self.openedcomm


class OrderData:
    """What an order asked for (`order.created`) or what it got (`order.executed`).

    Fields that start at zero are class attributes until first written: an order is built on
    the strategy's hot path, and most of these are only ever read.
    """

    value = 0.0
    comm = 0.0
    pnl = 0.0
    margin: float | None = None
    psize = 0.0
    pprice = 0.0
    trailamount = 0.0
    trailpercent = 0.0
    pclose = 0.0
    dt: float | None = None
    size = 0.0
    price = 0.0
    pricelimit = 0.0
    remsize = 0.0
    exbits: list[ExecutionBit] | tuple[()] = ()

    def __init__(
        self,
        dt: float | None = None,
        size: float = 0.0,
        price: float = 0.0,
        pricelimit: float = 0.0,
        remsize: float = 0.0,
        pclose: float = 0.0,
    ) -> None:
        self.dt = dt
        self.size = size
        self.price = price
        self.pricelimit = pricelimit or price
        self.remsize = remsize
        self.pclose = pclose

    def _addbit(self, bit: ExecutionBit) -> None:
        """Backtrader's `OrderData.addbit`: average price, sums, and the position after."""
        if not self.exbits:
            self.exbits = []
        assert isinstance(self.exbits, list)
        self.exbits.append(bit)
        self.remsize -= bit.size
        self.dt = bit.dt
        old_value = self.size * self.price
        self.size += bit.size
        self.price = (old_value + bit.size * bit.price) / self.size if self.size else 0.0
        self.value += bit.value
        self.comm += bit.comm
        self.pnl += bit.pnl
        self.psize = bit.psize
        self.pprice = bit.pprice

    def __len__(self) -> int:
        return len(self.exbits)

    def __getitem__(self, index: int) -> ExecutionBit:
        return self.exbits[index]

    def __repr__(self) -> str:
        return f"OrderData(size={self.size}, price={self.price}, value={self.value}, comm={self.comm}, pnl={self.pnl})"


class _Info(dict[str, Any]):
    """Backtrader's AutoOrderedDict for `order.info`: keys readable as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Order:
    """A Backtrader order: constants, `ref`, `status`, `created`, `executed`, `isbuy()`, `alive()`.

    Attributes:
        ref: a number unique within the run (1, 2, ...).
        client_order_id: the tradebus id of the order (its PlaceOrder intent's).
        data: the feed it trades.
        size: signed (negative for a sell), as in Backtrader.
        price: the limit price (Limit, StopLimit's trigger... see `exectype`) or None for Market.
        pricelimit: a StopLimit's limit price.
        valid: the expiry as Backtrader's float date number, or None (good till cancelled).
    """

    Created, Submitted, Accepted, Partial, Completed, Canceled, Expired, Margin, Rejected = range(9)
    Cancelled = Canceled
    Status: ClassVar[list[str]] = [
        "Created",
        "Submitted",
        "Accepted",
        "Partial",
        "Completed",
        "Canceled",
        "Expired",
        "Margin",
        "Rejected",
    ]
    Market, Close, Limit, Stop, StopLimit, StopTrail, StopTrailLimit, Historical = range(8)
    ExecTypes: ClassVar[list[str]] = [
        "Market",
        "Close",
        "Limit",
        "Stop",
        "StopLimit",
        "StopTrail",
        "StopTrailLimit",
        "Historical",
    ]
    Buy, Sell = range(2)
    OrdTypes: ClassVar[list[str]] = ["Buy", "Sell"]
    DAY = timedelta()
    """Backtrader's `valid=Order.DAY`: good for the rest of the bar's (UTC) day."""
    T_Close, T_Day, T_Date, T_None = range(4)

    # Defaults as class attributes: set on the instance only when they change (see OrderData).
    status = Created
    triggered = False
    broker: Any = None
    comminfo: Any = None
    oco: Order | None = None
    _info: _Info | None = None
    _pending: list[ExecutionBit] | None = None  # fills booked, not yet covered by a notification
    _units_done = 0  # size units of the fills applied to `executed`
    _cancel_sent = False
    _oco_group: str | None = None

    def __init__(
        self,
        ref: int,
        client_order_id: str,
        data: Any,
        isbuy: bool,
        size: float,
        price: float | None,
        pricelimit: float | None,
        exectype: int,
        valid: float | None,
        tradeid: int,
        parent: Order | None,
        created_dt: float,
        pclose: float,
        info: dict[str, Any],
    ) -> None:
        self.ref = ref
        self.client_order_id = client_order_id
        self.data = data
        self.ordtype = Order.Buy if isbuy else Order.Sell
        self.size = size if isbuy else -size
        self.price = price
        self.pricelimit = pricelimit
        self.exectype = exectype
        self.valid = valid
        self.tradeid = tradeid
        self.parent = parent
        if info:
            self._info = _Info(info)
        self.created = OrderData(created_dt, self.size, price if price else pclose, pricelimit or 0.0, 0.0, pclose)
        self.executed = OrderData(None, 0.0, 0.0, 0.0, self.size, 0.0)

    @property
    def info(self) -> _Info:
        """Free-form information (Backtrader's `order.info`; extra keyword arguments of buy/sell)."""
        if self._info is None:
            self._info = _Info()
        return self._info

    @property
    def plimit(self) -> float | None:
        return self.pricelimit

    def isbuy(self) -> bool:
        return self.ordtype == Order.Buy

    def issell(self) -> bool:
        return self.ordtype == Order.Sell

    def alive(self) -> bool:
        """Whether it can still execute: Created, Submitted, Accepted or Partial."""
        return self.status in (Order.Created, Order.Submitted, Order.Partial, Order.Accepted)

    def getstatusname(self, status: int | None = None) -> str:
        return self.Status[self.status if status is None else status]

    def getordername(self, exectype: int | None = None) -> str:
        return self.ExecTypes[self.exectype if exectype is None else exectype]

    def ordtypename(self, ordtype: int | None = None) -> str:
        return self.OrdTypes[self.ordtype if ordtype is None else ordtype]

    def addinfo(self, **kwargs: Any) -> None:
        self.info.update(kwargs)

    def _apply_until(self, units: int) -> list[ExecutionBit]:
        """Move pending fills into `executed` until it covers `units` size units; return them."""
        applied: list[ExecutionBit] = []
        pending = self._pending
        if pending is None:
            return applied
        while pending and self._units_done < units:
            bit = pending.pop(0)
            self.executed._addbit(bit)
            self._units_done += bit.units
            applied.append(bit)
        return applied

    def __repr__(self) -> str:
        return (
            f"<Order ref={self.ref} {self.ordtypename()} {self.getordername()} size={self.size} "
            f"price={self.price} status={self.getstatusname()} id={self.client_order_id}>"
        )

    __str__ = __repr__


class Trade:
    """A trade (a position from flat back to flat) of one instrument and `tradeid`, Backtrader's
    `Trade`: `size`, `price` (average entry), `value`, `commission`, `pnl`, `pnlcomm`, `isopen`,
    `isclosed`, `justopened`, `baropen`/`barclose`/`barlen`, `dtopen`/`dtclose`.

    Sizes are kept in exact size units as well, so a trade closes exactly at zero (float sums of
    fill sizes would leave dust).
    """

    Created, Open, Closed = range(3)
    status_names: ClassVar[list[str]] = ["Created", "Open", "Closed"]

    def __init__(self, data: Any, tradeid: int, ref: int, size_scale: int) -> None:
        self.ref = ref
        self.data = data
        self.tradeid = tradeid
        self.size = 0.0
        self.price = 0.0
        self.value = 0.0
        self.commission = 0.0
        self.pnl = 0.0
        self.pnlcomm = 0.0
        self.justopened = False
        self.isopen = False
        self.isclosed = False
        self.baropen = 0
        self.dtopen = 0.0
        self.barclose = 0
        self.dtclose = 0.0
        self.barlen = 0
        self.long: bool | None = None
        self.status = Trade.Created
        self.historyon = False
        self.history: list[Any] = []
        self._units = 0
        self._scale = size_scale

    def update(self, order: Order, size: float, price: float, value: float, commission: float) -> None:
        """Backtrader's `Trade.update` for one part (opened or closed) of one fill."""
        if not size:
            return
        self.commission += commission
        old_size = self.size
        self._units += round(size * self._scale)
        self.size = self._units / self._scale
        self.justopened = bool(not old_size and size)
        if self.justopened:
            self.baropen = len(self.data)
            self.dtopen = self.data.datetime[0]
            self.long = self.size > 0
        self.isopen = bool(self.size)
        self.barlen = len(self.data) - self.baropen
        self.isclosed = bool(old_size and not self.size)
        if self.isclosed:
            self.isopen = False
            self.barclose = len(self.data)
            self.dtclose = self.data.datetime[0]
            self.status = Trade.Closed
        elif self.isopen:
            self.status = Trade.Open
        if abs(self.size) > abs(old_size):
            self.price = (old_size * self.price + size * price) / self.size
            pnl = 0.0
        else:
            pnl = -size * (price - self.price)
        self.pnl += pnl
        self.pnlcomm = self.pnl - self.commission
        self.value = self.size * self.price

    def _snapshot(self) -> Trade:
        """A copy for a notification (Backtrader notifies copies)."""
        copy = Trade.__new__(Trade)
        copy.__dict__.update(self.__dict__)
        return copy

    def getdataname(self) -> str:
        return str(self.data._name)

    def open_datetime(self) -> datetime:
        return num2date(self.dtopen)

    def close_datetime(self) -> datetime:
        return num2date(self.dtclose)

    def __bool__(self) -> bool:
        """Whether the trade holds a size (Backtrader's)."""
        return self._units != 0

    def __repr__(self) -> str:
        return (
            f"<Trade ref={self.ref} {self.data._name} {self.status_names[self.status]} size={self.size} "
            f"price={self.price} pnl={self.pnl} pnlcomm={self.pnlcomm}>"
        )
