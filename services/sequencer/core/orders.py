"""The core's mutable order record, and its conversion to and from the wire snapshot."""

from __future__ import annotations

import msgspec

from schemas.enums import OrderState
from schemas.intents import PlaceOrder
from schemas.state import OrderSnapshot

__all__ = ["Order"]


class Order(msgspec.Struct, gc=False):
    """One order as the core tracks it. Mutated only by `SequencerCore`.

    A msgspec Struct with `gc=False`: the core keeps every order of a run, and untracked objects
    cost the cyclic collector nothing. Safe because an order refers to no object that refers
    back to it.
    """

    intent: PlaceOrder
    client_order_id: str
    strategy_id: str
    instrument: str
    venue: str
    is_buy: bool
    quantity: int
    price: int | None
    created_seq_id: int
    updated_seq_id: int
    state: OrderState = OrderState.CREATED
    pending_from: OrderState | None = None
    accepted: bool = False
    filled_quantity: int = 0
    filled_notional: int = 0
    venue_order_id: str | None = None
    replace_quantity: int | None = None
    replace_price: int | None = None
    # Price the no-margin cash check valued this order at (limit, stop, or last price for a
    # market order), fixed when placed so a moving market cannot free cash it still needs.
    reserve_price: int | None = None

    @classmethod
    def place(cls, intent: PlaceOrder, venue: str, seq_id: int) -> Order:
        """A new order in state CREATED for an accepted PlaceOrder intent."""
        return cls(
            intent,
            intent.client_order_id,
            intent.strategy_id,
            intent.instrument,
            venue,
            intent.side == "buy",
            intent.quantity,
            intent.price,
            seq_id,
            seq_id,
        )

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    def to_snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            intent=self.intent,
            venue=self.venue,
            quantity=self.quantity,
            price=self.price,
            state=self.state,
            pending_from=self.pending_from,
            accepted=self.accepted,
            filled_quantity=self.filled_quantity,
            filled_notional=self.filled_notional,
            venue_order_id=self.venue_order_id,
            replace_quantity=self.replace_quantity,
            replace_price=self.replace_price,
            reserve_price=self.reserve_price,
            created_seq_id=self.created_seq_id,
            updated_seq_id=self.updated_seq_id,
        )

    @classmethod
    def from_snapshot(cls, snap: OrderSnapshot) -> Order:
        order = cls.place(snap.intent, snap.venue, snap.created_seq_id)
        order.quantity = snap.quantity
        order.price = snap.price
        order.state = snap.state
        order.pending_from = snap.pending_from
        order.accepted = snap.accepted
        order.filled_quantity = snap.filled_quantity
        order.filled_notional = snap.filled_notional
        order.venue_order_id = snap.venue_order_id
        order.replace_quantity = snap.replace_quantity
        order.replace_price = snap.replace_price
        order.reserve_price = snap.reserve_price
        order.updated_seq_id = snap.updated_seq_id
        return order
