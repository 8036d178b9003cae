"""What a backtest leaves behind: fills, final orders, round-trip trades and the equity curve.

The engine keeps money as exact integers; these records are for people and files, so amounts are
floats in display units (a price in quote currency per base unit, a quantity in base units, a fee
in its currency). The runner converts once, when it records.

Theory of operation of `TradeBuilder`: per instrument it holds the open round trip (signed size,
average cost, fees so far). A fill in the direction of the position opens or adds; a fill against
it reduces, closes (back to flat: a `TradeRecord` comes out) or flips (the part that closes the
position ends the trade, the rest opens a new one at the same fill). Fees are apportioned by
quantity between the closing and opening parts of a flipping fill. Realised profit is measured
against the average cost, which for a whole round trip equals the sum of exit notionals minus the
sum of entry notionals (signed by direction), whatever order the adds and partial closes came in.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

__all__ = ["EquityCurve", "FillRecord", "OpenTrade", "OrderRecord", "TradeBuilder", "TradeRecord"]

# Quantities arrive as floats scaled from integer lots, so a close can leave a residue like 1e-17
# of the position. Without the core's exact position (`on_fill(position_after=...)`), a remainder
# up to this fraction of the trade's largest size counts as flat: far above float rounding, even
# summed over thousands of fills (~1e-16 each), and below any lot a real position is made of
# (a billion lots held at once would be needed to close one lot by mistake).
FLAT_TOLERANCE = 1e-9

# _RECORD_NOTE: the records made per fill, trade and order (FillRecord, TradeRecord, OrderRecord)
# are dataclasses with a hand-written __init__ and no `frozen`. Under mypyc the __init__ that
# @dataclass generates stays interpreted, and a frozen one sets each field through
# object.__setattr__: ~0.8 us a record against ~0.03 us for a compiled __init__ (a frozen class
# cannot have one: its own __init__ could not assign). Equality, hashing (`unsafe_hash`, by
# fields, as frozen had) and repr are still generated. Treat them as values: nothing changes one
# after it is made.


@dataclass(slots=True, init=False, unsafe_hash=True)  # a native __init__: see _RECORD_NOTE
class FillRecord:
    """One execution, as booked by the core (`FillBooked`), in display units.

    `side` is "buy" or "sell"; `quantity` is positive; `fee` is in `fee_currency`; `liquidity` is
    "maker", "taker" or "unknown".
    """

    time_ns: int
    seq_id: int
    strategy_id: str
    client_order_id: str
    instrument: str
    side: str
    quantity: float
    price: float
    fee: float
    fee_currency: str
    trade_id: str
    liquidity: str

    def __init__(
        self,
        time_ns: int,
        seq_id: int,
        strategy_id: str,
        client_order_id: str,
        instrument: str,
        side: str,
        quantity: float,
        price: float,
        fee: float,
        fee_currency: str,
        trade_id: str,
        liquidity: str,
    ) -> None:
        self.time_ns = time_ns
        self.seq_id = seq_id
        self.strategy_id = strategy_id
        self.client_order_id = client_order_id
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.price = price
        self.fee = fee
        self.fee_currency = fee_currency
        self.trade_id = trade_id
        self.liquidity = liquidity


@dataclass(slots=True, init=False, unsafe_hash=True)  # a native __init__: see _RECORD_NOTE
class OrderRecord:
    """One order's final state at the end of the run (prices None where the order type has none)."""

    client_order_id: str
    strategy_id: str
    instrument: str
    side: str
    order_type: str
    quantity: float
    price: float | None
    stop_price: float | None
    time_in_force: str
    state: str
    filled_quantity: float
    avg_fill_price: float | None
    created_time_ns: int
    updated_time_ns: int
    parent_client_order_id: str | None
    oco_group: str | None

    def __init__(
        self,
        client_order_id: str,
        strategy_id: str,
        instrument: str,
        side: str,
        order_type: str,
        quantity: float,
        price: float | None,
        stop_price: float | None,
        time_in_force: str,
        state: str,
        filled_quantity: float,
        avg_fill_price: float | None,
        created_time_ns: int,
        updated_time_ns: int,
        parent_client_order_id: str | None,
        oco_group: str | None,
    ) -> None:
        self.client_order_id = client_order_id
        self.strategy_id = strategy_id
        self.instrument = instrument
        self.side = side
        self.order_type = order_type
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.time_in_force = time_in_force
        self.state = state
        self.filled_quantity = filled_quantity
        self.avg_fill_price = avg_fill_price
        self.created_time_ns = created_time_ns
        self.updated_time_ns = updated_time_ns
        self.parent_client_order_id = parent_client_order_id
        self.oco_group = oco_group


