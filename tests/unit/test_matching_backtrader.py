"""Parity with Backtrader's broker on bars: the same orders on the same bars fill on the same bar
at the same price (market, limit, stop, stop-limit; cheat-on-close; brackets).

Backtrader is the reference the bar rules were copied from (`bbroker._try_exec_*`). Its broker
runs with no commission, no slippage, no volume filler and no margin check, which are our
defaults too (and `checksubmit=False`: the venue does not check cash, the core does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import backtrader as bt
from hypothesis import given, settings
from hypothesis import strategies as st

from services.matching import MatchingConfig, SimulatedVenue
from tests.unit.matching_support import BTC, VENUE, at, bar, core_config, fills, order

Row = tuple[int, int, int, int]  # open, high, low, close
_DAY0 = dt.datetime(2024, 1, 1)

_EXEC = {"market": bt.Order.Market, "limit": bt.Order.Limit, "stop": bt.Order.Stop, "stop_limit": bt.Order.StopLimit}


class _Feed(bt.feed.DataBase):  # type: ignore[misc]
    params = (("rows", ()),)

    def start(self) -> None:
        super().start()
        self._i = 0

    def _load(self) -> bool:
        if self._i >= len(self.p.rows):
            return False
        o, h, low, c = self.p.rows[self._i]
        self.lines.datetime[0] = bt.date2num(_DAY0 + dt.timedelta(days=self._i))
        self.lines.open[0], self.lines.high[0], self.lines.low[0], self.lines.close[0] = o, h, low, c
        self.lines.volume[0] = 10**9
        self.lines.openinterest[0] = 0
        self._i += 1
        return True


class _Place(bt.Strategy):  # type: ignore[misc]
    """On the first bar, place every order in `orders` (or one bracket); record executions."""

    params = (("orders", ()), ("bracket", None))

    def __init__(self) -> None:
        self.executions: dict[str, tuple[int, float]] = {}
        self.cancelled: list[str] = []

    def next(self) -> None:
        if len(self) != 1:
            return
        if self.p.bracket is not None:
            stop, limit = self.p.bracket
            parent, ostop, olimit = self.buy_bracket(size=1, exectype=bt.Order.Market, stopprice=stop, limitprice=limit)
            for o, name in ((parent, "p"), (ostop, "sl"), (olimit, "tp")):
                o.addinfo(name=name)
        for name, side, kind, price, limit in self.p.orders:
            place = self.buy if side == "buy" else self.sell
            o = place(size=1, exectype=_EXEC[kind], price=price, plimit=limit)
            o.addinfo(name=name)

    def notify_order(self, o: Any) -> None:
        if o.status == o.Completed:
            day = (bt.num2date(o.executed.dt).date() - _DAY0.date()).days
            self.executions[o.info.name] = (day, o.executed.price)
        elif o.status == o.Canceled:
            self.cancelled.append(o.info.name)


def _backtrader(rows: list[Row], coc: bool = False, **params: Any) -> _Place:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(1e15)
    cerebro.broker.set_checksubmit(False)
    cerebro.broker.set_coc(coc)
    cerebro.adddata(_Feed(rows=rows))
    cerebro.addstrategy(_Place, **params)
    (strategy,) = cerebro.run()
    return strategy  # type: ignore[no-any-return]


def _ours(rows: list[Row], orders: list[Any], close: bool = False) -> dict[str, tuple[int, int]]:
    config = MatchingConfig(fill_market_on="close" if close else "next_open")
    v = SimulatedVenue(VENUE, core_config(), config)
    got: dict[str, tuple[int, int]] = {}
    reports = v.on_bar(BTC, bar(*rows[0]), at(0))
    for cmd in orders:
        reports += v.submit(cmd, at(0))
    for f in fills(reports):
        got[f.client_order_id] = (0, f.price)
    for k, row in enumerate(rows[1:], start=1):
        for f in fills(v.on_bar(BTC, bar(*row), at(k))):
            got[f.client_order_id] = (k, f.price)
    return got


@st.composite
def _bars(draw: st.DrawFn) -> list[Row]:
    rows = []
    price = 1_000
    for _ in range(draw(st.integers(3, 8))):
        o = price + draw(st.integers(-30, 30))
        c = o + draw(st.integers(-30, 30))
        h = max(o, c) + draw(st.integers(0, 20))
        low = min(o, c) - draw(st.integers(0, 20))
        rows.append((o, h, low, c))
        price = c
    return rows


_OFFSETS = st.integers(-40, 40)


@settings(max_examples=40)
@given(rows=_bars(), offsets=st.lists(_OFFSETS, min_size=12, max_size=12))
def test_single_orders_fill_like_backtrader(rows: list[Row], offsets: list[int]) -> None:
    ref = rows[0][3]  # orders are placed at the first bar's close
    specs = []
    it = iter(offsets)
    for side in ("buy", "sell"):
        specs.append((f"{side}-market", side, "market", None, None))
        specs.append((f"{side}-limit", side, "limit", ref + next(it), None))
        specs.append((f"{side}-stop", side, "stop", ref + next(it), None))
        stop = ref + next(it)
        specs.append((f"{side}-stop_limit", side, "stop_limit", stop, stop + next(it)))
    specs_bt = [(n, s, k, p, lim) for n, s, k, p, lim in specs]
    theirs = _backtrader(rows, orders=specs_bt).executions
    ours = _ours(
        rows,
        [
            order(
                n,
                side=s,
                order_type=k,
                quantity=1,
                price=lim if k == "stop_limit" else (p if k == "limit" else None),
                stop_price=p if k in ("stop", "stop_limit") else None,
            )
            for n, s, k, p, lim in specs
        ],
    )
    assert ours == {name: (day, int(price)) for name, (day, price) in theirs.items()}
    assert all(float(int(price)) == price for _, price in theirs.values())


@settings(max_examples=15)
@given(rows=_bars())
def test_cheat_on_close_matches_backtraders_coc(rows: list[Row]) -> None:
    theirs = _backtrader(
        rows, coc=True, orders=[("b", "buy", "market", None, None), ("s", "sell", "market", None, None)]
    )
    ours = _ours(rows, [order("b", quantity=1), order("s", side="sell", quantity=1)], close=True)
    assert ours == {name: (day, int(price)) for name, (day, price) in theirs.executions.items()}
    assert ours == {"b": (0, rows[0][3]), "s": (0, rows[0][3])}


@settings(max_examples=30)
@given(rows=_bars(), stop_off=st.integers(1, 60), limit_off=st.integers(1, 60))
def test_brackets_activate_and_cancel_like_backtrader(rows: list[Row], stop_off: int, limit_off: int) -> None:
    ref = rows[0][3]
    stop, limit = ref - stop_off, ref + limit_off
    strategy = _backtrader(rows, bracket=(stop, limit))
    ours = _ours(
        rows,
        [
            order("p", quantity=1),
            order("sl", side="sell", order_type="stop", stop_price=stop, quantity=1, parent_client_order_id="p"),
            order("tp", side="sell", order_type="limit", price=limit, quantity=1, parent_client_order_id="p"),
        ],
    )
    assert ours == {name: (day, int(price)) for name, (day, price) in strategy.executions.items()}
    assert len(ours) <= 2  # the parent, and at most one child
