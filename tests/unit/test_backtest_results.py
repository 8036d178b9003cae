"""Backtest results: round trips from fills, the equity curve, statistics on hand-made cases."""

from __future__ import annotations

import json
import math
import statistics as pystats

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backtest.records import EquityCurve, FillRecord, TradeBuilder, TradeRecord
from services.backtest.statistics import (
    NS_PER_DAY,
    Statistics,
    compute_statistics,
    format_duration,
    iso_utc,
    summary_table,
)

T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z
HOUR = 3_600 * 1_000_000_000
MINUTE = 60 * 1_000_000_000


def fill(side: str, qty: float, price: float, fee: float = 0.0, t: int = 0, instrument: str = "BTC-USD") -> FillRecord:
    return FillRecord(
        time_ns=T0 + t * HOUR,
        seq_id=t,
        strategy_id="s",
        client_order_id=f"o{t}",
        instrument=instrument,
        side=side,
        quantity=qty,
        price=price,
        fee=fee,
        fee_currency="USD",
        trade_id=f"t{t}",
        liquidity="taker",
    )


def run(builder: TradeBuilder, fills: list[FillRecord]) -> list[TradeRecord]:
    """Feed fills with bar index = the fill's seq_id; collect the closed trades."""
    closed = [builder.on_fill(f, f.seq_id) for f in fills]
    return [t for t in closed if t is not None]


def curve_of(equity: list[float], step_ns: int = HOUR, exposure: list[float] | None = None) -> EquityCurve:
    curve = EquityCurve()
    for i, value in enumerate(equity):
        curve.append(T0 + i * step_ns, value, value, exposure[i] if exposure else 0.0)
    return curve


def trade(pnl_net: float) -> TradeRecord:
    return TradeRecord("BTC-USD", "long", T0, T0 + HOUR, 1.0, 100.0, 100.0 + pnl_net, pnl_net, 0.0, pnl_net, 1)


# --- TradeBuilder -------------------------------------------------------------------------------


def test_a_long_round_trip_nets_its_fees() -> None:
    builder = TradeBuilder()
    (t,) = run(builder, [fill("buy", 1, 100, fee=1, t=2), fill("sell", 1, 110, fee=1.5, t=7)])
    assert (t.direction, t.quantity, t.entry_price, t.exit_price) == ("long", 1, 100, 110)
    assert (t.pnl, t.fees, t.pnl_net) == (10, 2.5, 7.5)
    assert (t.entry_time_ns, t.exit_time_ns, t.bars_held) == (T0 + 2 * HOUR, T0 + 7 * HOUR, 5)
    assert builder.open_trades() == []


def test_a_short_profits_when_the_price_falls() -> None:
    (t,) = run(TradeBuilder(), [fill("sell", 2, 100, t=0), fill("buy", 2, 90, t=1)])
    assert (t.direction, t.quantity, t.pnl, t.entry_price, t.exit_price) == ("short", 2, 20, 100, 90)


def test_partial_closes_make_one_trade_with_a_weighted_exit() -> None:
    builder = TradeBuilder()
    trades = run(builder, [fill("buy", 2, 100, t=0), fill("sell", 1, 110, fee=1, t=1)])
    assert trades == []  # still one unit open
    (still,) = builder.open_trades()
    assert (still.quantity, still.max_quantity, still.realized_pnl, still.fees) == (1, 2, 10, 1)
    (t,) = run(builder, [fill("sell", 1, 120, fee=1, t=2)])
    assert (t.quantity, t.exit_price, t.pnl, t.fees, t.bars_held) == (2, 115, 30, 2, 2)


def test_adds_after_a_partial_close_use_the_average_cost() -> None:
    # avg 105 -> sell 1 @120 realises 15 -> add 1 @90: avg 97.5 -> sell 2 @100 realises 5.
    fills = [fill("buy", 1, 100, t=0), fill("buy", 1, 110, t=1), fill("sell", 1, 120, t=2)]
    fills += [fill("buy", 1, 90, t=3), fill("sell", 2, 100, t=4)]
    (t,) = run(TradeBuilder(), fills)
    assert t.pnl == pytest.approx(20)  # = exits 320 - entries 300
    assert t.entry_price == pytest.approx(100) and t.exit_price == pytest.approx(320 / 3)
    assert t.quantity == 2  # the most held at once