@dataclass(slots=True, init=False, unsafe_hash=True)  # a native __init__: see _RECORD_NOTE
class TradeRecord:
    """A round trip on one instrument: opened from flat, closed back to flat.

    `quantity` is the largest absolute size held; `entry_price` and `exit_price` are size-weighted
    averages of the opening and closing fills; `pnl` is before fees, `pnl_net = pnl - fees`, and
    `fees` are the fees of every fill (or apportioned part of a fill) in the trade. `bars_held` is
    the bar index at exit minus the bar index at entry.
    """

    instrument: str
    direction: str  # "long" | "short"
    entry_time_ns: int
    exit_time_ns: int
    quantity: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    pnl_net: float
    bars_held: int

    def __init__(
        self,
        instrument: str,
        direction: str,
        entry_time_ns: int,
        exit_time_ns: int,
        quantity: float,
        entry_price: float,
        exit_price: float,
        pnl: float,
        fees: float,
        pnl_net: float,
        bars_held: int,
    ) -> None:
        self.instrument = instrument
        self.direction = direction
        self.entry_time_ns = entry_time_ns
        self.exit_time_ns = exit_time_ns
        self.quantity = quantity
        self.entry_price = entry_price
        self.exit_price = exit_price
        self.pnl = pnl
        self.fees = fees
        self.pnl_net = pnl_net
        self.bars_held = bars_held


@dataclass(frozen=True, slots=True)
class OpenTrade:
    """A round trip still open at the end of the run: reported, never counted as a closed trade.

    `quantity` is the absolute size still held, `average_cost` the cost basis of that size,
    `realized_pnl` what partial closes have already realised (before fees), `fees` all fees so far.
    """

    instrument: str
    direction: str
    entry_time_ns: int
    entry_bar_index: int
    quantity: float
    max_quantity: float
    average_cost: float
    entry_price: float
    realized_pnl: float
    fees: float


