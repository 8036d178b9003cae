"""The strategy host's turn logic, without sockets: the same events as in process, the turn rules.

Parity: the in-process backtest loop is driven exactly as the bus sequencer drives it (`Drive`,
strategy calls by reference), with a proxy strategy that turns each call into a `TurnRequest` for
a `LockstepHost` and each `TurnDone` back into intents, and every applied record published to the
host. The strategy inside the host must see the same events and the same context, and the run
must end in the same state, as the same strategy run in process.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.bus import Sequenced, TurnDone, TurnRequest
from schemas.enums import Source
from schemas.envelope import Envelope
from schemas.intents import PlaceOrder
from schemas.lockstep import StrategyAnswer, StrategyCall, StrategyHello, StrategyHelloRequest, StrategyHook
from schemas.market import Bar
from schemas.outputs import FillBooked, IntentRejected, OrderTransitioned
from services.backtest.config import BacktestConfig, core_config_for
from services.backtest.runner import Drive, _Run, run_backtest
from services.backtest.state_view import BookView
from services.data import BarSeries, merge, synthetic_bars
from services.deploy.profile import load_profile
from services.deploy.run_config import core_config_for_profile
from services.matching.venue import SimulatedVenue
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.engine import SequencerCore
from services.strategy.api import Strategy
from services.strategy.context import StrategyContext
from services.strategy.event_builders import intent_refused, market_event, order_filled, order_updated
from services.strategy.events import BarClosed, Event, TimeSliceClosed
from services.strategy.loader import as_native_strategy
from services.strategy_host.free_running import FreeRunningHost
from services.strategy_host.lockstep import LockstepHost
from services.strategy_host.series import SeriesError, SeriesRef, profile_series
from services.strategy_host.session import StrategySession
from tests.unit.btcompat_support import MINUTE
from tests.unit.data_samples import GOOD_ROWS, T0, bars_csv

PEER = "strategy-t"
BTC, ETH = "BTC-USD", "ETH-USD"
CONFIG = BacktestConfig(cash=Decimal(100_000), strategy_id="rec")
ENC = msgspec.msgpack.Encoder()
ANSWER = msgspec.msgpack.Decoder(StrategyAnswer)
HELLO = msgspec.msgpack.Decoder(StrategyHello)


class Recorder(Strategy):
    """Trades a little (a market order, a limit that is cancelled, a refused sell, a close) and
    records every event with what its context reads at that moment."""

    wants_time_slices = True
    params = {"instrument": BTC}

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen: list[Any] = []
        self.bars = 0
        self.limit_id: str | None = None

    def _look(self, ctx: StrategyContext) -> tuple[Any, ...]:
        inst = self.p.instrument
        return (ctx.time_ns, ctx.position(inst), ctx.cash(), ctx.last_price(inst), len(ctx.open_orders()))

    def on_start(self, ctx: StrategyContext) -> Any:
        self.seen.append(("start", self._look(ctx)))
        return None

    def on_event(self, ctx: StrategyContext, event: Event) -> Any:
        self.seen.append((event, self._look(ctx)))
        inst = self.p.instrument
        if not isinstance(event, BarClosed) or event.instrument != inst:
            return None
        self.bars += 1
        if self.bars == 2:
            return ctx.buy(inst, 0.5)
        if self.bars == 3:
            order = ctx.buy(inst, 0.1, price=round(event.low * 0.5, 2))
            self.limit_id = order.client_order_id
            return [order]
        if self.bars == 5:
            assert self.limit_id is not None
            return (ctx.cancel(self.limit_id), ctx.sell(inst, 100))  # the sell is refused: not held
        if self.bars == 8:
            return ctx.sell(inst, 0.5)
        return None

    def on_stop(self, ctx: StrategyContext) -> Any:
        self.seen.append(("stop", self._look(ctx)))
        return None


def _series() -> list[BarSeries]:
    spec_btc = core_config_for([BTC], CONFIG).instruments[BTC]
    spec_eth = core_config_for([ETH], CONFIG).instruments[ETH]
    return [synthetic_bars(12, BTC, spec_btc, seed=1), synthetic_bars(12, ETH, spec_eth, seed=2)]


def _core_config(series: list[BarSeries]) -> CoreConfig:
    return core_config_for(sorted(s.instrument for s in series), CONFIG)


def _host(strategy_factory: Any, core_config: CoreConfig, **kwargs: Any) -> LockstepHost:
    def new_session() -> StrategySession:
        return StrategySession(strategy_factory(), strategy_id="rec", core_config=core_config, currency="USD")

    host = LockstepHost(PEER, new_session, **kwargs)
    host.on_snapshot(SequencerCore(core_config).snapshot())  # the sequencer's state before the run
    return host


class Proxy:
    """What the bus sequencer puts in the runner's strategy seat: every call becomes a turn."""

    def __init__(self, host: LockstepHost, series: list[str]) -> None:
        self.host = host
        self.seq = 0
        self.turn = 0
        self.turns: list[tuple[TurnRequest, TurnDone]] = []
        hello = HELLO.decode(self._turn(StrategyHelloRequest(series=series)).payload)
        self.strategy_id = hello.strategy_id
        self.wants_time_slices = hello.wants_time_slices
        self.wants_order_events = hello.wants_order_events

    def sink(self, env: Envelope, out: list[Any]) -> None:
        self.host.on_records([Sequenced(seq_id=env.seq_id, envelope=env, outputs=out)])
        self.seq = env.seq_id

    def _turn(self, call: StrategyHelloRequest | StrategyCall) -> TurnDone:
        if isinstance(call, StrategyCall):
            call = msgspec.structs.replace(call, seq_id=self.seq)
        self.turn += 1
        request = TurnRequest(peer=PEER, turn=self.turn, seq_id=self.seq, kind="strategy", payload=ENC.encode(call))
        self.host.on_turn(request)
        [done] = self.host.step()
        assert done.turn == self.turn
        self.turns.append((request, done))
        return done

    def _intents(self, call: StrategyCall) -> list[Any]:
        answer = ANSWER.decode(self._turn(call).payload)
        assert not answer.error, answer.error
        return list(answer.intents)

    def on_start(self, ctx: Any) -> list[Any]:
        return self._intents(StrategyCall(hook=StrategyHook.START, seq_id=0))

    def on_event(self, ctx: Any, call: StrategyCall) -> list[Any]:
        return self._intents(call)

    def on_stop(self, ctx: Any) -> list[Any]:
        return self._intents(StrategyCall(hook=StrategyHook.STOP, seq_id=0))


