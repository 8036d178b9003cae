"""Named scenarios for the golden-trace contract: each builds a config and an envelope stream,
and states the behaviour it pins down as explicit assertions.

The golden files under golden/traces/<name>/ are the same scenarios frozen as data (config,
input envelopes, canonical trace, final state), so another implementation of the core can be
checked against them without running Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import (
    AdjustCash,
    CancelRejectedReport,
    DuplicateDropped,
    Envelope,
    FillBooked,
    HaltTrading,
    IntentRejected,
    NoOp,
    OrderExpiredReport,
    OrderReplacedReport,
    OrderTransitioned,
    Output,
    PlaceOrder,
    ProducerGap,
    ReplaceOrder,
    ReplaceRejectedReport,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    ResumeTrading,
    RiskFlag,
    SetRiskFlag,
    Source,
    SubmissionUnknownReport,
    SubmitOrder,
)
from services.sequencer.core import (
    AccountConfig,
    CoreConfig,
    OrderRateLimit,
    RiskConfig,
    SequencerCore,
)
from services.sequencer.scenario import MINUTE_NS, T0_NS, Scenario, demo_config

BTC = "BTC-USD"
PX = 4_200_000  # 42,000.00 USD
ONE = 1_0000  # 1 BTC in size units


@dataclass
class Run:
    """The result of running a scenario: every output per seq id, and the core."""

    core: SequencerCore
    outputs: list[Output]

    def at(self, seq_id: int) -> list[Output]:
        return [o for o in self.outputs if o.seq_id == seq_id]

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, kind)]

    def states(self, cid: str) -> list[str]:
        """The order's path through the machine, as 'event:from->to' strings."""
        return [
            f"{o.event.value}:{o.from_state.value}->{o.to_state.value}"
            for o in self.of(OrderTransitioned)
            if o.client_order_id == cid
        ]

    def rejections(self) -> list[str]:
        return [o.reason.value for o in self.of(IntentRejected)]

    def order(self, cid: str) -> Any:
        return self.core.book.orders[cid]

    def position(self, instrument: str = BTC) -> int:
        pos = self.core.book.portfolio.positions.get(instrument)
        return 0 if pos is None else pos.quantity

    def cash(self, currency: str = "USD") -> int:
        return self.core.book.portfolio.cash[currency].balance


def run(config: CoreConfig, envelopes: list[Envelope]) -> Run:
    core = SequencerCore(config)
    outputs: list[Output] = []
    for env in envelopes:
        outputs.extend(core.apply(env))
    return Run(core, outputs)


@dataclass
class GoldenScenario:
    name: str
    build: Callable[[], tuple[CoreConfig, Scenario]]
    check: Callable[[Run], None]


SCENARIOS: dict[str, GoldenScenario] = {}


def scenario(fn: Callable[[], tuple[CoreConfig, Scenario]]) -> Callable[[Callable[[Run], None]], None]:
    def register(check: Callable[[Run], None]) -> None:
        name = fn.__name__.removeprefix("build_")
        SCENARIOS[name] = GoldenScenario(name, fn, check)

    return register


# ---------------------------------------------------------------- lifecycle


def build_partial_fills_to_completion() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1", quantity=ONE)
    sc.accept("o1")
    sc.advance().fill("o1", "t1", 2500, PX - 100, fee=1000)
    sc.advance().fill("o1", "t2", 2500, PX, fee=1000)
    sc.advance().fill("o1", "t3", 5000, PX + 100, fee=2000)
    sc.place("o2", side="sell", quantity=4000, price=PX + 5000)
    sc.accept("o2")
    sc.fill("o2", "t4", 4000, PX + 5000, fee=500)
    return demo_config(), sc


