"""Cash per currency and netted positions per instrument, moved only by fills and cash control.

Accounting is exact integer arithmetic:
* notional (quote currency units) = price x quantity x 10**(quote decimals - price decimals -
  size decimals); the config guarantees the exponent is >= 0.
* A position keeps a signed cost basis. Reducing a position removes
  `cost * closed // |quantity|` of it (floor); the remainder stays with the open quantity, so
  cost is conserved to the unit and realized PnL is exact given that rule.
* Ledgers kept beside the balances (bought, sold, fees, adjustments) are what the conservation
  invariants compare against.
"""

from __future__ import annotations

from schemas.state import CashSnapshot, PositionSnapshot

__all__ = ["Cash", "FillResult", "Portfolio", "Position"]


class Cash:
    __slots__ = ("adjustments", "balance", "bought", "currency", "fees", "initial", "sold")

    def __init__(self, currency: str, initial: int) -> None:
        self.currency = currency
        self.balance = initial
        self.initial = initial
        self.adjustments = 0
        self.bought = 0
        self.sold = 0
        self.fees = 0

    def to_snapshot(self) -> CashSnapshot:
        return CashSnapshot(
            currency=self.currency,
            balance=self.balance,
            initial=self.initial,
            adjustments=self.adjustments,
            bought=self.bought,
            sold=self.sold,
            fees=self.fees,
        )

    @classmethod
    def from_snapshot(cls, snap: CashSnapshot) -> Cash:
        cash = cls(snap.currency, snap.initial)
        cash.balance = snap.balance
        cash.adjustments = snap.adjustments
        cash.bought = snap.bought
        cash.sold = snap.sold
        cash.fees = snap.fees
        return cash


class Position:
    __slots__ = ("cost", "fill_quantity_net", "instrument", "quantity", "realized_pnl")

    def __init__(self, instrument: str) -> None:
        self.instrument = instrument
        self.quantity = 0
        self.cost = 0
        self.realized_pnl = 0
        self.fill_quantity_net = 0

    def to_snapshot(self) -> PositionSnapshot:
        return PositionSnapshot(
            instrument=self.instrument,
            quantity=self.quantity,
            cost=self.cost,
            realized_pnl=self.realized_pnl,
            fill_quantity_net=self.fill_quantity_net,
        )

    @classmethod
    def from_snapshot(cls, snap: PositionSnapshot) -> Position:
        pos = cls(snap.instrument)
        pos.quantity = snap.quantity
        pos.cost = snap.cost
        pos.realized_pnl = snap.realized_pnl
        pos.fill_quantity_net = snap.fill_quantity_net
        return pos


# (position quantity after, PnL realized by this fill excluding fees, quote cash balance after)
FillResult = tuple[int, int, int]


class Portfolio:
    """Balances and positions. `book_fill` is the only way a position changes."""

    __slots__ = ("cash", "notional_scale", "positions")

    def __init__(self, initial_cash: dict[str, int], currencies: list[str], notional_scale: dict[str, int]) -> None:
        self.cash: dict[str, Cash] = {c: Cash(c, initial_cash.get(c, 0)) for c in sorted(currencies)}
        self.positions: dict[str, Position] = {}
        # instrument -> 10**(quote decimals - price decimals - size decimals)
        self.notional_scale = notional_scale

    def position(self, instrument: str) -> Position:
        pos = self.positions.get(instrument)
        if pos is None:
            pos = self.positions[instrument] = Position(instrument)
        return pos

    def book_fill(
        self,
        instrument: str,
        quote: str,
        is_buy: bool,
        quantity: int,
        price: int,
        fee: int,
        fee_currency: str,
    ) -> FillResult:
        """Apply one fill to cash and position (netting) and return what changed."""
        scale = self.notional_scale[instrument]
        notional = price * quantity * scale
        cash = self.cash[quote]
        if is_buy:
            cash.balance -= notional
            cash.bought += notional
            signed_qty = quantity
        else:
            cash.balance += notional
            cash.sold += notional
            signed_qty = -quantity
        fee_cash = self.cash[fee_currency]
        fee_cash.balance -= fee
        fee_cash.fees += fee

        pos = self.position(instrument)
        pos.fill_quantity_net += signed_qty
        realized = 0
        held = pos.quantity
        if held == 0 or (held > 0) == is_buy:
            pos.quantity = held + signed_qty
            pos.cost += notional if is_buy else -notional
        else:
            closing = min(quantity, abs(held))
            cost_removed = pos.cost * closing // abs(held)
            closing_notional = price * closing * scale
            # Long closed by a sell: proceeds - cost. Short closed by a buy: cost - outlay.
            realized = (closing_notional if not is_buy else -closing_notional) - cost_removed
            pos.cost -= cost_removed
            pos.quantity = held + (closing if is_buy else -closing)
            opening = quantity - closing
            if opening:
                pos.quantity += opening if is_buy else -opening
                opened = price * opening * scale
                pos.cost += opened if is_buy else -opened
            pos.realized_pnl += realized
        return pos.quantity, realized, cash.balance

    def adjust_cash(self, currency: str, amount: int) -> int:
        cash = self.cash[currency]
        cash.balance += amount
        cash.adjustments += amount
        return cash.balance
