"""Parity with Backtrader where the definitions agree: DrawDown's max drawdown on the same value path,
TradeAnalyzer's round trips (count, winners, net pnl) and each closed trade's pnl, fees and bar length.

Backtrader runs a scripted target-size strategy (adds, partial closes, flips in one order, shorts)
on a seeded random walk; its executions are fed to our TradeBuilder and its values to our curve.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import backtrader as bt
import numpy as np
import pytest

from services.backtest.records import EquityCurve, FillRecord, TradeBuilder, TradeRecord
from services.backtest.statistics import compute_statistics

SEED = 20240101  # printed in failures through the test id below
BARS = 400
START_CASH = 100_000.0
COMMISSION = 0.001  # 0.1 % of traded value, Backtrader's percent scheme: fees split by quantity


class _ArrayFeed(bt.feed.DataBase):  # type: ignore[misc]
    """Daily OHLC bars from a list, so the test needs neither pandas nor files."""

    params = (("rows", ()),)

    def start(self) -> None:
        super().start()
        self._next_row = 0

    def _load(self) -> bool:
        if self._next_row >= len(self.p.rows):
            return False
        day, o, h, low, c = self.p.rows[self._next_row]
        self._next_row += 1
        self.lines.datetime[0] = bt.date2num(day)
        self.lines.open[0], self.lines.high[0], self.lines.low[0], self.lines.close[0] = o, h, low, c
        self.lines.volume[0] = 1e9
        self.lines.openinterest[0] = 0.0
        return True


class _Scripted(bt.Strategy):  # type: ignore[misc]
    """Moves to a scripted target size every few bars; records what our side needs."""

    params = (("targets", ()),)

    def __init__(self) -> None:
        self.curve = EquityCurve()
        self.fills: list[tuple[FillRecord, int]] = []
        self.closed: list[tuple[float, float, int]] = []

    def notify_order(self, order: Any) -> None:
        if order.status != order.Completed:
            return
        ex = order.executed
        when = bt.num2date(ex.dt).replace(tzinfo=dt.UTC)
        fill = FillRecord(
            time_ns=int(when.timestamp()) * 1_000_000_000,
            seq_id=len(self.fills),
            strategy_id="bt",
            client_order_id=str(order.ref),
            instrument="X",
            side="buy" if ex.size > 0 else "sell",
            quantity=abs(ex.size),
            price=ex.price,
            fee=ex.comm,
            fee_currency="USD",
            trade_id=str(order.ref),
            liquidity="taker",
        )
        self.fills.append((fill, len(self.data)))

    def notify_trade(self, trade: Any) -> None:
        if trade.isclosed:
            self.closed.append((trade.pnl, trade.pnlcomm, trade.barlen))

    def next(self) -> None:
        when = bt.num2date(self.data.datetime[0]).replace(tzinfo=dt.UTC)
        value = self.broker.getvalue()
        exposure = abs(self.position.size * self.data.close[0]) / value
        self.curve.append(int(when.timestamp()) * 1_000_000_000, value, self.broker.getcash(), exposure)
        target = self.p.targets[len(self.data) - 1]
        if target is not None:
            self.order_target_size(target=target)


def _scenario(seed: int) -> tuple[list[tuple[dt.datetime, float, float, float, float]], list[int | None]]:
    rng = np.random.default_rng(seed)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.02, BARS))
    opens = np.r_[100.0, close[:-1]] * (1 + rng.normal(0, 0.003, BARS))
    start = dt.datetime(2024, 1, 1)
    rows = [
        (start + dt.timedelta(days=i), float(o), float(max(o, c) * 1.01), float(min(o, c) * 0.99), float(c))
        for i, (o, c) in enumerate(zip(opens, close))
    ]
    sizes = [-30, -20, -10, 0, 0, 10, 20, 30, 50]
    targets: list[int | None] = [int(rng.choice(sizes)) if i % 5 == 0 else None for i in range(BARS)]
    return rows, targets


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_drawdown_and_trades_agree_with_backtrader(seed: int) -> None:
    rows, targets = _scenario(seed)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(_ArrayFeed(rows=rows))
    cerebro.addstrategy(_Scripted, targets=targets)
    cerebro.broker.setcash(START_CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    cerebro.addanalyzer(bt.analyzers.DrawDown, _name="dd")
    cerebro.addanalyzer(bt.analyzers.TradeAnalyzer, _name="ta")
    (strat,) = cerebro.run()

    builder = TradeBuilder()
    trades: list[TradeRecord] = []
    for fill, bar in strat.fills:
        closed = builder.on_fill(fill, bar)
        if closed is not None:
            trades.append(closed)
    fees = sum(fill.fee for fill, _ in strat.fills)
    stats = compute_statistics(strat.curve, trades, fees, START_CASH, "USD")

    dd = strat.analyzers.dd.get_analysis()
    assert stats.max_drawdown == pytest.approx(dd.max.drawdown / 100, rel=1e-9)
    assert stats.max_drawdown > 0.01  # the scenario has a real drawdown to compare

    ta = strat.analyzers.ta.get_analysis()
    assert stats.trades == ta.total.closed == len(strat.closed) > 10
    assert len(builder.open_trades()) == ta.total.get("open", 0)
    assert sum(t.pnl_net >= 0 for t in trades) == ta.won.total  # Backtrader counts break-even as won
    assert sum(t.pnl_net for t in trades) == pytest.approx(ta.pnl.net.total, rel=1e-9)
    assert any(f.quantity > 30 for f, _ in strat.fills)  # flips happened in one order
    for ours, (pnl, pnlcomm, barlen) in zip(trades, strat.closed, strict=True):
        assert ours.pnl == pytest.approx(pnl, rel=1e-9, abs=1e-6)
        assert ours.pnl_net == pytest.approx(pnlcomm, rel=1e-9, abs=1e-6)
        assert ours.bars_held == barlen