@scenario(build_partial_fills_to_completion)
def check_partial_fills_to_completion(r: Run) -> None:
    assert r.states("o1") == [
        "submit:created->submitted",
        "accept:submitted->accepted",
        "partial_fill:accepted->partially_filled",
        "partial_fill:partially_filled->partially_filled",
        "full_fill:partially_filled->filled",
    ]
    assert r.order("o1").filled_quantity == ONE
    assert r.position() == ONE - 4000
    # bought 2500@41999 + 2500@42000 + 5000@42001 (cents x 1e-4 BTC x 1e0 -> 1e-6 USD)
    bought = (2500 * (PX - 100) + 2500 * PX + 5000 * (PX + 100)) * 1
    sold = 4000 * (PX + 5000)
    assert r.cash() == 1_000_000 * 10**6 - bought + sold - 4500
    # realized on the 4000 sold: proceeds - cost removed (floor of cost * 4000 / 10000)
    cost_removed = bought * 4000 // ONE
    assert r.of(FillBooked)[-1].realized_pnl == sold - cost_removed


def build_fill_before_ack() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1")
    sc.fill("o1", "t1", 4000, PX)  # the venue's fill overtakes its own acknowledgement
    sc.accept("o1")  # late ack: a recorded no-op
    sc.fill("o1", "t2", 6000, PX)
    return demo_config(), sc


@scenario(build_fill_before_ack)
def check_fill_before_ack(r: Run) -> None:
    assert r.states("o1") == [
        "submit:created->submitted",
        "accept:submitted->accepted",  # implied by the fill, written first
        "partial_fill:accepted->partially_filled",
        "accept:partially_filled->partially_filled",
        "full_fill:partially_filled->filled",
    ]
    implied = [o for o in r.of(OrderTransitioned) if o.note.startswith("implied")]
    assert len(implied) == 1 and implied[0].seq_id == 3
    assert r.position() == ONE


def build_cancel_ack_races_fill() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1")
    sc.accept("o1")
    sc.cancel("o1")
    sc.fill("o1", "t1", ONE, PX)  # the whole order filled before the cancel landed
    sc.cancelled("o1")  # cancel ack raced the fill
    sc.report(CancelRejectedReport(client_order_id="o1", reason="too late"))
    return demo_config(), sc


@scenario(build_cancel_ack_races_fill)
def check_cancel_ack_races_fill(r: Run) -> None:
    assert r.states("o1") == [
        "submit:created->submitted",
        "accept:submitted->accepted",
        "cancel_request:accepted->cancel_pending",
        "full_fill:cancel_pending->filled",
        "cancel_ack:filled->filled",
        "cancel_reject:filled->filled",
    ]
    assert len(r.of(RequestCancel)) == 1
    assert r.position() == ONE


def build_late_fill_after_cancel() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1")
    sc.accept("o1")
    sc.fill("o1", "t1", 3000, PX)
    sc.cancel("o1")
    sc.fill("o1", "t2", 2000, PX)  # partial fill while the cancel is pending
    sc.cancelled("o1")
    sc.fill("o1", "t3", 1000, PX)  # late fill: money moved at the venue
    return demo_config(), sc


@scenario(build_late_fill_after_cancel)
def check_late_fill_after_cancel(r: Run) -> None:
    assert r.states("o1") == [
        "submit:created->submitted",
        "accept:submitted->accepted",
        "partial_fill:accepted->partially_filled",
        "cancel_request:partially_filled->cancel_pending",
        "partial_fill:cancel_pending->cancel_pending",
        "cancel_ack:cancel_pending->cancelled",
        "partial_fill:cancelled->cancelled",
    ]
    fills = r.of(FillBooked)
    assert [f.late for f in fills] == [False, False, True]
    assert r.position() == 6000
    assert r.order("o1").state == "cancelled"


def build_unknown_and_illegal_reports() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.fill("ghost", "t0", ONE, PX)  # report for an order nobody placed
    sc.place("o1")
    sc.reject("o1")
    sc.fill("o1", "t1", ONE, PX)  # fill on a rejected order: the venue contradicts itself
    sc.place("o2")
    sc.accept("o2")
    sc.fill("o2", "t2", ONE + 1, PX)  # overfill
    # A venue may resize a working order on its own (a bracket child after a partial parent), but
    # not a rejected one.
    sc.report(OrderReplacedReport(client_order_id="o1", quantity=ONE))
    sc.report(SubmissionUnknownReport(client_order_id="o2"))  # not submitted any more
    sc.accept("o2", venue="PM")  # a report from the wrong venue
    return demo_config(), sc


