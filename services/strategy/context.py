"""`StrategyContext`: what a strategy may look at, and the helpers that write its intents.

The context is a read-only view. It reads state through a `StateView` (the core's book in the
in-process backtest, a mirror built from published snapshots in the process group) and never
changes it: the only way a strategy acts is by returning intents, which the core validates and
applies like any other input. The helpers here (`buy`, `sell`, `cancel`, ...) only build intents;
they keep one thing of their own, the counter behind generated client order ids, which is
deterministic (`<strategy_id>-<n>`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from schemas.enums import OrderType, Side, TimeInForce
from schemas.intents import CancelOrder, PlaceOrder, ReplaceOrder
from services.sequencer.core.config import CoreConfig, InstrumentSpec
from services.strategy.units import InstrumentUnits

__all__ = ["OrderView", "StateView", "StrategyContext"]

Number = float | int | Decimal
# Enum lookups by value, bound once: calling an Enum class costs ~1 us (this is per order).
_SIDES: dict[str, Side] = {s.value: s for s in Side}
_ORDER_TYPES: dict[str, OrderType] = {t.value: t for t in OrderType}
_TIFS: dict[str, TimeInForce] = {t.value: t for t in TimeInForce}


@dataclass(frozen=True, slots=True)
class OrderView:
    """A working order, in display units."""

    client_order_id: str
    instrument: str
    side: str
    order_type: str
    quantity: float
    filled_quantity: float
    price: float | None
    stop_price: float | None
    state: str
    parent_client_order_id: str | None
    oco_group: str | None


class StateView(Protocol):
    """Where a context reads state from. Integers in the core's units."""

    @property
    def time_ns(self) -> int: ...

    def cash_units(self, currency: str) -> int: ...

    def position_units(self, instrument: str) -> int: ...

    def last_price_units(self, instrument: str) -> int | None: ...

    def open_orders(self, strategy_id: str) -> Iterable[Any]:
        """Open orders of the strategy: objects with the core `Order`'s attributes."""
        ...