def _drive(host: LockstepHost, series: list[BarSeries], config: BacktestConfig = CONFIG) -> tuple[_Run, Proxy]:
    """The in-process loop in the bus sequencer's configuration (see `Drive`)."""
    core_config = _core_config(series)
    proxy = Proxy(host, [s.instrument for s in series])
    venues = {name: SimulatedVenue(name, core_config, config.matching) for name in core_config.venues}
    drive = Drive(sorted(s.instrument for s in series), merge(*series), venues, proxy.sink)
    run = _Run(proxy, series, config, None, False, drive=drive)  # type: ignore[arg-type]
    run.execute()
    return run, proxy


def test_lockstep_gives_the_strategy_the_in_process_events_and_ends_in_the_same_state() -> None:
    series = _series()
    reference = Recorder()
    expected = run_backtest(reference, series, CONFIG)
    host = _host(Recorder, _core_config(series))
    run, proxy = _drive(host, series)
    hosted = host.session.strategy
    assert isinstance(hosted, Recorder)
    assert hosted.seen == reference.seen
    kinds = {type(e).__name__ for e, _ in hosted.seen if not isinstance(e, str)}
    assert kinds == {"BarClosed", "TimeSliceClosed", "OrderUpdated", "OrderFilled", "IntentRefused"}
    assert run.core.state_hash() == expected.state_hash == host.session.replica.core.state_hash()
    calls = [msgspec.msgpack.decode(r.payload, type=StrategyHelloRequest | StrategyCall) for r, _ in proxy.turns]
    hooks = {c.hook if isinstance(c, StrategyCall) else "hello" for c in calls}
    assert hooks == {"hello", *StrategyHook}
    # Memory: everything before the last market call is forgotten.
    assert host.session.replica.held_count < 20