class EquityCurve:
    """The account's value over time, columnar: one point per time step, appended in time order.

    Arrays of machine numbers (8 bytes a value) keep a million points at 32 MB; `exposure` is the
    gross value of positions divided by equity (0 when flat).
    """

    __slots__ = ("cash", "equity", "exposure", "time_ns")

    def __init__(self) -> None:
        self.time_ns: array[int] = array("q")
        self.equity: array[float] = array("d")
        self.cash: array[float] = array("d")
        self.exposure: array[float] = array("d")

    def extend_from_steps(
        self,
        time_ns: array[int],
        close: array[int],
        step_bar: list[int],
        step_balance: list[int],
        step_quantity: list[int],
        cash_scale: float,
        mark: float,
    ) -> None:
        """One point per bar of a single-instrument run, from the steps of cash and position.

        Step k holds from bar `step_bar[k]` on (its fills happened while that bar was processed;
        step 0, at bar -1, from the start). Per bar it
        computes exactly what a per-bar `append` would have: cash = balance x cash_scale; when
        holding, value = (quantity x close) x mark, equity = cash + value, exposure =
        |value| / equity (0 unless equity > 0). numpy's int64 products and conversions round as
        Python's do; a product that could overflow int64 falls back to Python integers.
        """
        import numpy as np  # the backtest's fast path only; keep the module light to import

        n = len(time_ns)
        if n == 0:
            return
        assert not self.time_ns or time_ns[0] > self.time_ns[-1], "EquityCurve.extend_from_steps: time went back"
        closes = np.frombuffer(close, dtype=np.int64)
        which = np.searchsorted(np.asarray(step_bar, dtype=np.int64), np.arange(n, dtype=np.int64), side="right") - 1
        quantity_steps = step_quantity
        biggest = max(abs(q) for q in quantity_steps) * int(np.abs(closes).max())
        if biggest < 2**62 and max(abs(b) for b in step_balance) < 2**62:
            cash = np.asarray(step_balance, dtype=np.int64)[which].astype(np.float64) * cash_scale
            quantity = np.asarray(quantity_steps, dtype=np.int64)[which]
            value = (quantity * closes).astype(np.float64) * mark
        else:  # exact Python integers, then the same float operations
            cash = np.array([step_balance[k] * cash_scale for k in which], dtype=np.float64)
            qs = [quantity_steps[k] for k in which]
            value = np.array([q * c * mark for q, c in zip(qs, close, strict=True)], dtype=np.float64)
            quantity = np.asarray(qs, dtype=object)
        holding = quantity != 0
        equity = np.where(holding, cash + value, cash)
        with np.errstate(divide="ignore", invalid="ignore"):
            exposure = np.where(holding & (equity > 0), np.abs(value) / equity, 0.0)
        self.time_ns.extend(time_ns)
        self.equity.frombytes(np.ascontiguousarray(equity, dtype=np.float64).tobytes())
        self.cash.frombytes(np.ascontiguousarray(cash, dtype=np.float64).tobytes())
        self.exposure.frombytes(np.ascontiguousarray(exposure, dtype=np.float64).tobytes())

    def append(self, time_ns: int, equity: float, cash: float, exposure: float) -> None:
        """Add the point for one time step.

        Raises:
            ValueError: `time_ns` is not after the previous point's (two points for one step would
                skew per-step returns and the drawdown clock).
        """
        if self.time_ns and time_ns <= self.time_ns[-1]:
            raise ValueError(
                f"EquityCurve.append: time_ns={time_ns} is not after the previous point's {self.time_ns[-1]}"
            )
        self.time_ns.append(time_ns)
        self.equity.append(equity)
        self.cash.append(cash)
        self.exposure.append(exposure)

    def __len__(self) -> int:
        return len(self.time_ns)


class _Open:
    """The mutable state of one open round trip (inside TradeBuilder only)."""

    __slots__ = (
        "avg_cost",
        "entry_bar",
        "entry_notional",
        "entry_qty",
        "entry_time_ns",
        "exit_notional",
        "exit_qty",
        "fees",
        "long",
        "max_abs",
        "position",
        "realized",
    )

    def __init__(self, time_ns: int, bar_index: int, long: bool) -> None:
        self.long = long
        self.entry_time_ns = time_ns
        self.entry_bar = bar_index
        self.position = 0.0  # signed: > 0 long, < 0 short
        self.avg_cost = 0.0
        self.max_abs = 0.0
        self.entry_qty = 0.0
        self.entry_notional = 0.0
        self.exit_qty = 0.0
        self.exit_notional = 0.0
        self.realized = 0.0
        self.fees = 0.0

    def add(self, signed_qty: float, price: float, fee: float) -> None:
        qty = abs(signed_qty)
        new_position = self.position + signed_qty
        self.avg_cost = (abs(self.position) * self.avg_cost + qty * price) / abs(new_position)
        self.position = new_position
        if abs(new_position) > self.max_abs:
            self.max_abs = abs(new_position)
        self.entry_qty += qty
        self.entry_notional += qty * price
        self.fees += fee

    def reduce(self, qty: float, price: float, fee: float) -> None:
        direction = 1.0 if self.long else -1.0
        self.realized += direction * qty * (price - self.avg_cost)
        self.position -= direction * qty
        self.exit_qty += qty
        self.exit_notional += qty * price
        self.fees += fee


