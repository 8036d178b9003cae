"""The in-process backtest: data, the core, the simulated venue and one strategy, no sockets.

Theory of operation
-------------------
Market events are merged by the backtest ordering key (event time, then source priority, venue,
instrument, producer, counter). For each one, in this order:

1. the simulated venue sees it first and may fill, trigger or expire working orders; each report
   it returns becomes an inbound envelope (source broker_report) that is sequenced, journaled and
   applied before the market event itself (a fill at bar t+1's open comes before bar t+1 closes);
2. the market event is sequenced, journaled and applied;
3. the strategy hears about it (and, before it, about the fills of step 1), and may answer with
   intents, which are sequenced, journaled and applied like any input; the order commands the core
   emits go to the venue, whose reports go back through the core, and so on until nothing moves;
4. when the next event has a later time, the time slice closes: strategies that asked for it get
   `TimeSliceClosed`, and the equity curve gets a point.

Everything the core applies is journaled, in order, so `tradebus replay` on the run's journal
reproduces the final state hash; the venue's decisions are inputs (reports), not recomputed.
The journal is written in group commits of `journal_batch` records with fsync off: a backtest is
re-run from its inputs, not recovered, so a crash loses nothing that matters.
"""

from __future__ import annotations

import gc
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.intents import CancelOrder, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.lockstep import StrategyCall, StrategyHook
from schemas.market import Bar, Trade
from schemas.outputs import (
    FillBooked,
    IntentRejected,
    InvariantBroken,
    OrderTransitioned,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    SubmitOrder,
)
from services.backtest.config import BacktestConfig, core_config_for
from services.backtest.errors import BacktestError
from services.backtest.records import EquityCurve, FillRecord, TradeBuilder, TradeRecord
from services.backtest.result import BacktestResult, build_result
from services.backtest.state_view import BookView
from services.backtest.wire_limits import WireLimitError, check_wire_limits
from services.data.merge import producer_ids
from services.data.series import BarSeries, TradeSeries
from services.matching.orders import VenueReport
from services.matching.venue import SimulatedVenue
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.engine import SequencerCore
from services.sequencer.journal.writer import FsyncPolicy, JournalWriter
from services.strategy.api import Strategy
from services.strategy.context import StrategyContext
from services.strategy.event_builders import intent_refused, market_event, order_filled, order_updated
from services.strategy.events import (
    BarClosed,
    TimeSliceClosed,
)

__all__ = ["BacktestError", "Drive", "run_backtest"]

Series = BarSeries | TradeSeries

# A strategy and a venue answering each other forever (e.g. re-placing a refused order on every
# refusal) would hang the run; a real exchange of intents and reports settles in a few rounds.
MAX_SETTLE_ROUNDS = 10_000
_GC_THRESHOLDS = (200_000, 50, 1_000)  # gen0 allocations, gen1 and gen2 collection ratios
_PROGRESS_EVERY = 8192  # market events between progress-bar updates (tqdm costs ~1 us a call)

_MARKET = Source.MARKET_DATA
_REPORT = Source.BROKER_REPORT
_STRATEGY = Source.STRATEGY
_INTENTS = (PlaceOrder, CancelOrder, ReplaceOrder, SetRiskFlag, NoOp)


def run_backtest(
    strategy: Strategy | type[Strategy] | Any,
    data: Series | Sequence[Series],
    config: BacktestConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    progress: bool = False,
    params: dict[str, Any] | None = None,
) -> BacktestResult:
    """Run `strategy` over `data` in one process and return orders, fills, trades, equity, statistics.

    Args:
        strategy: a native `Strategy` (instance or class), or a Backtrader-style strategy class
            (`services.strategy.btcompat.Strategy` subclass), which is wrapped.
        data: bar and/or trade series (see `services.data`), any number of instruments.
        config: cash, costs, fill rules; defaults to `BacktestConfig()`.
        run_dir: where the journal goes (`journal.tbj`); None keeps everything in memory.
        progress: show a progress bar on stderr.
        params: strategy parameters (when `strategy` is a class).

    Raises:
        BacktestError: the strategy raised, looped, or the data is unusable.
    """
    config = config or BacktestConfig()
    series = [data] if isinstance(data, BarSeries | TradeSeries) else list(data)
    if not series:
        raise BacktestError("data: no series given")
    instance = _instantiate(strategy, params)
    run = _Run(instance, series, config, Path(run_dir) if run_dir is not None else None, progress)
    return run.execute()


