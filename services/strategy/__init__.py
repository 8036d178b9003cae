"""The strategy SDK: the native `on_event(ctx, event) -> intents` API, its events and context,
and the streaming indicators strategies use. The Backtrader-style layer is `services.strategy.btcompat`.
"""

from services.strategy.api import Intents, Strategy
from services.strategy.context import OrderView, StrategyContext
from services.strategy.events import (
    BarClosed,
    Event,
    IntentRefused,
    OrderFilled,
    OrderUpdated,
    QuoteChanged,
    TimeSliceClosed,
    TradePrinted,
)

__all__ = [
    "BarClosed",
    "Event",
    "IntentRefused",
    "Intents",
    "OrderFilled",
    "OrderUpdated",
    "OrderView",
    "QuoteChanged",
    "Strategy",
    "StrategyContext",
    "TimeSliceClosed",
    "TradePrinted",
]
