"""The simulated venue: order types x time in force on bars, gaps, stop-limits, trades, quotes,
IOC/FOK, DAY/GTD, post-only, latency, cancel/fill races, replace, and refusals."""

from __future__ import annotations

import pytest

from schemas import Liquidity
from services.matching import MatchingConfig, SimulatedVenue
from tests.unit.matching_support import (
    ALL_TIFS,
    BTC,
    DAY,
    ETH,
    MIN,
    T0,
    VENUE,
    at,
    bar,
    cancel,
    core_config,
    fill_prices,
    fills,
    flat,
    kinds,
    order,
    quote,
    reason_of,
    replace,
    trade,
    venue,
)

# ---------------------------------------------------------------------- order type x time in force

# (order_type, side, price, stop_price): each executes on HIT and not on MISS.
_TYPES = {
    "market": ("market", None, None),
    "limit": ("limit", 95, None),
    "stop": ("stop", None, 108),
    "stop_limit": ("stop_limit", 109, 108),
}
HIT = bar(100, 110, 90, 105)  # rising bar: limit 95 at 95, stop 108 at 108, stop-limit at its stop 108
MISS = bar(100, 101, 99, 100)
_HIT_PRICE = {"market": 100, "limit": 95, "stop": 108, "stop_limit": 108}


def _submit(v: SimulatedVenue, otype: str, tif: str, cid: str = "o") -> None:
    kind, price, stop = _TYPES[otype]
    expire = {"expire_time_ns": at(3)} if tif == "gtd" else {}
    reports = v.submit(order(cid, order_type=kind, price=price, stop_price=stop, tif=tif, **expire), at(0))
    assert kinds(reports) == ["accepted"]
    assert reports[0].time_ns == at(0)


@pytest.mark.parametrize("tif", [t.value for t in ALL_TIFS])
@pytest.mark.parametrize("otype", list(_TYPES))
def test_every_type_and_tif_fills_on_its_first_eligible_bar(otype: str, tif: str) -> None:
    v = venue()
    _submit(v, otype, tif)
    reports = v.on_bar(BTC, HIT, at(1))
    assert kinds(reports) == ["fill"]
    assert fill_prices(reports) == [(100, _HIT_PRICE[otype])]
    assert reports[0].time_ns == at(1)
    assert v.open_order_count == 0


@pytest.mark.parametrize("tif", [t.value for t in ALL_TIFS])
@pytest.mark.parametrize("otype", ["limit", "stop", "stop_limit"])
def test_a_first_bar_that_misses(otype: str, tif: str) -> None:
    """IOC/FOK limits die on the first eligible bar; stops count from their trigger; others wait."""
    v = venue()
    _submit(v, otype, tif)
    first = v.on_bar(BTC, MISS, at(1))
    second = v.on_bar(BTC, HIT, at(2))
    if otype == "limit" and tif in ("ioc", "fok"):
        assert kinds(first) == ["cancelled"]
        assert reason_of(first, "o") == ("ioc remainder" if tif == "ioc" else "fok not fillable")
        assert second == []
    else:
        assert first == []
        assert fill_prices(second) == [(100, _HIT_PRICE[otype])]


@pytest.mark.parametrize("otype", ["limit", "stop", "stop_limit"])
def test_gtd_and_day_orders_expire_before_a_later_bar(otype: str) -> None:
    v = venue()
    _submit(v, otype, "gtd", cid="g")  # expires at at(3)
    _submit(v, otype, "day", cid="d")  # arrived at T0 (midnight): expires at T0 + DAY
    assert v.on_bar(BTC, MISS, at(3)) == []  # closes at the GTD instant: still live
    expired = v.on_bar(BTC, HIT, at(4))
    assert kinds(expired) == ["expired", "fill"]
    assert expired[0].time_ns == at(3)  # the expiry instant, not the call
    assert expired[1].report.client_order_id == "d"
    assert v.open_order_count == 0