def test_a_flip_closes_the_trade_and_opens_the_other_way_with_its_share_of_the_fee() -> None:
    builder = TradeBuilder()
    (long_trade,) = run(builder, [fill("buy", 1, 100, t=0), fill("sell", 3, 110, fee=3, t=1)])
    assert (long_trade.direction, long_trade.pnl, long_trade.fees, long_trade.quantity) == ("long", 10, 1, 1)
    (short_open,) = builder.open_trades()
    assert (short_open.direction, short_open.quantity, short_open.fees) == ("short", 2, 2)
    assert (short_open.entry_time_ns, short_open.entry_bar_index) == (T0 + HOUR, 1)
    (short_trade,) = run(builder, [fill("buy", 2, 100, fee=0.5, t=5)])
    assert (short_trade.direction, short_trade.pnl, short_trade.fees, short_trade.bars_held) == ("short", 20, 2.5, 4)
    assert short_trade.entry_price == 110
    assert builder.open_trades() == []


def test_float_residue_of_a_close_counts_as_flat() -> None:
    assert 0.1 + 0.2 != 0.3
    (t,) = run(TradeBuilder(), [fill("buy", 0.1, 100, t=0), fill("buy", 0.2, 100, t=1), fill("sell", 0.3, 101, t=2)])
    assert t.pnl == pytest.approx(0.3)


def test_instruments_are_tracked_apart() -> None:
    builder = TradeBuilder()
    fills = [fill("buy", 1, 100, t=0), fill("sell", 1, 50, t=1, instrument="ETH-USD"), fill("sell", 1, 101, t=2)]
    (t,) = run(builder, fills)
    assert t.instrument == "BTC-USD"
    assert [(o.instrument, o.direction) for o in builder.open_trades()] == [("ETH-USD", "short")]


def test_many_small_partial_closes_still_end_flat() -> None:
    # 10,000 sells of 0.1 against one buy of 1,000: the float residue grows with the trade's size.
    builder = TradeBuilder()
    builder.on_fill(fill("buy", 1_000, 100, t=0), 0)
    trades = [builder.on_fill(fill("sell", 0.1, 101, t=1), 1) for _ in range(10_000)]
    assert trades[:-1] == [None] * 9_999
    last = trades[-1]
    assert last is not None and last.pnl == pytest.approx(1_000) and last.quantity == 1_000
    assert builder.open_trades() == []


def test_the_cores_position_decides_what_a_tolerance_cannot() -> None:
    # Closing all but one unit of 1e10: within the float tolerance, so only position_after tells.
    guessed = TradeBuilder()
    guessed.on_fill(fill("buy", 1e10, 1, t=0), 0)
    assert guessed.on_fill(fill("sell", 1e10 - 1, 1, t=1), 1) is not None  # taken for a close
    exact = TradeBuilder()
    exact.on_fill(fill("buy", 1e10, 1, t=0), 0, position_after=1e10)
    assert exact.on_fill(fill("sell", 1e10 - 1, 1, t=1), 1, position_after=1.0) is None
    (still,) = exact.open_trades()
    assert still.quantity == 1.0
    assert exact.on_fill(fill("sell", 1.0, 1, t=2), 2, position_after=0.0) is not None
    assert exact.open_trades() == []


def test_the_cores_position_sizes_a_flip() -> None:
    builder = TradeBuilder()
    builder.on_fill(fill("buy", 0.1, 100, t=0), 0, position_after=0.1)
    builder.on_fill(fill("buy", 0.2, 100, t=1), 1, position_after=0.3)
    closed = builder.on_fill(fill("sell", 0.5, 110, fee=5, t=2), 2, position_after=-0.2)
    assert closed is not None and closed.pnl == pytest.approx(3) and closed.fees == pytest.approx(3)
    (short,) = builder.open_trades()
    assert (short.direction, short.quantity) == ("short", 0.2) and short.fees == pytest.approx(2)


def test_a_position_after_that_cannot_follow_is_refused() -> None:
    builder = TradeBuilder()
    with pytest.raises(ValueError, match=r"position_after=-1\.0 cannot follow a buy"):
        builder.on_fill(fill("buy", 1, 100), 0, position_after=-1.0)