def test_each_call_builds_its_event_with_the_shared_event_builders() -> None:
    """Built by hand from a real core: MARKET, OUTPUT (update, fill, refusal) and SLICE calls."""
    config = _core_config(_series())
    core = SequencerCore(config)
    records: list[Sequenced] = []
    times: dict[int, int] = {}

    def apply(env: Envelope) -> Sequenced:
        env = msgspec.structs.replace(env, seq_id=core.seq_id + 1)
        record = Sequenced(seq_id=env.seq_id, envelope=env, outputs=core.apply(env))
        records.append(record)
        times[record.seq_id] = core.event_time_ns
        return record

    bar = Bar(open=3_000_000, high=3_010_000, low=2_990_000, close=3_000_000, volume=10_000, interval_ns=MINUTE)
    market = apply(Envelope(source=Source.MARKET_DATA, producer_id="f", producer_seq=1, event_time_ns=T0,
                            payload=bar, venue="SIM", instrument=BTC))  # fmt: skip
    ctx = StrategyContext("rec", config, BookView(core.book), {}, "USD")
    place = ctx.buy(BTC, 0.5)
    placed = apply(Envelope(source=Source.STRATEGY, producer_id="strategy:rec", producer_seq=1, event_time_ns=T0,
                            payload=place, instrument=BTC))  # fmt: skip
    refused = apply(Envelope(source=Source.STRATEGY, producer_id="strategy:rec", producer_seq=2, event_time_ns=T0,
                             payload=ctx.sell(BTC, 100), instrument=BTC))  # fmt: skip
    venue = SimulatedVenue("SIM", config, CONFIG.matching)
    submit = next(o for o in placed.outputs if type(o).__name__ == "SubmitOrder")
    reports = venue.submit(submit, T0)  # type: ignore[arg-type]
    reports += venue.on_bar(BTC, msgspec.structs.replace(bar, open=3_001_000), T0 + MINUTE)
    fill_records = [
        apply(Envelope(source=Source.BROKER_REPORT, producer_id="venue:SIM", producer_seq=i + 1,
                       event_time_ns=r.time_ns, payload=r.report, venue="SIM", instrument=r.instrument))
        for i, r in enumerate(reports)
    ]  # fmt: skip

    strategy = _Log()
    host = _host(lambda: strategy, config)
    host.on_records(records)
    calls: list[tuple[StrategyCall, Event]] = []
    units = ctx.units[BTC]
    fee_scale = 10.0 ** -config.currencies["USD"].decimals
    calls.append((StrategyCall(hook=StrategyHook.MARKET, seq_id=market.seq_id, event_seq_id=market.seq_id),
                  market_event(market.envelope, units)))  # fmt: skip
    for record in (placed, refused, *fill_records):
        for i, o in enumerate(record.outputs):
            t = times[record.seq_id]
            if isinstance(o, OrderTransitioned):
                event: Event = order_updated(o, t, units)
            elif isinstance(o, FillBooked):
                event = order_filled(o, t, units, fee_scale)
            elif isinstance(o, IntentRejected):
                event = intent_refused(o, t)
            else:
                continue
            call = StrategyCall(hook=StrategyHook.OUTPUT, seq_id=core.seq_id, event_seq_id=record.seq_id, output_index=i)
            calls.append((call, event))
    calls.append((StrategyCall(hook=StrategyHook.SLICE, seq_id=core.seq_id, time_ns=T0 + MINUTE),
                  TimeSliceClosed(T0 + MINUTE)))  # fmt: skip
    kinds = {type(e).__name__ for _, e in calls}
    assert kinds == {"BarClosed", "OrderUpdated", "OrderFilled", "IntentRefused", "TimeSliceClosed"}
    for turn, (call, _) in enumerate(calls, start=1):
        host.on_turn(TurnRequest(peer=PEER, turn=turn, seq_id=call.seq_id, kind="strategy", payload=ENC.encode(call)))
    answers = host.step()
    assert [ANSWER.decode(a.payload) for a in answers] == [StrategyAnswer()] * len(calls)
    assert strategy.events == [e for _, e in calls]


