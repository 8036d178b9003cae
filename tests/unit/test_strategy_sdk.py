"""The strategy SDK: display units to exact integers, the read-only context, intent builders,
and finding strategies by path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import CancelOrder, PlaceOrder, ReplaceOrder
from services.backtest.config import BacktestConfig, core_config_for
from services.backtest.state_view import BookView
from services.sequencer.core import SequencerCore
from services.sequencer.scenario import Scenario
from services.strategy import Strategy, StrategyContext
from services.strategy.loader import StrategyLoadError, as_native_strategy, load_strategy_class
from services.strategy.units import InstrumentUnits, _nearest_whole, _whole_lots

CONFIG = core_config_for(["BTC-USD", "ETH-USD"], BacktestConfig(cash=Decimal(10_000)))


def _ctx() -> tuple[StrategyContext, SequencerCore]:
    core = SequencerCore(CONFIG)
    return StrategyContext("s1", CONFIG, BookView(core.book), {"k": 1}), core


def test_prices_go_to_the_nearest_tick_and_sizes_down_to_whole_lots() -> None:
    u = InstrumentUnits("BTC-USD", CONFIG.instruments["BTC-USD"])  # 2 price, 4 size decimals
    assert u.price_units(42000.125) == 4200012  # half-even at the tick
    assert u.price_units(Decimal("42000.13")) == 4200013
    assert u.size_units(0.3) == 3000  # 0.3 is not exactly representable in binary; still 3000
    assert u.size_units(0.12349) == 1234  # never more than asked
    assert u.price(4200013) == pytest.approx(42000.13)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda u: u.price_units(float("nan")), "price: nan is not a finite number"),
        (lambda u: u.price_units(-1.0), "price: -1.0 is not a positive price"),
        (lambda u: u.size_units(0.00001), "quantity: 1e-05 is less than one lot (0.0001) of BTC-USD"),
        (lambda u: u.size_units(float("inf")), "quantity: inf is not a finite number"),
    ],
)
def test_bad_numbers_are_refused_naming_the_field_and_value(call: object, message: str) -> None:
    u = InstrumentUnits("BTC-USD", CONFIG.instruments["BTC-USD"])
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        call(u)  # type: ignore[operator]


def test_builders_infer_the_order_type_and_number_client_order_ids() -> None:
    ctx, _ = _ctx()
    market = ctx.buy("BTC-USD", 0.5)
    limit = ctx.sell("BTC-USD", 0.5, price=43000)
    stop = ctx.sell("BTC-USD", 0.5, stop_price=41000)
    stop_limit = ctx.buy("BTC-USD", 0.5, price=43100, stop_price=43000)
    assert [o.order_type for o in (market, limit, stop, stop_limit)] == ["market", "limit", "stop", "stop_limit"]
    assert [o.client_order_id for o in (market, limit, stop, stop_limit)] == ["s1-1", "s1-2", "s1-3", "s1-4"]
    assert isinstance(market, PlaceOrder) and market.quantity == 5000 and market.strategy_id == "s1"


def test_a_bracket_is_an_entry_and_two_children_on_the_other_side() -> None:
    ctx, _ = _ctx()
    entry, stop, take = ctx.bracket("BTC-USD", "buy", 1, stop_loss=41000, take_profit=45000)
    assert entry.parent_client_order_id is None
    assert (stop.side, stop.order_type, stop.stop_price, stop.parent_client_order_id) == ("sell", "stop", 4100000, entry.client_order_id)
    assert (take.side, take.order_type, take.price, take.parent_client_order_id) == ("sell", "limit", 4500000, entry.client_order_id)


def test_unknown_names_are_refused_with_the_known_ones() -> None:
    ctx, _ = _ctx()
    with pytest.raises(KeyError, match="instrument: 'DOGE-USD' is not configured"):
        ctx.buy("DOGE-USD", 1)
    with pytest.raises(ValueError, match="time_in_force: 'forever' is not one of"):
        ctx.buy("BTC-USD", 1, time_in_force="forever")
    with pytest.raises(ValueError, match="side: 'long'"):
        ctx.order("BTC-USD", "long", 1)
    with pytest.raises(KeyError, match="currency: 'EUR' is not configured"):
        ctx.cash("EUR")


def test_the_context_reads_the_book_and_building_intents_changes_nothing() -> None:
    ctx, core = _ctx()
    before = core.state_hash()
    assert ctx.cash() == 10_000.0 and ctx.position("BTC-USD") == 0.0 and ctx.last_price("BTC-USD") is None
    ctx.buy("BTC-USD", 1)
    ctx.cancel("s1-1")
    assert core.state_hash() == before
    sc = Scenario()
    sc.bar("BTC-USD", 4_200_000, 4_210_000, 4_190_000, 4_200_000)
    sc.place("s1-1", quantity=1000, order_type="limit", price=4_100_000, strategy="s1")
    for env in sc.sequenced():
        core.apply(env)
    assert ctx.last_price("BTC-USD") == 42000.0
    [view] = ctx.open_orders()
    assert (view.client_order_id, view.side, view.quantity, view.price, view.state) == ("s1-1", "buy", 0.1, 41000.0, "submitted")
    assert ctx.open_orders("ETH-USD") == []
    assert isinstance(ctx.cancel("s1-1"), CancelOrder)
    replace = ctx.replace("s1-1", price=40999.99)
    assert isinstance(replace, ReplaceOrder) and replace.price == 4_099_999
    with pytest.raises(ValueError, match="client_order_id: 'nope' is not a working order of s1"):
        ctx.replace("nope", price=1)


class _Params(Strategy):
    params = {"fast": 10, "slow": 30}


def test_strategy_params_default_override_and_refuse_unknown_names() -> None:
    s = _Params(fast=5)
    assert (s.p.fast, s.p.slow) == (5, 30)
    with pytest.raises(StrategyLoadError, match=r"unknown parameter\(s\) \['fats'\]"):
        as_native_strategy(_Params, {"fats": 3})


def test_strategies_load_by_path_and_bad_paths_say_what_is_wrong(tmp_path: Path) -> None:
    assert load_strategy_class("examples/strategies/sma_cross.py").__name__ == "SmaCross"
    assert load_strategy_class("examples/strategies/sma_cross.py:SmaCross").__name__ == "SmaCross"
    with pytest.raises(StrategyLoadError, match="does not exist"):
        load_strategy_class("examples/strategies/nope.py")
    two = tmp_path / "two.py"
    two.write_text(
        "from services.strategy import Strategy\nclass A(Strategy): pass\nclass B(Strategy): pass\n"
    )
    with pytest.raises(StrategyLoadError, match=r"defines 2 strategy classes \['A', 'B'\]"):
        load_strategy_class(str(two))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(StrategyLoadError, match="raised RuntimeError: boom"):
        load_strategy_class(str(broken))
    with pytest.raises(StrategyLoadError, match="neither a tradebus Strategy"):
        as_native_strategy(object(), {})


@given(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1e9"), places=6, allow_nan=False),
    st.sampled_from([1, 5, 25]),
)
def test_the_float_fast_path_rounds_exactly_like_the_decimal_it_was_written_as(value: Decimal, step: int) -> None:
    """A float the user wrote converts as its decimal text would: nearest tick (half-even) for
    prices, whole lots rounded down for sizes; float noise never tips a boundary."""
    as_float = float(str(value))
    exact = Decimal(str(as_float))
    assert _nearest_whole(as_float, 100, step) == int((exact * 100 / step).to_integral_value())
    assert _whole_lots(as_float, 10_000, step) == int((exact * 10_000 / step) // 1)