def test_day_order_lives_through_the_bar_that_closes_at_midnight() -> None:
    v = venue()
    v.submit(order("d", order_type="limit", price=95, tif="day"), T0 + 3 * 3600 * 10**9)
    assert v.on_bar(BTC, MISS, T0 + DAY) == []  # last bar of the day: matched, not expired
    late = v.on_bar(BTC, HIT, T0 + DAY + MIN)
    assert kinds(late) == ["expired"]
    assert late[0].time_ns == T0 + DAY


def test_day_end_offset_moves_the_session_end() -> None:
    hour = 3600 * 10**9
    v = venue(day_end_offset_ns=21 * hour)  # sessions end at 21:00 UTC
    v.submit(order("early", order_type="limit", price=95, tif="day"), T0 + 20 * hour)
    assert v.next_due_ns == T0 + 21 * hour + 1  # ends the same day, at 21:00
    out = v.submit(order("late", order_type="limit", price=95, tif="day"), T0 + 22 * hour)
    assert kinds(out) == ["expired", "accepted"]
    assert out[0].time_ns == T0 + 21 * hour
    assert v.next_due_ns == T0 + DAY + 21 * hour + 1  # arrived after 21:00: the next day's session


def test_gtd_that_expired_in_flight_is_expired_on_arrival_not_accepted() -> None:
    v = venue(latency_ns=MIN)
    assert v.submit(order("g", order_type="limit", price=95, tif="gtd", expire_time_ns=at(0) + 10), at(0)) == []
    out = v.advance(at(1))
    assert kinds(out) == ["expired"] and out[0].time_ns == at(1)


# ---------------------------------------------------------------------- bars: eligibility, gaps, stop-limits


def test_market_order_fills_at_the_next_open_not_the_bar_it_was_sent_on() -> None:
    v = venue()
    v.on_bar(BTC, bar(100, 101, 99, 100), at(0))
    v.submit(order("m"), at(0))
    out = v.on_bar(BTC, bar(103, 104, 102, 103), at(1))
    assert fill_prices(out) == [(100, 103)]
    assert fills(out)[0].liquidity is Liquidity.TAKER


def test_an_order_arriving_mid_bar_waits_for_a_bar_that_opens_after_it() -> None:
    v = venue(latency_ns=1)
    v.submit(order("m"), at(0))  # arrives 1 ns after the next bar opened
    first = v.on_bar(BTC, bar(103, 104, 102, 103), at(1))
    assert kinds(first) == ["accepted"] and first[0].time_ns == at(0) + 1
    assert fill_prices(v.on_bar(BTC, bar(105, 106, 104, 105), at(2))) == [(100, 105)]


@pytest.mark.parametrize(
    ("side", "otype", "price", "stop", "gap_bar", "expected", "liquidity"),
    [
        ("buy", "limit", 95, None, bar(93, 97, 92, 96), 93, Liquidity.MAKER),  # gapped down through a buy limit
        ("sell", "limit", 105, None, bar(107, 108, 103, 104), 107, Liquidity.MAKER),
        ("buy", "stop", None, 105, bar(107, 108, 103, 104), 107, Liquidity.TAKER),  # gapped up through a buy stop
        ("sell", "stop", None, 95, bar(93, 97, 92, 96), 93, Liquidity.TAKER),
    ],
)
def test_gaps_fill_at_the_open(
    side: str, otype: str, price: int | None, stop: int | None, gap_bar: object, expected: int, liquidity: Liquidity
) -> None:
    v = venue()
    v.submit(order("o", side=side, order_type=otype, price=price, stop_price=stop), at(0))
    out = v.on_bar(BTC, gap_bar, at(1))  # type: ignore[arg-type]
    assert fill_prices(out) == [(100, expected)]
    assert fills(out)[0].liquidity is liquidity


def test_limit_touched_inside_the_bar_fills_at_the_limit_and_untouched_waits() -> None:
    v = venue()
    v.submit(order("b", order_type="limit", price=95), at(0))
    v.submit(order("s", side="sell", order_type="limit", price=106), at(0))
    out = v.on_bar(BTC, bar(100, 105, 95, 101), at(1))  # low touches 95 exactly; high 105 misses 106
    assert fill_prices(out) == [(100, 95)]
    assert v.open_order_count == 1


