"""The native strategy API: `on_event(ctx, event) -> intents`, with `on_start` and `on_stop`.

A strategy reads the world through `ctx` (a `StrategyContext`) and the events it is given, and
answers with intents (`PlaceOrder`, `CancelOrder`, `ReplaceOrder`, `SetRiskFlag`, `NoOp`), usually
built with `ctx.buy(...)`, `ctx.sell(...)`, `ctx.cancel(...)`. It never changes state itself: the
core decides what each intent does, and the strategy hears about it as `OrderUpdated`,
`OrderFilled` or `IntentRefused` events. The same class runs in the in-process backtest and in a
strategy host process.

    class Momentum(Strategy):
        params = {"instrument": "BTC-USD", "size": 0.1}

        def on_event(self, ctx, event):
            if isinstance(event, BarClosed) and event.close > event.open and not ctx.position(event.instrument):
                return [ctx.buy(event.instrument, self.p.size)]
            return None
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any, ClassVar

from schemas.intents import Intent
from services.strategy.context import StrategyContext
from services.strategy.events import Event

__all__ = ["Intents", "Strategy"]

Intents = Iterable[Intent] | Intent | None


class Strategy:
    """Base class of native strategies. Override what you need; every hook may return intents.

    `params` on the class holds the defaults; keyword arguments override them (unknown names are
    refused). They are available as `self.p.<name>` and as `ctx.params`.
    """

    strategy_id: ClassVar[str | None] = None  # None: the host's configured id (BacktestConfig.strategy_id)
    params: ClassVar[Mapping[str, Any]] = {}
    # False: never called with `OrderUpdated` / `OrderFilled` (the strategy reads its orders and
    # positions through `ctx`). Saves several calls per order; `IntentRefused` still arrives.
    wants_order_events: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        defaults = dict(type(self).params)
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown parameter(s) {unknown}; known: {sorted(defaults)}"
            )
        defaults.update(params)
        self.param_values: dict[str, Any] = defaults
        self.p = SimpleNamespace(**defaults)

    def on_start(self, ctx: StrategyContext) -> Intents:
        """Called once before the first event."""
        return None

    def on_event(self, ctx: StrategyContext, event: Event) -> Intents:
        """Called for every event, in sequence order."""
        return None

    def on_stop(self, ctx: StrategyContext) -> Intents:
        """Called once after the last event (intents returned here are still applied)."""
        return None