@scenario(build_unknown_and_illegal_reports)
def check_unknown_and_illegal_reports(r: Run) -> None:
    reasons = [o.reason.value for o in r.of(ReportRefused)]
    assert reasons == [
        "unknown_order",
        "illegal_transition",
        "overfill",
        "illegal_transition",
        "illegal_transition",
        "venue_mismatch",
    ]
    refused = r.of(ReportRefused)
    assert "'rejected'" in refused[1].detail and "full_fill" in refused[1].detail
    assert r.position() == 0 and not r.of(FillBooked)
    assert r.order("o2").state == "accepted"


def build_duplicates() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    place = sc.place("o1")
    sc.emit(place.payload, producer="strategy-s1", instrument=BTC, producer_seq=place.producer_seq)  # re-delivery
    sc.accept("o1")
    fill = sc.fill("o1", "t1", 5000, PX)
    sc.fill("o1", "t1", 5000, PX)  # same venue trade id, new envelope: deduped by trade id
    sc.emit(fill.payload, producer="venue-SIM", venue="SIM", producer_seq=fill.producer_seq)  # same counter
    # Same client order id, different quantity: refused, original untouched (RELIABILITY B3).
    sc.emit(
        PlaceOrder(strategy_id="s1", client_order_id="o1", instrument=BTC, side="buy", order_type="limit",
                   quantity=2 * ONE, price=PX),
        producer="strategy-s1",
        instrument=BTC,
    )
    # Same client order id, same content, new counter: answered as a duplicate.
    sc.emit(place.payload, producer="strategy-s1", instrument=BTC)
    # Idempotency keys on reports: same content is a no-op, other content is refused.
    sc.report(CancelRejectedReport(client_order_id="o1", reason="x"), idempotency_key="k1")
    sc.report(CancelRejectedReport(client_order_id="o1", reason="x"), idempotency_key="k1")
    sc.report(CancelRejectedReport(client_order_id="o1", reason="y"), idempotency_key="k1")
    sc.emit(NoOp(strategy_id="s1"), producer="strategy-s1", producer_seq=10)  # a gap: 4..9 never came
    return demo_config(), sc


@scenario(build_duplicates)
def check_duplicates(r: Run) -> None:
    dups = r.of(DuplicateDropped)
    assert [d.seq_id for d in dups] == [3, 6, 7, 9, 11]
    assert "trade SIM/t1" in dups[1].key
    assert r.order("o1").quantity == ONE and r.order("o1").filled_quantity == 5000
    rej = r.of(IntentRejected)
    assert [x.reason.value for x in rej] == ["duplicate_client_order_id"]
    assert "quantity: 10000 -> 20000" in rej[0].detail
    refused = r.of(ReportRefused)
    assert [x.reason.value for x in refused] == ["illegal_transition", "conflicting_duplicate"]
    assert "reason: 'x' -> 'y'" in refused[1].detail
    gaps = r.of(ProducerGap)
    assert [(g.expected_seq, g.received_seq) for g in gaps] == [(4, 10)]


def build_in_doubt_settled() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1")
    sc.report(SubmissionUnknownReport(client_order_id="o1", reason="timeout after send"))
    sc.accept("o1")
    sc.place("o2")
    sc.report(SubmissionUnknownReport(client_order_id="o2", reason="timeout after send"))
    sc.reject("o2", reason="unknown order at venue")
    sc.place("o3")
    sc.report(SubmissionUnknownReport(client_order_id="o3"))
    sc.fill("o3", "t3", ONE, PX)
    return demo_config(), sc


@scenario(build_in_doubt_settled)
def check_in_doubt_settled(r: Run) -> None:
    assert r.states("o1")[1:] == ["submission_unknown:submitted->in_doubt", "accept:in_doubt->accepted"]
    assert r.states("o2")[1:] == ["submission_unknown:submitted->in_doubt", "reject:in_doubt->rejected"]
    assert r.states("o3")[1:] == [
        "submission_unknown:submitted->in_doubt",
        "accept:in_doubt->accepted",
        "full_fill:accepted->filled",
    ]
    assert len(r.of(SubmitOrder)) == 3  # nothing was resent