@pytest.mark.parametrize(
    ("limit", "the_bar", "expected", "liquidity"),
    [
        (107, bar(106, 109, 104, 108), 106, Liquidity.TAKER),  # gap over the stop 105, open within the limit
        (107, bar(108, 110, 104, 109), 107, Liquidity.MAKER),  # gap over the limit too: the low comes back to it
        (107, bar(110, 112, 108, 111), None, None),  # gap over both and never back: triggered, no fill
        (106, bar(100, 106, 95, 98), 105, Liquidity.TAKER),  # falling bar, limit >= stop: at the stop
        (103, bar(100, 106, 95, 98), 103, Liquidity.MAKER),  # falling bar, close <= limit < stop: at the limit
        (97, bar(100, 106, 95, 98), None, None),  # falling bar, limit below the close: no fill
        (106, bar(100, 106, 99, 104), 105, Liquidity.TAKER),  # rising bar, limit >= stop: at the stop
        (104, bar(100, 106, 99, 104), None, None),  # rising bar, limit < stop: no fill (Backtrader)
        (107, bar(100, 104, 99, 103), None, None),  # never reaches the stop: not triggered
    ],
)
def test_buy_stop_limit_on_its_trigger_bar(
    limit: int, the_bar: object, expected: int | None, liquidity: Liquidity | None
) -> None:
    v = venue()
    v.submit(order("sl", order_type="stop_limit", price=limit, stop_price=105), at(0))
    out = v.on_bar(BTC, the_bar, at(1))  # type: ignore[arg-type]
    if expected is None:
        assert out == []
    else:
        assert fill_prices(out) == [(100, expected)]
        assert fills(out)[0].liquidity is liquidity


def test_sell_stop_limit_mirrors_the_buy() -> None:
    v = venue()
    v.submit(order("a", side="sell", order_type="stop_limit", price=94, stop_price=95), at(0))
    v.submit(order("b", side="sell", order_type="stop_limit", price=97, stop_price=95), at(0))
    v.submit(order("c", side="sell", order_type="stop_limit", price=96, stop_price=95), at(0))
    out = v.on_bar(BTC, bar(100, 104, 94, 102), at(1))  # rising bar: low triggers 95 early
    assert fill_prices(out, "a") == [(100, 95)]  # limit <= stop: at the stop
    assert fill_prices(out, "b") == [(100, 97)]  # stop < limit <= close: at the limit
    assert fill_prices(out, "c") == [(100, 96)]
    assert [f.liquidity for f in fills(out)] == [Liquidity.TAKER, Liquidity.MAKER, Liquidity.MAKER]
    v.submit(order("d", side="sell", order_type="stop_limit", price=97, stop_price=95), at(1))
    falling = v.on_bar(BTC, bar(100, 101, 94, 96), at(2))  # falling bar: only limit <= stop fills
    assert falling == []


def test_a_triggered_stop_limit_rests_as_a_limit_on_later_bars() -> None:
    v = venue()
    v.submit(order("sl", order_type="stop_limit", price=107, stop_price=105), at(0))
    assert v.on_bar(BTC, bar(110, 112, 108, 111), at(1)) == []  # triggered (gap), limit not reached
    out = v.on_bar(BTC, bar(109, 110, 106, 108), at(2))  # back under the stop is irrelevant now
    assert fill_prices(out) == [(100, 107)]
    assert fills(out)[0].liquidity is Liquidity.MAKER


def test_a_triggered_stop_not_wholly_filled_works_as_a_market_order() -> None:
    v = venue(volume_share="0.5")
    v.submit(order("s", order_type="stop", stop_price=105), at(0))
    first = v.on_bar(BTC, bar(100, 106, 99, 104, volume=100), at(1))
    assert fill_prices(first) == [(50, 105)]
    second = v.on_bar(BTC, bar(101, 102, 100, 101, volume=100), at(2))  # below the stop again
    assert fill_prices(second) == [(50, 101)]


def test_orders_are_matched_in_arrival_order_against_the_volume() -> None:
    v = venue(volume_share="0.5")
    v.submit(order("first", order_type="limit", price=99, quantity=40), at(0))
    v.submit(order("second", order_type="market", quantity=40), at(0))
    out = v.on_bar(BTC, bar(100, 101, 98, 100, volume=100), at(1))  # 50 to share
    assert fill_prices(out) == [(40, 99), (10, 100)]