class Drive:
    """How a run is driven when it is not the in-process one: the bus backtest's sequencer.

    The sequencer runs this same loop (so both paths give the same journal by construction), with
    market data from its ingress, venues and strategy that are proxies for gateway and strategy
    host processes, and every applied envelope handed to `sink` for publication.

    Attributes:
        instruments: the run's instruments (the data's, in-process).
        source: the market-data envelopes, in the backtest ordering key's order.
        total: how many `source` yields, for the progress bar (0: unknown).
        venues: venue id -> an object with SimulatedVenue's submit/cancel/replace/on_bar/on_trade,
            open_order_count and next_due_ns.
        sink: called with each envelope and its outputs right after the core applied it.
        by_reference: hand the strategy `StrategyCall` references, not events (the host builds them).
    """

    def __init__(
        self,
        instruments: list[str],
        source: Iterable[Envelope],
        venues: dict[str, Any],
        sink: Callable[[Envelope, list[Any]], None],
        *,
        total: int = 0,
        by_reference: bool = True,
    ) -> None:
        self.instruments = instruments
        self.source = source
        self.venues = venues
        self.sink = sink
        self.total = total
        self.by_reference = by_reference


def _instantiate(strategy: Any, params: dict[str, Any] | None) -> Strategy:
    from services.strategy.loader import as_native_strategy  # the Backtrader-style layer is optional

    return as_native_strategy(strategy, params or {})


