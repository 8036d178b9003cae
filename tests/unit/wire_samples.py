"""One valid instance of every wire struct, with every optional field set, for unit tests.

Unlike the golden cases in tests/contracts/test_schema_evolution.py (history, never edited),
these may change with the structs: they are today's idea of a representative message.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas import (
    PAYLOAD_SOURCE,
    AdjustCash,
    Bar,
    CancelOrder,
    CancelRejectedReport,
    CashAdjusted,
    CashSnapshot,
    CoreSnapshot,
    DuplicateDropped,
    Envelope,
    FillBooked,
    FillReport,
    HaltTrading,
    IdempotencyEntry,
    IntentRejected,
    InvariantBroken,
    Liquidity,
    NoOp,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderEvent,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    OrderSnapshot,
    OrderState,
    OrderTransitioned,
    OrderType,
    Output,
    Payload,
    PlaceOrder,
    PositionSnapshot,
    ProducerGap,
    ProducerSnapshot,
    Quote,
    RefusalReason,
    RejectReason,
    ReplaceOrder,
    ReplaceRejectedReport,
    ReportRefused,
    RequestCancel,
    RequestReplace,
    ResumeTrading,
    RiskFlag,
    RiskFlagChanged,
    SetRiskFlag,
    Side,
    StrategyRiskSnapshot,
    SubmissionUnknownReport,
    SubmitOrder,
    TimeInForce,
    Timer,
    Trade,
    TradeIdEntry,
)

__all__ = ["ENVELOPES", "OUTPUTS", "PAYLOADS", "PX", "SNAPSHOT", "T0", "envelope_for", "tag"]

T0 = 1_704_067_200_000_000_000
PX = 4_200_000

PLACE = PlaceOrder(
    strategy_id="s1",
    client_order_id="c1",
    instrument="BTC-USD",
    side=Side.SELL,
    order_type=OrderType.STOP_LIMIT,
    quantity=10_000,
    price=PX,
    stop_price=PX + 50,
    time_in_force=TimeInForce.GTD,
    expire_time_ns=T0 + 1,
    reduce_only=True,
    post_only=True,
)

PAYLOADS: list[Any] = [
    Bar(open=PX, high=PX + 9, low=PX - 7, close=PX + 1, volume=12, interval_ns=1_000_000_000),
    Trade(price=PX, quantity=3, aggressor=Side.BUY, trade_id="p-1"),
    Quote(bid_price=PX - 1, bid_size=7, ask_price=PX + 1, ask_size=5),
    OrderAcceptedReport(client_order_id="c1", venue_order_id="v-1"),
    OrderRejectedReport(client_order_id="c1", reason="no"),
    FillReport(
        client_order_id="c1",
        trade_id="t-1",
        quantity=5,
        price=PX,
        fee=-2,
        fee_currency="USD",
        liquidity=Liquidity.TAKER,
        venue_order_id="v-1",
    ),
    OrderCancelledReport(client_order_id="c1", reason="user"),
    CancelRejectedReport(client_order_id="c1", reason="late"),
    OrderExpiredReport(client_order_id="c1"),
    OrderReplacedReport(client_order_id="c1", quantity=9, price=PX),
    ReplaceRejectedReport(client_order_id="c1", reason="no"),
    SubmissionUnknownReport(client_order_id="c1", reason="timeout"),
    Timer(timer_id="t"),
    HaltTrading(reason="drill"),
    ResumeTrading(reason="done"),
    AdjustCash(currency="USD", amount=-5, reason="withdraw"),
    PLACE,
    CancelOrder(strategy_id="s1", client_order_id="c1"),
    ReplaceOrder(strategy_id="s1", client_order_id="c1", quantity=9, price=PX),
    SetRiskFlag(strategy_id="s1", flag=RiskFlag.HALT, enabled=True, reason="r"),
    NoOp(strategy_id="s1"),
]

OUTPUTS: list[Any] = [
    OrderTransitioned(
        seq_id=1,
        client_order_id="c1",
        strategy_id="s1",
        instrument="BTC-USD",
        event=OrderEvent.ACCEPT,
        from_state=OrderState.SUBMITTED,
        to_state=OrderState.ACCEPTED,
        quantity=10,
        filled_quantity=0,
        note="n",
    ),
    IntentRejected(
        seq_id=2,
        strategy_id="s1",
        intent="place_order",
        reason=RejectReason.LOT_SIZE,
        detail="d",
        client_order_id="c1",
    ),
    ReportRefused(
        seq_id=3,
        report="fill_report",
        reason=RefusalReason.UNKNOWN_ORDER,
        detail="d",
        venue="SIM",
        client_order_id="c1",
    ),
    DuplicateDropped(seq_id=4, producer_id="feed", producer_seq=2, key="k", detail="d"),
    ProducerGap(seq_id=5, producer_id="feed", expected_seq=2, received_seq=5),
    SubmitOrder(
        seq_id=6,
        venue="SIM",
        strategy_id="s1",
        client_order_id="c1",
        instrument="BTC-USD",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=10,
        price=PX,
        stop_price=PX,
        time_in_force=TimeInForce.FOK,
        expire_time_ns=T0,
        reduce_only=True,
        post_only=True,
    ),
    RequestCancel(seq_id=7, venue="SIM", client_order_id="c1", instrument="BTC-USD", reason="r"),
    RequestReplace(seq_id=8, venue="SIM", client_order_id="c1", instrument="BTC-USD", quantity=3, price=PX),
    FillBooked(
        seq_id=9,
        strategy_id="s1",
        client_order_id="c1",
        instrument="BTC-USD",
        side=Side.BUY,
        trade_id="t-1",
        quantity=5,
        price=PX,
        fee=1,
        fee_currency="USD",
        position_quantity=5,
        realized_pnl=0,
        cash_balance=100,
        late=True,
    ),
    RiskFlagChanged(seq_id=10, flag=RiskFlag.REDUCE_ONLY, enabled=True, reason="r", strategy_id="s1"),
    CashAdjusted(seq_id=11, currency="USD", amount=5, balance=105),
    InvariantBroken(seq_id=12, invariant="cash", detail="d"),
]

SNAPSHOT = CoreSnapshot(
    seq_id=12,
    event_time_ns=T0,
    config_hash="ab" * 32,
    halted=True,
    orders=[
        OrderSnapshot(
            intent=PLACE,
            venue="SIM",
            quantity=10_000,
            price=PX,
            state=OrderState.ACCEPTED,
            pending_from=None,
            accepted=True,
            filled_quantity=0,
            filled_notional=0,
            venue_order_id=None,
            replace_quantity=None,
            replace_price=None,
            created_seq_id=1,
            updated_seq_id=2,
            reserve_price=PX,
        )
    ],
    positions=[PositionSnapshot(instrument="BTC-USD", quantity=-3, cost=-3 * PX, realized_pnl=7, fill_quantity_net=-3)],
    cash=[CashSnapshot(currency="USD", balance=1, initial=2, adjustments=3, bought=4, sold=5, fees=6)],
    last_prices={"BTC-USD": PX},
    producers=[ProducerSnapshot(producer_id="feed", last_seq=3)],
    idempotency=[IdempotencyEntry(key="k", payload=Timer(timer_id="t"))],
    trade_ids=[TradeIdEntry(venue="SIM", trade_id="t-1")],
    strategies=[StrategyRiskSnapshot(strategy_id="s1", flags=[RiskFlag.HALT], recent_order_times_ns=[T0])],
)


def tag(cls: type) -> str:
    """The wire tag of a tagged struct class."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType) and isinstance(info.tag, str)
    return info.tag