# ---------------------------------------------------------------------- close mode


def test_close_mode_fills_a_market_order_at_the_close_it_was_sent_on() -> None:
    v = venue(fill_market_on="close")
    v.on_bar(BTC, bar(100, 106, 99, 104), at(0))
    out = v.submit(order("m"), at(0))
    assert kinds(out) == ["accepted", "fill"]
    assert fill_prices(out) == [(100, 104)]


def test_close_mode_without_a_bar_at_that_instant_waits_for_the_next_open() -> None:
    v = venue(fill_market_on="close")
    v.on_bar(BTC, bar(100, 106, 99, 104), at(0))
    assert kinds(v.submit(order("m"), at(0) + 5)) == ["accepted"]
    assert fill_prices(v.on_bar(BTC, bar(101, 102, 100, 101), at(1))) == []  # opened before it arrived
    assert fill_prices(v.on_bar(BTC, bar(102, 103, 101, 102), at(2))) == [(100, 102)]


def test_close_mode_with_latency_fills_at_the_close_of_the_bar_it_arrives_at() -> None:
    v = venue(fill_market_on="close", latency_ns=MIN)
    v.on_bar(BTC, bar(100, 106, 99, 104), at(0))
    assert v.submit(order("m"), at(0)) == []
    out = v.on_bar(BTC, bar(101, 108, 100, 107), at(1))
    assert kinds(out) == ["accepted", "fill"]
    assert fill_prices(out) == [(100, 107)]


def test_close_mode_leaves_limits_alone() -> None:
    v = venue(fill_market_on="close")
    v.on_bar(BTC, bar(100, 106, 95, 104), at(0))
    assert kinds(v.submit(order("l", order_type="limit", price=96), at(0))) == ["accepted"]


# ---------------------------------------------------------------------- trades


def test_trades_market_limit_stop() -> None:
    v = venue()
    v.submit(order("m"), at(0))
    v.submit(order("l", order_type="limit", price=99), at(0))
    v.submit(order("s", side="sell", order_type="stop", stop_price=97), at(0))
    first = v.on_trade(BTC, trade(100), at(0) + 1)
    assert fill_prices(first) == [(100, 100)]
    second = v.on_trade(BTC, trade(96), at(0) + 2)  # through the limit and the stop
    assert fill_prices(second, "l") == [(100, 99)]  # at the limit, maker
    assert fill_prices(second, "s") == [(100, 96)]  # at the print, taker
    assert [f.liquidity for f in fills(second)] == [Liquidity.MAKER, Liquidity.TAKER]


def test_trades_stop_limit_fills_at_the_trigger_print_if_within_the_limit_else_rests() -> None:
    v = venue()
    v.submit(order("a", order_type="stop_limit", stop_price=105, price=106), at(0))
    v.submit(order("b", order_type="stop_limit", stop_price=105, price=104), at(0))
    first = v.on_trade(BTC, trade(105), at(0) + 1)
    assert fill_prices(first) == [(100, 105)]  # a: triggered and within its limit
    assert fills(first)[0].liquidity is Liquidity.TAKER
    second = v.on_trade(BTC, trade(104), at(0) + 2)  # b: triggered before, resting at 104
    assert fill_prices(second) == [(100, 104)]
    assert fills(second)[0].liquidity is Liquidity.MAKER


def test_a_trade_at_the_same_instant_as_arrival_is_eligible() -> None:
    v = venue()
    v.submit(order("m"), at(0))
    assert fill_prices(v.on_trade(BTC, trade(100), at(0))) == [(100, 100)]


# ---------------------------------------------------------------------- quotes


def test_market_order_fills_on_arrival_at_the_opposite_quote() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    buy = v.submit(order("b"), at(0))
    sell = v.submit(order("s", side="sell"), at(0))
    assert kinds(buy) == ["accepted", "fill"] and fill_prices(buy) == [(100, 101)]
    assert fill_prices(sell) == [(100, 99)]


