"""Where an order executes against one market event: the price rules, one function per kind.

Each function looks at one order and one event and answers `None` (no execution on this event)
or `(price, taker, slippable)`: the execution price before slippage, whether the fill takes
liquidity, and whether slippage applies to it (market and stop fills; never limit fills). Size,
fees, slippage and time in force are the venue's business, not these rules'.

The only state a rule changes is `order.triggered`: a stop or stop-limit whose trigger the event
touched stays triggered (a triggered stop then behaves as a market order, a triggered stop-limit
as a resting limit), like Backtrader's `StopLimit.triggered`.

Bars (Backtrader's `bbroker._try_exec_*` rules, with no intrabar path assumed)
-----------------------------------------------------------------------------
* market: the open (taker).
* limit buy: open <= limit -> the open (the bar gapped through it: maker, it was resting);
  elif low <= limit -> the limit (maker). Sell mirrored with high.
* stop buy: open >= stop -> the open; elif high >= stop -> the stop (taker, slippable).
* stop-limit buy: open >= stop -> triggered, then the limit rule on the same bar (open fill:
  taker, it crossed on the trigger; limit fill: maker). Elif high >= stop -> triggered, and on
  a falling bar (open > close) limit >= stop fills at the stop, else limit >= close fills at the
  limit; on a rising bar only limit >= stop fills (at the stop). Otherwise it stays triggered
  and works as a limit from the next bar. Sells mirrored. Stop-limit fills are limit fills: no
  slippage (Backtrader slips them; we keep a limit a limit).

Trades (one print at `price`)
-----------------------------
* market: the print (taker, slippable). Stop: triggers on a print at or through it and fills at
  that print (taker, slippable). Limit: a print at or through the limit fills it at the limit
  (maker). Stop-limit: a print at or through the stop triggers it; if that print is within the
  limit it fills there (taker), else it rests as a limit.

Quotes (top of book; buys look at the ask, sells at the bid)
------------------------------------------------------------
* market: the opposite quote (taker). Stop buy: triggers when the ask reaches the stop, fills at
  the ask (taker). Limit buy: if the ask is at or below the limit, an order arriving now fills at
  the ask (taker: it crossed), a resting one at its limit (maker: the market came to it).
  Stop-limit: triggers like a stop, then fills at the ask if within the limit (taker), else rests.
"""

from __future__ import annotations

from schemas.enums import OrderType
from services.matching.orders import SimOrder

__all__ = ["Execution", "bar_execution", "quote_execution", "trade_execution"]

Execution = tuple[int, bool, bool]
"""(price before slippage, taker, slippable)"""

_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT


def _bar_limit(is_buy: bool, limit: int, o: int, h: int, low: int, open_taker: bool) -> Execution | None:
    """Backtrader's `_try_exec_limit`: the open when it is through the limit, else the limit if touched."""
    if is_buy:
        if limit >= o:
            return o, open_taker, False
        if limit >= low:
            return limit, False, False
        return None
    if limit <= o:
        return o, open_taker, False
    if limit <= h:
        return limit, False, False
    return None


def bar_execution(order: SimOrder, o: int, h: int, low: int, c: int) -> Execution | None:
    """Execution of `order` against a bar (open, high, low, close); see the module docstring."""
    otype = order.order_type
    is_buy = order.is_buy
    if otype is _MARKET:
        return o, True, True
    if otype is _LIMIT:
        assert order.price is not None
        return _bar_limit(is_buy, order.price, o, h, low, False)
    stop = order.stop_price
    assert stop is not None
    if otype is _STOP:
        if order.triggered:  # triggered on an earlier event, not (wholly) filled: a market order now
            return o, True, True
        if is_buy:
            if o >= stop:
                order.triggered = True
                return o, True, True
            if h >= stop:
                order.triggered = True
                return stop, True, True
            return None
        if o <= stop:
            order.triggered = True
            return o, True, True
        if low <= stop:
            order.triggered = True
            return stop, True, True
        return None
    # stop-limit
    limit = order.price
    assert limit is not None
    if order.triggered:
        return _bar_limit(is_buy, limit, o, h, low, False)
    if is_buy:
        if o >= stop:  # gapped through the trigger: a limit from the open
            order.triggered = True
            return _bar_limit(True, limit, o, h, low, True)
        if h < stop:
            return None
        order.triggered = True
        if o > c:  # falling bar: the high (trigger) came early, the close is the last price seen
            if limit >= stop:
                return stop, True, False
            if limit >= c:
                return limit, False, False
            return None
        if limit >= stop:
            return stop, True, False
        return None
    if o <= stop:
        order.triggered = True
        return _bar_limit(False, limit, o, h, low, True)
    if low > stop:
        return None
    order.triggered = True
    if o <= c:  # rising bar: the low (trigger) came early
        if limit <= stop:
            return stop, True, False
        if limit <= c:
            return limit, False, False
        return None
    if limit <= stop:
        return stop, True, False
    return None


def trade_execution(order: SimOrder, price: int) -> Execution | None:
    """Execution of `order` against one trade print at `price`; see the module docstring."""
    otype = order.order_type
    is_buy = order.is_buy
    if otype is _MARKET:
        return price, True, True
    if otype is _LIMIT:
        limit = order.price
        assert limit is not None
        if (price <= limit) if is_buy else (price >= limit):
            return limit, False, False
        return None
    stop = order.stop_price
    assert stop is not None
    if otype is _STOP:
        if order.triggered or ((price >= stop) if is_buy else (price <= stop)):
            order.triggered = True
            return price, True, True
        return None
    limit = order.price
    assert limit is not None
    if order.triggered:  # resting as a limit since an earlier trigger
        if (price <= limit) if is_buy else (price >= limit):
            return limit, False, False
        return None
    if not ((price >= stop) if is_buy else (price <= stop)):
        return None
    order.triggered = True
    if (price <= limit) if is_buy else (price >= limit):
        return price, True, False
    return None


def quote_execution(order: SimOrder, bid: int, ask: int, arriving: bool, slippable: bool) -> Execution | None:
    """Execution of `order` against the top of book; see the module docstring.

    Args:
        arriving: the order (or its replace) is arriving now against a standing quote: a limit
            that crosses takes liquidity at the quote instead of resting.
        slippable: whether market and stop fills slip (the fixed_bps model); the caller has
            already checked that the side the order would trade against is not empty.
    """
    otype = order.order_type
    is_buy = order.is_buy
    opposite = ask if is_buy else bid
    if otype is _MARKET:
        return opposite, True, slippable
    if otype is _LIMIT:
        limit = order.price
        assert limit is not None
        if (opposite <= limit) if is_buy else (opposite >= limit):
            return (opposite, True, False) if arriving else (limit, False, False)
        return None
    stop = order.stop_price
    assert stop is not None
    if otype is _STOP:
        if order.triggered or ((opposite >= stop) if is_buy else (opposite <= stop)):
            order.triggered = True
            return opposite, True, slippable
        return None
    limit = order.price
    assert limit is not None
    crosses = (opposite <= limit) if is_buy else (opposite >= limit)
    if order.triggered:
        if crosses:
            return (opposite, True, False) if arriving else (limit, False, False)
        return None
    if not ((opposite >= stop) if is_buy else (opposite <= stop)):
        return None
    order.triggered = True
    if crosses:
        return opposite, True, False
    return None
