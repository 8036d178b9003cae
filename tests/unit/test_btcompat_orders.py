"""Orders of the Backtrader-style layer: the intents the helpers write, and the notifications the
adapter delivers (when, in which order, with what `executed` and trade figures)."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import pytest

from schemas.enums import OrderType, Side, TimeInForce
from schemas.intents import CancelOrder, PlaceOrder
from services.strategy import btcompat as bt
from services.strategy.events import IntentRefused
from tests.unit.btcompat_support import MINUTE, START, Driver, bar

PX = 100  # price units per display unit (2 decimals)
SZ = 10_000  # size units per display unit (4 decimals)


class Scripted(bt.Strategy):
    """Runs `plan[len(self.data)]` (a function of the strategy) in next(); logs everything."""

    plan: ClassVar[dict[int, Any]] = {}

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.orders: list[Any] = []
        self.seen: list[Any] = []

    def notify_order(self, order: bt.Order) -> None:
        self.seen.append(order)
        self.log.append(
            ("order", len(self.data), order.ref, order.getstatusname(), order.executed.size, order.executed.price)
        )

    def notify_trade(self, trade: bt.Trade) -> None:
        self.log.append(("trade", len(self.data), trade.isopen, trade.isclosed, trade.size, trade.pnl, trade.pnlcomm))

    def next(self) -> None:
        self.log.append(("next", len(self.data)))
        action = self.plan.get(len(self.data))
        if action is not None:
            result = action(self)
            self.orders.extend(result if isinstance(result, list) else [result])


def scripted(plan: dict[int, Any]) -> type[Scripted]:
    return type("Plan", (Scripted,), {"plan": plan})


def test_market_buy_intent_and_order_object() -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=0.5)}))
    intents = d.step(bar(0, 100.0))
    assert intents == [
        PlaceOrder(
            strategy_id="main", client_order_id="main-1", instrument="BTC-USD", side=Side.BUY,
            order_type=OrderType.MARKET, quantity=5_000,
        )
    ]  # fmt: skip
    order = d.strategy.orders[0]
    assert (order.ref, order.status, order.getstatusname(), order.isbuy(), order.alive()) == (
        1,
        0,
        "Created",
        True,
        True,
    )
    assert (order.size, order.created.size, order.created.price, order.exectype) == (0.5, 0.5, 100.0, bt.Order.Market)
    assert order.client_order_id == "main-1"


def test_notifications_come_before_next_in_backtrader_order() -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=2.0), 3: lambda s: s.close()}))
    d.step(bar(0, 100.0))
    # The core and venue answer during the same step; the strategy hears nothing yet.
    d.updated("main-1", "submitted", 2.0)
    d.updated("main-1", "accepted", 2.0)
    assert [e[0] for e in d.strategy.log] == ["next"]
    # Next bar: the fill at its open comes first, then the bar, then the slice.
    d.updated("main-1", "filled", 2.0, 2.0)
    d.filled("main-1", "buy", 2.0, 101.0, position=2.0, fee=0.202, t=START + 2 * MINUTE)  # bar 1 closes then
    assert d.strategy.position.size == 2.0  # the position moves at execution, as Backtrader's broker
    d.step(bar(1, 102.0, open_=101.0))
    log = d.strategy.log
    assert log[1:] == [
        ("order", 2, 1, "Submitted", 0.0, 0.0),
        ("order", 2, 1, "Accepted", 0.0, 0.0),
        ("order", 2, 1, "Completed", 2.0, 101.0),
        ("trade", 2, True, False, 2.0, 0.0, pytest.approx(-0.202)),
        ("next", 2),
    ]
    first = d.strategy.seen[0]
    assert all(o is first for o in d.strategy.seen)  # one object across notifications
    assert first.status == bt.Order.Completed and not first.alive()
    assert first.executed.comm == pytest.approx(0.202) and first.executed.value == pytest.approx(202.0)
    assert first.executed.dt == pytest.approx(bt.date2num(dt.datetime(2024, 1, 1, 0, 1)))
    assert (d.strategy.position.size, d.strategy.position.price) == (2.0, 101.0)
    # close() sells the position; its fill closes the trade.
    assert d.step(bar(2, 104.0))[0].side == Side.SELL
    d.updated("main-2", "submitted", 2.0)
    d.updated("main-2", "accepted", 2.0)
    d.updated("main-2", "filled", 2.0, 2.0)
    d.filled("main-2", "sell", 2.0, 105.0, position=0.0, fee=0.21)
    d.step(bar(3, 105.0))
    sell = d.strategy.seen[-1]
    assert (sell.executed.size, sell.executed.pnl, sell.executed.value) == (-2.0, 8.0, pytest.approx(202.0))
    assert d.strategy.log[-2] == ("trade", 4, False, True, 0.0, 8.0, pytest.approx(8.0 - 0.202 - 0.21))
    assert not d.strategy.position and d.strategy.position.price == 0.0


def test_partial_fills_are_notified_with_what_they_covered() -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=3.0, exectype=bt.Order.Limit, price=99.0)}))
    d.step(bar(0, 100.0))
    d.updated("main-1", "submitted", 3.0)
    d.updated("main-1", "accepted", 3.0)
    d.updated("main-1", "partially_filled", 3.0, 1.0)
    d.filled("main-1", "buy", 1.0, 99.0, position=1.0)
    d.updated("main-1", "filled", 3.0, 3.0)
    d.filled("main-1", "buy", 2.0, 98.0, position=3.0)
    d.step(bar(1, 98.0))
    orders = [e for e in d.strategy.log if e[0] == "order"]
    assert [(e[3], e[4]) for e in orders] == [("Submitted", 0), ("Accepted", 0), ("Partial", 1.0), ("Completed", 3.0)]
    assert orders[-1][5] == pytest.approx((99.0 + 2 * 98.0) / 3)
    assert d.strategy.seen[-1].executed.remsize == 0.0


@pytest.mark.parametrize(("reason", "status"), [("insufficient_cash", "Margin"), ("price_band", "Rejected")])
def test_refused_orders_are_margin_or_rejected(reason: str, status: str) -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=1.0)}))
    d.step(bar(0, 100.0))
    d.send(IntentRefused(START + MINUTE, "place_order", reason, "detail", "main-1"))
    d.step(bar(1, 100.0))
    assert d.strategy.log[1][3] == status
    assert d.strategy.seen[0].info["refusal"] == f"{reason}: detail"


def test_brackets_link_children_to_the_entry() -> None:
    plan = {1: lambda s: s.buy_bracket(size=1.0, price=99.0, stopprice=95.0, limitprice=110.0)}
    d = Driver(scripted(plan))
    entry, stop, take = d.step(bar(0, 100.0))
    assert (entry.side, entry.order_type, entry.price, entry.quantity) == (Side.BUY, OrderType.LIMIT, 9_900, SZ)
    assert (stop.side, stop.order_type, stop.stop_price, stop.price) == (Side.SELL, OrderType.STOP, 9_500, None)
    assert (take.side, take.order_type, take.price) == (Side.SELL, OrderType.LIMIT, 11_000)
    assert stop.parent_client_order_id == take.parent_client_order_id == entry.client_order_id
    assert stop.quantity == take.quantity == entry.quantity
    orders = d.strategy.orders
    assert [o.ref for o in orders] == [1, 2, 3] and orders[1].parent is orders[0]


def test_sell_bracket_mirrors_and_can_leave_a_child_out() -> None:
    plan = {1: lambda s: s.sell_bracket(size=1.0, exectype=bt.Order.Market, stopprice=105.0, limitexec=None)}
    d = Driver(scripted(plan))
    intents = d.step(bar(0, 100.0))
    assert [(i.side, i.order_type) for i in intents] == [(Side.SELL, OrderType.MARKET), (Side.BUY, OrderType.STOP)]
    assert d.strategy.orders[2] is None


def test_order_types_and_prices() -> None:
    plan = {
        1: lambda s: [
            s.buy(exectype=bt.Order.Limit),  # price defaults to the close, size to the sizer's stake 1
            s.sell(size=1, exectype=bt.Order.Stop, price=95.123),  # to the nearest tick
            s.sell(size=1, exectype=bt.Order.StopLimit, price=95.0, plimit=94.5),
            s.buy(size=0),  # nothing: Backtrader returns None for a zero size
        ]
    }
    d = Driver(scripted(plan))
    limit, stop, stop_limit = d.step(bar(0, 100.0))
    assert (limit.order_type, limit.price, limit.quantity) == (OrderType.LIMIT, 10_000, SZ)
    assert (stop.order_type, stop.stop_price) == (OrderType.STOP, 9_512)
    assert (stop_limit.order_type, stop_limit.stop_price, stop_limit.price) == (OrderType.STOP_LIMIT, 9_500, 9_450)
    assert d.strategy.orders[1].price == pytest.approx(95.12) and d.strategy.orders[3] is None
    assert d.strategy.orders[2].pricelimit == 94.5


@pytest.mark.parametrize(
    ("valid", "until_ns"),
    [
        (dt.timedelta(minutes=5), START + 5 * MINUTE),
        (bt.Order.DAY, START + 86_399_009_999_000),
        (0, START + 86_399_009_999_000),
        (dt.datetime(2024, 1, 1, 3, 0), START + 180 * MINUTE),
        (dt.date(2024, 1, 2), START + 1440 * MINUTE),
        (0.5, START + 720 * MINUTE),
    ],
)
def test_valid_becomes_a_gtd_expiry(valid: Any, until_ns: int) -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=1, exectype=bt.Order.Limit, price=99.0, valid=valid)}))
    (intent,) = d.step(bar(0, 100.0))
    # Backtrader expires after the last bar stamped (opened) by `valid`; ours close an interval later.
    assert intent.time_in_force == TimeInForce.GTD
    assert intent.expire_time_ns == until_ns + MINUTE
    assert d.strategy.orders[0].valid == pytest.approx(bt.date2num(dt.datetime(1970, 1, 1)) + until_ns / 86_400e9)


def test_market_orders_ignore_valid() -> None:
    d = Driver(scripted({1: lambda s: s.buy(size=1, valid=dt.timedelta(minutes=1))}))
    (intent,) = d.step(bar(0, 100.0))
    assert intent.time_in_force == TimeInForce.GTC and intent.expire_time_ns is None


def test_cancel_once_and_orders_after_a_cancel_wait_for_it() -> None:
    def exit_(s: Scripted) -> Any:
        s.cancel(s.orders[0])
        s.cancel(s.orders[0])  # a second cancel of the same order sends nothing
        return s.close()

    plan = {1: lambda s: s.sell(size=1.0, exectype=bt.Order.Stop, price=90.0), 2: exit_}
    d = Driver(scripted(plan))
    d.strategy.position.size = 1.0  # pretend the position exists (close() sizes from it)
    d.step(bar(0, 100.0))
    d.updated("main-1", "accepted", 1.0)
    out = d.step(bar(1, 100.0))
    assert out == [CancelOrder(strategy_id="main", client_order_id="main-1")]
    assert d.send(bar(2, 100.0)) == []  # still waiting for the cancel to settle
    d.updated("main-1", "cancel_pending", 1.0)
    assert d.intents[-1] == out[0]
    released = d.send(IntentRefused(0, "cancel_order", "illegal_transition", "x", "main-2"))  # not ours
    assert released == []
    d.updated("main-1", "cancelled", 1.0)
    assert [(i.client_order_id, i.side) for i in d.intents[-1:]] == [("main-2", Side.SELL)]


def test_oco_groups_orders_of_one_callback() -> None:
    def pair(s: Scripted) -> Any:
        a = s.buy(size=1, exectype=bt.Order.Limit, price=95.0)
        b = s.buy(size=1, exectype=bt.Order.Stop, price=105.0, oco=a)
        return [a, b]

    d = Driver(scripted({1: pair}))
    a, b = d.step(bar(0, 100.0))
    assert a.oco_group == b.oco_group == "oco-1"

    late = {1: lambda s: s.buy(size=1, exectype=bt.Order.Limit, price=95.0), 2: lambda s: s.buy(oco=s.orders[0])}
    d = Driver(scripted(late))
    d.step(bar(0, 100.0))
    with pytest.raises(ValueError, match="oco: order ref 1 was sent in an earlier callback"):
        d.step(bar(1, 100.0))


def test_unsupported_and_invalid_orders_are_refused_by_name() -> None:
    cases = [
        (lambda s: s.buy(exectype=bt.Order.StopTrail, trailamount=1.0), NotImplementedError, "StopTrail"),
        (lambda s: s.buy(exectype=bt.Order.Close), NotImplementedError, "exectype: Close"),
        (lambda s: s.buy(size=-1), ValueError, "size: -1 is not a finite number >= 0"),
        (lambda s: s.buy(size=0.00001), ValueError, "less than one lot"),
        (lambda s: s.buy(exectype=bt.Order.Limit, valid="soon"), TypeError, "valid: 'soon'"),
        (lambda s: s.buy(data="ETH-USD"), KeyError, "no feed named 'ETH-USD'"),
        (lambda s: s.broker.setcash(5), NotImplementedError, "BacktestConfig"),
    ]
    for action, error, message in cases:
        d = Driver(scripted({1: action}))
        with pytest.raises(error, match=message):
            d.step(bar(0, 100.0))


def test_close_when_flat_and_target_orders() -> None:
    plan = {
        1: lambda s: [s.close(), s.order_target_size(target=3), s.order_target_value(target=250.0)],
    }
    d = Driver(scripted(plan))
    intents = d.step(bar(0, 100.0))
    assert d.strategy.orders[0] is None
    assert [(i.side, i.quantity) for i in intents] == [(Side.BUY, 3 * SZ), (Side.BUY, 25 * SZ // 10)]


def test_sizers() -> None:
    class Staked(Scripted):
        plan: ClassVar[dict[int, Any]] = {1: lambda s: s.buy()}

        def __init__(self) -> None:
            super().__init__()
            self.sizer.setsizing(0.25)

    d = Driver(Staked)
    (intent,) = d.step(bar(0, 100.0))
    assert intent.quantity == SZ // 4

    class Percent(Scripted):
        plan: ClassVar[dict[int, Any]] = {1: lambda s: s.buy()}

        def __init__(self) -> None:
            super().__init__()
            self.setsizer(bt.sizers.PercentSizer(percents=10))

    d = Driver(Percent)
    (intent,) = d.step(bar(0, 100.0))
    assert intent.quantity == 100 * SZ  # 10% of 100,000 at 100


def test_broker_view_reads_the_book() -> None:
    d = Driver(scripted({}))
    d.step(bar(0, 100.0))
    assert d.strategy.broker.getcash() == d.strategy.broker.get_cash() == 100_000.0
    assert d.strategy.broker.getvalue() == 100_000.0
    assert d.strategy.broker.getvalue(datas=[d.strategy.data]) == 0.0