# ---------------------------------------------------------------- replace and expiry


def build_replace() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1", price=PX - 1000)
    sc.accept("o1")
    sc.fill("o1", "t1", 2000, PX - 1000)
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="o1", quantity=2 * ONE, price=PX - 500), producer="strategy-s1")
    sc.fill("o1", "t2", 1000, PX - 1000)  # fill while replace pending: old terms
    sc.report(OrderReplacedReport(client_order_id="o1", quantity=2 * ONE, price=PX - 500))
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="o1", price=PX - 400), producer="strategy-s1")
    sc.report(ReplaceRejectedReport(client_order_id="o1", reason="price moved"))
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="o1"), producer="strategy-s1")  # nothing to change
    sc.place("p1", instrument="PRES-YES", price=40, quantity=10)
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="p1", price=45), producer="strategy-s1")
    return demo_config(), sc


@scenario(build_replace)
def check_replace(r: Run) -> None:
    assert r.states("o1")[3:] == [
        "replace_request:partially_filled->replace_pending",
        "partial_fill:replace_pending->replace_pending",
        "replace_ack:replace_pending->partially_filled",
        "replace_request:partially_filled->replace_pending",
        "replace_reject:replace_pending->partially_filled",
    ]
    o1 = r.order("o1")
    assert (o1.quantity, o1.price, o1.filled_quantity) == (2 * ONE, PX - 500, 3000)
    assert [c.quantity for c in r.of(RequestReplace)] == [2 * ONE, 2 * ONE]
    assert r.rejections() == ["nothing_to_change", "replace_unsupported"]


def build_expiry() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("gtd1", time_in_force="gtd", expire_time_ns=T0_NS + 5 * MINUTE_NS)
    sc.accept("gtd1")
    sc.advance(4 * MINUTE_NS).timer()  # not yet
    sc.advance(1 * MINUTE_NS).timer()  # due: the core expires it (SIM has no native GTD)
    sc.cancelled("gtd1")  # the venue confirms the cancel the core sent
    sc.fill("gtd1", "t1", 1000, PX)  # a fill that was in flight: late, booked
    sc.place("pm1", instrument="PRES-YES", price=40, quantity=10)
    sc.accept("pm1", venue="PM")
    sc.report(OrderExpiredReport(client_order_id="pm1"), venue="PM")  # venue-side expiry
    sc.place("gtd2", time_in_force="gtd", expire_time_ns=T0_NS)  # already in the past
    return demo_config(), sc


@scenario(build_expiry)
def check_expiry(r: Run) -> None:
    assert r.states("gtd1")[2:] == [
        "expire:accepted->expired",
        "cancel_ack:expired->expired",
        "partial_fill:expired->expired",
    ]
    expire_row = next(o for o in r.of(OrderTransitioned) if o.event == "expire" and o.client_order_id == "gtd1")
    timer_seq = 5
    assert expire_row.seq_id == timer_seq
    assert [c.client_order_id for c in r.of(RequestCancel)] == ["gtd1"]
    assert r.states("pm1")[-1] == "expire:accepted->expired"
    assert r.rejections() == ["already_expired"]
    assert r.of(FillBooked)[0].late


# ---------------------------------------------------------------- risk guards and capabilities


def _risky_config() -> CoreConfig:
    return demo_config(
        risk=RiskConfig(
            max_order_quantity={BTC: 5 * ONE},
            max_position={BTC: 8 * ONE},
            max_order_notional={"USD": 250_000 * 10**6},
            max_open_orders=3,
            price_band_bps=500,
            order_rate=OrderRateLimit(max_orders=4, interval_ns=MINUTE_NS),
        )
    )


