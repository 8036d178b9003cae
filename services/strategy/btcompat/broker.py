"""The broker as a Backtrader strategy sees it: cash, value, positions, and sizers.

Nothing here holds money: `getcash()` and `getvalue()` read the core's book through the strategy
context (`ctx.cash()`, `ctx.equity()`). `Position` keeps Backtrader's average-price bookkeeping for
`self.position.price`; its size is the core's position after each fill (exact), so a closed
position reads exactly 0. Positions are per instrument: two feeds of one instrument (two
timeframes) share one.

Configuring the broker (cash, commission, slippage, cheat-on-close) is the backtest's business
(`BacktestConfig`); the setters refuse with a message saying where it goes.
"""

from __future__ import annotations

from typing import Any, NoReturn

from services.strategy.btcompat.indicators import Params

__all__ = ["AllInSizer", "Broker", "FixedSize", "PercentSizer", "Position", "Sizer"]


class Position:
    """A position: `size` (signed) and `price` (average entry), Backtrader's `Position`."""

    __slots__ = ("adjbase", "price", "price_orig", "size", "upclosed", "upopened")

    def __init__(self, size: float = 0.0, price: float = 0.0) -> None:
        self.size = size
        self.price = price
        self.price_orig = price
        self.adjbase: float | None = None
        self.upopened = 0.0
        self.upclosed = 0.0

    def update(self, size: float, price: float, new_size: float) -> tuple[float, float]:
        """Apply a fill of signed `size` at `price`, after which the position is `new_size`
        (the core's exact figure); returns (opened, closed) as Backtrader's `Position.update`."""
        old = self.size
        self.price_orig = self.price
        self.size = new_size
        if not new_size:
            opened, closed = 0.0, size
            self.price = 0.0
        elif not old:
            opened, closed = size, 0.0
            self.price = price
        elif old > 0:
            if size > 0:
                opened, closed = size, 0.0
                self.price = (self.price * old + size * price) / new_size
            elif new_size > 0:
                opened, closed = 0.0, size
            else:  # long to short
                opened, closed = new_size, -old
                self.price = price
        elif size < 0:
            opened, closed = size, 0.0
            self.price = (self.price * old + size * price) / new_size
        elif new_size < 0:
            opened, closed = 0.0, size
        else:  # short to long
            opened, closed = new_size, -old
            self.price = price
        self.upopened = opened
        self.upclosed = closed
        return opened, closed

    def clone(self) -> Position:
        return Position(self.size, self.price)

    def __bool__(self) -> bool:
        return self.size != 0

    def __repr__(self) -> str:
        return f"Position(size={self.size}, price={self.price})"


def _configure_elsewhere(what: str) -> NoReturn:
    raise NotImplementedError(f"broker.{what}: configure the backtest instead (BacktestConfig: cash, matching fees)")


class Broker:
    """`self.broker` of a Backtrader-style strategy: a read-only view of the account."""

    def __init__(self, strategy: Any) -> None:
        self._strategy = strategy

    def getcash(self) -> float:
        """Cash in the account currency."""
        return float(self._strategy._bt_ctx.cash())

    get_cash = getcash

    @property
    def cash(self) -> float:
        return self.getcash()

    def getvalue(self, datas: Any = None) -> float:
        """Cash plus positions at their last prices; with `datas`, only those feeds' positions."""
        if datas is None:
            return float(self._strategy._bt_ctx.equity())
        total = 0.0
        for data in datas:
            pos = self._strategy.getposition(data)
            if pos.size:
                total += pos.size * data.close[0]
        return total

    get_value = getvalue

    def getposition(self, data: Any) -> Position:
        return self._strategy.getposition(data)  # type: ignore[no-any-return]

    def setcash(self, cash: float) -> NoReturn:
        _configure_elsewhere("setcash")

    set_cash = setcash

    def setcommission(self, *args: Any, **kwargs: Any) -> NoReturn:
        _configure_elsewhere("setcommission")

    def set_coc(self, *args: Any, **kwargs: Any) -> NoReturn:
        _configure_elsewhere("set_coc (MatchingConfig(fill_market_on='close'))")


class Sizer:
    """Backtrader's sizer base: subclasses implement `_getsizing(comminfo, cash, data, isbuy)`."""

    params: Any = ()

    def __init__(self, **kwargs: Any) -> None:
        defaults = dict(_pairs(type(self).params))
        unknown = sorted(set(kwargs) - set(defaults))
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
        defaults.update(kwargs)
        self.p = self.params = Params(defaults)
        self.strategy: Any = None
        self.broker: Any = None

    def set(self, strategy: Any, broker: Any) -> None:
        self.strategy = strategy
        self.broker = broker

    def getsizing(self, data: Any, isbuy: bool) -> float:
        return self._getsizing(None, self.broker.getcash(), data, isbuy)

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        raise NotImplementedError


class FixedSize(Sizer):
    """A fixed `stake` per order (Backtrader's default sizer, stake 1)."""

    params = (("stake", 1), ("tranches", 1))

    def setsizing(self, stake: float) -> None:
        self.p.stake = stake

    def getsizing(self, data: Any, isbuy: bool) -> float:
        # No cash lookup: a fixed stake does not depend on it.
        return float(self.p.stake / self.p.tranches)

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        return float(self.p.stake / self.p.tranches)


class PercentSizer(Sizer):
    """`percents` of the cash at the current close; an open position is sized as a whole."""

    params = (("percents", 20), ("retint", False))

    def _getsizing(self, comminfo: Any, cash: float, data: Any, isbuy: bool) -> float:
        position = self.broker.getposition(data)
        size = position.size if position else cash / data.close[0] * (self.p.percents / 100)
        return int(size) if self.p.retint else float(size)


class AllInSizer(PercentSizer):
    params = (("percents", 100), ("retint", False))


def _pairs(params: Any) -> list[tuple[str, Any]]:
    return list(params.items()) if isinstance(params, dict) else [tuple(p) for p in params]