def test_crossing_limit_takes_the_quote_and_resting_limit_waits_for_it() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    cross = v.submit(order("x", order_type="limit", price=102), at(0))
    assert fill_prices(cross) == [(100, 101)]
    assert fills(cross)[0].liquidity is Liquidity.TAKER
    rest = v.submit(order("r", order_type="limit", price=100), at(0))
    assert kinds(rest) == ["accepted"]
    out = v.on_quote(BTC, quote(97, 99), at(1))  # the ask came down through the limit
    assert fill_prices(out) == [(100, 100)]
    assert fills(out)[0].liquidity is Liquidity.MAKER


def test_quote_stops_trigger_on_the_side_they_trade() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    v.submit(order("bs", order_type="stop", stop_price=103), at(0))
    v.submit(order("ss", side="sell", order_type="stop", stop_price=97), at(0))
    up = v.on_quote(BTC, quote(102, 103), at(1))  # the ask reaches the buy stop
    assert fill_prices(up) == [(100, 103)] and fills(up)[0].client_order_id == "bs"
    down = v.on_quote(BTC, quote(96, 98), at(2))  # the bid reaches the sell stop
    assert fill_prices(down) == [(100, 96)] and fills(down)[0].liquidity is Liquidity.TAKER


def test_an_empty_quote_side_fills_nothing_and_volume_share_caps_by_size() -> None:
    v = venue(volume_share="0.5")
    v.on_quote(BTC, quote(99, 101, bid_size=100, ask_size=0), at(0))
    assert kinds(v.submit(order("b", quantity=100), at(0))) == ["accepted"]  # no offers
    out = v.on_quote(BTC, quote(99, 101, bid_size=100, ask_size=60), at(1))
    assert fill_prices(out) == [(30, 101)]  # half the ask size
    assert fill_prices(v.on_quote(BTC, quote(99, 102, ask_size=1000), at(2))) == [(70, 102)]


# ---------------------------------------------------------------------- IOC / FOK with volume


def test_ioc_fills_what_the_event_allows_and_cancels_the_rest() -> None:
    v = venue(volume_share="0.5")
    v.submit(order("i", quantity=100, tif="ioc"), at(0))
    out = v.on_bar(BTC, bar(100, 101, 99, 100, volume=60), at(1))
    assert kinds(out) == ["fill", "cancelled"]
    assert fill_prices(out) == [(30, 100)]
    assert reason_of(out, "i") == "ioc remainder"


def test_fok_fills_all_or_is_cancelled_untouched() -> None:
    v = venue(volume_share="0.5")
    v.submit(order("small", quantity=30, tif="fok"), at(0))
    v.submit(order("big", quantity=100, tif="fok"), at(0))
    out = v.on_bar(BTC, bar(100, 101, 99, 100, volume=100), at(1))
    assert fill_prices(out) == [(30, 100)]
    assert kinds(out, "big") == ["cancelled"] and reason_of(out, "big") == "fok not fillable"


def test_ioc_against_a_standing_quote_is_decided_on_arrival() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    out = v.submit(order("i", order_type="limit", price=100, tif="ioc"), at(0))
    assert kinds(out) == ["accepted", "cancelled"]


# ---------------------------------------------------------------------- post-only


def test_post_only_is_refused_when_it_would_take_and_rests_otherwise() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    taking = v.submit(order("t", order_type="limit", price=101, post_only=True), at(0))
    assert kinds(taking) == ["rejected"]
    assert reason_of(taking, "t") == "post_only buy limit 101 would take liquidity: ask 101"
    resting = v.submit(order("r", side="sell", order_type="limit", price=100, post_only=True), at(0))
    assert kinds(resting) == ["accepted"]
    out = v.on_quote(BTC, quote(100, 102), at(1))
    assert fill_prices(out) == [(100, 100)] and fills(out)[0].liquidity is Liquidity.MAKER


def test_post_only_needs_a_limit_and_a_venue_that_offers_it() -> None:
    v = venue()
    assert reason_of(v.submit(order("m", post_only=True), at(0)), "m") == "post_only needs order_type limit, got market"
    plain = venue(core_config(post_only=False))
    out = plain.submit(order("l", order_type="limit", price=99, post_only=True), at(0))
    assert reason_of(out, "l") == f"post_only is not offered at venue {VENUE}"


