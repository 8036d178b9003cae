"""`Strategy`: the base class a Backtrader strategy keeps when `import backtrader as bt` becomes
`from services.strategy import btcompat as bt`.

Theory of operation
-------------------
The adapter (adapter.py) builds the strategy when the run starts: it binds the feeds, the
parameters and the broker view to a fresh instance, then runs the class's `__init__` in the
building stage (lines.building), where indicators and line operations register with it in
declaration order. The minimum period of each feed is then the largest among the indicators
clocked by it, as Backtrader computes it. `prenext()` runs while some feed has fewer bars than
its minimum period, `nextstart()` once on the first step where none has, `next()` after that
(the adapter's `_step`).

Order helpers (`buy`, `sell`, `close`, `cancel`, the brackets, the order_target family) never
touch state: each builds a PlaceOrder or CancelOrder intent through the strategy context (prices
to the nearest tick, sizes down to whole lots) and an `Order` object, and appends the intent to
`_bt_intents`, which the adapter hands to the runner when the callback returns. The core decides
what happens; the strategy hears about it through `notify_order` / `notify_trade`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import msgspec

from schemas.intents import CancelOrder, PlaceOrder
from services.strategy.btcompat.broker import Broker, FixedSize, Position, Sizer
from services.strategy.btcompat.feeds import Data, DateTimeLine
from services.strategy.btcompat.indicators import Params
from services.strategy.btcompat.lines import (
    DEFAULT_HISTORY,
    NS_PER_DAY,
    BufferLine,
    ns_to_num,
    time_to_ns,
)
from services.strategy.btcompat.orders import Order, Trade
from services.strategy.context import StrategyContext

__all__ = ["Strategy", "param_defaults"]

Intent = PlaceOrder | CancelOrder

_ORDER_TYPES = {
    Order.Market: "market",
    Order.Limit: "limit",
    Order.Stop: "stop",
    Order.StopLimit: "stop_limit",
}
_DAY_END_NS = 86_399_009_999_000
"""Backtrader's end of a DAY order: `datetime.time(23, 59, 59, 9999)` after midnight, in ns."""


def param_defaults(owner: str, params: Any) -> dict[str, Any]:
    """Parameters given Backtrader's way: a tuple (or list) of (name, default) pairs, or a dict.

    Raises:
        TypeError: anything else, naming the offending item.
    """
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, tuple | list):
        items = []
        for item in params:
            if not isinstance(item, tuple | list) or len(item) != 2:
                raise TypeError(f"{owner}.params: item {item!r} is not a (name, default) pair")
            items.append((item[0], item[1]))
    else:
        raise TypeError(f"{owner}.params: {params!r} is neither a tuple of (name, default) pairs nor a dict")
    for name, _ in items:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"{owner}.params: name {name!r} is not an identifier")
    return dict(items)


