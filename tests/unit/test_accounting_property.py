"""Exact integer accounting: `Portfolio.book_fill` against ledgers kept by the test itself.

Properties (for random fill sequences: buys and sells across zero, long -> short flips, several
instruments sharing a quote currency with different notional scales, fees in the quote or in
another currency):

* conservation, after every fill: per quote currency, sum over its instruments of
  (cost - realized) == bought - sold; cash balance == initial + sold - bought - fees; position
  == sum of signed quantities; what `book_fill` returns matches the state;
* flat means settled: after closing to zero, cost == 0 and realized == sold - bought;
* a round trip at one price realizes exactly 0, on every fill of it;
* a position opened at one price and closed in any pieces at another realizes exactly
  (exit - entry) x quantity x scale (no rounding loss);
* the cost basis of an open position stays between the lowest and highest fill price
  (the floor rounding of a partial close never pushes it outside), with the position's sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from services.sequencer.core.portfolio import Portfolio

# Two instruments quoted in USD with different scales (as BTC-USD and PRES-YES in the demo
# config: 10**(6-2-4) and 10**(6-2-0)), one quoted in EUR; fees may be charged in any currency.
SCALES = {"AAA-USD": 1, "BBB-USD": 10**4, "CCC-EUR": 10**2}
QUOTES = {"AAA-USD": "USD", "BBB-USD": "USD", "CCC-EUR": "EUR"}
CURRENCIES = ["EUR", "USD", "XBT"]
INITIAL = {"USD": 10**15, "EUR": 5 * 10**12}


@dataclass(frozen=True)
class Fill:
    instrument: str
    is_buy: bool
    quantity: int
    price: int
    fee: int = 0
    fee_currency: str | None = None  # None: the quote currency


@dataclass
class Ledger:
    """What the test expects, kept from the fills alone."""

    cash: dict[str, int] = field(default_factory=lambda: {c: INITIAL.get(c, 0) for c in CURRENCIES})
    bought: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CURRENCIES})
    sold: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CURRENCIES})
    fees: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CURRENCIES})
    position: dict[str, int] = field(default_factory=lambda: {i: 0 for i in SCALES})
    inst_bought: dict[str, int] = field(default_factory=lambda: {i: 0 for i in SCALES})
    inst_sold: dict[str, int] = field(default_factory=lambda: {i: 0 for i in SCALES})


def new_portfolio() -> Portfolio:
    return Portfolio(dict(INITIAL), list(CURRENCIES), dict(SCALES))


def book(p: Portfolio, ledger: Ledger, f: Fill) -> int:
    """Book `f`, update the ledger, check conservation; returns the PnL the fill realized."""
    quote = QUOTES[f.instrument]
    fee_currency = f.fee_currency or quote
    realized_before = p.positions[f.instrument].realized_pnl if f.instrument in p.positions else 0
    position_quantity, realized, cash_balance = p.book_fill(
        f.instrument, quote, f.is_buy, f.quantity, f.price, f.fee, fee_currency
    )
    notional = f.price * f.quantity * SCALES[f.instrument]
    if f.is_buy:
        ledger.cash[quote] -= notional
        ledger.bought[quote] += notional
        ledger.inst_bought[f.instrument] += notional
        ledger.position[f.instrument] += f.quantity
    else:
        ledger.cash[quote] += notional
        ledger.sold[quote] += notional
        ledger.inst_sold[f.instrument] += notional
        ledger.position[f.instrument] -= f.quantity
    ledger.cash[fee_currency] -= f.fee
    ledger.fees[fee_currency] += f.fee

    pos = p.positions[f.instrument]
    assert position_quantity == pos.quantity == ledger.position[f.instrument]
    assert pos.fill_quantity_net == ledger.position[f.instrument]
    assert cash_balance == p.cash[quote].balance
    assert pos.realized_pnl - realized_before == realized
    check_conservation(p, ledger)
    return realized


def check_conservation(p: Portfolio, ledger: Ledger) -> None:
    for ccy in CURRENCIES:
        cash = p.cash[ccy]
        expected = INITIAL.get(ccy, 0) + ledger.sold[ccy] - ledger.bought[ccy] - ledger.fees[ccy]
        assert cash.balance == ledger.cash[ccy] == expected
        assert (cash.bought, cash.sold, cash.fees) == (ledger.bought[ccy], ledger.sold[ccy], ledger.fees[ccy])
        basis = sum(
            p.positions[i].cost - p.positions[i].realized_pnl
            for i in SCALES
            if QUOTES[i] == ccy and i in p.positions
        )
        assert basis == ledger.bought[ccy] - ledger.sold[ccy], f"{ccy}: cost - realized {basis}"
    for inst, qty in ledger.position.items():
        assert (p.positions[inst].quantity if inst in p.positions else 0) == qty


def close_out(p: Portfolio, ledger: Ledger, instrument: str, price: int) -> None:
    """Trade the instrument's position back to zero at `price`."""
    held = ledger.position[instrument]
    if held:
        book(p, ledger, Fill(instrument, held < 0, abs(held), price))


# ------------------------------------------------------------------------------ strategies