def test_replace_of_a_post_only_order_into_the_quote_is_refused() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    v.submit(order("p", order_type="limit", price=100, post_only=True), at(0))
    out = v.replace(replace("p", 100, price=101), at(0))
    assert kinds(out) == ["replace_rejected"]
    assert reason_of(out, "p") == "post_only limit 101 would take liquidity"


# ---------------------------------------------------------------------- latency, cancels, replaces


def test_commands_arrive_after_the_latency_in_send_order() -> None:
    v = venue(latency_ns=500)
    assert v.submit(order("a", order_type="limit", price=90), at(0)) == []
    assert v.cancel(cancel("a"), at(0) + 100) == []
    assert v.next_due_ns == at(0) + 500
    assert v.advance(at(0) + 499) == []
    out = v.advance(at(0) + 10_000)
    assert kinds(out) == ["accepted", "cancelled"]
    assert [r.time_ns for r in out] == [at(0) + 500, at(0) + 600]
    assert reason_of(out, "a") == "by test"
    assert v.next_due_ns is None


def test_a_cancel_that_arrives_after_the_fill_is_rejected() -> None:
    v = venue(latency_ns=2 * MIN)
    v.submit(order("m"), at(0))  # arrives at at(2)
    v.on_bar(BTC, flat(100), at(2))
    v.cancel(cancel("m"), at(2))  # arrives at at(4)
    filled = v.on_bar(BTC, flat(101), at(3))
    assert fill_prices(filled) == [(100, 101)]
    out = v.advance(at(4))
    assert kinds(out) == ["cancel_rejected"] and reason_of(out, "m") == "already filled"


