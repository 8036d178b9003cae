"""The one place a strategy event is built from the core's inputs and outputs.

The in-process backtest and the strategy host process both call these, so the same sequenced
record gives a strategy the same event, float for float, on either path (D5). Prices and sizes are
divided by the integer scale (not multiplied by its inverse): 42000.17, not 42000.170000000002.
"""

from __future__ import annotations

from schemas.envelope import Envelope
from schemas.market import Bar, Quote, Trade
from schemas.outputs import FillBooked, IntentRejected, OrderTransitioned
from services.strategy.events import (
    BarClosed,
    IntentRefused,
    OrderFilled,
    OrderUpdated,
    QuoteChanged,
    TradePrinted,
)
from services.strategy.units import InstrumentUnits

__all__ = ["intent_refused", "market_event", "order_filled", "order_updated"]


def market_event(env: Envelope, units: InstrumentUnits) -> BarClosed | TradePrinted | QuoteChanged:
    """The event for a market-data envelope of an instrument with these units."""
    p = env.payload
    px = units.price_scale
    sz = units.size_scale
    if isinstance(p, Bar):
        return BarClosed(
            env.instrument, env.event_time_ns, p.open / px, p.high / px, p.low / px, p.close / px,
            p.volume / sz, p.interval_ns,
        )  # fmt: skip
    if isinstance(p, Trade):
        return TradePrinted(
            env.instrument, env.event_time_ns, p.price / px, p.quantity / sz,
            None if p.aggressor is None else str(p.aggressor),
        )  # fmt: skip
    assert isinstance(p, Quote), f"not market data: {type(p).__name__}"
    return QuoteChanged(
        env.instrument, env.event_time_ns, p.bid_price / px, p.bid_size / sz, p.ask_price / px, p.ask_size / sz
    )


def order_updated(o: OrderTransitioned, time_ns: int, units: InstrumentUnits) -> OrderUpdated:
    scale = units.size_scale
    return OrderUpdated(
        time_ns, o.client_order_id, o.instrument, str(o.event), str(o.from_state), str(o.to_state),
        o.quantity / scale, o.filled_quantity / scale, o.note,
    )  # fmt: skip


def order_filled(o: FillBooked, time_ns: int, units: InstrumentUnits, fee_scale: float) -> OrderFilled:
    """`fee_scale` is 10.0 ** -decimals of the fee currency (the backtest's fill records use it too)."""
    return OrderFilled(
        time_ns, o.client_order_id, o.instrument, str(o.side), o.quantity / units.size_scale,
        o.price / units.price_scale, o.fee * fee_scale, o.fee_currency, o.position_quantity / units.size_scale,
        o.trade_id,
    )  # fmt: skip


def intent_refused(o: IntentRejected, time_ns: int) -> IntentRefused:
    return IntentRefused(time_ns, o.intent, str(o.reason), o.detail, o.client_order_id)
