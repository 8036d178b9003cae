"""The in-process `StateView`: a strategy's context reads the core's book directly (read-only)."""

from __future__ import annotations

from collections.abc import Iterator

from services.sequencer.core.book import Book
from services.sequencer.core.orders import Order

__all__ = ["BookView"]


class BookView:
    """Reads balances, positions, prices and orders from a live `Book`. Never writes it."""

    __slots__ = ("_book",)

    def __init__(self, book: Book) -> None:
        self._book = book

    @property
    def time_ns(self) -> int:
        return self._book.event_time_ns

    def cash_units(self, currency: str) -> int:
        cash = self._book.portfolio.cash.get(currency)
        return 0 if cash is None else cash.balance

    def position_units(self, instrument: str) -> int:
        pos = self._book.portfolio.positions.get(instrument)
        return 0 if pos is None else pos.quantity

    def last_price_units(self, instrument: str) -> int | None:
        return self._book.last_prices.get(instrument)

    def open_orders(self, strategy_id: str) -> Iterator[Order]:
        for order in self._book.open_orders.values():
            if order.strategy_id == strategy_id:
                yield order