class StrategyContext:
    """The read-only view a strategy gets with every callback, plus intent builders.

    Args:
        strategy_id: the id this strategy's intents carry (authorization is by this id).
        config: the core configuration (instrument specs, currencies).
        state: where balances, positions, prices and orders are read from.
        params: the strategy's parameters.
        account_currency: the currency equity is measured in.
    """

    def __init__(
        self,
        strategy_id: str,
        config: CoreConfig,
        state: StateView,
        params: Mapping[str, Any] | None = None,
        account_currency: str | None = None,
    ) -> None:
        self.strategy_id = strategy_id
        self.params: Mapping[str, Any] = dict(params or {})
        self._state = state
        self._config = config
        self.units: dict[str, InstrumentUnits] = {
            name: InstrumentUnits(name, spec) for name, spec in config.instruments.items()
        }
        self._cash_scale = {code: 10.0**-spec.decimals for code, spec in config.currencies.items()}
        self.account_currency = account_currency or _default_currency(config)
        self._next_id = 0

    # ------------------------------------------------------------------ reading

    @property
    def time_ns(self) -> int:
        """Event time: the time of the event being delivered (the only clock there is)."""
        return self._state.time_ns

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(self.units)

    def instrument(self, name: str) -> InstrumentSpec:
        """The spec of `name` (venue, currencies, decimals, tick and lot sizes)."""
        return self._units(name).spec

    def cash(self, currency: str | None = None) -> float:
        """Balance of `currency` (default: the account currency), display units."""
        code = currency or self.account_currency
        scale = self._cash_scale.get(code)
        if scale is None:
            raise KeyError(f"currency: {code!r} is not configured (known: {sorted(self._cash_scale)})")
        return self._state.cash_units(code) * scale

    def position(self, instrument: str) -> float:
        """Signed position in `instrument`, display units (0.0 when flat)."""
        return self._state.position_units(instrument) / self._units(instrument).size_scale

    def last_price(self, instrument: str) -> float | None:
        """Last price seen for `instrument` (bar close, trade, or quote mid); None before any."""
        units = self._state.last_price_units(instrument)
        return None if units is None else units / self._units(instrument).price_scale

    def equity(self) -> float:
        """Account-currency cash plus every position quoted in it, marked at its last price."""
        total = self.cash()
        for name, units in self.units.items():
            if units.spec.quote != self.account_currency:
                continue
            qty = self._state.position_units(name)
            if qty:
                px = self._state.last_price_units(name)
                if px is not None:
                    total += qty * units.to_size * px * units.to_price
        return total

    def open_orders(self, instrument: str | None = None) -> list[OrderView]:
        """This strategy's working orders, oldest first (optionally of one instrument)."""
        views = []
        for o in self._state.open_orders(self.strategy_id):
            if instrument is not None and o.instrument != instrument:
                continue
            u = self.units[o.instrument]
            intent = o.intent
            views.append(
                OrderView(
                    client_order_id=o.client_order_id,
                    instrument=o.instrument,
                    side="buy" if o.is_buy else "sell",
                    order_type=str(intent.order_type),
                    quantity=u.size(o.quantity),
                    filled_quantity=u.size(o.filled_quantity),
                    price=None if o.price is None else u.price(o.price),
                    stop_price=None if intent.stop_price is None else u.price(intent.stop_price),
                    state=str(o.state),
                    parent_client_order_id=intent.parent_client_order_id,
                    oco_group=intent.oco_group,
                )
            )
        return views

    # ------------------------------------------------------------------ writing intents

    def next_client_order_id(self) -> str:
        """A fresh client order id: `<strategy_id>-<n>`, deterministic across runs."""
        self._next_id += 1
        return f"{self.strategy_id}-{self._next_id}"

    def buy(self, instrument: str, quantity: Number, **terms: Any) -> PlaceOrder:
        """A buy order intent; see `order` for the terms."""
        if not terms:  # a plain market order: compiled, a direct call (with **terms, a generic one)
            return self.order(instrument, "buy", quantity)
        return self.order(instrument, "buy", quantity, **terms)

    def sell(self, instrument: str, quantity: Number, **terms: Any) -> PlaceOrder:
        """A sell order intent; see `order` for the terms."""
        if not terms:
            return self.order(instrument, "sell", quantity)
        return self.order(instrument, "sell", quantity, **terms)

    def order(
        self,
        instrument: str,
        side: str,
        quantity: Number,
        *,
        price: Number | None = None,
        stop_price: Number | None = None,
        order_type: str | None = None,
        time_in_force: str = "gtc",
        expire_time_ns: int | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        parent: str | None = None,
        oco_group: str | None = None,
        client_order_id: str | None = None,
    ) -> PlaceOrder:
        """A PlaceOrder intent in display units.

        The order type follows from the prices unless given: none -> market, price -> limit,
        stop_price -> stop, both -> stop_limit. Prices go to the nearest tick, the quantity down
        to whole lots.

        Raises:
            ValueError: a field that cannot become a valid order, named with its value.
        """
        u = self._units(instrument)
        side_enum = _SIDES.get(side)
        if side_enum is None:
            raise ValueError(f"side: {side!r} is not 'buy' or 'sell'")
        if order_type is None:
            if price is None:
                order_type = "market" if stop_price is None else "stop"
            else:
                order_type = "limit" if stop_price is None else "stop_limit"
        otype = _ORDER_TYPES.get(order_type)
        if otype is None:
            raise ValueError(f"order_type: {order_type!r} is not one of {list(_ORDER_TYPES)}")
        tif = _TIFS.get(time_in_force)
        if tif is None:
            raise ValueError(f"time_in_force: {time_in_force!r} is not one of {list(_TIFS)}")
        return PlaceOrder(
            strategy_id=self.strategy_id,
            client_order_id=client_order_id or self.next_client_order_id(),
            instrument=instrument,
            side=side_enum,
            order_type=otype,
            quantity=u.size_units(quantity),
            price=None if price is None else u.price_units(price),
            stop_price=None if stop_price is None else u.price_units(stop_price, "stop_price"),
            time_in_force=tif,
            expire_time_ns=expire_time_ns,
            reduce_only=reduce_only,
            post_only=post_only,
            parent_client_order_id=parent,
            oco_group=oco_group,
        )

    def bracket(
        self,
        instrument: str,
        side: str,
        quantity: Number,
        *,
        stop_loss: Number,
        take_profit: Number,
        price: Number | None = None,
        **terms: Any,
    ) -> list[PlaceOrder]:
        """An entry (market, or limit at `price`) with a stop-loss and a take-profit child.

        The children wait at the venue until the entry fills, then work; one filling cancels the
        other. Returns [entry, stop_loss, take_profit]: return them together.
        """
        entry = self.order(instrument, side, quantity, price=price, **terms)
        exit_side = "sell" if side == "buy" else "buy"
        stop = self.order(instrument, exit_side, quantity, stop_price=stop_loss, parent=entry.client_order_id)
        take = self.order(instrument, exit_side, quantity, price=take_profit, parent=entry.client_order_id)
        return [entry, stop, take]

    def cancel(self, client_order_id: str) -> CancelOrder:
        """A CancelOrder intent for one of this strategy's orders."""
        return CancelOrder(strategy_id=self.strategy_id, client_order_id=client_order_id)

    def replace(self, client_order_id: str, *, quantity: Number | None = None, price: Number | None = None) -> ReplaceOrder:
        """A ReplaceOrder intent: new total quantity and/or limit price, display units."""
        order = next((o for o in self._state.open_orders(self.strategy_id) if o.client_order_id == client_order_id), None)
        if order is None:
            raise ValueError(f"client_order_id: {client_order_id!r} is not a working order of {self.strategy_id}")
        u = self.units[order.instrument]
        return ReplaceOrder(
            strategy_id=self.strategy_id,
            client_order_id=client_order_id,
            quantity=None if quantity is None else u.size_units(quantity),
            price=None if price is None else u.price_units(price),
        )

    def _units(self, instrument: str) -> InstrumentUnits:
        u = self.units.get(instrument)
        if u is None:
            raise KeyError(f"instrument: {instrument!r} is not configured (known: {sorted(self.units)})")
        return u


def _default_currency(config: CoreConfig) -> str:
    """The quote currency most instruments use (ties: alphabetical)."""
    counts: dict[str, int] = {}
    for spec in config.instruments.values():
        counts[spec.quote] = counts.get(spec.quote, 0) + 1
    if not counts:
        return min(config.currencies)
    return min(counts, key=lambda c: (-counts[c], c))
