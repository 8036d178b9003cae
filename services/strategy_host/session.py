"""One strategy instance, the replica core it reads through its context, and how it is called.

Both modes of the strategy host (`lockstep`, `free_running`) hold a `StrategySession`:

- `Replica`: a `SequencerCore` fed the sequencer's published records in seq order (or restored from
  its snapshot). It checks that every record's outputs are the ones it computes itself: a replica
  that disagrees (another config, another core version) would show the strategy a wrong world, so
  it stops (`ReplicaError`) instead. It remembers recent records with the event time right after
  each (lockstep calls refer to them by seq id), within a bound.
- `StrategySession`: the strategy, its `StrategyContext` over the replica's book, and `call`,
  which runs a hook and normalises what it returns exactly as the in-process runner does
  (`services.backtest.runner._Run._deliver_intents`), turning an exception into a
  `StrategyFailure` whose text mirrors the runner's `_strategy_error`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

from schemas.bus import Sequenced
from schemas.intents import CancelOrder, Intent, NoOp, PlaceOrder, ReplaceOrder, SetRiskFlag
from schemas.market import Bar, Quote, Trade
from schemas.outputs import FillBooked, IntentRejected, OrderTransitioned
from schemas.state import CoreSnapshot
from schemas.types import MAX_TEXT_CHARS
from services.backtest.state_view import BookView
from services.sequencer.core.book import Book
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.engine import SequencerCore
from services.strategy.api import Strategy
from services.strategy.context import StrategyContext
from services.strategy.event_builders import intent_refused, market_event, order_filled, order_updated
from services.strategy.events import Event

__all__ = [
    "MAX_HISTORY_RECORDS",
    "Replica",
    "ReplicaError",
    "StrategyFailure",
    "StrategySession",
    "bounded_text",
]

# Records a lockstep replica keeps for calls that refer to them. A call refers to a record applied
# since the last market event the strategy was called for (see LockstepHost), so a few dozen in
# practice; the bound only caps memory if a run produced an unusual burst (older records are then
# forgotten, and a call naming one is answered with an error).
MAX_HISTORY_RECORDS: Final = 100_000

_INTENTS: Final = (PlaceOrder, CancelOrder, ReplaceOrder, SetRiskFlag, NoOp)
_MARKET: Final = (Bar, Trade, Quote)


class ReplicaError(Exception):
    """The replica cannot follow the published stream (a gap, or outputs that differ: another
    config or core). Fatal for the replica: it no longer shows the sequencer's state."""


class StrategyFailure(Exception):
    """The strategy raised, or returned something that is not intents. `str()` is the message a
    `StrategyAnswer.error` carries (at most `MAX_TEXT_CHARS`)."""


def bounded_text(head: str, middle: str, tail: str = "", limit: int = MAX_TEXT_CHARS) -> str:
    """`head + middle + tail`, cutting `middle` (then `head`) so the whole fits in `limit` chars."""
    room = limit - len(head) - len(tail)
    if len(middle) > room:
        middle = middle[: max(room - 3, 0)] + "..." if room >= 3 else ""
    text = head + middle + tail
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Replica:
    """A read-only copy of the sequencer core, fed the published records in order.

    Args:
        config: the sequencer's core configuration (`core_config_for_profile`): a snapshot taken
            under another config is refused (`RestoreError`), and a record whose outputs differ
            from the replica's raises `ReplicaError`.
        history: how many applied records to remember (0: none, as a free-running host needs).
    """

    __slots__ = ("_first", "_history", "_max_history", "core", "synced")

    def __init__(self, config: CoreConfig, *, history: int = MAX_HISTORY_RECORDS) -> None:
        assert history >= 0
        self.core = SequencerCore(config)
        self.synced = False  # True once a snapshot was installed (or the caller said seq 0 is it)
        self._max_history = history
        # (record, event time right after it), contiguous seq ids from `_first`.
        self._history: deque[tuple[Sequenced, int]] = deque()
        self._first = 0

    @property
    def book(self) -> Book:
        return self.core.book

    @property
    def seq_id(self) -> int:
        return self.core.seq_id

    @property
    def event_time_ns(self) -> int:
        return self.core.event_time_ns

    def restore(self, snapshot: CoreSnapshot) -> None:
        """Install the sequencer's state at `snapshot.seq_id` (records before it are forgotten).

        Raises:
            RestoreError: the snapshot was taken under another core configuration.
        """
        self.core.restore(snapshot)
        self._history.clear()
        self.synced = True

    def apply(self, record: Sequenced) -> None:
        """Apply the next record.

        Raises:
            ReplicaError: it does not follow the last applied seq id, or the core's outputs for it
                differ from the published ones.
        """
        core = self.core
        if record.seq_id != core.seq_id + 1 or record.envelope.seq_id != record.seq_id:
            raise ReplicaError(
                f"record seq {record.seq_id} (envelope seq {record.envelope.seq_id}) does not follow "
                f"the replica's seq {core.seq_id}"
            )
        out = core.apply(record.envelope)
        if out != record.outputs:
            raise ReplicaError(
                f"seq {record.seq_id}: the replica's outputs differ from the sequencer's "
                f"({len(out)} vs {len(record.outputs)} outputs): is the host's profile the sequencer's?"
            )
        if self._max_history:
            history = self._history
            if not history:
                self._first = record.seq_id
            history.append((record, core.event_time_ns))
            if len(history) > self._max_history:
                history.popleft()
                self._first += 1

    def held(self, seq_id: int) -> tuple[Sequenced, int] | None:
        """The applied record `seq_id` and the event time right after it, if still remembered."""
        index = seq_id - self._first
        if not self._history or index < 0 or index >= len(self._history):
            return None
        return self._history[index]

    def forget_before(self, seq_id: int) -> None:
        """Forget remembered records older than `seq_id`."""
        history = self._history
        while history and self._first < seq_id:
            history.popleft()
            self._first += 1

    @property
    def held_count(self) -> int:
        return len(self._history)