def test_a_cancel_that_arrives_first_wins_and_unknown_orders_are_rejected() -> None:
    v = venue(latency_ns=MIN // 2)
    v.submit(order("l", order_type="limit", price=99), at(0))
    v.on_bar(BTC, flat(100), at(1))
    v.cancel(cancel("l"), at(1))  # arrives mid-bar: before the bar that would fill it is matched
    out = v.on_bar(BTC, bar(98, 99, 97, 98), at(2))
    assert kinds(out) == ["cancelled"]
    again = v.cancel(cancel("l"), at(2)) + v.cancel(cancel("nope"), at(2)) + v.advance(at(3))
    assert [r.report.reason for r in again] == ["already cancelled", "unknown order"]


def test_replace_changes_quantity_and_price_and_resets_bar_eligibility() -> None:
    v = venue(latency_ns=MIN // 2)
    v.submit(order("l", order_type="limit", price=95), at(0))
    v.on_bar(BTC, flat(100), at(1))
    v.replace(replace("l", 300, price=97), at(1))  # arrives mid-bar 2
    out = v.on_bar(BTC, bar(100, 100, 96, 98), at(2))  # would fill 97, but the new terms came mid-bar
    assert kinds(out) == ["replaced"]
    assert (out[0].report.quantity, out[0].report.price) == (300, 97)
    assert fill_prices(v.on_bar(BTC, bar(100, 100, 96, 98), at(3))) == [(300, 97)]


@pytest.mark.parametrize(
    ("quantity", "price", "reason"),
    [
        (40, None, "quantity 40 <= filled 50"),
        (50, None, "quantity 50 <= filled 50"),
        (100, None, "nothing to change: quantity 100 and price 95 already"),
        (100, 96, None),
    ],
)
def test_replace_refusals(quantity: int, price: int | None, reason: str | None) -> None:
    v = venue(volume_share="0.5")
    v.submit(order("l", order_type="limit", price=95), at(0))
    v.on_bar(BTC, bar(96, 97, 94, 95, volume=100), at(1))  # fills 50
    out = v.replace(replace("l", quantity, price=price), at(1))
    if reason is None:
        assert kinds(out) == ["replaced"]
    else:
        assert kinds(out) == ["replace_rejected"] and reason_of(out, "l") == reason


def test_replace_price_of_a_market_order_and_after_the_end() -> None:
    v = venue()
    v.submit(order("m"), at(0))
    assert reason_of(v.replace(replace("m", 100, price=5), at(0)), "m") == "price 5: a market order has no limit price"
    v.on_bar(BTC, flat(100), at(1))
    assert reason_of(v.replace(replace("m", 200), at(1)), "m") == "already filled"
    v.submit(order("c", order_type="limit", price=90), at(1))
    v.cancel(cancel("c"), at(1))
    assert v.replace(replace("c", 200), at(1)) == []  # its cancel report already settled it
    assert reason_of(v.replace(replace("ghost", 200), at(1)), "ghost") == "unknown order"


def test_replace_into_the_quote_fills_at_once() -> None:
    v = venue()
    v.on_quote(BTC, quote(99, 101), at(0))
    v.submit(order("l", order_type="limit", price=100), at(0))
    out = v.replace(replace("l", 100, price=101), at(0))
    assert kinds(out) == ["replaced", "fill"] and fills(out)[0].liquidity is Liquidity.TAKER


# ---------------------------------------------------------------------- refusals and caller errors


def test_orders_the_configured_venue_cannot_take_are_rejected() -> None:
    v = venue(core_config(order_types=("market", "limit"), time_in_force=("gtc",)))
    assert reason_of(v.submit(order("s", order_type="stop", stop_price=5), at(0)), "s") == (
        f"order_type stop is not offered at venue {VENUE}"
    )
    assert (
        reason_of(v.submit(order("i", tif="ioc"), at(0)), "i") == f"time_in_force ioc is not offered at venue {VENUE}"
    )


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(order_type="limit"), "order_type limit needs price"),
        (dict(order_type="stop_limit", price=100), "order_type stop_limit needs stop_price"),
        (dict(price=100), "order_type market takes no price, got 100"),
        (dict(instrument=ETH, order_type="limit", price=101), "price 101 is not a multiple of tick_size 5"),
        (dict(instrument=ETH, quantity=15), "quantity 15 is not a multiple of lot_size 10"),
        (dict(tif="gtd"), "time_in_force gtd needs expire_time_ns"),
        (dict(expire_time_ns=T0 + 1), "expire_time_ns is only for gtd, got time_in_force gtc"),
        (
            dict(parent_client_order_id="nobody"),
            f"parent_client_order_id 'nobody' is not an order known at venue {VENUE}",
        ),
    ],
)
def test_malformed_orders_are_rejected_naming_field_and_value(kw: dict[str, object], reason: str) -> None:
    v = venue()
    out = v.submit(order("x", **kw), at(0))  # type: ignore[arg-type]
    assert kinds(out) == ["rejected"] and reason_of(out, "x") == reason
    assert reason_of(v.cancel(cancel("x", instrument=out[0].instrument), at(0)), "x") == "already rejected"


def test_caller_errors_raise_with_the_value() -> None:
    v = venue()
    with pytest.raises(ValueError, match="instrument 'ETH-OTHER' is not traded at venue SIM"):
        v.submit(order("x", instrument="ETH-OTHER"), at(0))
    with pytest.raises(ValueError, match="instrument 'NOPE' is not traded"):
        v.on_bar("NOPE", flat(1), at(0))
    with pytest.raises(ValueError, match="venue 'NOPE' is not in the core config"):
        SimulatedVenue("NOPE", core_config(), MatchingConfig())
    v.submit(order("dup", order_type="limit", price=90), at(0))
    assert v.submit(order("dup", order_type="limit", price=90), at(0)) == []  # an identical resend
    with pytest.raises(ValueError, match="client_order_id 'dup' already submitted"):
        v.submit(order("dup", order_type="limit", price=91), at(0))


def test_has_working_orders_and_open_order_count() -> None:
    v = venue()
    assert not v.has_working_orders(BTC) and v.open_order_count == 0
    v.submit(order("l", order_type="limit", price=90), at(0))
    assert v.has_working_orders(BTC) and not v.has_working_orders(ETH) and v.open_order_count == 1
    assert v.order_status("l") == ("working", 100, 0)
    assert v.order_status("nope") is None