class TradeBuilder:
    """Turns fills into round-trip `TradeRecord`s as they arrive (average cost; see module doc).

    Feed every fill of the run, in booking order, with the index of the bar it happened in.
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}

    def on_fill(self, fill: FillRecord, bar_index: int, position_after: float | None = None) -> TradeRecord | None:
        """Apply one fill; return the trade it closed, if it brought its instrument back to flat.

        A fill that flips the position closes the old trade (returned) and opens a new one with the
        rest of the fill and that share of its fee.

        Args:
            fill: the execution, in booking order.
            bar_index: the index of the time step it happened in (for `bars_held`).
            position_after: the core's booked position after this fill (signed, display units:
                `FillBooked.position_quantity` scaled). When given it decides exactly whether the
                fill leaves the position reduced, flat or flipped, and the builder adopts it; without
                it, sizes within `FLAT_TOLERANCE` of each other count as equal.

        Raises:
            ValueError: the fill's side is not "buy"/"sell", its quantity is not positive, or
                `position_after` cannot follow from this fill (a fill was missed).
        """
        if fill.side == "buy":
            sign = 1.0
        elif fill.side == "sell":
            sign = -1.0
        else:
            raise ValueError(f"fill {fill.trade_id!r}: side must be 'buy' or 'sell', got {fill.side!r}")
        if not fill.quantity > 0:  # also refuses NaN
            raise ValueError(f"fill {fill.trade_id!r}: quantity must be > 0, got {fill.quantity!r}")

        trade = self._open.get(fill.instrument)
        if trade is None or trade.position * sign > 0:  # flat, or adding in the same direction
            if position_after is not None and not position_after * sign > 0:
                raise ValueError(
                    f"fill {fill.trade_id!r}: position_after={position_after!r} cannot follow a {fill.side} "
                    f"that opens or adds to {0.0 if trade is None else trade.position!r}"
                )
            if trade is None:
                trade = self._open[fill.instrument] = _Open(fill.time_ns, bar_index, sign > 0)
            trade.add(sign * fill.quantity, fill.price, fill.fee)
            if position_after is not None:
                trade.position = position_after
            return None

        held = abs(trade.position)
        if position_after is not None:
            partial = position_after * trade.position > 0
            rest = abs(position_after) if position_after * sign > 0 else 0.0
        else:
            # Tolerance against the largest size of the trade: residues of many partial closes
            # accumulate relative to it, not to what is left.
            slack = FLAT_TOLERANCE * max(trade.max_abs, fill.quantity)
            partial = fill.quantity < held - slack
            rest = fill.quantity - held if fill.quantity - held > slack else 0.0
        if partial:
            trade.reduce(fill.quantity, fill.price, fill.fee)
            if position_after is not None:
                trade.position = position_after
            return None

        # Closes the position; whatever is left over opens the other way.
        close_fee = fill.fee * ((fill.quantity - rest) / fill.quantity) if rest else fill.fee
        trade.reduce(held, fill.price, close_fee)
        closed = self._close(fill.instrument, trade, fill.time_ns, bar_index)
        if rest:
            opened = self._open[fill.instrument] = _Open(fill.time_ns, bar_index, sign > 0)
            opened.add(sign * rest, fill.price, fill.fee - close_fee)
        return closed

    def _close(self, instrument: str, trade: _Open, time_ns: int, bar_index: int) -> TradeRecord:
        del self._open[instrument]
        return TradeRecord(
            instrument=instrument,
            direction="long" if trade.long else "short",
            entry_time_ns=trade.entry_time_ns,
            exit_time_ns=time_ns,
            quantity=trade.max_abs,
            entry_price=trade.entry_notional / trade.entry_qty,
            exit_price=trade.exit_notional / trade.exit_qty,
            pnl=trade.realized,
            fees=trade.fees,
            pnl_net=trade.realized - trade.fees,
            bars_held=bar_index - trade.entry_bar,
        )

    def open_trades(self) -> list[OpenTrade]:
        """The round trips still open, by instrument name (they are not closed trades)."""
        return [
            OpenTrade(
                instrument=name,
                direction="long" if trade.long else "short",
                entry_time_ns=trade.entry_time_ns,
                entry_bar_index=trade.entry_bar,
                quantity=abs(trade.position),
                max_quantity=trade.max_abs,
                average_cost=trade.avg_cost,
                entry_price=trade.entry_notional / trade.entry_qty,
                realized_pnl=trade.realized,
                fees=trade.fees,
            )
            for name, trade in sorted(self._open.items())
        ]