class StrategySession:
    """A strategy instance with its context over a fresh replica.

    Args:
        strategy: the native strategy instance (`as_native_strategy`).
        strategy_id: the configured id (the profile's); a strategy class naming its own
            `strategy_id` wins, as in the in-process runner.
        core_config: the sequencer's core configuration.
        currency: the account currency (equity is measured in it).
        history: records the replica remembers (`Replica`).
    """

    def __init__(
        self,
        strategy: Strategy,
        *,
        strategy_id: str,
        core_config: CoreConfig,
        currency: str,
        history: int = MAX_HISTORY_RECORDS,
    ) -> None:
        self.strategy = strategy
        self.strategy_id: str = getattr(strategy, "strategy_id", None) or strategy_id
        self.core_config = core_config
        self.replica = Replica(core_config, history=history)
        self.ctx = StrategyContext(
            self.strategy_id,
            core_config,
            BookView(self.replica.book),
            getattr(strategy, "param_values", {}),
            currency,
        )
        self.wants_time_slices = bool(getattr(strategy, "wants_time_slices", False))
        self.wants_order_events = bool(getattr(strategy, "wants_order_events", True))
        self.fee_scales: dict[str, float] = {
            code: 10.0**-spec.decimals for code, spec in core_config.currencies.items()
        }

    # ------------------------------------------------------------------ calling the strategy

    def call(self, hook: Callable[..., Any], *args: Any) -> list[Intent]:
        """Call `hook` (a bound method of the strategy) and return the intents it produced.

        Raises:
            StrategyFailure: the hook raised, or returned something that is not intents.
        """
        try:
            value = hook(*args)
        except Exception as exc:
            raise StrategyFailure(self._raised(hook, exc)) from exc
        return self.intents_of(value, hook)

    def intents_of(self, value: Any, hook: Callable[..., Any] | None = None) -> list[Intent]:
        """`value` as a list of intents: None, one intent, or an iterable of intents.

        Raises:
            StrategyFailure: anything else (the runner's `_deliver_intents` message), or iterating
                `value` (a generator) raised.
        """
        if value is None:
            return []
        if isinstance(value, _INTENTS):
            return [value]
        intents: list[Intent] = []
        try:
            items: Iterator[Any] = iter(value)
        except TypeError:
            raise StrategyFailure(self._not_intents(value)) from None
        try:
            for item in items:
                if not isinstance(item, _INTENTS):
                    raise StrategyFailure(self._not_intents(item))
                intents.append(item)
        except StrategyFailure:
            raise
        except Exception as exc:
            raise StrategyFailure(self._raised(hook if hook is not None else value, exc)) from exc
        return intents

    def _not_intents(self, item: Any) -> str:
        return bounded_text(
            f"strategy {self.strategy_id}: returned {type(item).__name__} ",
            repr(item),
            "; on_event must return intents (PlaceOrder, CancelOrder, ...), a list of them, or None",
        )

    def _raised(self, hook: Any, exc: Exception) -> str:
        where = getattr(hook, "__qualname__", None) or repr(hook)
        return bounded_text(
            f"strategy {self.strategy_id}: {where} raised {type(exc).__name__}: ",
            str(exc),
            f" (event time {self.replica.event_time_ns}, seq {self.replica.seq_id})",
        )

    # ------------------------------------------------------------------ events

    def market_event(self, record: Sequenced) -> Event | None:
        """The market event of a market-data record, or None (not market data, or an instrument the
        core does not know)."""
        env = record.envelope
        if not isinstance(env.payload, _MARKET):
            return None
        units = self.ctx.units.get(env.instrument)
        return None if units is None else market_event(env, units)

    def output_event(self, output: Any, time_ns: int) -> Event | None:
        """The event of one order output (any strategy's), or None if it is not an order output."""
        kind = type(output)
        if kind is OrderTransitioned:
            return order_updated(output, time_ns, self.ctx.units[output.instrument])
        if kind is FillBooked:
            return order_filled(
                output, time_ns, self.ctx.units[output.instrument], self.fee_scales[output.fee_currency]
            )
        if kind is IntentRejected:
            return intent_refused(output, time_ns)
        return None

    def events_of(self, record: Sequenced, time_ns: int) -> list[Event]:
        """What the in-process runner tells this strategy about one applied record, in its order:
        its order outputs (`_dispatch` / `_book_fill`: OrderUpdated and OrderFilled of this
        strategy's orders if it wants order events, IntentRefused of its intents), then the market
        event of a market-data record (`_run_merged` calls on_event after settling the outputs).

        `time_ns` is the replica's event time right after applying the record.
        """
        sid = self.strategy_id
        wants_orders = self.wants_order_events
        events: list[Event] = []
        for o in record.outputs:
            if isinstance(o, OrderTransitioned | FillBooked):
                if wants_orders and o.strategy_id == sid:
                    event = self.output_event(o, time_ns)
                    assert event is not None
                    events.append(event)
            elif isinstance(o, IntentRejected) and o.strategy_id == sid:
                events.append(intent_refused(o, time_ns))
        market = self.market_event(record)
        if market is not None:
            events.append(market)
        return events