def build_risk_guards() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.place("nr1")  # no last trade yet: the band has no reference
    sc.trade(BTC, PX)
    sc.place("q1", quantity=6 * ONE)  # > max_order_quantity
    sc.place("n1", quantity=5 * ONE, price=PX + 100_000)  # 5 x 43,000 = 215,000 < 250,000: ok notional, band 2.4%
    sc.place("b1", price=PX + 300_000)  # 7.1% away from the last trade
    sc.place("p1", quantity=4 * ONE)  # position would reach 9 > 8 (5 open + 4)
    sc.place("o2", quantity=ONE)
    sc.place("o3", quantity=ONE, side="sell")  # no position to sell (no margin)
    sc.place("o4", quantity=ONE // 2)
    sc.place("o5", quantity=ONE // 2)  # 4th open order: max_open_orders is 3
    sc.advance(2 * MINUTE_NS)
    sc.cancel("o4")
    sc.cancelled("o4")
    sc.place("o6", quantity=ONE // 2, reduce_only=True)  # reduce-only with no position
    for i in range(4):
        sc.cancel(f"{['o2', 'o6', 'n1', 'o2'][i]}")
    sc.cancelled("o2")
    sc.cancelled("n1")
    for i in range(5):
        sc.place(f"r{i}", quantity=100)  # 4 per minute, the 5th is over the rate
    return _risky_config(), sc


@scenario(build_risk_guards)
def check_risk_guards(r: Run) -> None:
    assert r.rejections() == [
        "no_reference_price",
        "max_order_quantity",
        "price_band",
        "max_position",
        "insufficient_position",
        "max_open_orders",
        "reduce_only",
        "unknown_order",  # o6 was refused, so there is nothing to cancel
        "illegal_transition",  # o2 already cancel pending
        "max_open_orders",  # r3: 3 open again (r0..r2)
        "max_open_orders",
    ]


def build_rate_limit() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    for i in range(6):
        sc.advance(10 * 10**9).place(f"r{i}", quantity=100)
    sc.advance(MINUTE_NS).place("later", quantity=100)
    cfg = demo_config(risk=RiskConfig(order_rate=OrderRateLimit(max_orders=4, interval_ns=MINUTE_NS)))
    return cfg, sc


@scenario(build_rate_limit)
def check_rate_limit(r: Run) -> None:
    assert r.rejections() == ["order_rate", "order_rate"]
    assert [o.client_order_id for o in r.of(SubmitOrder)] == ["r0", "r1", "r2", "r3", "later"]


def build_kill_switch() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("o1")
    sc.accept("o1")
    sc.emit(SetRiskFlag(strategy_id="s1", flag=RiskFlag.HALT, enabled=True, reason="drawdown"), producer="strategy-s1")
    sc.place("o2")  # refused: strategy halted
    sc.place("x1", strategy="s2")  # another strategy still trades
    sc.cancel("o1")  # cancels still pass while halted
    sc.emit(SetRiskFlag(strategy_id="s1", flag=RiskFlag.HALT, enabled=False), producer="strategy-s1")
    sc.emit(HaltTrading(reason="operator"), producer="control")
    sc.place("o3")
    sc.place("x2", strategy="s2")
    sc.emit(ResumeTrading(reason="operator"), producer="control")
    sc.place("o4")
    return demo_config(), sc


@scenario(build_kill_switch)
def check_kill_switch(r: Run) -> None:
    assert r.rejections() == ["halted", "halted", "halted"]
    assert [o.client_order_id for o in r.of(SubmitOrder)] == ["o1", "x1", "o4"]
    assert len(r.of(RequestCancel)) == 1


def build_capabilities() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.trade("PRES-YES", 50)
    sc.place("c1", instrument="PRES-YES", order_type="market", price=None, quantity=10)  # PM: limit only
    sc.place("c2", instrument="PRES-YES", price=100, quantity=10)  # (0, 1) exclusive: 1.00 is out
    sc.place("c3", instrument="PRES-YES", price=0, quantity=10)
    sc.place("c4", instrument="PRES-YES", price=40, quantity=10, time_in_force="fok")
    sc.place("c5", instrument="PRES-YES", price=40, quantity=10, post_only=True)
    sc.place("c6", instrument="PRES-YES", price=99, quantity=10)  # fine
    sc.place("c7", order_type="limit", price=None)  # limit without price
    sc.place("c8", order_type="market", price=PX)  # market with a price
    sc.place("c9", instrument="ETH-USD")
    sc.place("c10", order_type="stop", price=None)  # stop without stop_price
    sc.emit(
        PlaceOrder(strategy_id="s1", client_order_id="c11", instrument=BTC, side="buy", order_type="limit",
                   quantity=ONE, price=PX),
        producer="strategy-s1",
        instrument="PRES-YES",  # the envelope says one instrument, the intent another
    )
    sc.emit(
        PlaceOrder(strategy_id="s1", client_order_id="c12", instrument=BTC, side="buy", order_type="limit",
                   quantity=ONE, price=PX),
        producer="feed",
        source=Source.MARKET_DATA,  # a feed cannot place orders
    )
    cfg = demo_config()
    cfg = cfg.model_copy(
        update={"instruments": {**cfg.instruments, BTC: cfg.instruments[BTC].model_copy(
            update={"tick_size": 100, "lot_size": 10, "min_notional": 100 * 10**6})}}
    )
    sc.place("c13", price=PX + 50)  # tick 1.00 USD
    sc.place("c14", quantity=ONE + 5)  # lot 0.001 BTC
    sc.place("c15", quantity=10)  # 0.001 BTC x 42,000 = 42 USD < 100 USD min notional
    sc.emit(AdjustCash(currency="EUR", amount=5), producer="control")
    sc.emit(AdjustCash(currency="USD", amount=-2_000_000 * 10**6), producer="control")
    sc.emit(AdjustCash(currency="USD", amount=1_000 * 10**6, reason="deposit"), producer="control")
    return CoreConfig.model_validate(cfg.model_dump()), sc


@scenario(build_capabilities)
def check_capabilities(r: Run) -> None:
    assert r.rejections() == [
        "order_type_unsupported",
        "price_out_of_bounds",
        "price_out_of_bounds",
        "time_in_force_unsupported",
        "post_only_unsupported",
        "missing_price",
        "unexpected_price",
        "unknown_instrument",
        "missing_price",
        "envelope_mismatch",
        "source_mismatch",
        "tick_size",
        "lot_size",
        "min_notional",
    ]
    assert [o.client_order_id for o in r.of(SubmitOrder)] == ["c6"]
    assert [o.reason.value for o in r.of(ReportRefused)] == ["unknown_currency", "insufficient_cash"]
    assert r.cash() == 1_001_000 * 10**6


def build_short_and_flip_with_margin() -> tuple[CoreConfig, Scenario]:
    sc = Scenario()
    sc.trade(BTC, PX)
    sc.place("s1", side="sell", quantity=2 * ONE, price=PX)
    sc.fill("s1", "t1", 2 * ONE, PX, fee=10)
    sc.place("b1", side="buy", quantity=3 * ONE, price=PX - 200_000)
    sc.fill("b1", "t2", 3 * ONE, PX - 200_000, fee=10)  # closes the short at a profit, flips long 1
    sc.place("s2", side="sell", quantity=ONE, price=PX - 100_000)
    sc.fill("s2", "t3", ONE, PX - 100_000, fee=10)  # back to flat
    return demo_config(account=AccountConfig(initial_cash={"USD": 0}, margin=True)), sc


@scenario(build_short_and_flip_with_margin)
def check_short_and_flip_with_margin(r: Run) -> None:
    fills = r.of(FillBooked)
    assert [f.position_quantity for f in fills] == [-2 * ONE, ONE, 0]
    assert fills[1].realized_pnl == 2 * ONE * 200_000  # 2 BTC x 2,000 USD, in 1e-6 USD
    assert fills[2].realized_pnl == ONE * 100_000
    pos = r.core.book.portfolio.positions[BTC]
    assert pos.cost == 0 and pos.realized_pnl == 5_000 * 10**6
    assert r.cash() == 5_000 * 10**6 - 30


SCENARIO_NAMES = sorted(SCENARIOS)
