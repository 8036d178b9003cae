"""The core's mutable order record, and its conversion to and from the wire snapshot."""

from __future__ import annotations

from schemas.enums import OrderState
from schemas.intents import PlaceOrder
from schemas.state import OrderSnapshot

__all__ = ["Order"]


class Order:
    """One order as the core tracks it. Mutated only by `SequencerCore`."""

    __slots__ = (
        "intent",
        "client_order_id",
        "strategy_id",
        "instrument",
        "venue",
        "is_buy",
        "quantity",
        "price",
        "state",
        "pending_from",
        "accepted",
        "filled_quantity",
        "filled_notional",
        "venue_order_id",
        "replace_quantity",
        "replace_price",
        "created_seq_id",
        "updated_seq_id",
    )

    def __init__(self, intent: PlaceOrder, venue: str, seq_id: int) -> None:
        self.intent = intent
        self.client_order_id = intent.client_order_id
        self.strategy_id = intent.strategy_id
        self.instrument = intent.instrument
        self.venue = venue
        self.is_buy = intent.side == "buy"
        self.quantity = intent.quantity
        self.price = intent.price
        self.state = OrderState.CREATED
        self.pending_from: OrderState | None = None
        self.accepted = False
        self.filled_quantity = 0
        self.filled_notional = 0
        self.venue_order_id: str | None = None
        self.replace_quantity: int | None = None
        self.replace_price: int | None = None
        self.created_seq_id = seq_id
        self.updated_seq_id = seq_id

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
            created_seq_id=self.created_seq_id,
            updated_seq_id=self.updated_seq_id,
        )

    @classmethod
    def from_snapshot(cls, snap: OrderSnapshot) -> Order:
        order = cls(snap.intent, snap.venue, snap.created_seq_id)
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
        order.updated_seq_id = snap.updated_seq_id
        return order
