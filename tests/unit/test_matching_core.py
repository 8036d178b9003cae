"""The venue's reports, fed back through a real `SequencerCore`, are always legal for it.

A small loop plays the runner's part: intents and market data go to the core as envelopes, the
core's order commands go to the venue, and every venue report comes back as a broker_report
envelope, applied before the market event that caused it. The core must never refuse a report,
never find an illegal transition, never break an invariant, and must end agreeing with the venue
about every order's state and fills.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    PAYLOAD_SOURCE,
    CancelOrder,
    DuplicateDropped,
    Envelope,
    InvariantBroken,
    OrderState,
    OrderType,
    Output,
    Payload,
    PlaceOrder,
    ReplaceOrder,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    Side,
    SubmitOrder,
    TimeInForce,
)
from services.matching import MatchingConfig, OrderStatus, SimulatedVenue
from services.sequencer.core import CoreConfig, SequencerCore
from tests.unit.matching_support import BTC, DAY, MIN, T0, VENUE, bar, core_config, quote, trade

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Envelope)

_WORKING_CORE_STATES = {OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED}
_EXPECTED_CORE_STATE = {
    OrderStatus.FILLED: {OrderState.FILLED},
    OrderStatus.CANCELLED: {OrderState.CANCELLED},
    OrderStatus.EXPIRED: {OrderState.EXPIRED},
    OrderStatus.REJECTED: {OrderState.REJECTED},
    OrderStatus.WORKING: _WORKING_CORE_STATES,
}


class Loop:
    """Core + venue, wired the way the backtest runner wires them."""

    def __init__(self, config: CoreConfig, matching: MatchingConfig) -> None:
        self.core = SequencerCore(config)
        self.venue = SimulatedVenue(VENUE, config, matching)
        self.now = T0
        self.outputs: list[Output] = []
        self._producer_seq: dict[str, int] = {}

    def _apply(self, payload: Payload, producer: str, time_ns: int, instrument: str = "", venue: str = "") -> None:
        work: deque[tuple[Payload, str, int, str, str]] = deque([(payload, producer, time_ns, instrument, venue)])
        while work:
            payload, producer, time_ns, instrument, venue = work.popleft()
            n = self._producer_seq.get(producer, 0) + 1
            self._producer_seq[producer] = n
            env = Envelope(
                source=PAYLOAD_SOURCE[type(payload)],
                producer_id=producer,
                producer_seq=n,
                event_time_ns=time_ns,
                payload=payload,
                venue=venue,
                instrument=instrument,
                seq_id=self.core.seq_id + 1,
            )
            out = self.core.apply(_DECODER.decode(_ENCODER.encode(env)))  # exactly what a socket delivers
            self.outputs.extend(out)
            for o in out:
                reports = []
                if isinstance(o, SubmitOrder):
                    reports = self.venue.submit(o, self.now)
                elif isinstance(o, RequestCancel):
                    reports = self.venue.cancel(o, self.now)
                elif isinstance(o, RequestReplace):
                    reports = self.venue.replace(o, self.now)
                for r in reports:
                    work.append((r.report, f"venue-{VENUE}", r.time_ns, r.instrument, VENUE))

    def _reports(self, reports: list[Any]) -> None:
        for r in reports:
            self._apply(r.report, f"venue-{VENUE}", r.time_ns, r.instrument, VENUE)

    def intent(self, intent: Any) -> None:
        self._apply(intent, f"strategy-{intent.strategy_id}", self.now, getattr(intent, "instrument", ""))

    def market(self, kind: str, data: Any, time_ns: int) -> None:
        self.now = time_ns
        handler = {"bar": self.venue.on_bar, "trade": self.venue.on_trade, "quote": self.venue.on_quote}[kind]
        self._reports(handler(BTC, data, time_ns))  # reports first: the core sees a fill before its cause
        self._apply(data, "feed", time_ns, BTC)

    def settle(self) -> None:
        """Let every command in flight arrive."""
        self.now += self.venue.config.latency_ns + 1
        self._reports(self.venue.advance(self.now))

    def check(self, core_expires_gtd: bool = False) -> None:
        """No refusal, no broken invariant, and core and venue agree on every order.

        Args:
            core_expires_gtd: the venue has no native GTD, so the core expires GTD orders itself
                (and asks the venue to cancel them): those may end expired in the core whatever
                the venue did last.
        """
        bad = [o for o in self.outputs if isinstance(o, ReportRefused | InvariantBroken | DuplicateDropped)]
        assert not bad, bad
        for cid, order in self.core.book.orders.items():
            status = self.venue.order_status(cid)
            assert status is not None, f"{cid} never reached the venue"
            venue_status, quantity, filled = status
            expected = _EXPECTED_CORE_STATE[venue_status]
            if core_expires_gtd and order.intent.time_in_force is TimeInForce.GTD:
                expected = expected | {OrderState.EXPIRED}
            assert order.state in expected, (cid, venue_status, order.state)
            assert order.filled_quantity == filled, (cid, order.filled_quantity, filled)
            assert order.quantity == quantity, (cid, order.quantity, quantity)


def place(cid: str, side: str = "buy", order_type: str = "limit", quantity: int = 100, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        strategy_id="s1",
        client_order_id=cid,
        instrument=BTC,
        side=Side(side),
        order_type=OrderType(order_type),
        quantity=quantity,
        **kw,
    )


def test_a_bracket_with_latency_partial_fills_and_cancel_races_is_legal_for_the_core() -> None:
    loop = Loop(core_config(), MatchingConfig(latency_ns=1_000, volume_share="0.5", taker_fee="0.001"))
    loop.market("bar", bar(100, 101, 99, 100, volume=400), T0)
    loop.intent(place("p", order_type="market", quantity=200))
    loop.intent(place("tp", side="sell", quantity=200, price=110, parent_client_order_id="p"))
    loop.intent(place("sl", side="sell", order_type="stop", quantity=200, stop_price=90, parent_client_order_id="p"))
    loop.intent(place("rest", quantity=100, price=95, time_in_force=TimeInForce.DAY))
    loop.market("bar", bar(100, 105, 99, 104, volume=400), T0 + MIN)  # opened before p arrived: skipped
    loop.market("bar", bar(104, 105, 99, 104, volume=200), T0 + 2 * MIN)  # p fills 100 (half of 200)
    loop.market("bar", bar(111, 112, 110, 111, volume=1_000), T0 + 3 * MIN)  # p filled: children next
    loop.market("bar", bar(104, 112, 103, 111, volume=200), T0 + 4 * MIN)  # tp fills 100, sl cancelled (oco)
    loop.intent(CancelOrder(strategy_id="s1", client_order_id="tp"))  # in flight...
    loop.market("bar", bar(111, 115, 110, 114, volume=1_000), T0 + 5 * MIN)  # ...lands before this bar
    loop.intent(ReplaceOrder(strategy_id="s1", client_order_id="rest", quantity=300, price=96))
    loop.market("bar", bar(100, 100, 90, 95, volume=1_000), T0 + DAY + MIN)  # rest expired (DAY) first
    loop.settle()
    loop.check()
    states = {cid: o.state for cid, o in loop.core.book.orders.items()}
    assert states == {
        "p": OrderState.FILLED,
        "tp": OrderState.CANCELLED,
        "sl": OrderState.CANCELLED,
        "rest": OrderState.EXPIRED,
    }
    assert loop.core.book.orders["tp"].filled_quantity == 100


def test_fill_racing_a_cancel_and_a_replace_ends_filled_in_the_core() -> None:
    loop = Loop(core_config(), MatchingConfig(latency_ns=2 * MIN))
    loop.market("bar", bar(100, 101, 99, 100), T0)
    loop.intent(place("a", price=99))  # arrives at T0 + 2 min
    loop.intent(place("b", price=98))
    loop.market("bar", bar(100, 101, 99, 100), T0 + MIN)
    loop.market("bar", bar(100, 101, 99, 100), T0 + 2 * MIN)  # opened before they arrived: skipped
    loop.intent(CancelOrder(strategy_id="s1", client_order_id="a"))  # arrive at T0 + 4 min
    loop.intent(ReplaceOrder(strategy_id="s1", client_order_id="b", quantity=150))
    loop.market("bar", bar(97, 101, 96, 100), T0 + 3 * MIN)  # both fill at the open (gap)
    loop.settle()
    loop.check()
    assert loop.core.book.orders["a"].state is OrderState.FILLED
    assert loop.core.book.orders["b"].state is OrderState.FILLED
    assert loop.core.book.orders["b"].quantity == 100  # the replace came too late
    assert loop.venue.order_status("a") == ("filled", 100, 100)


def test_children_of_a_partly_filled_parent_are_resized_legally() -> None:
    loop = Loop(core_config(), MatchingConfig(volume_share="0.5"))
    loop.market("bar", bar(100, 101, 99, 100, volume=100), T0)
    loop.intent(place("p", order_type="market", quantity=200, time_in_force=TimeInForce.IOC))
    loop.intent(place("tp", side="sell", quantity=200, price=110, parent_client_order_id="p"))
    loop.market("bar", bar(100, 101, 99, 100, volume=100), T0 + MIN)  # p fills 50, rest cancelled
    loop.check()
    assert loop.core.book.orders["tp"].quantity == 50


# ---------------------------------------------------------------------- random scenarios

_TYPES = ("market", "limit", "stop", "stop_limit")
_TIFS = ("gtc", "ioc", "fok", "day", "gtd")


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[MatchingConfig, bool, list[tuple[str, Any]]]:
    share = draw(st.sampled_from([None, "0.3", "1"]))
    config = MatchingConfig(
        fill_market_on=draw(st.sampled_from(["next_open", "close"])),
        latency_ns=draw(st.sampled_from([0, 1, MIN // 2, 2 * MIN])),
        volume_share=share,
        taker_fee=draw(st.sampled_from(["0", "0.0015"])),
        slippage_bps=draw(st.sampled_from(["0", "7.5"])),
    )
    native_gtd = draw(st.booleans())
    linked = True
    steps: list[tuple[str, Any]] = []
    n_orders = 0
    for _ in range(draw(st.integers(5, 30))):
        kind = draw(st.sampled_from(["place", "place", "market", "market", "market", "cancel", "replace"]))
        if kind == "place":
            n_orders += 1
            otype = draw(st.sampled_from(_TYPES))
            side = draw(st.sampled_from(["buy", "sell"]))
            price = draw(st.integers(90, 110)) if otype in ("limit", "stop_limit") else None
            stop = draw(st.integers(90, 110)) if otype in ("stop", "stop_limit") else None
            tif = draw(st.sampled_from(_TIFS))
            link = draw(st.sampled_from(["none", "none", "child", "oco"])) if linked else "none"
            steps.append(
                (
                    "place",
                    dict(
                        cid=f"o{n_orders}",
                        otype=otype,
                        side=side,
                        price=price,
                        stop=stop,
                        tif=tif,
                        qty=draw(st.integers(1, 300)),
                        post_only=otype == "limit" and draw(st.booleans()),
                        link=link,
                        expire=draw(st.integers(1, 5 * MIN)),
                    ),
                )
            )
        elif kind == "market":
            data = draw(st.sampled_from(["bar", "bar", "trade", "quote"]))
            mid = draw(st.integers(90, 110))
            steps.append(("market", (data, mid, draw(st.integers(0, 400)), draw(st.integers(0, 6)))))
        elif n_orders:
            steps.append(
                (kind, (f"o{draw(st.integers(1, n_orders))}", draw(st.integers(1, 300)), draw(st.integers(90, 110))))
            )
    return config, native_gtd, steps


def _play(config: MatchingConfig, native_gtd: bool, steps: list[tuple[str, Any]]) -> Loop:
    loop = Loop(core_config(native_gtd=native_gtd), config)
    now = T0
    last_buy: str | None = None
    for kind, arg in steps:
        if kind == "place":
            link: dict[str, Any] = {}
            if arg["link"] == "child" and last_buy is not None and arg["side"] == "sell":
                parent = loop.core.book.open_orders.get(last_buy)
                if parent is not None and parent.intent.parent_client_order_id is None:
                    link = dict(parent_client_order_id=last_buy, quantity=min(arg["qty"], parent.quantity))
            elif arg["link"] == "oco":
                link = dict(oco_group="g1")
            intent = place(
                arg["cid"],
                side=arg["side"],
                order_type=arg["otype"],
                quantity=link.pop("quantity", arg["qty"]),
                price=arg["price"],
                stop_price=arg["stop"],
                time_in_force=TimeInForce(arg["tif"]),
                expire_time_ns=now + arg["expire"] if arg["tif"] == "gtd" else None,
                post_only=arg["post_only"],
                **link,
            )
            loop.intent(intent)
            if arg["side"] == "buy":
                last_buy = arg["cid"]
        elif kind == "market":
            data, mid, volume, spread = arg
            now += MIN
            if data == "bar":
                loop.market("bar", bar(mid, mid + spread, mid - spread, mid + spread // 2, volume=volume), now)
            elif data == "trade":
                loop.market("trade", trade(mid, max(volume, 1)), now)
            else:
                loop.market("quote", quote(mid - spread, mid + spread, volume, volume // 2), now)
        elif kind == "cancel":
            loop.intent(CancelOrder(strategy_id="s1", client_order_id=arg[0]))
        else:
            order = loop.core.book.orders.get(arg[0])
            price = arg[2] if order is not None and order.price is not None else None
            loop.intent(ReplaceOrder(strategy_id="s1", client_order_id=arg[0], quantity=arg[1], price=price))
    loop.settle()
    loop.now += 2 * DAY  # past every DAY and GTD expiry
    loop.market("trade", trade(100, 1), loop.now)
    return loop


@given(_scenario())
def test_random_scenarios_stay_legal_for_the_core(scenario: tuple[MatchingConfig, bool, list[tuple[str, Any]]]) -> None:
    config, native_gtd, steps = scenario
    loop = _play(config, native_gtd, steps)
    bad = [o for o in loop.outputs if isinstance(o, ReportRefused | InvariantBroken | DuplicateDropped)]
    assert not bad, bad
    loop.check(core_expires_gtd=not native_gtd)


def test_the_same_scenario_gives_the_same_reports() -> None:
    config = MatchingConfig(latency_ns=5, volume_share="0.3", taker_fee="0.001")
    steps: list[tuple[str, Any]] = [
        (
            "place",
            dict(
                cid="o1",
                otype="limit",
                side="buy",
                price=99,
                stop=None,
                tif="gtc",
                qty=250,
                post_only=False,
                link="none",
                expire=1,
            ),
        ),
        (
            "place",
            dict(
                cid="o2",
                otype="stop",
                side="sell",
                price=None,
                stop=97,
                tif="day",
                qty=120,
                post_only=False,
                link="oco",
                expire=1,
            ),
        ),
        ("market", ("bar", 98, 100, 3)),
        ("market", ("trade", 96, 50, 0)),
        ("market", ("quote", 99, 500, 2)),
    ]
    a = _play(config, True, steps).outputs
    b = _play(config, True, steps).outputs
    assert a == b
    assert any(type(o).__name__ == "FillBooked" for o in a)