class _Run:
    """One backtest: owns the core, the venue, the journal and the strategy's context."""

    def __init__(
        self,
        strategy: Strategy,
        series: list[Series],
        config: BacktestConfig,
        run_dir: Path | None,
        progress: bool,
        drive: Drive | None = None,
    ) -> None:
        self.drive = drive
        instruments = sorted({s.instrument for s in series} if drive is None else set(drive.instruments))
        self.config = config
        self.core_config: CoreConfig = core_config_for(instruments, config)
        for s in series:
            expected = self.core_config.instruments[s.instrument].venue
            if s.venue != expected:
                raise BacktestError(f"data {s.source or s.instrument}: venue {s.venue!r}, configured {expected!r}")
        self.series = series
        for s, producer in zip(series, producer_ids(tuple(series), "file"), strict=True):
            try:
                check_wire_limits(s, producer)
            except WireLimitError as exc:
                raise BacktestError(str(exc)) from exc
        self.core = SequencerCore(self.core_config)
        self.venues: dict[str, Any] = (
            {name: SimulatedVenue(name, self.core_config, config.matching) for name in self.core_config.venues}
            if drive is None
            else drive.venues
        )
        self.sink = None if drive is None else drive.sink
        self.by_reference = drive is not None and drive.by_reference
        self.strategy = strategy
        self.strategy_id = getattr(strategy, "strategy_id", None) or config.strategy_id
        bind_series = getattr(strategy, "bind_series", None)
        if bind_series is not None:  # the Backtrader-style layer: self.datas in the order given
            bind_series(series)
        self.ctx = StrategyContext(
            self.strategy_id,
            self.core_config,
            BookView(self.core.book),
            getattr(strategy, "param_values", {}),
            config.currency,
        )
        self.wants_slices = bool(getattr(strategy, "wants_time_slices", False))
        self.wants_orders = bool(getattr(strategy, "wants_order_events", True))
        self.run_dir = run_dir
        self.progress = progress
        self.seq = 0
        self.report_seq: dict[str, int] = {name: 0 for name in self.venues}
        # Built once, not per report / fill (this is the order path).
        self.report_producers: dict[str, str] = {name: f"venue:{name}" for name in self.venues}
        self.fee_scales: dict[str, float] = {
            code: 10.0**-spec.decimals for code, spec in self.core_config.currencies.items()
        }
        self.intent_seq = 0
        self.strategy_producer = f"strategy:{self.strategy_id}"
        self.pending_events: deque[Any] = deque()
        self.pending_commands: deque[Any] = deque()
        self.journal: JournalWriter | None = None
        self.journal_buffer: list[Envelope] = []
        self.fills: list[FillRecord] = []
        self.trades: list[TradeRecord] = []
        self.trade_builder = TradeBuilder()
        self.fees_paid = 0.0
        self.warnings: list[str] = []
        self.seq_times: dict[int, int] = {}  # seq id -> event time, for order and report envelopes
        self.curve = EquityCurve()
        self.bar_index = 0
        self.prices: dict[str, tuple[array[int], array[float]]] = {}
        units = self.ctx.units
        self.currency = config.currency
        cash_decimals = self.core_config.currencies[config.currency].decimals
        self.cash_to_float = 10.0**-cash_decimals
        # Marking positions to market: instrument -> (price x size -> account currency) multiplier.
        self.mark: dict[str, float] = {
            name: 1 / (u.price_scale * u.size_scale) for name, u in units.items() if u.spec.quote == config.currency
        }

    # ------------------------------------------------------------------ the run

    def execute(self) -> BacktestResult:
        started = time.perf_counter()
        journal_path = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            journal_path = self.run_dir / "journal.tbj"
            if journal_path.exists():
                journal_path.unlink()
            self.journal = JournalWriter.create(journal_path, self.core_config, fsync=FsyncPolicy.NEVER)
        total = sum(len(s) for s in self.series) if self.drive is None else self.drive.total
        bar = _progress_bar(total) if self.progress else None
        # The run allocates millions of short-lived, acyclic objects (envelopes, events, records)
        # and keeps a growing set of long-lived ones (records): at the default thresholds the
        # cyclic collector rescans them over and over. Collect far less often (a strategy's cyclic
        # garbage is still collected), and restore the thresholds on the way out.
        # Building the result (a record per order) also runs at these thresholds: at the default
        # ones, making 100k records would rescan everything the run keeps dozens of times.
        thresholds = gc.get_threshold()
        gc.set_threshold(*_GC_THRESHOLDS)
        try:
            try:
                self._deliver_intents(self._call(self.strategy.on_start, self.ctx))
                self._settle()
                if self.drive is None and len(self.series) == 1 and isinstance(self.series[0], BarSeries):
                    events = self._run_single_bar_series(self.series[0], bar)
                else:
                    events = self._run_merged(bar)
                self._deliver_intents(self._call(self.strategy.on_stop, self.ctx))
                self._settle()
            finally:
                if bar is not None:
                    bar.close()
                self._flush_journal()
                if self.journal is not None:
                    self.journal.close()
            elapsed = time.perf_counter() - started
            return build_result(self, events, elapsed, journal_path)
        finally:
            gc.set_threshold(*thresholds)

    def _run_single_bar_series(self, s: BarSeries, bar: Any) -> int:
        """The fast path: one bar series, envelopes built straight from the columns."""
        # Methods are called on their objects, not through cached bound methods: compiled, that is
        # a direct native call; a bound method would go through the Python calling convention.
        core = self.core
        batch = self.config.journal_batch
        venue: SimulatedVenue = self.venues[s.venue]  # in-process: typed, so compiled calls are native
        on_event = self.strategy.on_event
        ctx = self.ctx
        instrument = s.instrument
        venue_name = s.venue
        [producer] = producer_ids((s,), "file")
        interval = s.interval_ns
        units = ctx.units[instrument]
        # Division by the integer scale gives the float nearest the exact decimal (42000.17, not
        # 42000.170000000002 as a multiplication by 0.01 would).
        px = units.price_scale
        sz = units.size_scale
        wants_slices = self.wants_slices
        # The equity curve: cash and position change only on fills, so the loop notes (bar index,
        # balance, quantity) when the fill count moved, and the curve is computed from those steps
        # and the closes after the loop (`EquityCurve.from_steps`: the same float operations).
        account = self.core.book.portfolio.cash[self.currency]
        positions = self.core.book.portfolio.positions
        fills = self.fills
        fills_seen = len(fills)
        step_bar: list[int] = [-1]
        step_balance: list[int] = [account.balance]
        held = positions.get(instrument)
        step_quantity: list[int] = [0 if held is None else held.quantity]
        buffer = self.journal_buffer
        # With cheat-on-close the venue must see every bar; otherwise only while something is working.
        every_bar = self.config.matching.fill_market_on == "close"
        seq = self.seq
        n = 0
        for t, o, h, lo, c, v in zip(s.close_time_ns, s.open, s.high, s.low, s.close, s.volume, strict=True):
            payload = Bar(open=o, high=h, low=lo, close=c, volume=v, interval_ns=interval)
            if every_bar or venue.open_order_count or venue.next_due_ns is not None:
                reports = venue.on_bar(instrument, payload, t)
                if reports:
                    self.seq = seq
                    self._ingest_reports(venue_name, reports)
                    self._settle()
                    seq = self.seq
            n += 1
            seq += 1
            env = Envelope(
                source=_MARKET,
                producer_id=producer,
                producer_seq=n,
                event_time_ns=t,
                payload=payload,
                venue=venue_name,
                instrument=instrument,
                seq_id=seq,
                ingest_time_ns=t,
            )
            buffer.append(env)
            if len(buffer) >= batch:
                self._flush_journal()
            out = core.apply(env)
            self.seq = seq
            if out:
                self._dispatch(out)
                self._settle()
            try:  # free unless it raises (3.11 zero-cost try): this is the hot loop
                intents = on_event(ctx, BarClosed(instrument, t, o / px, h / px, lo / px, c / px, v / sz, interval))
            except Exception as exc:
                raise self._strategy_error(on_event, exc) from exc
            if intents is not None:
                self._deliver_intents(intents)
                self._settle()
            if wants_slices:
                self._deliver_intents(self._call(on_event, ctx, TimeSliceClosed(t)))
                self._settle()
            seq = self.seq
            if len(fills) != fills_seen:
                fills_seen = len(fills)
                held = positions.get(instrument)
                step_bar.append(n - 1)
                step_balance.append(account.balance)
                step_quantity.append(0 if held is None else held.quantity)
            self.bar_index += 1
            if bar is not None and not n % _PROGRESS_EVERY:
                bar.update(_PROGRESS_EVERY)
        if bar is not None:
            bar.update(n % _PROGRESS_EVERY)
        self.curve.extend_from_steps(
            s.close_time_ns, s.close, step_bar, step_balance, step_quantity,
            self.cash_to_float, self.mark.get(instrument, 0.0),
        )  # fmt: skip
        # The report's price panel: the series itself (no per-bar copy while running).
        self.prices[instrument] = (s.close_time_ns, array("d", [c / px for c in s.close]))
        return n

    def _run_merged(self, bar: Any) -> int:
        """Any mix of series: merged by the backtest ordering key."""
        slice_time: int | None = None
        every_bar = self.config.matching.fill_market_on == "close"
        n = 0
        for env in _merge(self.series) if self.drive is None else self.drive.source:
            t = env.event_time_ns
            if slice_time is not None and t != slice_time:
                self._close_slice(slice_time)
            slice_time = t
            venue = self.venues[env.venue]
            payload = env.payload
            if every_bar or venue.open_order_count or venue.next_due_ns is not None:
                if isinstance(payload, Bar):
                    reports = venue.on_bar(env.instrument, payload, t)
                else:
                    assert isinstance(payload, Trade), f"unexpected market payload {type(payload).__name__}"
                    reports = venue.on_trade(env.instrument, payload, t)
                if reports:
                    self._ingest_reports(env.venue, reports)
                    self._settle()
            self.seq += 1
            env = msgspec.structs.replace(env, seq_id=self.seq, ingest_time_ns=t)
            self._journal(env)
            out = self.core.apply(env)
            if self.sink is not None:
                self.sink(env, out)
            if out:
                self._dispatch(out)
                self._settle()
            self._deliver_intents(self._call(self.strategy.on_event, self.ctx, self._market_event(env)))
            self._settle()
            prices = self.prices.get(env.instrument)
            if prices is None:
                prices = self.prices[env.instrument] = (array("q"), array("d"))
            prices[0].append(t)
            prices[1].append(self.ctx.last_price(env.instrument) or 0.0)
            n += 1
            if bar is not None and not n % _PROGRESS_EVERY:
                bar.update(_PROGRESS_EVERY)
        if slice_time is not None:
            self._close_slice(slice_time)
        if bar is not None:
            bar.update(n % _PROGRESS_EVERY)
        return n

    def _market_event(self, env: Envelope) -> Any:
        if self.by_reference:
            return StrategyCall(hook=StrategyHook.MARKET, seq_id=0, event_seq_id=env.seq_id)
        return market_event(env, self.ctx.units[env.instrument])

    def _close_slice(self, t: int) -> None:
        if self.wants_slices:
            slice_event: Any = (
                StrategyCall(hook=StrategyHook.SLICE, seq_id=0, time_ns=t) if self.by_reference else TimeSliceClosed(t)
            )
            self._deliver_intents(self._call(self.strategy.on_event, self.ctx, slice_event))
            self._settle()
        self._curve_point(t)

    def _curve_point(self, t: int) -> None:
        book = self.core.book
        cash = book.portfolio.cash[self.currency].balance * self.cash_to_float
        gross = 0.0
        net = 0.0
        positions = book.portfolio.positions
        if positions:
            last = book.last_prices
            for name, mark in self.mark.items():
                pos = positions.get(name)
                if pos is not None and pos.quantity:
                    value = pos.quantity * last.get(name, 0) * mark
                    net += value
                    gross += abs(value)
        equity = cash + net
        self.curve.append(t, equity, cash, gross / equity if equity > 0 else 0.0)
        self.bar_index += 1

    # ------------------------------------------------------------------ inputs to the core

    def _journal(self, env: Envelope) -> None:
        self.journal_buffer.append(env)
        if len(self.journal_buffer) >= self.config.journal_batch:
            self._flush_journal()

    def _flush_journal(self) -> None:
        if self.journal is not None and self.journal_buffer:
            # Market data was checked per series (check_wire_limits): no per-record decode-back.
            self.journal.append_batch(self.journal_buffer, prechecked_market_data=True)
        self.journal_buffer.clear()

    def _ingest_reports(self, venue: str, reports: Iterable[VenueReport]) -> None:
        producer = self.report_producers[venue]
        for r in reports:
            producer_seq = self.report_seq[venue] + 1
            self.report_seq[venue] = producer_seq
            self.seq += 1
            t = r.time_ns
            env = Envelope(
                source=_REPORT,
                producer_id=producer,
                producer_seq=producer_seq,
                event_time_ns=t,
                payload=r.report,
                venue=venue,
                instrument=r.instrument,
                seq_id=self.seq,
                ingest_time_ns=t,
            )
            self.seq_times[self.seq] = max(t, self.core.event_time_ns)
            self._journal(env)
            out = self.core.apply(env)
            if self.sink is not None:
                self.sink(env, out)
            if out:
                self._dispatch(out)

    def _deliver_intents(self, intents: Any) -> None:
        if intents is None:
            return
        if isinstance(intents, _INTENTS):
            intents = (intents,)
        t = self.core.event_time_ns
        for intent in intents:
            if not isinstance(intent, _INTENTS):
                raise BacktestError(
                    f"strategy {self.strategy_id}: returned {type(intent).__name__} {intent!r}; "
                    "on_event must return intents (PlaceOrder, CancelOrder, ...), a list of them, or None"
                )
            self.intent_seq += 1
            self.seq += 1
            env = Envelope(
                source=_STRATEGY,
                producer_id=self.strategy_producer,
                producer_seq=self.intent_seq,
                event_time_ns=t,
                payload=intent,
                instrument=getattr(intent, "instrument", ""),
                seq_id=self.seq,
                ingest_time_ns=t,
            )
            self.seq_times[self.seq] = t
            self._journal(env)
            out = self.core.apply(env)
            if self.sink is not None:
                self.sink(env, out)
            if out:
                self._dispatch(out)

    # ------------------------------------------------------------------ outputs of the core

    def _dispatch(self, out: list[Any]) -> None:
        """Route the core's outputs: commands to venues, news to the strategy, records to the result."""
        sid = self.strategy_id
        t = self.core.event_time_ns
        units = self.ctx.units
        for o in out:
            kind = type(o)
            if kind is OrderTransitioned:
                if o.strategy_id == sid and self.wants_orders:
                    self.pending_events.append(
                        self._output_call(out, o) if self.by_reference else order_updated(o, t, units[o.instrument])
                    )
            elif kind is SubmitOrder or kind is RequestCancel or kind is RequestReplace:
                self.pending_commands.append(o)
            elif kind is FillBooked:
                self._book_fill(o, t, out)
            elif kind is IntentRejected:
                if o.strategy_id == sid:
                    self.pending_events.append(self._output_call(out, o) if self.by_reference else intent_refused(o, t))
            elif kind is ReportRefused or kind is InvariantBroken:
                # The simulated venue and the core disagree: our bug, made loud in the result.
                self.warnings.append(f"seq {o.seq_id}: {msgspec.json.encode(o).decode()}")

    def _output_call(self, out: list[Any], o: Any) -> StrategyCall:
        """A reference to output `o` (the host builds the event from its replica's same output)."""
        index = next(i for i, x in enumerate(out) if x is o)
        return StrategyCall(hook=StrategyHook.OUTPUT, seq_id=0, event_seq_id=o.seq_id, output_index=index)

    def _book_fill(self, o: FillBooked, t: int, out: list[Any] | None = None) -> None:
        u = self.ctx.units[o.instrument]
        fee_scale = self.fee_scales[o.fee_currency]
        fill = FillRecord(
            time_ns=t,
            seq_id=o.seq_id,
            strategy_id=o.strategy_id,
            client_order_id=o.client_order_id,
            instrument=o.instrument,
            side=str(o.side),
            quantity=o.quantity / u.size_scale,
            price=o.price / u.price_scale,
            fee=o.fee * fee_scale,
            fee_currency=o.fee_currency,
            trade_id=o.trade_id,
            liquidity="",
        )
        self.fills.append(fill)
        if o.fee_currency == self.currency:
            self.fees_paid += fill.fee
        trade = self.trade_builder.on_fill(fill, self.bar_index, o.position_quantity / u.size_scale)
        if trade is not None:
            self.trades.append(trade)
        if o.strategy_id == self.strategy_id and self.wants_orders:
            if self.by_reference:
                assert out is not None
                self.pending_events.append(self._output_call(out, o))
            else:
                self.pending_events.append(order_filled(o, t, u, fee_scale))

    def _settle(self) -> None:
        """Commands to venues, then news to the strategy, until neither has anything left."""
        events = self.pending_events
        commands = self.pending_commands
        rounds = 0
        while events or commands:
            rounds += 1
            if rounds > MAX_SETTLE_ROUNDS:
                raise BacktestError(
                    f"strategy {self.strategy_id} and the venue did not settle after {MAX_SETTLE_ROUNDS} rounds "
                    f"at event time {self.core.event_time_ns}: does the strategy answer every update with a new order?"
                )
            while commands:
                cmd = commands.popleft()
                venue = self.venues[cmd.venue]
                now = self.core.event_time_ns
                kind = type(cmd)
                if kind is SubmitOrder:
                    reports = venue.submit(cmd, now)
                elif kind is RequestCancel:
                    reports = venue.cancel(cmd, now)
                else:
                    reports = venue.replace(cmd, now)
                if reports:
                    self._ingest_reports(cmd.venue, reports)
            if events:
                event = events.popleft()
                on_event = self.strategy.on_event
                try:  # `_call` inlined: one hop and one args tuple fewer per event (several per order)
                    intents = on_event(self.ctx, event)
                except BacktestError:
                    raise
                except Exception as exc:
                    raise self._strategy_error(on_event, exc) from exc
                if intents is not None:
                    self._deliver_intents(intents)

    def _call(self, hook: Callable[..., Any], *args: Any) -> Any:
        try:
            return hook(*args)
        except BacktestError:
            raise
        except Exception as exc:
            raise self._strategy_error(hook, exc) from exc

    def _strategy_error(self, hook: Callable[..., Any], exc: Exception) -> BacktestError:
        where = getattr(hook, "__qualname__", repr(hook))
        return BacktestError(
            f"strategy {self.strategy_id}: {where} raised {type(exc).__name__}: {exc} "
            f"(event time {self.core.event_time_ns}, seq {self.core.seq_id})"
        )


def _merge(series: list[Series]) -> Iterator[Envelope]:
    from services.data.merge import merge

    return merge(*series)


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, desc="backtest", mininterval=0.5, smoothing=0.1)