def envelope_for(payload: Payload, **changes: Any) -> Envelope:
    """A valid, fully populated envelope around `payload`, from the source allowed to send it."""
    fields: dict[str, Any] = dict(
        source=PAYLOAD_SOURCE[type(payload)],
        producer_id="producer-1",
        producer_seq=7,
        event_time_ns=T0,
        payload=payload,
        venue="SIM",
        instrument="BTC-USD",
        idempotency_key="idem-1",
        seq_id=99,
        ingest_time_ns=T0 + 1,
        schema_version=1,
    )
    fields.update(changes)
    return Envelope(**fields)


ENVELOPES: list[Envelope] = [envelope_for(p) for p in PAYLOADS]


def _check_complete() -> None:
    # The lists must cover both unions, so a new message type cannot be left out of the tests.
    payload_types = {m.cls for m in msgspec.inspect.type_info(Payload).types}  # type: ignore[attr-defined]
    output_types = {m.cls for m in msgspec.inspect.type_info(Output).types}  # type: ignore[attr-defined]
    assert {type(p) for p in PAYLOADS} == payload_types, payload_types ^ {type(p) for p in PAYLOADS}
    assert {type(o) for o in OUTPUTS} == output_types, output_types ^ {type(o) for o in OUTPUTS}


_check_complete()
