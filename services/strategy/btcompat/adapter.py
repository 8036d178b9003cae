"""`BacktraderAdapter`: runs a Backtrader-style strategy class as a native tradebus strategy.

Theory of operation
-------------------
The runner sends events in time order; per bar: fills at this bar's open (OrderUpdated,
OrderFilled) first, then BarClosed, then TimeSliceClosed once every event stamped t is in (the
adapter sets `wants_time_slices`). The adapter mirrors Backtrader's cycle on that stream:

* OrderFilled: the position moves at once (Backtrader's broker updates it at execution) and the
  fill is split into closed/opened parts against it (`ExecutionBit`), kept on the order until a
  notification covers it.
* OrderUpdated / IntentRefused: queued as notifications (status, filled size). Nothing of the
  user's runs here.
* BarClosed: the bar goes to its feed (by instrument and interval), whose indicators update.
* TimeSliceClosed, if some feed got a bar: the queued notifications are delivered in order
  (`notify_order` with `executed` advanced to what each covers, then `notify_trade` for the trades
  those fills opened or closed), then `prenext()` / `nextstart()` / `next()` by the minimum-period
  rule. This is Backtrader's order: notifications before `next()` of the bar they happen on.

The intents the user's code produced (order helpers append them) are returned to the runner from
the hook that ran it. Feeds are known before the strategy is built: declared (`datas=` or
`bind_series`, in the order the series were given), else one per configured instrument in
`ctx.instruments` order with the interval of its first bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from schemas.intents import CancelOrder
from services.strategy.api import Intents
from services.strategy.api import Strategy as NativeStrategy
from services.strategy.btcompat.feeds import Data
from services.strategy.btcompat.lines import building, ns_to_num
from services.strategy.btcompat.orders import ExecutionBit, Order, Trade
from services.strategy.btcompat.strategy import Intent, Strategy
from services.strategy.context import StrategyContext
from services.strategy.events import BarClosed, IntentRefused, OrderFilled, OrderUpdated, TimeSliceClosed

__all__ = ["BacktraderAdapter", "DataKey"]

DataKey = tuple[str, int]
"""(instrument, interval_ns) of a feed."""

_STATUS = {
    "submitted": Order.Submitted,
    "accepted": Order.Accepted,
    "partially_filled": Order.Partial,
    "filled": Order.Completed,
    "cancelled": Order.Canceled,
    "expired": Order.Expired,
    "rejected": Order.Rejected,
}
"""Core order states -> Backtrader statuses. Pending states (cancel/replace pending) and in_doubt
have no Backtrader counterpart and are not notified."""

_REFUSAL_STATUS = {
    "insufficient_cash": Order.Margin,
    "insufficient_position": Order.Margin,  # a cash account selling what it does not hold
    "already_expired": Order.Expired,
}
_TERMINAL = frozenset({Order.Completed, Order.Canceled, Order.Expired, Order.Margin, Order.Rejected})
_FILL_STATUSES = frozenset({Order.Partial, Order.Completed})

Note = tuple[Order, int, float]
"""A queued notification: the order, its new status, its filled size (display units) by then."""


def _interval_label(interval_ns: int) -> str:
    for unit, size in (("w", 604_800 * 10**9), ("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("m", 60 * 10**9)):
        if interval_ns % size == 0:
            return f"{interval_ns // size}{unit}"
    return f"{interval_ns}ns"


class BacktraderAdapter(NativeStrategy):
    """A native strategy that runs the Backtrader-style strategy class `cls`.

    Args:
        cls: a `services.strategy.btcompat.Strategy` subclass.
        params: parameter overrides (unknown names are refused).
        datas: the feeds, in `self.datas` order, as (instrument, interval) pairs (interval in ns
            or as text like "1m"); None: see `bind_series`, else one feed per instrument.

    Raises:
        TypeError: `cls` is not a Backtrader-style strategy class, or an unknown parameter.
    """

    wants_time_slices = True

    def __init__(
        self, cls: type[Strategy], params: dict[str, Any] | None = None, *, datas: Sequence[Any] | None = None
    ) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"strategy: {cls!r} is not a subclass of services.strategy.btcompat.Strategy")
        params = dict(params or {})
        defaults = dict(cls._bt_defaults)
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(f"{cls.__name__}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
        defaults.update(params)
        super().__init__()
        self.param_values = defaults
        own_id = getattr(cls, "strategy_id", None)
        if own_id is not None:  # the wrapped class names its own id (the native base's is a class attribute)
            setattr(self, "strategy_id", str(own_id))  # noqa: B010
        self.cls = cls
        self.strategy: Strategy | None = None  # the user's instance, built by on_start
        self._declared: list[tuple[str, int | None]] | None = None
        self._explicit = datas is not None  # declared by the caller: bind_series leaves it alone
        if datas is not None:
            self._declared = [self._key(item) for item in datas]
        self._route: dict[str, Data] = {}
        self._feeds: dict[tuple[str, int | None], Data] = {}
        self._notes: list[Note] = []
        self._filled_orders: list[Order] = []  # orders with fills not yet covered by a notification
        self._trades: dict[tuple[str, int], Trade] = {}
        self._new_bars = False
        self._running_next = False
        self._cashvalue = False
        self._cancelling: list[str] = []  # cancels sent, not yet settled (see _emit)
        self._deferred: list[Intent] = []  # intents held back until those cancels have settled

    @staticmethod
    def _key(item: Any) -> tuple[str, int | None]:
        from services.data.times import parse_interval  # only when feeds are declared

        if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str):
            return item[0], parse_interval(item[1])
        instrument = getattr(item, "instrument", None)
        interval = getattr(item, "interval_ns", None)
        if isinstance(instrument, str) and isinstance(interval, int):
            return instrument, interval
        raise TypeError(f"datas: {item!r} is neither (instrument, interval) nor a bar series")

    def bind_series(self, series: Iterable[Any]) -> None:
        """Declare the feeds from the series a backtest runs on (bar series, in the order given;
        trade series have no bars and are skipped), unless `datas=` declared them already.
        A runner calls it before `on_start`.

        Raises:
            RuntimeError: the strategy is already built.
        """
        if self.strategy is not None:
            raise RuntimeError("bind_series: the strategy is already built")
        if self._explicit:
            return
        self._declared = [self._key(s) for s in series if isinstance(getattr(s, "interval_ns", None), int)]

    # ------------------------------------------------------------------ native hooks

    def on_start(self, ctx: StrategyContext) -> Intents:
        if self.strategy is not None:
            raise RuntimeError(f"{self.cls.__name__}: an adapter runs one backtest; make a new one for the next")
        keys = self._declared
        if keys is None:
            keys = [(name, None) for name in ctx.instruments]
        counts: dict[str, int] = {}
        for instrument, _ in keys:
            counts[instrument] = counts.get(instrument, 0) + 1
        cls = self.cls
        history = cls.history
        datas = []
        for index, (instrument, interval) in enumerate(keys):
            if (instrument, interval) in self._feeds:
                raise ValueError(f"datas: feed {instrument} at interval {interval} ns is given twice")
            name = instrument
            if counts[instrument] > 1 and interval is not None:
                name = f"{instrument}@{_interval_label(interval)}"
            data = Data(instrument, interval, name, index, history)
            datas.append(data)
            self._feeds[(instrument, interval)] = data
            self._route.setdefault(instrument, data)
        strategy = cls.__new__(cls)
        strategy._bt_bind(ctx, datas, dict(self.param_values))
        self.strategy = strategy
        with building(strategy):
            cls.__init__(strategy)
        strategy._bt_finish_init()
        self._cashvalue = type(strategy).notify_cashvalue is not Strategy.notify_cashvalue
        strategy.start()
        return self._emit(strategy._bt_take_intents())

    def on_event(self, ctx: StrategyContext, event: Any) -> Intents:
        kind = type(event)
        if kind is BarClosed:
            data = self._route.get(event.instrument)
            if data is None or data.interval_ns != event.interval_ns:
                data = self._feed_for(event)
                if data is None:
                    return None
            # Data._push, inlined: this runs for every bar of the run.
            idx = data._idx + 1
            if idx == data._cap:
                idx = 0
            data._idx = idx
            data._bars[idx] = event
            data._count += 1
            if data._count == 1:
                data._first_bar()
            for indicator in data._indicators:
                indicator._update(event)
            self._new_bars = True
            return None
        if kind is TimeSliceClosed:
            if not self._new_bars:
                return None
            self._new_bars = False
            return self._step()
        if kind is OrderFilled:
            self._on_fill(ctx, event)
        elif kind is OrderUpdated:
            status = _STATUS.get(event.state)
            if status is not None:
                assert self.strategy is not None
                order = self.strategy._bt_orders.get(event.client_order_id)
                if order is not None:
                    self._notes.append((order, status, event.filled_quantity))
            if self._cancelling and event.state != "cancel_pending":
                return self._cancel_settled(event.client_order_id)
        elif kind is IntentRefused:
            self._on_refused(event)
            if self._cancelling and event.intent == "cancel_order":
                return self._cancel_settled(event.client_order_id)
        return None

    def on_stop(self, ctx: StrategyContext) -> Intents:
        strategy = self.strategy
        if strategy is None:
            return None
        strategy.stop()
        return self._emit(strategy._bt_take_intents())

    # ------------------------------------------------------------------ events

    def _feed_for(self, bar: BarClosed) -> Data | None:
        """The feed of a bar off the fast route: a second interval of an instrument, a feed whose
        interval is learnt now, or none (a series the declared feeds leave out).

        Raises:
            ValueError: feeds were not declared and an instrument's bars come at a second interval.
        """
        data = self._feeds.get((bar.instrument, bar.interval_ns))
        if data is not None:
            return data
        data = self._feeds.get((bar.instrument, None))
        if data is None:
            if self._declared is None and any(instrument == bar.instrument for instrument, _ in self._feeds):
                known = sorted(str(d.interval_ns) for d in self._feeds.values() if d.instrument == bar.instrument)
                raise ValueError(
                    f"bars of {bar.instrument} at interval {bar.interval_ns} ns, but its feed has interval "
                    f"{', '.join(known)} ns: declare every feed (BacktraderAdapter(cls, datas=[...]) or bind_series)"
                )
            return None
        del self._feeds[(bar.instrument, None)]
        data.interval_ns = bar.interval_ns
        self._feeds[(bar.instrument, bar.interval_ns)] = data
        return data

    def _on_fill(self, ctx: StrategyContext, fill: OrderFilled) -> None:
        strategy = self.strategy
        assert strategy is not None
        pos = strategy._bt_position(fill.instrument)
        size = fill.quantity if fill.side == "buy" else -fill.quantity
        price = fill.price
        entry_price = pos.price
        opened, closed = pos.update(size, price, fill.position)
        order = strategy._bt_orders.get(fill.client_order_id)
        if order is None:
            return  # not ours to report (an order the layer has forgotten): the position moved anyway
        fee = fill.fee
        closed_comm = fee * abs(closed) / abs(size) if closed else 0.0
        units = ctx.units[fill.instrument]
        bit = ExecutionBit(
            dt=ns_to_num(fill.time_ns - (order.data.interval_ns or 0)),
            size=size,
            price=price,
            closed=closed,
            closedvalue=-closed * entry_price,
            closedcomm=closed_comm,
            opened=opened,
            openedvalue=opened * price,
            openedcomm=fee - closed_comm,
            pnl=-closed * (price - entry_price),
            psize=pos.size,
            pprice=pos.price,
            units=round(fill.quantity * units.size_scale),
        )
        pending = order._pending
        if pending is None:
            order._pending = [bit]
        else:
            pending.append(bit)
        self._filled_orders.append(order)

    def _on_refused(self, event: IntentRefused) -> None:
        if event.intent != "place_order" or event.client_order_id is None:
            return  # a refused cancel: Backtrader's cancel of a finished order is silent too
        assert self.strategy is not None
        order = self.strategy._bt_orders.get(event.client_order_id)
        if order is not None:
            status = _REFUSAL_STATUS.get(event.reason, Order.Rejected)
            order.info.setdefault("refusal", f"{event.reason}: {event.detail}")
            self._notes.append((order, status, 0.0))

    # ------------------------------------------------------------------ the bar step

    def _step(self) -> list[Intent] | None:
        strategy = self.strategy
        assert strategy is not None
        released = None
        if self._deferred:  # cancels that never settled (no answer came): send the rest anyway
            self._cancelling.clear()
            released, self._deferred = self._deferred, []
        if self._notes or self._filled_orders:
            self._deliver(strategy)
        if self._cashvalue:
            strategy.notify_cashvalue(strategy.broker.getcash(), strategy.broker.getvalue())
        strategy._bt_len += 1
        if self._running_next:
            strategy.next()
        else:
            # Backtrader's rule: the largest (minimum period - bars seen) over the feeds; once it
            # reaches zero it stays at or below (bars only accumulate), so nextstart runs once.
            if max(d._minperiod - d._count for d in strategy.datas) > 0:
                strategy.prenext()
            else:
                self._running_next = True
                strategy.nextstart()
        intents = strategy._bt_intents
        if intents:
            strategy._bt_intents = []
            return self._emit(released + intents if released else intents)
        return self._emit(released) if released else None

    # ------------------------------------------------------------------ cancels before new orders

    def _emit(self, intents: list[Intent] | None) -> list[Intent] | None:
        """The intents to hand to the runner now; orders that follow a cancel wait for it.

        Backtrader's broker takes a cancel at once, so `self.cancel(stop); self.close()` sells
        what the stop held. The core keeps a cancelled order's claim on the position (or cash)
        until the venue confirms the cancel, and would refuse that sell; so PlaceOrders after a
        CancelOrder in one callback are held back until every such cancel has settled (the order
        cancelled, filled, the cancel rejected or refused), then sent, in their original order.
        """
        if not intents:
            return None
        if self._cancelling:
            self._deferred.extend(intents)
            return None
        cancels: list[str] = []
        for i, intent in enumerate(intents):
            if type(intent) is CancelOrder:
                cancels.append(intent.client_order_id)
            elif cancels:
                self._cancelling = cancels
                self._deferred = intents[i:]
                return intents[:i]
        return intents

    def _cancel_settled(self, client_order_id: str) -> list[Intent] | None:
        cancelling = self._cancelling
        if client_order_id in cancelling:
            cancelling.remove(client_order_id)
            if not cancelling:
                released, self._deferred = self._deferred, []
                return self._emit(released)
        return None

    def _deliver(self, strategy: Strategy) -> None:
        """Deliver the queued order notifications, then the trade notifications they imply."""
        notes = self._notes
        self._notes = []
        trades: list[Trade] = []
        for order, status, filled in notes:
            if status in _FILL_STATUSES and order._pending:
                scale = strategy._bt_ctx.units[order.data.instrument].size_scale
                for bit in order._apply_until(round(filled * scale)):
                    self._trade(strategy, order, bit, trades)
            order.status = status
            strategy.notify_order(order)
            if status in _TERMINAL and not order._pending:
                strategy._bt_orders.pop(order.client_order_id, None)
        # Fills no notification covered (a late fill after a cancel): booked all the same.
        for order in self._filled_orders:
            pending = order._pending
            if pending:
                for bit in order._apply_until(order._units_done + sum(b.units for b in pending)):
                    self._trade(strategy, order, bit, trades)
                if order.status in _TERMINAL:
                    strategy._bt_orders.pop(order.client_order_id, None)
        self._filled_orders.clear()
        for trade in trades:
            strategy.notify_trade(trade)

    def _trade(self, strategy: Strategy, order: Order, bit: ExecutionBit, out: list[Trade]) -> None:
        """Backtrader's trade bookkeeping of one fill (Strategy._addnotification)."""
        key = (order.data.instrument, order.tradeid)
        trade = self._trades.get(key)
        if trade is None:
            trade = self._new_trade(strategy, order, key)
        if bit.closed:
            trade.update(order, bit.closed, bit.price, bit.closedvalue, bit.closedcomm)
            if trade.isclosed:
                out.append(trade._snapshot())
        if bit.opened:
            if trade.isclosed:
                trade = self._new_trade(strategy, order, key)
            trade.update(order, bit.opened, bit.price, bit.openedvalue, bit.openedcomm)
            if trade.isclosed:
                out.append(trade._snapshot())
        if trade.justopened:
            out.append(trade._snapshot())

    def _new_trade(self, strategy: Strategy, order: Order, key: tuple[str, int]) -> Trade:
        strategy._bt_trade_ref += 1
        scale = strategy._bt_ctx.units[order.data.instrument].size_scale
        trade = Trade(order.data, order.tradeid, strategy._bt_trade_ref, scale)
        self._trades[key] = trade
        return trade