instruments = st.sampled_from(sorted(SCALES))
quantities = st.integers(1, 10**6)
positive_prices = st.integers(1, 10**7)
any_prices = st.integers(-(10**7), 10**7)  # Price allows <= 0 (spreads, some futures)
fees = st.integers(-(10**4), 10**6)  # negative: a maker rebate
fee_currencies = st.sampled_from([None, None, None, "USD", "EUR", "XBT"])


def fills(
    prices: st.SearchStrategy[int] = any_prices, instrument: st.SearchStrategy[str] = instruments
) -> st.SearchStrategy[Fill]:
    return st.builds(Fill, instrument, st.booleans(), quantities, prices, fees, fee_currencies)


# ------------------------------------------------------------------------------ properties


@given(st.lists(fills(), max_size=60))
def test_conservation_holds_after_every_fill(sequence: list[Fill]) -> None:
    p, ledger = new_portfolio(), Ledger()
    for f in sequence:
        book(p, ledger, f)


@given(st.lists(fills(), max_size=40), any_prices)
def test_flat_position_has_no_cost_and_realized_equals_sold_minus_bought(sequence: list[Fill], exit_price: int) -> None:
    p, ledger = new_portfolio(), Ledger()
    for f in sequence:
        book(p, ledger, f)
    for inst in sorted(SCALES):
        close_out(p, ledger, inst, exit_price)
        if inst in p.positions:
            pos = p.positions[inst]
            assert pos.quantity == 0
            assert pos.cost == 0, f"{inst}: cost {pos.cost} left on a flat position"
            # Fees are booked to cash only: realized PnL is trading PnL.
            assert pos.realized_pnl == ledger.inst_sold[inst] - ledger.inst_bought[inst]


@given(
    instruments,
    positive_prices,
    st.lists(st.tuples(st.booleans(), quantities), min_size=1, max_size=30),
)
def test_round_trip_at_one_price_realizes_nothing(instrument: str, price: int, trades: list[tuple[bool, int]]) -> None:
    p, ledger = new_portfolio(), Ledger()
    for is_buy, qty in trades:
        assert book(p, ledger, Fill(instrument, is_buy, qty, price)) == 0
    close_out(p, ledger, instrument, price)
    pos = p.positions[instrument]
    assert (pos.quantity, pos.cost, pos.realized_pnl) == (0, 0, 0)
    assert p.cash[QUOTES[instrument]].balance == INITIAL[QUOTES[instrument]]


@given(
    instruments,
    st.booleans(),
    positive_prices,
    positive_prices,
    st.lists(quantities, min_size=1, max_size=20),
    st.data(),
)
def test_single_entry_price_realizes_exactly(
    instrument: str, long: bool, entry: int, exit_: int, lots: list[int], data: st.DataObject
) -> None:
    p, ledger = new_portfolio(), Ledger()
    total = sum(lots)
    for qty in lots:  # open in pieces, all at the entry price
        book(p, ledger, Fill(instrument, long, qty, entry))
    realized = 0
    left = total
    while left:  # close in random pieces at the exit price
        piece = data.draw(st.integers(1, left), label="close")
        realized += book(p, ledger, Fill(instrument, not long, piece, exit_))
        left -= piece
    sign = 1 if long else -1
    assert realized == sign * (exit_ - entry) * total * SCALES[instrument]
    assert p.positions[instrument].cost == 0


@given(st.lists(fills(prices=positive_prices, instrument=st.just("BBB-USD")), min_size=1, max_size=60))
def test_cost_basis_stays_within_the_fill_prices(sequence: list[Fill]) -> None:
    p, ledger = new_portfolio(), Ledger()
    scale = SCALES["BBB-USD"]
    low = min(f.price for f in sequence)
    high = max(f.price for f in sequence)
    for f in sequence:
        book(p, ledger, f)
        pos = p.positions["BBB-USD"]
        q = pos.quantity
        if q == 0:
            assert pos.cost == 0
        else:
            # Long: positive cost; short: negative (proceeds owed back). Magnitude per unit is a
            # blend of the prices that opened it, so within [low, high] exactly (integers).
            assert (pos.cost > 0) == (q > 0)
            assert low * abs(q) * scale <= abs(pos.cost) <= high * abs(q) * scale, (pos.cost, q, low, high)


def test_flip_long_to_short_splits_close_and_open() -> None:
    """A worked example of the netting rule: sell 5 against long 3 closes 3, opens 2 short."""
    p, ledger = new_portfolio(), Ledger()
    book(p, ledger, Fill("AAA-USD", True, 3, 100))
    realized = book(p, ledger, Fill("AAA-USD", False, 5, 110))
    pos = p.positions["AAA-USD"]
    assert realized == (110 - 100) * 3
    assert (pos.quantity, pos.cost, pos.realized_pnl) == (-2, -220, 30)
    realized = book(p, ledger, Fill("AAA-USD", True, 2, 105))
    assert realized == 220 - 210  # short opened at 110, bought back at 105
    assert (pos.quantity, pos.cost, pos.realized_pnl) == (0, 0, 40)