@pytest.mark.parametrize(
    ("side", "qty", "field"), [("hold", 1.0, "side"), ("buy", 0.0, "quantity"), ("sell", math.nan, "quantity")]
)
def test_bad_fills_are_refused_with_the_field_named(side: str, qty: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TradeBuilder().on_fill(fill(side, qty, 100), 0)


@given(
    st.lists(st.tuples(st.booleans(), st.integers(1, 50), st.integers(50, 150), st.integers(0, 3)), max_size=30),
    st.booleans(),
)
def test_realised_plus_open_pnl_is_the_cash_flow(steps: list[tuple[bool, int, int, int]], exact: bool) -> None:
    """Whatever the fills: closed pnl + open realised + open unrealised = cash flow + position at the mark;
    and every fee lands in exactly one trade. Sizes are tenths (floats that do not add up exactly),
    with or without the core's exact position."""
    builder = TradeBuilder()
    fills = [fill("buy" if buy else "sell", q / 10, p, fee=f, t=i) for i, (buy, q, p, f) in enumerate(steps)]
    trades: list[TradeRecord] = []
    position_lots = 0
    for (buy, q, _, _), f in zip(steps, fills):
        position_lots += q if buy else -q
        closed = builder.on_fill(f, f.seq_id, position_after=position_lots / 10 if exact else None)
        if closed is not None:
            trades.append(closed)
    mark = 100.0
    position = sum(f.quantity if f.side == "buy" else -f.quantity for f in fills)
    cash_flow = sum(-f.quantity * f.price if f.side == "buy" else f.quantity * f.price for f in fills)
    open_pnl = 0.0
    open_fees = 0.0
    for o in builder.open_trades():
        signed = o.quantity if o.direction == "long" else -o.quantity
        open_pnl += o.realized_pnl + signed * (mark - o.average_cost)
        open_fees += o.fees
        assert signed == pytest.approx(position)
    assert bool(builder.open_trades()) == (position_lots != 0)
    assert sum(t.pnl for t in trades) + open_pnl == pytest.approx(cash_flow + position * mark)
    assert sum(t.fees for t in trades) + open_fees == pytest.approx(sum(f.fee for f in fills))
    for t in trades:
        assert t.pnl_net == pytest.approx(t.pnl - t.fees)
        assert t.quantity > 0 and t.bars_held >= 0


# --- EquityCurve --------------------------------------------------------------------------------


def test_the_curve_refuses_a_point_that_is_not_later() -> None:
    curve = curve_of([100, 101])
    with pytest.raises(ValueError, match=r"time_ns=.* is not after"):
        curve.append(T0 + HOUR, 1.0, 1.0, 0.0)
    assert len(curve) == 2
    assert curve.time_ns.typecode == "q" and curve.equity.typecode == "d"


# --- statistics ---------------------------------------------------------------------------------


def test_drawdown_depth_and_duration_on_a_known_path() -> None:
    stats = compute_statistics(curve_of([100, 120, 90, 130, 110]), [], 0.0, 100.0, "USD")
    assert stats.max_drawdown == pytest.approx(0.25)  # 120 -> 90
    assert stats.max_drawdown_duration_ns == 2 * HOUR  # peak at 1 h, back above it at 3 h
    assert (stats.start_time_ns, stats.end_time_ns, stats.duration_ns) == (T0, T0 + 4 * HOUR, 4 * HOUR)
    assert stats.total_return == pytest.approx(0.10)
    assert stats.final_equity == 110 and stats.steps == 5


def test_an_unrecovered_drawdown_runs_to_the_end() -> None:
    stats = compute_statistics(curve_of([100, 105, 80, 90, 95, 100]), [], 0.0, 100.0, "USD")
    assert stats.max_drawdown == pytest.approx(25 / 105)
    assert stats.max_drawdown_duration_ns == 4 * HOUR  # from the peak at 1 h to the last point at 5 h


def test_the_initial_equity_is_the_first_peak() -> None:
    # A loss on the first step is a drawdown from the initial equity, timed from the first point.
    stats = compute_statistics(curve_of([90, 100, 99]), [], 0.0, 100.0, "USD")
    assert stats.max_drawdown == pytest.approx(0.10)
    assert stats.max_drawdown_duration_ns == HOUR  # recovered at 1 h; then 1 h unrecovered to the end
    assert stats.total_return == pytest.approx(-0.01)


def test_a_constant_daily_return_has_no_sharpe_and_a_known_cagr() -> None:
    days = 10
    equity = [100 * 1.01 ** (k + 1) for k in range(days + 1)]
    stats = compute_statistics(curve_of(equity, step_ns=NS_PER_DAY), [], 0.0, 100.0, "USD")
    assert stats.return_basis == "daily" and stats.periods_per_year == 365
    assert stats.sharpe is None and stats.sortino is None  # no volatility: undefined, not 1e16
    assert stats.cagr == pytest.approx(1.01 ** ((days + 1) * 365.25 / days) - 1)
    assert stats.max_drawdown == 0 and stats.max_drawdown_duration_ns == 0


def test_sharpe_and_sortino_from_daily_closes_by_hand() -> None:
    # Hourly points for 6 days; intraday noise must not matter, only each UTC day's last point.
    closes = [102.0, 100.98, 103.0, 101.97, 104.0, 102.96]
    equity, step = [], HOUR
    for close in closes:
        equity += [close * 0.5, close * 1.7] * 11 + [close * 3, close]  # 24 points, the last is the close
    stats = compute_statistics(curve_of(equity, step_ns=step), [], 0.0, 100.0, "USD")
    returns = [b / a - 1 for a, b in zip([100.0, *closes], closes)]
    sharpe = pystats.mean(returns) / pystats.stdev(returns) * math.sqrt(365)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    assert stats.return_basis == "daily"
    assert stats.sharpe == pytest.approx(sharpe, rel=1e-12)
    assert stats.sortino == pytest.approx(pystats.mean(returns) / downside * math.sqrt(365), rel=1e-12)


def test_a_short_run_uses_per_step_returns_annualised_by_the_step() -> None:
    equity = [100.0, 101.0, 100.5, 102.0, 101.0]
    stats = compute_statistics(curve_of(equity, step_ns=MINUTE), [], 0.0, 100.0, "USD")
    returns = [b / a - 1 for a, b in zip([100.0, *equity], equity)]
    assert stats.return_basis == "step" and stats.periods_per_year == 525_600
    assert stats.sharpe == pytest.approx(pystats.mean(returns) / pystats.stdev(returns) * math.sqrt(525_600))


def test_one_point_is_a_valid_run_with_undefined_ratios() -> None:
    stats = compute_statistics(curve_of([100.0]), [], 0.0, 100.0, "USD")
    assert (stats.cagr, stats.sharpe, stats.sortino, stats.periods_per_year) == (None, None, None, None)
    json.dumps(stats.to_dict(), allow_nan=False)


def test_zero_trades() -> None:
    stats = compute_statistics(curve_of([100, 100]), [], 0.0, 100.0, "USD")
    assert stats.trades == 0
    assert (stats.win_rate, stats.profit_factor, stats.avg_trade, stats.best_trade, stats.worst_trade) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert "n/a" in summary_table(stats)


def test_all_winners_have_an_infinite_profit_factor_written_as_null() -> None:
    stats = compute_statistics(curve_of([100, 110]), [trade(5), trade(3)], 1.5, 100.0, "USD")
    assert stats.profit_factor == math.inf and stats.win_rate == 1
    payload = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert payload["profit_factor"] is None and payload["fees_paid"] == 1.5
    assert any(line.startswith("Profit factor") and line.endswith("inf") for line in summary_table(stats).splitlines())


def test_trade_statistics_on_mixed_results() -> None:
    stats = compute_statistics(curve_of([100, 110]), [trade(6), trade(-2), trade(0), trade(-1)], 0.0, 100.0, "USD")
    assert stats.trades == 4
    assert stats.win_rate == 0.25  # break-even is not a win
    assert stats.profit_factor == pytest.approx(2.0)
    assert stats.avg_trade == pytest.approx(0.75)
    assert (stats.best_trade, stats.worst_trade) == (6, -2)


def test_break_even_trades_only_have_no_profit_factor() -> None:
    stats = compute_statistics(curve_of([100, 100]), [trade(0)], 0.0, 100.0, "USD")
    assert stats.profit_factor is None and stats.win_rate == 0


def test_exposure_is_the_share_of_steps_in_the_market() -> None:
    stats = compute_statistics(curve_of([100] * 4, exposure=[0, 0.5, 1.2, 0]), [], 0.0, 100.0, "USD")
    assert stats.exposure == 0.5


def test_a_wiped_out_account_has_cagr_minus_one() -> None:
    stats = compute_statistics(curve_of([100, 50, 0.0]), [], 0.0, 100.0, "USD")
    assert stats.cagr == -1.0 and stats.max_drawdown == 1.0
    json.dumps(stats.to_dict(), allow_nan=False)


def test_a_huge_gain_in_minutes_has_no_cagr_rather_than_an_overflow() -> None:
    stats = compute_statistics(curve_of([100, 1e6], step_ns=MINUTE), [], 0.0, 100.0, "USD")
    assert stats.cagr is None


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        compute_statistics(EquityCurve(), [], 0.0, 100.0, "USD")
    for bad in (0.0, -5.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="initial_equity"):
            compute_statistics(curve_of([100]), [], 0.0, bad, "USD")


def test_to_dict_is_json_with_iso_times() -> None:
    stats = compute_statistics(curve_of([100, 120, 90]), [trade(1)], 0.25, 100.0, "USD")
    payload = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert payload["start_time"] == "2024-01-01T00:00:00.000000000Z"
    assert payload["end_time"] == "2024-01-01T02:00:00.000000000Z"
    assert set(payload) >= {f for f in Statistics.__dataclass_fields__}
    assert payload["max_drawdown"] == pytest.approx(0.25)


def _reference_drawdown(equity: list[float], initial: float, times: list[int]) -> tuple[float, int]:
    """The definitions, written as plainly as possible."""
    peak, peak_time, worst, longest, under = initial, times[0], 0.0, 0, False
    for t, e in zip(times, equity):
        if e >= peak:
            if under:
                longest = max(longest, t - peak_time)
            peak, peak_time, under = e, t, False
        else:
            worst, under = max(worst, (peak - e) / peak), True
    if under:
        longest = max(longest, times[-1] - peak_time)
    return worst, longest


@given(
    st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=1, max_size=60),
    st.floats(1.0, 1e6),
    st.lists(st.integers(1, 3 * 86_400), min_size=60, max_size=60),
)
def test_drawdown_matches_a_plain_reference(equity: list[float], initial: float, gaps_s: list[int]) -> None:
    times = [T0]
    for gap in gaps_s[: len(equity) - 1]:
        times.append(times[-1] + gap * 1_000_000_000)
    curve = EquityCurve()
    for t, e in zip(times, equity):
        curve.append(t, e, e, 0.0)
    stats = compute_statistics(curve, [], 0.0, initial, "USD")
    worst, longest = _reference_drawdown(equity, initial, times)
    assert stats.max_drawdown == pytest.approx(worst, abs=1e-12)
    assert stats.max_drawdown_duration_ns == longest
    json.dumps(stats.to_dict(), allow_nan=False)


def test_time_formats() -> None:
    assert iso_utc(T0 + 1) == "2024-01-01T00:00:00.000000001Z"
    assert format_duration(3 * NS_PER_DAY + 4 * HOUR + 12 * MINUTE) == "3d 04:12"
    assert format_duration(5_000_000_000) == "0d 00:00:05"
    assert format_duration(250_000_000) == "0d 00:00:00.250"


def test_summary_table_is_aligned_with_units() -> None:
    stats = compute_statistics(curve_of([100, 120, 90]), [trade(2), trade(-1)], 0.25, 100.0, "USD")
    lines = summary_table(stats).splitlines()
    assert len({len(line) for line in lines}) == 1  # values right-aligned to one column
    table = dict(line.split("  ", 1) for line in lines)
    values = {label.strip(): value.strip() for label, value in table.items()}
    assert values["Total return"] == "-10.00 %"
    assert values["Max drawdown"] == "25.00 %"
    assert values["Final equity"] == "90.00 USD"
    assert values["Duration"] == "0d 02:00"
    assert values["Profit factor"] == "2.00"