class _Log(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.starts = 0

    def on_start(self, ctx: StrategyContext) -> Any:
        self.starts += 1
        return None

    def on_event(self, ctx: StrategyContext, event: Event) -> Any:
        self.events.append(event)
        return None


# ------------------------------------------------------------------------------------------------
# turn rules


def _request(turn: int, call: StrategyCall | StrategyHelloRequest, seq_id: int = 0) -> TurnRequest:
    return TurnRequest(peer=PEER, turn=turn, seq_id=seq_id, kind="strategy", payload=ENC.encode(call))


START = StrategyCall(hook=StrategyHook.START, seq_id=0)
SLICE = StrategyCall(hook=StrategyHook.SLICE, seq_id=0, time_ns=T0)


class _Buyer(Strategy):
    wants_order_events = False
    strategy_id = "own-id"

    def on_start(self, ctx: StrategyContext) -> Any:
        return ctx.buy(BTC, 1)

    def on_event(self, ctx: StrategyContext, event: Event) -> Any:
        return [ctx.buy(BTC, 1), ctx.sell(BTC, 1)]


def test_hello_names_the_strategy_and_what_it_wants() -> None:
    host = _host(_Buyer, _core_config(_series()))
    host.on_turn(_request(1, StrategyHelloRequest(series=[BTC])))
    [done] = host.step()
    assert done.peer == PEER and done.turn == 1 and done.envelopes == 0
    assert HELLO.decode(done.payload) == StrategyHello(
        strategy_id="own-id", wants_time_slices=False, wants_order_events=False
    )
    other = TurnRequest(peer="strategy-other", turn=2, seq_id=0, kind="strategy", payload=ENC.encode(START))
    host.on_turn(other)
    assert host.step() == []


def test_a_repeated_turn_gets_the_cached_answer_and_an_unknown_one_an_empty_payload() -> None:
    made: list[_Log] = []

    def factory() -> _Log:
        made.append(_Log())
        return made[-1]

    host = _host(factory, _core_config(_series()))
    host.on_turn(_request(1, StrategyHelloRequest()))
    host.on_turn(_request(2, START))
    host.on_turn(_request(3, SLICE))
    first = host.step()
    assert [d.turn for d in first] == [1, 2, 3]
    host.on_turn(_request(3, SLICE))  # the reply was lost: asked again
    assert host.step() == [first[2]]
    assert len(made[0].events) == 1  # not executed twice
    for turn in (5, 2, 99):  # no history for them
        host.on_turn(_request(turn, SLICE))
        assert host.step() == [TurnDone(peer=PEER, turn=turn, payload=b"")]
    assert host.last_turn == 3 and len(made[0].events) == 1
    host.on_turn(_request(4, SLICE))
    assert [d.turn for d in host.step()] == [4]


def test_turn_one_again_starts_over_with_a_fresh_strategy_and_a_resynced_replica() -> None:
    made: list[_Log] = []

    def factory() -> _Log:
        made.append(_Log())
        return made[-1]

    config = _core_config(_series())
    host = _host(factory, config)
    host.on_turn(_request(1, StrategyHelloRequest()))
    host.on_turn(_request(2, START))
    assert len(host.step()) == 2 and made[0].starts == 1
    host.on_turn(_request(1, StrategyHelloRequest()))
    host.on_turn(_request(2, START))
    [hello] = host.step()  # the START waits for the new replica's snapshot
    assert hello.turn == 1 and host.resync_requested and host.resets == 1
    assert len(made) == 2 and made[1].starts == 0
    host.on_snapshot(SequencerCore(config).snapshot())
    [start] = host.step()
    assert start.turn == 2 and made[1].starts == 1 and made[0].starts == 1


def test_a_call_waits_for_the_records_up_to_its_seq_id_and_applies_none_beyond() -> None:
    series = _series()
    config = _core_config(series)
    records = [
        Sequenced(seq_id=i + 1, envelope=(env := msgspec.structs.replace(e, seq_id=i + 1)), outputs=core.apply(env))
        for core in [SequencerCore(config)]
        for i, e in enumerate(list(merge(*series))[:4])
    ]
    host = _host(_Log, config)
    host.on_records(records[:1])
    call = StrategyCall(hook=StrategyHook.MARKET, seq_id=2, event_seq_id=2)
    host.on_turn(_request(1, call, seq_id=2))
    assert host.step() == [] and host.waiting_for == 2
    host.on_records(records[1:])
    [done] = host.step()
    assert ANSWER.decode(done.payload) == StrategyAnswer()
    assert host.session.replica.seq_id == 2 and host.waiting_for is None  # records 3 and 4 wait
    log = host.session.strategy
    assert isinstance(log, _Log) and log.events == [host.session.market_event(records[1])]
    host.on_turn(_request(2, msgspec.structs.replace(call, seq_id=4), seq_id=4))
    assert len(host.step()) == 1 and host.session.replica.seq_id == 4


def test_a_strategy_that_raises_or_returns_junk_is_answered_with_an_error() -> None:
    class Raises(Strategy):
        def on_event(self, ctx: StrategyContext, event: Event) -> Any:
            raise ValueError("boom " * 100)

    class Junk(Strategy):
        def on_event(self, ctx: StrategyContext, event: Event) -> Any:
            return [ctx.buy(BTC, 1), 42]

    config = _core_config(_series())
    host = _host(Raises, config)
    host.on_turn(_request(1, SLICE))
    [done] = host.step()
    error = ANSWER.decode(done.payload).error
    assert error.startswith("strategy rec: test_a_strategy_that_raises_or_returns_junk_is_answered_with_an_error."
                            "<locals>.Raises.on_event raised ValueError: boom boom")  # fmt: skip
    assert error.endswith("... (event time 0, seq 0)") and len(error) <= 256

    host = _host(Junk, config)
    host.on_turn(_request(1, SLICE))
    [done] = host.step()
    assert ANSWER.decode(done.payload) == StrategyAnswer(
        error="strategy rec: returned int 42; on_event must return intents (PlaceOrder, CancelOrder, ...), "
        "a list of them, or None"
    )
    host.on_turn(_request(2, b"junk"))  # type: ignore[arg-type]
    [done] = host.step()
    assert ANSWER.decode(done.payload).error.startswith("turn 2: payload is not a strategy call")


def test_a_backtrader_style_strategy_is_bound_to_the_series_of_the_hello() -> None:
    from examples.strategies.sma_cross_bt import SmaCrossBt

    spec = core_config_for([BTC], CONFIG).instruments[BTC]
    series = [synthetic_bars(300, BTC, spec, seed=7)]
    params = {"fast": 3, "slow": 8, "size": 0.5}
    expected = run_backtest(SmaCrossBt, series, CONFIG, params=params)
    bound: list[list[str]] = []

    def series_for(names: list[str]) -> list[SeriesRef]:
        bound.append(list(names))
        return [SeriesRef(name, MINUTE) for name in names]

    host = _host(lambda: as_native_strategy(SmaCrossBt, params), _core_config(series), series_for=series_for)
    run, _ = _drive(host, series)
    assert bound == [[BTC]]
    assert len(expected.fills) > 4
    assert run.core.state_hash() == expected.state_hash


# ------------------------------------------------------------------------------------------------
# free-running


def _free(strategy: Strategy, config: CoreConfig, snapshot_core: SequencerCore | None = None) -> FreeRunningHost:
    session = StrategySession(strategy, strategy_id="rec", core_config=config, currency="USD", history=0)
    host = FreeRunningHost(session)
    host.on_snapshot((snapshot_core or SequencerCore(config)).snapshot())
    return host


def test_free_running_answers_each_record_and_continues_the_producer_counter_after_a_restart() -> None:
    series = _series()
    config = _core_config(series)
    core = SequencerCore(config)
    market = [msgspec.structs.replace(e, seq_id=0) for e in list(merge(*series))[:6]]

    def publish(env: Envelope) -> Sequenced:
        env = msgspec.structs.replace(env, seq_id=core.seq_id + 1)
        return Sequenced(seq_id=env.seq_id, envelope=env, outputs=core.apply(env))

    class EveryBar(Strategy):
        def on_event(self, ctx: StrategyContext, event: Event) -> Any:
            if isinstance(event, BarClosed) and event.instrument == BTC:
                return ctx.buy(BTC, 0.01)
            return None

    host = _free(EveryBar(), config)
    first = publish(market[0])  # BTC
    assert host.on_records([first], ready=False) == []  # not ready: held
    assert host.pending_events == 1 and not host.started
    sent = host.pump()
    assert host.started and [e.producer_seq for e in sent] == [1]
    env = sent[0]
    assert env.source is Source.STRATEGY and env.producer_id == "strategy:rec"
    assert env.instrument == BTC and env.event_time_ns == first.envelope.event_time_ns
    assert isinstance(env.payload, PlaceOrder) and env.payload.client_order_id == "rec-1"
    placed = publish(env)
    out = host.on_records([placed, publish(market[1]), publish(market[2])], ready=True)
    assert [e.producer_seq for e in out] == [2]  # one BTC bar among them

    # A restarted host: snapshot after intent #1 was applied (#2 was sent but not sequenced).
    restarted = _free(EveryBar(), config, snapshot_core=core)
    assert restarted.on_records([], ready=True) == []  # nothing in the snapshot is acted on
    out = restarted.on_records([publish(market[3]), publish(market[4])], ready=True)
    assert [(e.producer_seq, e.payload.client_order_id) for e in out] == [(2, "rec-2")]


def test_free_running_events_follow_the_runner_order_outputs_first_then_the_market_event() -> None:
    config = _core_config(_series())
    log = _Log()
    host = _free(log, config)
    core = SequencerCore(config)
    ctx = StrategyContext("rec", config, BookView(core.book), {}, "USD")
    refused = Envelope(source=Source.STRATEGY, producer_id="strategy:rec", producer_seq=1, event_time_ns=T0,
                       payload=ctx.sell(BTC, 1), instrument=BTC, seq_id=1)  # fmt: skip
    record = Sequenced(seq_id=1, envelope=refused, outputs=core.apply(refused))
    assert host.on_records([record], ready=True) == []
    assert [type(e).__name__ for e in log.events] == ["IntentRefused"]


@pytest.mark.parametrize("wants", [True, False])
def test_free_running_skips_order_events_a_strategy_does_not_want(wants: bool) -> None:
    class Quiet(_Log):
        wants_order_events = wants

    config = _core_config(_series())
    log = Quiet()
    host = _free(log, config)
    core = SequencerCore(config)
    ctx = StrategyContext("rec", config, BookView(core.book), {}, "USD")
    env = Envelope(source=Source.STRATEGY, producer_id="strategy:rec", producer_seq=1, event_time_ns=T0,
                   payload=ctx.buy(BTC, 0.1, price=100.0), instrument=BTC, seq_id=1)  # fmt: skip
    host.on_records([Sequenced(seq_id=1, envelope=env, outputs=core.apply(env))], ready=True)
    assert [type(e).__name__ for e in log.events] == (["OrderUpdated"] if wants else [])


# ------------------------------------------------------------------------------------------------
# the series of a hello, from the profile


def test_hello_series_take_their_intervals_from_the_profile_or_the_file(tmp_path: Path) -> None:
    bars_csv(tmp_path, GOOD_ROWS, name="BTC-USD_1m.csv")  # no interval written: inferred (1m)
    bars_csv(tmp_path, GOOD_ROWS, name="eth.csv")
    (tmp_path / "strat.py").write_text("class Mine: pass\n")
    (tmp_path / "profile.toml").write_text(
        '[group]\nname = "t"\nrun_dir = "run"\nmode = "backtest"\n\n'
        '[[feeds]]\nname = "files"\nkind = "file"\ndata = ["BTC-USD_1m.csv", "ETH-USD@5m=eth.csv"]\n\n'
        '[[feeds]]\nname = "sol"\nkind = "synthetic"\ninstrument = "SOL-USD"\nseed = 1\ncount = 5\ninterval = "1h"\n\n'
        '[[venues]]\nname = "SIM"\nkind = "paper"\n'
    )
    profile = load_profile(tmp_path / "profile.toml")
    config = core_config_for_profile(profile)
    refs = profile_series(profile, config, ["SOL-USD", BTC, ETH])
    assert refs == [SeriesRef("SOL-USD", 60 * MINUTE), SeriesRef(BTC, MINUTE), SeriesRef(ETH, 5 * MINUTE)]
    with pytest.raises(SeriesError, match="'BTC-USD' is not"):
        profile_series(profile, config, [BTC, BTC])