class Strategy:
    """Base class of Backtrader-style strategies. Override `__init__` (declare indicators),
    `next()`, and optionally `prenext()`, `nextstart()`, `start()`, `stop()`, `notify_order()`,
    `notify_trade()`, `notify_cashvalue()`.

    Class attributes:
        params: defaults, as `(("fast", 10), ("slow", 30))` or `{"fast": 10, "slow": 30}`;
            merged along the class hierarchy; read as `self.p.fast` / `self.params.fast`.
        history: values each line keeps (`line[-k]` for k < history); DEFAULT_HISTORY.
    """

    params: ClassVar[Any] = ()
    history: ClassVar[int] = DEFAULT_HISTORY
    _bt_defaults: ClassVar[dict[str, Any]] = {}

    # Set by _bt_bind before __init__ runs.
    p: Params
    datas: list[Data]
    data: Data
    broker: Broker
    sizer: Sizer
    dnames: dict[str, Data]
    position: Position
    """The position of the first feed's instrument (an attribute, not a property: read every bar)."""
    _bt_ctx: StrategyContext
    _bt_intents: list[Intent]
    _bt_orders: dict[str, Order]
    _bt_lines: list[BufferLine]
    _bt_positions: dict[str, Position]
    _bt_ref: int
    _bt_trade_ref: int
    _bt_len: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("params")
            if own is not None and issubclass(klass, Strategy) and not isinstance(own, Params):
                merged.update(param_defaults(klass.__name__, own))
        cls._bt_defaults = merged

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Declare indicators here (a subclass's `__init__`); the base does nothing."""

    # ------------------------------------------------------------------ wiring (adapter)

    def _bt_bind(self, ctx: StrategyContext, datas: list[Data], params: dict[str, Any]) -> None:
        """Attach the run: context, feeds, parameters, broker. Called before `__init__`."""
        self._bt_ctx = ctx
        self.p = self.params = Params(params)  # type: ignore[misc]
        self.datas = datas
        self.dnames = {d._name: d for d in datas}
        if datas:
            self.data = datas[0]
        for i, data in enumerate(datas):
            setattr(self, f"data{i}", data)
        self.broker = Broker(self)
        self.sizer = FixedSize()
        self.sizer.set(self, self.broker)
        self.env = self.cerebro = None
        self._bt_intents = []
        self._bt_orders = {}
        self._bt_lines = []
        self._bt_positions = {}
        self._bt_ref = 0
        self._bt_trade_ref = 0
        self._bt_len = 0
        for data in datas:
            data._position = self._bt_position(data.instrument)
        if datas:
            self.position = datas[0]._position

    def _bt_register(self, line: BufferLine) -> None:
        """An indicator or line operation declared in `__init__`: updated with its clock's bars."""
        clock = line._clock
        if not isinstance(clock, Data) or all(clock is not d for d in self.datas):
            raise TypeError(f"{line._name}: its input is not a line of this strategy's feeds")
        self._bt_lines.append(line)
        clock._indicators.append(line)

    def _bt_finish_init(self) -> None:
        """Backtrader's minimum period per feed: the largest among the indicators it clocks."""
        for data in self.datas:
            data._minperiod = max([ind._min_period for ind in data._indicators], default=1)

    def _bt_position(self, instrument: str) -> Position:
        pos = self._bt_positions.get(instrument)
        if pos is None:
            pos = self._bt_positions[instrument] = Position()
        return pos

    def _bt_take_intents(self) -> list[Intent] | None:
        intents = self._bt_intents
        if not intents:
            return None
        self._bt_intents = []
        return intents

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: Backtrader's `data_close` / `data1_high` aliases,
        # and a clear message when the strategy is used outside a run.
        if name.startswith("data") and "datas" in self.__dict__:
            head, _, line = name.partition("_")
            index = head[4:]
            if index == "" or index.isdigit():
                datas = self.__dict__["datas"]
                i = int(index or 0)
                if i < len(datas):
                    return getattr(datas[i], line) if line else datas[i]
                raise AttributeError(f"{name}: the strategy has {len(datas)} data feed(s)")
        if name in ("data", "datas", "broker", "p", "params") and "datas" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.{name}: the strategy is not running; run it with run_backtest "
                "(or wrap it in BacktraderAdapter)"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ hooks (override)

    def start(self) -> None:
        """Called once before the first bar."""

    def prenext(self) -> None:
        """Called on bars before every feed has reached its minimum period."""

    def nextstart(self) -> None:
        """Called once on the first bar where every feed has reached its minimum period."""
        self.next()

    def next(self) -> None:
        """Called on every bar from then on."""

    def stop(self) -> None:
        """Called once after the last bar."""

    def notify_order(self, order: Order) -> None:
        """An order changed status (delivered before `next()` of the bar it happened on)."""

    def notify_trade(self, trade: Trade) -> None:
        """A trade opened, changed or closed (after the bar's order notifications)."""

    def notify_cashvalue(self, cash: float, value: float) -> None:
        """Cash and value before each `next()` (only called when overridden: it costs a lookup)."""

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Time steps (with new bars) processed so far."""
        return self._bt_len

    @property
    def datetime(self) -> DateTimeLine:
        """The first feed's datetime line (`self.datetime.date(0)`)."""
        return self.data.datetime

    def getposition(self, data: Any = None, broker: Any = None) -> Position:
        """The position of `data`'s instrument (default: the first feed)."""
        return self._bt_position(self._bt_data(data).instrument)

    def getpositionbyname(self, name: str | None = None, broker: Any = None) -> Position:
        return self.getposition(self.getdatabyname(name) if name else None)

    def getdatabyname(self, name: str) -> Data:
        data = self.dnames.get(name)
        if data is None:
            raise KeyError(f"data: no feed named {name!r} (feeds: {list(self.dnames)})")
        return data

    def getdatanames(self) -> list[str]:
        return list(self.dnames)

    def getsizer(self) -> Sizer:
        return self.sizer

    def setsizer(self, sizer: Sizer) -> Sizer:
        """Use `sizer` (e.g. `bt.sizers.FixedSize(stake=10)`) when an order gives no size."""
        if not isinstance(sizer, Sizer):
            raise TypeError(f"sizer: {sizer!r} is not a Sizer instance (e.g. bt.sizers.FixedSize(stake=10))")
        sizer.set(self, self.broker)
        self.sizer = sizer
        return sizer

    def getsizing(self, data: Any = None, isbuy: bool = True) -> float:
        return self.sizer.getsizing(self._bt_data(data), isbuy)

    def _bt_data(self, data: Any) -> Data:
        if data is None:
            if not self.datas:
                raise ValueError("data: the strategy has no data feed")
            return self.datas[0]
        if isinstance(data, str):
            return self.getdatabyname(data)
        if isinstance(data, Data):
            return data
        raise TypeError(f"data: {data!r} is not a data feed of this strategy (or its name)")

    # ------------------------------------------------------------------ orders

    def buy(
        self,
        data: Any = None,
        size: float | None = None,
        price: float | None = None,
        plimit: float | None = None,
        exectype: int | None = None,
        valid: Any = None,
        tradeid: int = 0,
        oco: Order | None = None,
        trailamount: float | None = None,
        trailpercent: float | None = None,
        parent: Order | None = None,
        transmit: bool = True,
        **kwargs: Any,
    ) -> Order | None:
        """A buy order (market unless `exectype` says otherwise); None when the size is 0.

        Raises:
            ValueError / TypeError: a field that cannot become an order, named with its value.
            NotImplementedError: an order type the layer does not offer (Close, StopTrail, ...).
        """
        return self._bt_submit(
            True, data, size, price, plimit, exectype, valid, tradeid, oco, trailamount, trailpercent, parent, kwargs
        )

    def sell(
        self,
        data: Any = None,
        size: float | None = None,
        price: float | None = None,
        plimit: float | None = None,
        exectype: int | None = None,
        valid: Any = None,
        tradeid: int = 0,
        oco: Order | None = None,
        trailamount: float | None = None,
        trailpercent: float | None = None,
        parent: Order | None = None,
        transmit: bool = True,
        **kwargs: Any,
    ) -> Order | None:
        """A sell order; see `buy`."""
        return self._bt_submit(
            False, data, size, price, plimit, exectype, valid, tradeid, oco, trailamount, trailpercent, parent, kwargs
        )

    def close(self, data: Any = None, size: float | None = None, **kwargs: Any) -> Order | None:
        """An order that flattens the position of `data` (or reduces it by `size`); None when flat."""
        feed = self._bt_data(data)
        held = self.getposition(feed).size
        amount = abs(size if size is not None else held)
        if held > 0:
            return self.sell(data=feed, size=amount, **kwargs)
        if held < 0:
            return self.buy(data=feed, size=amount, **kwargs)
        return None

    def cancel(self, order: Order | None) -> None:
        """Ask to cancel `order` (nothing happens if it is no longer alive)."""
        if order is None or not order.alive() or order._cancel_sent:
            return
        if not isinstance(order, Order) or self._bt_orders.get(order.client_order_id) is not order:
            raise ValueError(f"order: {order!r} is not a working order of this strategy")
        order._cancel_sent = True
        self._bt_intents.append(self._bt_ctx.cancel(order.client_order_id))

    def buy_bracket(
        self,
        data: Any = None,
        size: float | None = None,
        price: float | None = None,
        plimit: float | None = None,
        exectype: int = Order.Limit,
        valid: Any = None,
        tradeid: int = 0,
        trailamount: float | None = None,
        trailpercent: float | None = None,
        oargs: Mapping[str, Any] | None = None,
        stopprice: float | None = None,
        stopexec: int | None = Order.Stop,
        stopargs: Mapping[str, Any] | None = None,
        limitprice: float | None = None,
        limitexec: int | None = Order.Limit,
        limitargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Order | None]:
        """An entry (limit at `price` by default, as Backtrader) with a stop-loss child at
        `stopprice` and a take-profit child at `limitprice`; returns [entry, stop, limit].

        The children wait until the entry fills, then work from the next bar; one filling
        cancels the other. `stopexec=None` or `limitexec=None` leaves that child out.
        """
        return self._bt_bracket(
            True, data, size, price, plimit, exectype, valid, tradeid, trailamount, trailpercent,
            oargs, stopprice, stopexec, stopargs, limitprice, limitexec, limitargs, kwargs,
        )  # fmt: skip

    def sell_bracket(
        self,
        data: Any = None,
        size: float | None = None,
        price: float | None = None,
        plimit: float | None = None,
        exectype: int = Order.Limit,
        valid: Any = None,
        tradeid: int = 0,
        trailamount: float | None = None,
        trailpercent: float | None = None,
        oargs: Mapping[str, Any] | None = None,
        stopprice: float | None = None,
        stopexec: int | None = Order.Stop,
        stopargs: Mapping[str, Any] | None = None,
        limitprice: float | None = None,
        limitexec: int | None = Order.Limit,
        limitargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Order | None]:
        """A short entry with a stop-loss above and a take-profit below; see `buy_bracket`."""
        return self._bt_bracket(
            False, data, size, price, plimit, exectype, valid, tradeid, trailamount, trailpercent,
            oargs, stopprice, stopexec, stopargs, limitprice, limitexec, limitargs, kwargs,
        )  # fmt: skip

    def order_target_size(self, data: Any = None, target: float = 0, **kwargs: Any) -> Order | None:
        """An order that takes the position of `data` to `target` (signed size)."""
        feed = self._bt_data(data)
        held = self.getposition(feed).size
        if not target and held:
            return self.close(data=feed, size=held, **kwargs)
        if target > held:
            return self.buy(data=feed, size=target - held, **kwargs)
        if target < held:
            return self.sell(data=feed, size=held - target, **kwargs)
        return None

    def order_target_value(
        self, data: Any = None, target: float = 0.0, price: float | None = None, **kwargs: Any
    ) -> Order | None:
        """An order that takes the position's value (at `price`, default the close) to `target`.

        Sizes are whole lots of the instrument (Backtrader's stock default rounds to whole units).
        """
        feed = self._bt_data(data)
        held = self.getposition(feed).size
        if not target and held:
            return self.close(data=feed, size=held, price=price, **kwargs)
        value = self.broker.getvalue(datas=[feed])
        px = price if price is not None else feed.close[0]
        lot = self._bt_ctx.units[feed.instrument]
        lot_size = lot.lot_size / lot.size_scale
        if target > value:
            size = math.floor((target - value) / px / lot_size) * lot_size
            return self.buy(data=feed, size=size, price=price, **kwargs) if size else None
        if target < value:
            size = math.floor((value - target) / px / lot_size) * lot_size
            return self.sell(data=feed, size=size, price=price, **kwargs) if size else None
        return None

    def order_target_percent(self, data: Any = None, target: float = 0.0, **kwargs: Any) -> Order | None:
        """An order that takes the position's value to `target` (a fraction) of the account value."""
        return self.order_target_value(data=data, target=self.broker.getvalue() * target, **kwargs)

    # ------------------------------------------------------------------ order plumbing

    def _bt_submit(
        self,
        isbuy: bool,
        data: Any,
        size: float | None,
        price: float | None,
        plimit: float | None,
        exectype: int | None,
        valid: Any,
        tradeid: int,
        oco: Order | None,
        trailamount: float | None,
        trailpercent: float | None,
        parent: Order | None,
        info: dict[str, Any],
    ) -> Order | None:
        feed = self._bt_data(data)
        if size is None:
            size = self.getsizing(feed, isbuy)
        if isinstance(size, bool) or not isinstance(size, int | float) or not math.isfinite(size) or size < 0:
            raise ValueError(f"size: {size!r} is not a finite number >= 0")
        if not size:
            return None
        if exectype is None:
            exectype = Order.Market
        order_type = _ORDER_TYPES.get(exectype)
        if order_type is None:
            name = Order.ExecTypes[exectype] if isinstance(exectype, int) and 0 <= exectype < 8 else repr(exectype)
            raise NotImplementedError(
                f"exectype: {name} is not supported by the tradebus layer (Market, Limit, Stop, StopLimit are)"
            )
        if trailamount or trailpercent:
            raise NotImplementedError("trailamount/trailpercent: trailing stops are not supported")
        pclose = feed.close[0]
        limit = stop = None
        if exectype == Order.Limit:
            limit = price if price else pclose
        elif exectype == Order.Stop:
            stop = price if price else pclose
        elif exectype == Order.StopLimit:
            stop = price if price else pclose
            limit = plimit if plimit else stop
        expire_ns = None if exectype == Order.Market else self._bt_expiry(valid, feed)
        ctx = self._bt_ctx
        oco_group = None
        if oco is not None:
            oco_group = self._bt_join_oco(oco)
        intent = ctx.order(
            feed.instrument,
            "buy" if isbuy else "sell",
            size,
            price=limit,
            stop_price=stop,
            order_type=order_type,
            time_in_force="gtc" if expire_ns is None else "gtd",
            expire_time_ns=expire_ns,
            parent=None if parent is None else self._bt_own(parent, "parent").client_order_id,
            oco_group=oco_group,
        )
        units = ctx.units[feed.instrument]
        self._bt_ref += 1
        order = Order(  # positional: this runs for every order
            self._bt_ref,
            intent.client_order_id,
            feed,
            isbuy,
            units.size(intent.quantity),
            None if exectype == Order.Market else units.price(intent.stop_price or intent.price or 0),
            None if intent.price is None else units.price(intent.price),
            exectype,
            None if expire_ns is None else ns_to_num(expire_ns - (feed.interval_ns or 0)),
            tradeid,
            parent,
            feed.datetime[0],
            pclose,
            info,
        )
        if oco is not None:
            order.oco = oco
            order._oco_group = oco_group
        self._bt_orders[intent.client_order_id] = order
        self._bt_intents.append(intent)
        return order

    def _bt_own(self, order: Any, field: str) -> Order:
        if not isinstance(order, Order) or self._bt_orders.get(order.client_order_id) is not order:
            raise ValueError(f"{field}: {order!r} is not an order of this strategy that is still known")
        return order

    def _bt_join_oco(self, oco: Order) -> str:
        """The OCO group of `oco`, creating it on that order if its intent has not left yet.

        Raises:
            ValueError: `oco` was sent in an earlier callback without a group (the core cannot
                add an order to a group after the fact).
        """
        oco = self._bt_own(oco, "oco")
        if oco._oco_group is not None:
            return oco._oco_group
        group = f"oco-{oco.ref}"
        for i, intent in enumerate(self._bt_intents):
            if isinstance(intent, PlaceOrder) and intent.client_order_id == oco.client_order_id:
                self._bt_intents[i] = msgspec.structs.replace(intent, oco_group=group)
                oco._oco_group = group
                return group
        raise ValueError(
            f"oco: order ref {oco.ref} was sent in an earlier callback without an OCO group; "
            "create OCO orders in the same callback (or pass oco= on the first order's partner too)"
        )

    def _bt_expiry(self, valid: Any, data: Data) -> int | None:
        """`valid` as an expiry instant (ns) for the venue, or None (good till cancelled).

        Backtrader expires an order on the first bar stamped after `valid`; our bars are stamped
        by their close, one interval later, hence the added interval.

        Raises:
            TypeError: `valid` is none of None, datetime, date, timedelta, a number of days.
        """
        if valid is None:
            return None
        interval = data.interval_ns or 0
        open_ns = data.datetime.open_time_ns(0)
        if isinstance(valid, datetime | date):
            until = time_to_ns(valid)
        elif isinstance(valid, timedelta):
            if valid == Order.DAY:
                until = open_ns // NS_PER_DAY * NS_PER_DAY + _DAY_END_NS
            else:
                until = open_ns + (valid.days * 86_400 + valid.seconds) * 10**9 + valid.microseconds * 1_000
        elif isinstance(valid, int | float) and not isinstance(valid, bool) and math.isfinite(valid):
            if not valid:
                until = open_ns // NS_PER_DAY * NS_PER_DAY + _DAY_END_NS
            else:
                until = open_ns + round(valid * NS_PER_DAY)
        else:
            raise TypeError(f"valid: {valid!r} is not a datetime, date, timedelta or number of days")
        return until + interval

    def _bt_bracket(
        self,
        isbuy: bool,
        data: Any,
        size: float | None,
        price: float | None,
        plimit: float | None,
        exectype: int,
        valid: Any,
        tradeid: int,
        trailamount: float | None,
        trailpercent: float | None,
        oargs: Mapping[str, Any] | None,
        stopprice: float | None,
        stopexec: int | None,
        stopargs: Mapping[str, Any] | None,
        limitprice: float | None,
        limitexec: int | None,
        limitargs: Mapping[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> list[Order | None]:
        entry_args: dict[str, Any] = dict(
            data=data, size=size, price=price, plimit=plimit, exectype=exectype, valid=valid, tradeid=tradeid,
            trailamount=trailamount, trailpercent=trailpercent,
        )  # fmt: skip
        entry_args.update(oargs or {})
        entry_args.update(kwargs)
        side, exit_side = (self.buy, self.sell) if isbuy else (self.sell, self.buy)
        entry = side(**entry_args)
        if entry is None:
            return [None, None, None]
        children: list[Order | None] = []
        for exit_price, exit_exec, exit_args in (
            (stopprice, stopexec, stopargs),
            (limitprice, limitexec, limitargs),
        ):
            if exit_exec is None:
                children.append(None)
                continue
            args: dict[str, Any] = dict(
                data=data, price=exit_price, exectype=exit_exec, valid=valid, tradeid=tradeid,
                trailamount=trailamount, trailpercent=trailpercent,
            )  # fmt: skip
            args.update(exit_args or {})
            args.update(kwargs)
            args["parent"] = entry
            args["size"] = abs(entry.size)
            children.append(exit_side(**args))
        return [entry, children[0], children[1]]
