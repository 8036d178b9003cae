"""Fees, slippage and volume limits of the simulated venue: exact integers, against the trader."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Liquidity
from services.matching.costs import FeeSchedule, Slippage, display_to_units
from tests.unit.matching_support import (
    BTC,
    ETH,
    at,
    bar,
    core_config,
    fill_prices,
    fills,
    kinds,
    order,
    quote,
    trade,
    venue,
)

_RATES = st.decimals(min_value=0, max_value=Decimal("0.999999999"), places=9, allow_nan=False, allow_infinity=False)


def _reference_fee(notional: int, rate: Decimal) -> int:
    with localcontext() as ctx:
        ctx.prec = 300  # exact: nothing rounds before the final quantize
        return int((Decimal(abs(notional)) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(notional=st.integers(-(2**124), 2**124), rate=_RATES, taker=st.booleans())
def test_fee_is_the_exact_product_rounded_half_up(notional: int, rate: Decimal, taker: bool) -> None:
    schedule = FeeSchedule.of(maker=rate, taker=rate)
    assert schedule.fee(notional, taker) == _reference_fee(notional, rate)


@pytest.mark.parametrize(("notional", "fee"), [(5, 1), (15, 2), (25, 3), (24, 2), (4, 0)])
def test_halves_round_up_not_to_even(notional: int, fee: int) -> None:
    assert FeeSchedule.of(Decimal("0.1"), Decimal("0.1")).fee(notional, taker=True) == fee


@given(price=st.integers(1, 10**9), quantity=st.integers(1, 10**6), maker=_RATES, taker=_RATES)
def test_venue_fill_fees_match_the_reference(price: int, quantity: int, maker: Decimal, taker: Decimal) -> None:
    v = venue(maker_fee=maker, taker_fee=taker)
    v.submit(order("m", quantity=quantity), at(0))  # market: taker
    v.submit(order("l", order_type="limit", price=price, quantity=quantity), at(0))  # resting, gapped: maker
    out = v.on_bar(BTC, bar(price, price, price, price, volume=10**13), at(1))
    taker_fill, maker_fill = fills(out)
    assert taker_fill.liquidity is Liquidity.TAKER and maker_fill.liquidity is Liquidity.MAKER
    assert taker_fill.fee == _reference_fee(price * quantity, taker)  # BTC-USD: notional_scale 1
    assert maker_fill.fee == _reference_fee(price * quantity, maker)


def test_fixed_fee_is_charged_once_per_order_on_its_first_fill() -> None:
    v = venue(fixed_fee=Decimal("0.5"), taker_fee=Decimal("0.001"), volume_share=Decimal("0.5"))
    v.submit(order("m", quantity=100), at(0))
    first = v.on_bar(BTC, bar(1000, 1000, 1000, 1000, volume=100), at(1))
    second = v.on_bar(BTC, bar(1000, 1000, 1000, 1000, volume=100), at(2))
    assert [f.fee for f in fills(first + second)] == [500_000 + 50, 50]  # 0.5 USD = 500_000 units


def test_display_amounts_convert_half_up() -> None:
    assert display_to_units(Decimal("0.0000005"), 6) == 1
    assert display_to_units(Decimal("0.0000004"), 6) == 0
    assert display_to_units(Decimal("1.25"), 2) == 125


@given(
    price=st.integers(-(10**9), 10**9),
    bps=st.decimals(min_value=0, max_value=500, places=2, allow_nan=False, allow_infinity=False),
    tick=st.integers(1, 1000),
    is_buy=st.booleans(),
)
def test_slippage_is_on_the_tick_against_the_trader_and_at_most_a_tick_beyond_the_exact_move(
    price: int, bps: Decimal, tick: int, is_buy: bool
) -> None:
    slipped = Slippage.of(bps).apply(price, is_buy, tick)
    if bps == 0:
        assert slipped == price
        return
    assert slipped % tick == 0
    with localcontext() as ctx:
        ctx.prec = 100
        exact = Decimal(price) + Decimal(abs(price)) * bps / 10_000 * (1 if is_buy else -1)
    if is_buy:
        assert exact <= slipped < exact + tick
    else:
        assert exact - tick < slipped <= exact


@given(
    o=st.integers(1_000, 2_000),
    up=st.integers(0, 100),
    down=st.integers(0, 100),
    bps=st.sampled_from([Decimal(1), Decimal(25), Decimal(250)]),
    side=st.sampled_from(["buy", "sell"]),
)
def test_slipped_market_fills_stay_inside_the_bar_and_on_the_tick(
    o: int, up: int, down: int, bps: Decimal, side: str
) -> None:
    o -= o % 5  # ETH-USD ticks are 5
    high, low = o + up, o - down
    v = venue(slippage_bps=bps)
    v.submit(order("m", side=side, quantity=10, instrument=ETH), at(0))
    (fill,) = fills(v.on_bar(ETH, bar(o, high, low, o, volume=10**6), at(1)))
    assert low <= fill.price <= high
    if side == "buy":
        assert fill.price >= o and (fill.price % 5 == 0 or fill.price == high)
    else:
        assert fill.price <= o and (fill.price % 5 == 0 or fill.price == low)


def test_slippage_worked_example_and_limits_never_slip() -> None:
    v = venue(slippage_bps=Decimal(10))  # 0.1%
    v.submit(order("m", quantity=1), at(0))
    v.submit(order("s", side="sell", order_type="stop", stop_price=9_990, quantity=1), at(0))
    v.submit(order("l", order_type="limit", price=9_995, quantity=1), at(0))
    out = v.on_bar(BTC, bar(10_000, 10_050, 9_950, 10_000), at(1))
    # market: 10_000 + 10 = 10_010; stop: 9_990 - 9.99 = 9_980.01 -> 9_980 (down, against the seller)
    assert fill_prices(out) == [(1, 10_010), (1, 9_980), (1, 9_995)]


def test_spread_model_adds_nothing_against_quotes_and_falls_back_on_bars() -> None:
    v = venue(slippage_bps=Decimal(100), slippage_model="spread")
    v.on_quote(BTC, quote(9_990, 10_010), at(0))
    assert fill_prices(v.submit(order("q", quantity=1), at(0))) == [(1, 10_010)]
    v.submit(order("b", quantity=10, instrument=ETH), at(0))
    assert fill_prices(v.on_bar(ETH, bar(10_000, 10_200, 9_900, 10_000), at(1))) == [(10, 10_100)]
    fixed = venue(slippage_bps=Decimal(100))
    fixed.on_quote(BTC, quote(9_990, 10_010), at(0))
    assert fill_prices(fixed.submit(order("q", quantity=1), at(0))) == [(1, 10_111)]  # 10_010 + 100.1, up
    fixed.submit(order("u", side="sell", order_type="stop", stop_price=9_000, quantity=1), at(1))
    assert fill_prices(fixed.on_trade(BTC, trade(9_000), at(2))) == [(1, 8_910)]  # trades: fixed bps


# ---------------------------------------------------------------------- volume


def test_volume_share_partial_fills_carry_to_the_next_bars() -> None:
    v = venue(volume_share=Decimal("0.25"))
    v.submit(order("m", quantity=100), at(0))
    got = [fill_prices(v.on_bar(BTC, bar(100 + k, 100 + k, 100 + k, 100 + k, volume=120), at(k))) for k in (1, 2, 3, 4)]
    assert got == [[(30, 101)], [(30, 102)], [(30, 103)], [(10, 104)]]
    assert v.open_order_count == 0


def test_volume_share_applies_to_trades_and_rounds_down_to_lots() -> None:
    v = venue(volume_share=Decimal("0.5"))
    v.submit(order("m", quantity=100, instrument=ETH), at(0))
    out = v.on_trade(ETH, trade(100, quantity=75), at(0) + 1)  # 37.5 -> 37 -> 30 in lots of 10
    assert fill_prices(out) == [(30, 100)]
    assert kinds(v.on_trade(ETH, trade(100, quantity=15), at(0) + 2)) == []  # 7: less than a lot


def test_a_zero_volume_bar_fills_nothing_with_a_share_and_everything_without() -> None:
    limited = venue(volume_share=Decimal(1))
    limited.submit(order("m"), at(0))
    assert limited.on_bar(BTC, bar(100, 100, 100, 100, volume=0), at(1)) == []
    unlimited = venue()
    unlimited.submit(order("m"), at(0))
    assert fill_prices(unlimited.on_bar(BTC, bar(100, 100, 100, 100, volume=0), at(1))) == [(100, 100)]


def test_a_venue_without_partial_fills_fills_whole_orders_or_waits() -> None:
    v = venue(core_config(partial_fills=False), volume_share=Decimal("0.5"))
    v.submit(order("m", quantity=100), at(0))
    assert v.on_bar(BTC, bar(100, 100, 100, 100, volume=150), at(1)) == []  # 75 < 100
    assert fill_prices(v.on_bar(BTC, bar(101, 101, 101, 101, volume=200), at(2))) == [(100, 101)]
