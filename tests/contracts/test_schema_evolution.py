"""Schema evolution (RELIABILITY E3): what version 1 wrote, today's decoders still read the same way.

The golden files in golden/wire/ are MessagePack frames written once, by make_golden.py, from the
cases below, and never rewritten. Each must decode with today's decoders to exactly the struct
this file builds for it, and today's encoder must give back the very same bytes. So:

- a renamed field, a changed tag or a new required field: the frame no longer decodes;
- a changed type (int -> Decimal, str -> enum of other values): the value or the bytes differ;
- a changed default: the `.minimal` frames (defaults omitted on the wire) decode differently;
- reordered fields: the re-encoded bytes differ.

Allowed evolution (a new field with a default, appended) passes: the default is omitted on the
wire, so the old frames still decode and re-encode byte for byte.

Adding a message type: add its cases here, run make_golden.py (it writes only missing files),
commit the new .msgpack files. Changing an existing case is never right: the frames are history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import msgspec
import pytest

from schemas import (
    SCHEMA_VERSION,
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
    Source,
    StrategyRiskSnapshot,
    SubmissionUnknownReport,
    SubmitOrder,
    TimeInForce,
    Timer,
    Trade,
    TradeIdEntry,
)
from schemas.base import tag_of
from schemas.codec import envelope_decoder, msgpack_encoder, output_decoder, snapshot_decoder

GOLDEN_DIR: Final = Path(__file__).parent / "golden" / "wire"
REGENERATE: Final = "run `python -m tests.contracts.golden.wire.make_golden` (writes only missing files)"

T0: Final = 1_704_067_200_000_000_000
PX: Final = 4_200_000

# What version 1 means when a field is absent from the frame. Written out rather than read from
# the structs, so that changing a default in schemas/ fails here.
V1_ENVELOPE_DEFAULTS: Final[dict[str, Any]] = dict(
    venue="", instrument="", idempotency_key=None, seq_id=0, ingest_time_ns=0, schema_version=1
)


def _full(source: Source, payload: Payload, **envelope: Any) -> Envelope:
    """An envelope with every optional envelope field set away from its default."""
    fields: dict[str, Any] = dict(
        source=source,
        producer_id=f"{source.value}-1",
        producer_seq=41,
        event_time_ns=T0 + 5,
        payload=payload,
        venue="SIM",
        instrument="BTC-USD",
        idempotency_key="key-7",
        seq_id=1001,
        ingest_time_ns=T0 + 9,
        schema_version=1,
    )
    fields.update(envelope)
    return Envelope(**fields)


def _minimal(source: Source, payload: Payload) -> Envelope:
    """An envelope with only the required fields on the wire; the rest are the v1 defaults."""
    return Envelope(
        source=source,
        producer_id="p",
        producer_seq=1,
        event_time_ns=T0,
        payload=payload,
        **V1_ENVELOPE_DEFAULTS,
    )


# (full payload with every field set, minimal payload with v1 defaults spelled out)
_PAYLOADS: Final[list[tuple[Source, Payload, Payload]]] = [
    (
        Source.MARKET_DATA,
        Bar(open=PX, high=PX + 900, low=PX - 700, close=PX + 100, volume=12_345, interval_ns=300_000_000_000),
        Bar(open=-5, high=-5, low=-5, close=-5, volume=0, interval_ns=60_000_000_000),
    ),
    (
        Source.MARKET_DATA,
        Trade(price=PX, quantity=3, aggressor=Side.SELL, trade_id="pub-9"),
        Trade(price=PX, quantity=1, aggressor=None, trade_id=None),
    ),
    (
        Source.MARKET_DATA,
        Quote(bid_price=PX - 1, bid_size=7, ask_price=PX + 1, ask_size=0),
        Quote(bid_price=PX, bid_size=0, ask_price=PX, ask_size=0),
    ),
    (
        Source.BROKER_REPORT,
        OrderAcceptedReport(client_order_id="c1", venue_order_id="v-1"),
        OrderAcceptedReport(client_order_id="c1", venue_order_id=None),
    ),
    (
        Source.BROKER_REPORT,
        OrderRejectedReport(client_order_id="c1", reason="insufficient margin"),
        OrderRejectedReport(client_order_id="c1", reason=""),
    ),
    (
        Source.BROKER_REPORT,
        FillReport(
            client_order_id="c1",
            trade_id="t-1",
            quantity=5_000,
            price=PX,
            fee=-12,
            fee_currency="BTC",
            liquidity=Liquidity.MAKER,
            venue_order_id="v-1",
        ),
        FillReport(
            client_order_id="c1",
            trade_id="t-1",
            quantity=1,
            price=PX,
            fee=0,
            fee_currency=None,
            liquidity=Liquidity.UNKNOWN,
            venue_order_id=None,
        ),
    ),
    (
        Source.BROKER_REPORT,
        OrderCancelledReport(client_order_id="c1", reason="by venue"),
        OrderCancelledReport(client_order_id="c1", reason=""),
    ),
    (
        Source.BROKER_REPORT,
        CancelRejectedReport(client_order_id="c1", reason="too late"),
        CancelRejectedReport(client_order_id="c1", reason=""),
    ),
    (
        Source.BROKER_REPORT,
        OrderExpiredReport(client_order_id="c1"),
        OrderExpiredReport(client_order_id="c2"),
    ),
    (
        Source.BROKER_REPORT,
        OrderReplacedReport(client_order_id="c1", quantity=8_000, price=PX - 100),
        OrderReplacedReport(client_order_id="c1", quantity=8_000, price=None),
    ),
    (
        Source.BROKER_REPORT,
        ReplaceRejectedReport(client_order_id="c1", reason="no"),
        ReplaceRejectedReport(client_order_id="c1", reason=""),
    ),
    (
        Source.BROKER_REPORT,
        SubmissionUnknownReport(client_order_id="c1", reason="timeout after 5s"),
        SubmissionUnknownReport(client_order_id="c1", reason=""),
    ),
    (Source.TIMER, Timer(timer_id="expiry"), Timer(timer_id="clock")),
    (Source.CONTROL, HaltTrading(reason="drill"), HaltTrading(reason="")),
    (Source.CONTROL, ResumeTrading(reason="drill over"), ResumeTrading(reason="")),
    (
        Source.CONTROL,
        AdjustCash(currency="USD", amount=-(2**62), reason="withdrawal"),
        AdjustCash(currency="USD", amount=2**62, reason=""),
    ),
    (
        Source.STRATEGY,
        PlaceOrder(
            strategy_id="s1",
            client_order_id="c1",
            instrument="BTC-USD",
            side=Side.SELL,
            order_type=OrderType.STOP_LIMIT,
            quantity=2**62,
            price=PX,
            stop_price=PX + 50,
            time_in_force=TimeInForce.GTD,
            expire_time_ns=T0 + 3_600_000_000_000,
            reduce_only=True,
            post_only=True,
        ),
        PlaceOrder(
            strategy_id="s1",
            client_order_id="c1",
            instrument="BTC-USD",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=1,
            price=None,
            stop_price=None,
            time_in_force=TimeInForce.GTC,
            expire_time_ns=None,
            reduce_only=False,
            post_only=False,
        ),
    ),
    (
        Source.STRATEGY,
        CancelOrder(strategy_id="s1", client_order_id="c1"),
        CancelOrder(strategy_id="s2", client_order_id="c2"),
    ),
    (
        Source.STRATEGY,
        ReplaceOrder(strategy_id="s1", client_order_id="c1", quantity=9_000, price=PX + 1),
        ReplaceOrder(strategy_id="s1", client_order_id="c1", quantity=None, price=None),
    ),
    (
        Source.STRATEGY,
        SetRiskFlag(strategy_id="s1", flag=RiskFlag.REDUCE_ONLY, enabled=True, reason="drawdown"),
        SetRiskFlag(strategy_id="s1", flag=RiskFlag.HALT, enabled=False, reason=""),
    ),
    (Source.STRATEGY, NoOp(strategy_id="s1"), NoOp(strategy_id="s2")),
]

_OUTPUTS: Final[list[Output]] = [
    OrderTransitioned(
        seq_id=7,
        client_order_id="c1",
        strategy_id="s1",
        instrument="BTC-USD",
        event=OrderEvent.PARTIAL_FILL,
        from_state=OrderState.ACCEPTED,
        to_state=OrderState.PARTIALLY_FILLED,
        quantity=10_000,
        filled_quantity=4_000,
        note="n",
    ),
    IntentRejected(
        seq_id=8,
        strategy_id="s1",
        intent="place_order",
        reason=RejectReason.TICK_SIZE,
        detail="price 4200000.5 is not a multiple of tick 1",
        client_order_id="c9",
    ),
    ReportRefused(
        seq_id=9,
        report="fill_report",
        reason=RefusalReason.OVERFILL,
        detail="fill 5 > open 4",
        venue="SIM",
        client_order_id="c1",
    ),
    DuplicateDropped(
        seq_id=10,
        producer_id="venue-SIM",
        producer_seq=3,
        key="trade SIM/t1",
        detail="venue trade id already booked",
    ),
    ProducerGap(seq_id=11, producer_id="feed", expected_seq=4, received_seq=9),
    SubmitOrder(
        seq_id=12,
        venue="SIM",
        strategy_id="s1",
        client_order_id="c1",
        instrument="BTC-USD",
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        quantity=10_000,
        price=PX,
        stop_price=PX - 10,
        time_in_force=TimeInForce.IOC,
        expire_time_ns=T0,
        reduce_only=True,
        post_only=True,
    ),
    RequestCancel(seq_id=13, venue="SIM", client_order_id="c1", instrument="BTC-USD", reason="r"),
    RequestReplace(seq_id=14, venue="SIM", client_order_id="c1", instrument="BTC-USD", quantity=5, price=PX),
    FillBooked(
        seq_id=15,
        strategy_id="s1",
        client_order_id="c1",
        instrument="BTC-USD",
        side=Side.SELL,
        trade_id="t-1",
        quantity=4_000,
        price=PX,
        fee=25,
        fee_currency="USD",
        position_quantity=-4_000,
        realized_pnl=-17,
        cash_balance=999_000_000,
        late=True,
    ),
    RiskFlagChanged(seq_id=16, flag=RiskFlag.HALT, enabled=True, reason="drill", strategy_id="s1"),
    CashAdjusted(seq_id=17, currency="USD", amount=-5, balance=995),
    InvariantBroken(seq_id=18, invariant="cash_conservation", detail="USD off by 1"),
]

_INTENT = PlaceOrder(
    strategy_id="s1",
    client_order_id="c1",
    instrument="BTC-USD",
    side=Side.BUY,
    order_type=OrderType.LIMIT,
    quantity=10_000,
    price=PX,
)

_SNAPSHOT: Final = CoreSnapshot(
    seq_id=42,
    event_time_ns=T0 + 60_000_000_000,
    config_hash="0" * 64,
    halted=False,
    orders=[
        OrderSnapshot(
            intent=_INTENT,
            venue="SIM",
            quantity=8_000,
            price=PX - 100,
            state=OrderState.REPLACE_PENDING,
            pending_from=OrderState.PARTIALLY_FILLED,
            accepted=True,
            filled_quantity=4_000,
            filled_notional=4_000 * PX,
            venue_order_id="v-1",
            replace_quantity=6_000,
            replace_price=PX - 200,
            created_seq_id=2,
            updated_seq_id=40,
        ),
    ],
    positions=[
        PositionSnapshot(
            instrument="BTC-USD",
            quantity=4_000,
            cost=4_000 * PX,
            realized_pnl=0,
            fill_quantity_net=4_000,
        )
    ],
    cash=[
        CashSnapshot(
            currency="USD",
            balance=983_199_999_975,
            initial=1_000_000_000_000,
            adjustments=0,
            bought=16_800_000_000,
            sold=0,
            fees=25,
        )
    ],
    last_prices={"BTC-USD": PX, "PRES-YES": 55},
    producers=[ProducerSnapshot(producer_id="feed", last_seq=9)],
    idempotency=[IdempotencyEntry(key="noop-1", payload=NoOp(strategy_id="s1"))],
    trade_ids=[TradeIdEntry(venue="SIM", trade_id="t-1")],
    strategies=[
        StrategyRiskSnapshot(strategy_id="s1", flags=[RiskFlag.REDUCE_ONLY], recent_order_times_ns=[T0, T0 + 1])
    ],
)


def _cases() -> dict[str, tuple[str, Any]]:
    """Golden file name -> (channel, the struct that file must decode to)."""
    cases: dict[str, tuple[str, Any]] = {}
    for source, full, minimal in _PAYLOADS:
        tag = tag_of(type(full).__name__)
        cases[f"envelope.{tag}.msgpack"] = ("envelope", _full(source, full))
        cases[f"envelope.{tag}.minimal.msgpack"] = ("envelope", _minimal(source, minimal))
    for out in _OUTPUTS:
        cases[f"output.{tag_of(type(out).__name__)}.msgpack"] = ("output", out)
    cases["snapshot.core_snapshot.msgpack"] = ("snapshot", _SNAPSHOT)
    return cases


GOLDEN_CASES: Final = _cases()

# Fields that no v1 frame carries, each with the reason. A field added after v1 is listed here
# with the version that added it (or gets a golden case of its own): the addition is on record.
NOT_IN_V1_FRAMES: Final[dict[str, frozenset[str]]] = {
    "Envelope": frozenset({"schema_version"}),  # 1 is its default, so a v1 frame never carries it
}

_DECODERS: Final = {
    "envelope": envelope_decoder(),
    "output": output_decoder(),
    "snapshot": snapshot_decoder(),
}
_ENCODER: Final = msgpack_encoder()


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_frame_decodes_to_the_v1_struct(name: str) -> None:
    channel, expected = GOLDEN_CASES[name]
    path = GOLDEN_DIR / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    frame = path.read_bytes()
    decoded = _DECODERS[channel].decode(frame)
    assert type(decoded) is type(expected)
    assert decoded == expected
    # Equality alone would let int -> Decimal through (Decimal(5) == 5) and says nothing about
    # field order; the wire bytes say both.
    assert _ENCODER.encode(decoded) == frame, f"{name}: today's encoding differs from v1's"


def test_every_message_type_has_golden_frames() -> None:
    """A new payload or output type needs its golden cases (and files) before it ships."""
    payload_tags = {m.tag for m in msgspec.inspect.type_info(Payload).types}
    output_tags = {m.tag for m in msgspec.inspect.type_info(Output).types}
    for tag in payload_tags:
        assert f"envelope.{tag}.msgpack" in GOLDEN_CASES, f"no golden case for payload {tag}"
        assert f"envelope.{tag}.minimal.msgpack" in GOLDEN_CASES, f"no minimal case for {tag}"
    for tag in output_tags:
        assert f"output.{tag}.msgpack" in GOLDEN_CASES, f"no golden case for output {tag}"
    on_disk = {p.name for p in GOLDEN_DIR.glob("*.msgpack")}
    assert on_disk == set(GOLDEN_CASES), f"golden files and cases differ: {on_disk ^ set(GOLDEN_CASES)}"


def test_every_field_is_held_by_a_golden_frame() -> None:
    """Each field of each message type appears in at least one frame, so its name and type are
    pinned; a field added later must be written down in NOT_IN_V1_FRAMES (or get a new case).
    The minimal frames carry exactly the required fields: everything else is a v1 default."""
    seen: dict[type, set[str]] = {}
    for name, (_, expected) in GOLDEN_CASES.items():
        on_wire = msgspec.msgpack.decode((GOLDEN_DIR / name).read_bytes())
        pairs = [(expected, on_wire)]
        if isinstance(expected, Envelope):
            pairs.append((expected.payload, on_wire["payload"]))
        for struct, raw in pairs:
            keys = set(raw) - {"type"}
            seen.setdefault(type(struct), set()).update(keys)
            if ".minimal." in name:
                required = {f.encode_name for f in msgspec.inspect.type_info(type(struct)).fields if f.required}
                assert keys == required, (name, type(struct).__name__, keys ^ required)
    for cls, keys in seen.items():
        fields = {f.encode_name for f in msgspec.inspect.type_info(cls).fields}
        expected_keys = fields - NOT_IN_V1_FRAMES.get(cls.__name__, frozenset())
        assert keys == expected_keys, (
            f"{cls.__name__}: fields without a golden frame: {sorted(expected_keys - keys)}; list "
            "them in NOT_IN_V1_FRAMES with the version that added them, or add a golden case"
        )


# --------------------------------------------------------------------------------------------
# old and new envelope versions


def _raw_envelope(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "source": "strategy",
        "producer_id": "strategy-s1",
        "producer_seq": 3,
        "event_time_ns": T0,
        "payload": {"type": "cancel_order", "strategy_id": "s1", "client_order_id": "c1"},
        "venue": "SIM",
        "instrument": "BTC-USD",
        "seq_id": 17,
    }
    raw.update(changes)
    return raw


def test_envelope_missing_optional_fields_decodes_with_defaults() -> None:
    raw = {
        "source": "timer",
        "producer_id": "clock",
        "producer_seq": 1,
        "event_time_ns": T0,
        "payload": {"type": "timer"},
    }
    env = envelope_decoder().decode(msgspec.msgpack.encode(raw))
    assert env == Envelope(
        source=Source.TIMER,
        producer_id="clock",
        producer_seq=1,
        event_time_ns=T0,
        payload=Timer(timer_id="clock"),
        **V1_ENVELOPE_DEFAULTS,
    )


def test_old_envelope_without_later_fields_decodes() -> None:
    """A writer from before `ingest_time_ns` and `schema_version` existed sent neither."""
    raw = _raw_envelope()
    assert "ingest_time_ns" not in raw and "schema_version" not in raw
    env = envelope_decoder().decode(msgspec.msgpack.encode(raw))
    assert env.ingest_time_ns == 0
    assert env.schema_version == 1
    assert env.seq_id == 17 and env.payload == CancelOrder(strategy_id="s1", client_order_id="c1")


def test_absent_schema_version_means_version_1() -> None:
    """Frames written at version 1 omit `schema_version` (it equals the default). They must keep
    decoding as version 1 after SCHEMA_VERSION is raised, so the default must stay 1 rather than
    follow SCHEMA_VERSION. This fails on the day that rule is broken."""
    env = envelope_decoder().decode((GOLDEN_DIR / "envelope.cancel_order.minimal.msgpack").read_bytes())
    assert env.schema_version == 1
    assert SCHEMA_VERSION >= 1


def test_newer_schema_version_with_known_fields_decodes() -> None:
    """A newer writer that uses no new field is readable: unknown *fields* are what old readers
    refuse (below), not a higher number."""
    env = envelope_decoder().decode(msgspec.msgpack.encode(_raw_envelope(schema_version=SCHEMA_VERSION + 1)))
    assert env.schema_version == SCHEMA_VERSION + 1


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (_raw_envelope(priority=5), "Object contains unknown field `priority`"),
        (
            _raw_envelope(payload={"type": "cancel_order", "strategy_id": "s1", "client_order_id": "c1", "why": "x"}),
            "Object contains unknown field `why` - at `$.payload`",
        ),
        (
            _raw_envelope(payload={"type": "cancel_all", "strategy_id": "s1"}),
            "Invalid value 'cancel_all' - at `$.payload.type`",
        ),
    ],
)
def test_unknown_field_or_tag_is_refused(raw: dict[str, Any], where: str) -> None:
    """A field or message type this version does not know is refused, never silently dropped:
    dropping it could change what the message means."""
    with pytest.raises(msgspec.ValidationError) as exc:
        envelope_decoder().decode(msgspec.msgpack.encode(raw))
    assert str(exc.value) == where
