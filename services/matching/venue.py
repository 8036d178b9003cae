"""`SimulatedVenue`: the one matching model tradebus trades against when it is not trading live.

Pure like the core: no I/O, no clock, no randomness, no logging. Time is what the caller says it
is; the same calls in the same order give the same reports, byte for byte. docs/matching.md holds
the same rules with worked examples.

Theory of operation
-------------------
Commands (`submit`, `cancel`, `replace`) are sent at `now_ns` and *arrive* at
`now_ns + latency_ns`. Arrivals and expiries wait in two heaps and are delivered in time order by
`advance(now_ns)`, which every call runs first: a market-data call first delivers what is due by
its time, then matches the event. Each report carries the event time at which it happened (an
arrival, a market event, an expiry), so reports come back in time order.

* Arrival. The order is checked (validation.py) and refused with an `OrderRejectedReport`, or
  accepted with an `OrderAcceptedReport` stamped with the arrival time. An accepted order is
  matched at once only against what stands at the venue at that instant: the instrument's
  current quote (a market order fills at the opposite quote, a crossing limit takes it), or, with
  `fill_market_on="close"`, a market order fills at the close of the bar that closed exactly at
  its arrival (Backtrader's cheat-on-close). Otherwise it waits for the next market event. A
  GTD order whose expiry passed while it was in flight is expired on arrival, not accepted.
* Eligibility. An order is matched only against events at or after its arrival; for a bar,
  against bars that *open* at or after it (open = close time - `interval_ns`). So by default a
  market order sent at a bar's close fills at the next bar's open, as in Backtrader. A bar is
  one event at its close time: a command arriving inside it (a cancel, a replace) takes effect
  before the bar is matched.
* Intrabar path. Orders are evaluated in arrival order against the whole bar, open first; no
  path between high and low is assumed (the rules are in prices.py). Among OCO members and
  bracket siblings the first in arrival order to execute wins and cancels the others, before
  they are looked at (Backtrader's rule).
* Volume. With `volume_share`, all fills of one instrument on one bar or trade total at most
  floor(volume x share), in lots; on a quote, floor(size x share) per side. What does not fit
  stays working (partial fill) and carries to the next events. A quote side of size 0 is empty:
  nothing fills against it. Without `volume_share` bars and trades do not limit size (Backtrader
  fills whatever the volume) and neither does the quote's size. A venue configured without
  partial fills (`VenueSpec.partial_fills=False`) fills an order whole or not at all per event.
* Time in force. IOC fills what its first eligible event allows and cancels the rest
  ("ioc remainder"); FOK fills all on that event or is cancelled ("fok not fillable"). For a
  stop or stop-limit the first eligible event is the one that triggers it. DAY orders expire at
  the first UTC midnight + `day_end_offset_ns` after arrival; GTD at `expire_time_ns`. An order
  is live through its expiry instant (it may match an event stamped exactly then, and a bar
  closing then) and is expired by the first call after it; the `OrderExpiredReport` carries the
  expiry time.
* Fees. fee = |price x quantity x notional_scale| x (maker_fee or taker_fee), in quote-currency
  units, rounded half up, exact integers (costs.py); `fixed_fee` (display units, converted half
  up once) is added to an order's first fill. Taker: market and stop fills, a limit crossing the
  standing quote on arrival, a stop-limit filling on its trigger at a price other than its
  limit. Maker: a limit filled at its own price, and a resting limit filled at a bar's open
  because the bar gapped through it (it rested; the market came to it).
* Slippage (`fixed_bps`): market and stop fills move against the trader by `slippage_bps`,
  rounded to the tick against the trader, and never outside the bar's [low, high] (the close
  fill: its bar's). Limit and stop-limit fills never slip. The `spread` model: against quotes
  the opposite side is the cost, so no extra slippage; bars and trades carry no spread and fall
  back to `fixed_bps`.
* Latency races. A cancel that arrives after the order finished gets a `CancelRejectedReport`
  ("already filled", "already cancelled", ...); one for an order the venue never saw, "unknown
  order". A replace changes the total quantity (never to or below the filled quantity) and/or
  the limit price, and answers `OrderReplacedReport`, else `ReplaceRejectedReport`. A replaced
  order keeps its arrival rank but is matched only against events (bars: opening) at or after
  the replace arrived, and is matched at once against the standing quote like a new order. A
  replace for an order the venue already filled is rejected ("already filled"); one for an order
  it already cancelled, expired or rejected gets no answer: that terminal report settled it.
* Linked orders. A child (`parent_client_order_id`) is accepted but inactive until its parent
  has fully filled, then works from the next market event of its instrument (Backtrader
  activates bracket children at the start of the next bar). The first fill of a child (even a
  partial one) cancels its siblings ("oco"); the first fill of an `oco_group` member cancels the
  group's other members ("oco"). Cancelling one member cancels nothing else (Backtrader's OCO
  would). A parent that ends cancelled, rejected or expired with nothing filled takes its
  children with it ("parent cancelled"); one that ends partly filled shrinks each child to at
  most the filled quantity (`OrderReplacedReport`) and activates them.
* Trusted, not checked: `reduce_only` (the core checks it against the position it books).
* Determinism. Orders live in dicts (insertion = arrival order) and lists; no sets, no hashing
  of anything whose order matters; ids come from counters: f"{venue}-O{n}", f"{venue}-T{n}".

Caller's contract: `now_ns` never goes back, and a runner calls `advance(t)` (or the market-data
call at `t`) before it hands the core anything stamped `t`, so that the core sees every report of
an earlier instant first.

Performance: `on_bar` for an instrument with no working orders is a dict lookup, two compares
and a return (a backtest calls it for every bar); the working path evaluates each order once.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from decimal import Decimal

from schemas.enums import Liquidity, OrderType, TimeInForce
from schemas.market import Bar, Quote, Trade
from schemas.outputs import RequestCancel, RequestReplace, SubmitOrder
from schemas.reports import (
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
)
from services.matching.config import MatchingConfig
from services.matching.costs import FeeSchedule, Slippage, display_to_units
from services.matching.orders import (
    ORDER_TYPES,
    TIMES_IN_FORCE,
    OrderStatus,
    SimOrder,
    VenueReport,
    day_end_ns,
)
from services.matching.prices import bar_execution, quote_execution, trade_execution
from services.matching.validation import refuse_submit, would_take
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.rules import InstrumentRules, compile_rules

__all__ = ["FINISHED_WINDOW", "SimulatedVenue"]

# How many finished orders the venue remembers, to answer a late cancel ("already filled") or a
# child whose parent has finished. A command arrives within `latency_ns` of being sent, so this
# only has to cover the orders that finish in one latency; 100_000 is far beyond that, and bounds
# memory in a long backtest. An order forgotten here answers a late cancel with "unknown order".
FINISHED_WINDOW = 100_000
# Generated ids are f"{venue}-T{n}": the venue name must leave room for the counter within the
# wire's 64-character id limit (schemas.types.MAX_ID_CHARS) for any n below 10**20.
_MAX_VENUE_CHARS = 40
_NEVER = 2**63  # later than any TimeNs

_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_DAY = TimeInForce.DAY
_GTD = TimeInForce.GTD
_MAKER = Liquidity.MAKER
_TAKER = Liquidity.TAKER
_WORKING = OrderStatus.WORKING

Command = SubmitOrder | RequestCancel | RequestReplace


class _Market:
    """One instrument at the venue: its working orders (arrival order) and what stands now."""

    __slots__ = (
        "ask_used",
        "bar_used",
        "bid_used",
        "fixed_fee",
        "last_bar",
        "last_bar_ns",
        "orders",
        "quote",
        "rules",
        "to_activate",
    )

    def __init__(self, rules: InstrumentRules, fixed_fee: int) -> None:
        self.rules = rules
        self.fixed_fee = fixed_fee  # quote-currency units, added to an order's first fill
        self.orders: dict[str, SimOrder] = {}  # working orders (incl. waiting children), arrival order
        self.to_activate: list[SimOrder] = []  # children to activate at the next market event
        self.quote: Quote | None = None
        self.bid_used = 0  # filled against the current quote's bid / ask (volume_share)
        self.ask_used = 0
        self.last_bar: Bar | None = None  # fill_market_on="close" only
        self.last_bar_ns = -1
        self.bar_used = 0


class SimulatedVenue:
    """A simulated venue for the instruments `core_config` lists at `venue`.

    Args:
        venue: the venue id, as in `core_config.venues` (at most 40 characters).
        core_config: the core's configuration: instruments, tick and lot sizes, currencies, the
            venue's capabilities (an order the configured venue cannot take is rejected).
        config: how the venue fills (fees, slippage, latency, volume, market-order timing).

    Raises:
        ValueError: the venue is not configured, or its name is too long for generated ids.
    """

    def __init__(self, venue: str, core_config: CoreConfig, config: MatchingConfig) -> None:
        if venue not in core_config.venues:
            raise ValueError(f"venue {venue!r} is not in the core config (venues: {sorted(core_config.venues)})")
        if len(venue) > _MAX_VENUE_CHARS:
            raise ValueError(f"venue {venue!r} is longer than {_MAX_VENUE_CHARS} characters")
        self.venue = venue
        self.config = config
        self._markets: dict[str, _Market] = {}
        for name, rules in compile_rules(core_config).items():
            if rules.venue == venue:
                decimals = core_config.currencies[rules.quote].decimals
                self._markets[name] = _Market(rules, display_to_units(config.fixed_fee, decimals))
        self._fees = FeeSchedule.of(config.maker_fee, config.taker_fee)
        self._slip = Slippage.of(config.slippage_bps)
        self._slips = self._slip.active
        self._quote_slips = self._slips and config.slippage_model == "fixed_bps"
        self._latency = config.latency_ns
        self._close_mode = config.fill_market_on == "close"
        share = config.volume_share
        self._share: tuple[int, int] | None = None if share is None else Decimal(share).as_integer_ratio()
        self._live: dict[str, SimOrder] = {}
        self._finished: OrderedDict[str, SimOrder] = OrderedDict()
        self._inflight: dict[str, SubmitOrder] = {}  # submitted, not yet arrived
        self._commands: list[tuple[int, int, Command]] = []  # (arrival_ns, sent number, command)
        self._expiry: list[tuple[int, int, str]] = []  # (expire_ns, rank, client_order_id); stale entries skipped
        self._oco_groups: dict[tuple[str, str], list[SimOrder]] = {}  # (strategy, group) -> working members
        self._next_due_ns = _NEVER
        self._sent = 0
        self._order_no = 0
        self._trade_no = 0

    # ------------------------------------------------------------------ public API

    @property
    def open_order_count(self) -> int:
        """Orders working at the venue (waiting bracket children included; commands in flight not)."""
        return len(self._live)

    @property
    def next_due_ns(self) -> int | None:
        """The earliest time at which `advance` has something to do (an arrival or an expiry), or None."""
        return None if self._next_due_ns == _NEVER else self._next_due_ns

    def order_status(self, client_order_id: str) -> tuple[str, int, int] | None:
        """(status, quantity, filled) of an order the venue holds or recently finished, else None.

        Status is one of `OrderStatus`: working, filled, cancelled, expired, rejected.
        """
        order = self._live.get(client_order_id) or self._finished.get(client_order_id)
        return None if order is None else (order.status, order.quantity, order.filled)

    def has_working_orders(self, instrument: str) -> bool:
        """Whether `instrument` has orders working here. A runner may skip its bars and trades
        otherwise, as long as it still calls `advance` (arrivals and expiries are due anyway);
        not its quotes (the standing quote fills arriving orders), and with
        `fill_market_on="close"` not its bars either (an arriving market order fills at the close)."""
        market = self._markets.get(instrument)
        return market is not None and bool(market.orders)

    def submit(self, cmd: SubmitOrder, now_ns: int) -> list[VenueReport]:
        """Send an order; it arrives at `now_ns + latency_ns`.

        Returns:
            Reports of everything due by `now_ns`, including this order's if it arrives now.

        Raises:
            ValueError: the command names another venue or an instrument not traded here, or
                reuses a client_order_id with different content (an identical resend is ignored).
        """
        self._check_command(cmd)
        cid = cmd.client_order_id
        known = self._inflight.get(cid)
        if known is None:
            order = self._live.get(cid) or self._finished.get(cid)
            known = order.cmd if order is not None else None
        if known is not None:
            if known != cmd:
                raise ValueError(f"client_order_id {cid!r} already submitted to venue {self.venue} with other terms")
            return self.advance(now_ns)
        self._inflight[cid] = cmd
        self._enqueue(cmd, now_ns)
        return self.advance(now_ns)

    def cancel(self, cmd: RequestCancel, now_ns: int) -> list[VenueReport]:
        """Send a cancel; it takes effect when it arrives, at `now_ns + latency_ns`.

        Raises:
            ValueError: the command names another venue or an instrument not traded here.
        """
        return self._send(cmd, now_ns)

    def replace(self, cmd: RequestReplace, now_ns: int) -> list[VenueReport]:
        """Send a replace (new total quantity and/or limit price); it takes effect on arrival.

        Raises:
            ValueError: the command names another venue or an instrument not traded here.
        """
        return self._send(cmd, now_ns)

    def advance(self, now_ns: int) -> list[VenueReport]:
        """Deliver the commands that have arrived by `now_ns` and expire DAY/GTD orders whose
        expiry is before `now_ns`, in time order."""
        out: list[VenueReport] = []
        if now_ns >= self._next_due_ns:
            self._run_due(now_ns, out)
        return out

    def on_bar(self, instrument: str, bar: Bar, time_ns: int) -> list[VenueReport]:
        """Match a bar that closed at `time_ns` (it opened at `time_ns - bar.interval_ns`).

        Raises:
            ValueError: `instrument` is not traded at this venue.
        """
        market = self._market_of(instrument)
        if self._close_mode:  # before arrivals: an order arriving now fills at this bar's close
            market.last_bar = bar
            market.last_bar_ns = time_ns
            market.bar_used = 0
        out: list[VenueReport] = []
        if time_ns >= self._next_due_ns:
            self._run_due(time_ns, out)
        if market.orders:
            self._match_bar(market, bar, time_ns, out)
        return out

    def on_trade(self, instrument: str, trade: Trade, time_ns: int) -> list[VenueReport]:
        """Match one public trade print at `time_ns`.

        Raises:
            ValueError: `instrument` is not traded at this venue.
        """
        market = self._market_of(instrument)
        out: list[VenueReport] = []
        if time_ns >= self._next_due_ns:
            self._run_due(time_ns, out)
        if market.orders:
            self._match_trade(market, trade, time_ns, out)
        return out

    def on_quote(self, instrument: str, quote: Quote, time_ns: int) -> list[VenueReport]:
        """Take a new top of book at `time_ns`: it stands until the next quote, and working orders
        are matched against it.

        Raises:
            ValueError: `instrument` is not traded at this venue.
        """
        market = self._market_of(instrument)
        out: list[VenueReport] = []
        if time_ns >= self._next_due_ns:  # arrivals until now still see the quote that stood
            self._run_due(time_ns, out)
        market.quote = quote
        market.bid_used = 0
        market.ask_used = 0
        if market.orders:
            self._match_quote(market, quote, time_ns, out)
        return out

    # ------------------------------------------------------------------ commands and time

    def _send(self, cmd: RequestCancel | RequestReplace, now_ns: int) -> list[VenueReport]:
        """A cancel or replace: checked, then queued to arrive after the latency."""
        self._check_command(cmd)
        self._enqueue(cmd, now_ns)
        return self.advance(now_ns)

    def _market_of(self, instrument: str) -> _Market:
        market = self._markets.get(instrument)
        if market is None:
            raise self._not_here(instrument)
        return market

    def _not_here(self, instrument: str) -> ValueError:
        return ValueError(
            f"instrument {instrument!r} is not traded at venue {self.venue} (known: {sorted(self._markets)})"
        )

    def _check_command(self, cmd: Command) -> None:
        if cmd.venue != self.venue:
            raise ValueError(f"command for venue {cmd.venue!r} sent to venue {self.venue!r}")
        if cmd.instrument not in self._markets:
            raise self._not_here(cmd.instrument)

    def _enqueue(self, cmd: Command, now_ns: int) -> None:
        self._sent += 1
        arrival = now_ns + self._latency
        heapq.heappush(self._commands, (arrival, self._sent, cmd))
        if arrival < self._next_due_ns:
            self._next_due_ns = arrival

    def _run_due(self, now_ns: int, out: list[VenueReport]) -> None:
        """Deliver arrivals (at or before now) and expiries (before now) in time order. A command
        arriving at an order's expiry instant still finds it live."""
        commands = self._commands
        expiry = self._expiry
        while True:
            arrive_at = commands[0][0] if commands else _NEVER
            expire_at = expiry[0][0] if expiry else _NEVER
            if arrive_at <= now_ns and arrive_at <= expire_at:
                _, _, cmd = heapq.heappop(commands)
                if type(cmd) is SubmitOrder:
                    self._arrive(cmd, arrive_at, out)
                elif type(cmd) is RequestCancel:
                    self._cancel_arrives(cmd, arrive_at, out)
                else:
                    assert type(cmd) is RequestReplace
                    self._replace_arrives(cmd, arrive_at, out)
            elif expire_at < now_ns:
                _, rank, cid = heapq.heappop(expiry)
                order = self._live.get(cid)
                if order is not None and order.rank == rank:  # else: finished already (stale entry)
                    out.append(VenueReport(expire_at, order.instrument, OrderExpiredReport(client_order_id=cid)))
                    self._finish(order, OrderStatus.EXPIRED, expire_at, out)
            else:
                break
        arrive_at = commands[0][0] if commands else _NEVER
        expire_due = expiry[0][0] + 1 if expiry else _NEVER
        self._next_due_ns = min(arrive_at, expire_due)

    def _arrive(self, cmd: SubmitOrder, at: int, out: list[VenueReport]) -> None:
        cid = cmd.client_order_id
        del self._inflight[cid]
        market = self._markets[cmd.instrument]
        pid = cmd.parent_client_order_id
        parent = None if pid is None else (self._live.get(pid) or self._finished.get(pid))
        tif = TIMES_IN_FORCE[cmd.time_in_force]
        self._order_no += 1
        expire_ns = cmd.expire_time_ns if tif is _GTD else None
        if tif is _DAY:
            expire_ns = day_end_ns(at, self.config.day_end_offset_ns)
        order = SimOrder(
            cmd=cmd,
            client_order_id=cid,
            instrument=cmd.instrument,
            is_buy=cmd.side == "buy",
            order_type=ORDER_TYPES[cmd.order_type],
            tif=tif,
            quantity=cmd.quantity,
            price=cmd.price,
            stop_price=cmd.stop_price,
            rank=self._order_no,
            arrival_ns=at,
            expire_ns=expire_ns,
            venue_order_id=f"{self.venue}-O{self._order_no}",
        )
        if expire_ns is not None and expire_ns < at:
            # A GTD order that expired in flight: expired, not refused, whatever else is wrong
            # with it (the core may have expired it already, and then a rejection contradicts it).
            order.status = OrderStatus.EXPIRED
            self._remember(order)
            out.append(VenueReport(at, cmd.instrument, OrderExpiredReport(client_order_id=cid)))
            return
        reason = refuse_submit(cmd, market.rules, market.quote, parent)
        if reason is not None:
            order.status = OrderStatus.REJECTED
            self._remember(order)
            out.append(VenueReport(at, cmd.instrument, OrderRejectedReport(client_order_id=cid, reason=reason)))
            return
        out.append(
            VenueReport(
                at, cmd.instrument, OrderAcceptedReport(client_order_id=cid, venue_order_id=order.venue_order_id)
            )
        )
        self._live[cid] = order
        market.orders[cid] = order
        if expire_ns is not None:
            heapq.heappush(self._expiry, (expire_ns, order.rank, cid))
        if cmd.oco_group is not None:
            members = self._oco_groups.setdefault((cmd.strategy_id, cmd.oco_group), [])
            members.append(order)
            order.oco = members
        if parent is not None:
            order.parent = parent
            if parent.children is None:
                parent.children = []
            parent.children.append(order)
            order.active = False
            if parent.status != _WORKING:  # finished filled, or partly filled (refused otherwise)
                self._release_child(market, parent, order, at, out)
            return
        self._match_on_arrival(market, order, at, out)

    def _cancel_arrives(self, cmd: RequestCancel, at: int, out: list[VenueReport]) -> None:
        cid = cmd.client_order_id
        order = self._live.get(cid)
        if order is not None:
            self._cancel(order, cmd.reason or "cancelled on request", at, out)
            return
        finished = self._finished.get(cid)
        reason = "unknown order" if finished is None else f"already {finished.status}"
        out.append(VenueReport(at, cmd.instrument, CancelRejectedReport(client_order_id=cid, reason=reason)))

    def _replace_refusal(self, market: _Market, order: SimOrder, cmd: RequestReplace) -> str | None:
        quantity = cmd.quantity
        price = order.price if cmd.price is None else cmd.price
        if quantity <= order.filled:
            return f"quantity {quantity} <= filled {order.filled}"
        if cmd.price is not None and order.price is None:
            return f"price {cmd.price}: a {order.order_type} order has no limit price"
        if cmd.price is not None and cmd.price % market.rules.tick_size:
            return f"price {cmd.price} is not a multiple of tick_size {market.rules.tick_size}"
        if quantity % market.rules.lot_size:
            return f"quantity {quantity} is not a multiple of lot_size {market.rules.lot_size}"
        if quantity == order.quantity and price == order.price:
            return f"nothing to change: quantity {quantity} and price {price} already"
        if order.cmd.post_only and price is not None and would_take(market.quote, order.is_buy, price):
            return f"post_only limit {price} would take liquidity"
        return None

    def _replace_arrives(self, cmd: RequestReplace, at: int, out: list[VenueReport]) -> None:
        cid = cmd.client_order_id
        order = self._live.get(cid)
        if order is None:
            finished = self._finished.get(cid)
            if finished is None or finished.status == OrderStatus.FILLED:
                why = "unknown order" if finished is None else "already filled"
                out.append(VenueReport(at, cmd.instrument, ReplaceRejectedReport(client_order_id=cid, reason=why)))
            # Cancelled, expired or rejected: that terminal report already answered it, and the
            # core's order table has no replace-reject after those states.
            return
        market = self._markets[order.instrument]
        reason = self._replace_refusal(market, order, cmd)
        if reason is not None:
            out.append(VenueReport(at, order.instrument, ReplaceRejectedReport(client_order_id=cid, reason=reason)))
            return
        order.quantity = cmd.quantity
        if cmd.price is not None:
            order.price = cmd.price
        order.arrival_ns = at  # new terms see only what comes after them
        out.append(
            VenueReport(
                at,
                order.instrument,
                OrderReplacedReport(client_order_id=cid, quantity=order.quantity, price=order.price),
            )
        )
        if order.active:
            self._match_on_arrival(market, order, at, out)

    # ------------------------------------------------------------------ order endings and links

    def _remember(self, order: SimOrder) -> None:
        finished = self._finished
        finished[order.client_order_id] = order
        if len(finished) > FINISHED_WINDOW:
            finished.popitem(last=False)

    def _cancel(self, order: SimOrder, reason: str, at: int, out: list[VenueReport]) -> None:
        out.append(
            VenueReport(
                at, order.instrument, OrderCancelledReport(client_order_id=order.client_order_id, reason=reason)
            )
        )
        self._finish(order, OrderStatus.CANCELLED, at, out)

    def _finish(self, order: SimOrder, status: str, at: int, out: list[VenueReport]) -> None:
        """Take a working order off the venue (its terminal report is already out), then settle
        the children waiting on it."""
        cid = order.client_order_id
        order.status = status
        del self._live[cid]
        market = self._markets[order.instrument]
        del market.orders[cid]
        self._remember(order)
        members = order.oco
        if members is not None:
            members.remove(order)
            if not members:
                cmd = order.cmd
                assert cmd.oco_group is not None
                del self._oco_groups[(cmd.strategy_id, cmd.oco_group)]
        children = order.children
        if children:
            for child in list(children):
                if child.status == _WORKING and not child.active:
                    self._release_child(market, order, child, at, out)

    def _release_child(
        self, market: _Market, parent: SimOrder, child: SimOrder, at: int, out: list[VenueReport]
    ) -> None:
        """The parent has finished: the waiting child works from the next event, shrunk to what the
        parent filled, or is cancelled when the parent filled nothing."""
        if parent.filled == 0:
            self._cancel(child, "parent cancelled", at, out)
            return
        if child.quantity > parent.filled:
            child.quantity = parent.filled
            out.append(
                VenueReport(
                    at,
                    child.instrument,
                    OrderReplacedReport(
                        client_order_id=child.client_order_id, quantity=child.quantity, price=child.price
                    ),
                )
            )
        market.to_activate.append(child)

    def _cancel_linked(self, order: SimOrder, at: int, out: list[VenueReport]) -> None:
        """`order` has just filled: its bracket siblings and OCO partners are cancelled."""
        parent = order.parent
        if parent is not None and parent.children:
            for sibling in list(parent.children):
                if sibling is not order and sibling.status == _WORKING:
                    self._cancel(sibling, "oco", at, out)
        if order.oco is not None:
            for member in list(order.oco):
                if member is not order and member.status == _WORKING:
                    self._cancel(member, "oco", at, out)

    # ------------------------------------------------------------------ filling

    def _fill(
        self, market: _Market, order: SimOrder, quantity: int, price: int, taker: bool, at: int, out: list[VenueReport]
    ) -> None:
        fee = self._fees.fee(price * quantity * market.rules.notional_scale, taker)
        if order.filled == 0:
            fee += market.fixed_fee
        order.filled += quantity
        self._trade_no += 1
        report = FillReport(
            client_order_id=order.client_order_id,
            trade_id=f"{self.venue}-T{self._trade_no}",
            quantity=quantity,
            price=price,
            fee=fee,
            liquidity=_TAKER if taker else _MAKER,
            venue_order_id=order.venue_order_id,
        )
        out.append(VenueReport(at, order.instrument, report))
        if order.parent is not None or order.oco is not None:
            self._cancel_linked(order, at, out)
        if order.filled == order.quantity:
            self._finish(order, OrderStatus.FILLED, at, out)

    def _size(self, market: _Market, order: SimOrder, left: int | None) -> int:
        """How much of `order` this event can fill, given what is `left` of its volume (None: no
        limit): whole lots, and all or nothing for FOK or a venue without partial fills."""
        remaining = order.quantity - order.filled
        if left is None or left >= remaining:
            return remaining
        if order.tif is _FOK or not market.rules.partial_fills:
            return 0
        lot = market.rules.lot_size
        return left - left % lot

    def _end_of_first_event(self, order: SimOrder, at: int, out: list[VenueReport]) -> None:
        """IOC and FOK live for one eligible event (for stops: the one that triggered them)."""
        if order.status == _WORKING and (order.order_type is _MARKET or order.order_type is _LIMIT or order.triggered):
            self._cancel(order, "ioc remainder" if order.tif is _IOC else "fok not fillable", at, out)

    def _cap(self, volume: int) -> int | None:
        """Most one bar or trade of `volume` may fill (None: no limit)."""
        share = self._share
        return None if share is None else volume * share[0] // share[1]

    def _quote_cap(self, size: int) -> int | None:
        """Most one side of a quote of `size` may fill; an empty side fills nothing."""
        if size == 0:
            return 0
        share = self._share
        return None if share is None else size * share[0] // share[1]

    def _match_on_arrival(self, market: _Market, order: SimOrder, at: int, out: list[VenueReport]) -> None:
        """Match an arriving (or replaced) order against what stands at the venue right now."""
        bar = market.last_bar
        if order.order_type is _MARKET and bar is not None and market.last_bar_ns == at:
            # fill_market_on="close": the close of the bar that closed as the order arrived
            cap = self._cap(bar.volume)
            price = bar.close
            if self._slips:
                price = self._slip.apply(price, order.is_buy, market.rules.tick_size)
                price = min(price, bar.high) if order.is_buy else max(price, bar.low)
            size = self._size(market, order, None if cap is None else cap - market.bar_used)
            if size:
                market.bar_used += size
                self._fill(market, order, size, price, True, at, out)
        else:
            quote = market.quote
            if quote is None:
                return  # no book: wait for the next market event
            execution = quote_execution(order, quote.bid_price, quote.ask_price, True, self._quote_slips)
            if execution is not None:
                price, taker, slippable = execution
                if order.is_buy:
                    cap = self._quote_cap(quote.ask_size)
                    used = market.ask_used
                else:
                    cap = self._quote_cap(quote.bid_size)
                    used = market.bid_used
                if slippable:
                    price = self._slip.apply(price, order.is_buy, market.rules.tick_size)
                size = self._size(market, order, None if cap is None else cap - used)
                if size:
                    if order.is_buy:
                        market.ask_used += size
                    else:
                        market.bid_used += size
                    self._fill(market, order, size, price, taker, at, out)
        if order.tif is _IOC or order.tif is _FOK:
            self._end_of_first_event(order, at, out)

    def _activate(self, market: _Market) -> None:
        for child in market.to_activate:
            child.active = True
        market.to_activate.clear()

    def _match_bar(self, market: _Market, bar: Bar, at: int, out: list[VenueReport]) -> None:
        if market.to_activate:
            self._activate(market)
        opened = at - bar.interval_ns
        o, h, low, c = bar.open, bar.high, bar.low, bar.close
        cap = self._cap(bar.volume)
        close_mode = self._close_mode
        # In close mode, market orders that arrived at this bar's close already took from its volume.
        left = cap if cap is None or not close_mode else cap - market.bar_used
        slips = self._slips
        for order in list(market.orders.values()):
            if order.status != _WORKING or not order.active or order.arrival_ns > opened:
                continue
            execution = bar_execution(order, o, h, low, c)
            if execution is not None:
                price, taker, slippable = execution
                if slippable and slips:
                    price = self._slip.apply(price, order.is_buy, market.rules.tick_size)
                    price = min(price, h) if order.is_buy else max(price, low)
                size = self._size(market, order, left)
                if size:
                    if left is not None:
                        left -= size
                    self._fill(market, order, size, price, taker, at, out)
            if order.tif is _IOC or order.tif is _FOK:
                self._end_of_first_event(order, at, out)
        if close_mode and cap is not None and left is not None:
            market.bar_used = cap - left

    def _match_trade(self, market: _Market, trade: Trade, at: int, out: list[VenueReport]) -> None:
        if market.to_activate:
            self._activate(market)
        left = self._cap(trade.quantity)
        slips = self._slips
        for order in list(market.orders.values()):
            if order.status != _WORKING or not order.active or order.arrival_ns > at:
                continue
            execution = trade_execution(order, trade.price)
            if execution is not None:
                price, taker, slippable = execution
                if slippable and slips:
                    price = self._slip.apply(price, order.is_buy, market.rules.tick_size)
                size = self._size(market, order, left)
                if size:
                    if left is not None:
                        left -= size
                    self._fill(market, order, size, price, taker, at, out)
            if order.tif is _IOC or order.tif is _FOK:
                self._end_of_first_event(order, at, out)

    def _match_quote(self, market: _Market, quote: Quote, at: int, out: list[VenueReport]) -> None:
        if market.to_activate:
            self._activate(market)
        bid_cap = self._quote_cap(quote.bid_size)
        ask_cap = self._quote_cap(quote.ask_size)
        bid, ask = quote.bid_price, quote.ask_price
        slips = self._quote_slips
        for order in list(market.orders.values()):
            if order.status != _WORKING or not order.active or order.arrival_ns > at:
                continue
            execution = quote_execution(order, bid, ask, False, slips)
            if execution is not None:
                price, taker, slippable = execution
                if slippable:
                    price = self._slip.apply(price, order.is_buy, market.rules.tick_size)
                if order.is_buy:
                    size = self._size(market, order, None if ask_cap is None else ask_cap - market.ask_used)
                    market.ask_used += size
                else:
                    size = self._size(market, order, None if bid_cap is None else bid_cap - market.bid_used)
                    market.bid_used += size
                if size:
                    self._fill(market, order, size, price, taker, at, out)
            if order.tif is _IOC or order.tif is _FOK:
                self._end_of_first_event(order, at, out)
