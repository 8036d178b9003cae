"""Schema evolution (RELIABILITY E3): what version 1 wrote, today's decoders still read the same way.

The golden files in golden/wire/ are MessagePack frames written by make_golden.py from the cases
below, and never rewritten (v1 was re-recorded once, before it shipped, when the schemas stopped
omitting defaults; that was the last time). Two kinds of frame:

- `<channel>.<tag>.msgpack`: what tradebus's own encoder writes. Every field is on the wire,
  defaults included, set away from its default where the type allows;
- `<channel>.<tag>.minimal.msgpack` (envelopes only): what a producer in another language that
  sends only the required fields writes. Built from a plain map, not a struct, so it proves that
  every absent optional field decodes to its v1 default.

Each frame must decode with today's decoders to exactly the struct this file builds for it, and
today's encoder must give back the same bytes, less the fields added since v1 (ADDED_AFTER_V1).
So:

- a renamed field, a changed tag or a new required field: the frame no longer decodes;
- a changed type (int -> Decimal, str -> enum of other values): the value or the bytes differ;
- a changed default: the `.minimal` frames decode to a different struct;
- reordered fields: the re-encoded bytes differ;
- a new field with a default that is not in ADDED_AFTER_V1, not last, or not at the default
  recorded there: the re-encoded bytes differ.

Allowed evolution (a new field with a default, appended, recorded in ADDED_AFTER_V1) passes:
old frames decode with the default filled in, and today's encoding of them is the v1 frame plus
the new field at the end. test_the_golden_check_tells_allowed_from_breaking_changes proves both
halves on a toy struct.

Adding a message type: add its cases here, run make_golden.py (it writes only missing files),
commit the new .msgpack files. Changing an existing case is never right: the frames are history.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, NamedTuple

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
            reserve_price=PX - 100,
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


class Added(NamedTuple):
    """A field added after v1: the default a v1 frame (which lacks it) stands for, and why."""

    default: Any
    note: str


# Fields added after v1, by class name, in declaration order. v1 frames lack them; decoding fills
# in the default, and today's encoder appends them, so the golden check takes them off again and
# requires that they come last and carry the default recorded here (changing a recorded default
# changes what every old frame means). Write down the version or change that added each, e.g.
#     "Envelope": {"priority": Added(0, "tradebus 0.4: scheduling hint; 0 = as before")},
_LINKS: Final = {
    "parent_client_order_id": Added(None, "tradebus 0.2: bracket children wait for their parent's fill"),
    "oco_group": Added(None, "tradebus 0.2: one fill in the group cancels the other members"),
}
ADDED_AFTER_V1: Final[dict[str, dict[str, Added]]] = {"PlaceOrder": _LINKS, "SubmitOrder": _LINKS}

_DECODERS: Final = {
    "envelope": envelope_decoder(),
    "output": output_decoder(),
    "snapshot": snapshot_decoder(),
}
_ENCODER: Final = msgpack_encoder()


def _without_later_fields(value: Any, raw: Any, added: dict[str, dict[str, Added]], where: str) -> Any:
    """`raw` (today's encoding of `value`, decoded to builtins) less the fields added after v1.

    Raises:
        AssertionError: an added field is not after every v1 field, or not at its recorded default.
    """
    if isinstance(value, msgspec.Struct):
        later = added.get(type(value).__name__, {})
        keys = list(raw)
        tail = keys[len(keys) - len(later) :] if later else []
        assert set(tail) == set(later), (
            f"{where}: {type(value).__name__} must end with the fields added after v1 {sorted(later)}, got {keys}"
        )
        out: dict[str, Any] = {}
        fields = {f.encode_name: f.name for f in msgspec.structs.fields(value)}
        for key, item in raw.items():
            if key in later:
                recorded = msgspec.to_builtins(later[key].default)
                assert item == recorded, f"{where}.{key}: a v1 frame stands for {recorded!r}, today gives {item!r}"
            elif key in fields:
                out[key] = _without_later_fields(getattr(value, fields[key]), item, added, f"{where}.{key}")
            else:  # the tag
                out[key] = item
        return out
    if isinstance(value, (list, tuple)):
        return [
            _without_later_fields(v, r, added, f"{where}[{i}]") for i, (v, r) in enumerate(zip(value, raw, strict=True))
        ]
    if isinstance(value, dict):
        return {key: _without_later_fields(value[key], raw[key], added, f"{where}.{key}") for key in raw}
    return raw


def v1_encoding(struct: Any, added: dict[str, dict[str, Added]] = ADDED_AFTER_V1) -> bytes:
    """What v1 wrote for `struct`: today's encoding with the fields added since taken off."""
    frame = _ENCODER.encode(struct)
    raw = msgspec.msgpack.decode(frame)
    v1 = _without_later_fields(struct, raw, added, "$")
    return frame if v1 == raw else msgspec.msgpack.encode(v1)


def minimal_encoding(struct: Any) -> bytes:
    """What a producer that sends only required fields writes for `struct`: a plain map with the
    tag and the required fields (of the envelope and of its payload), encoded without a struct."""

    def required_only(value: Any) -> dict[str, Any]:
        info = msgspec.inspect.type_info(type(value))
        assert isinstance(info, msgspec.inspect.StructType)
        keep = {f.encode_name for f in info.fields if f.required} | {info.tag_field}
        out = {key: item for key, item in msgspec.to_builtins(value).items() if key in keep}
        if "payload" in out:
            out["payload"] = required_only(value.payload)
        return out

    return msgspec.msgpack.encode(required_only(struct))


def golden_frame(name: str) -> bytes:
    """The bytes golden file `name` holds (make_golden.py writes exactly these)."""
    _, struct = GOLDEN_CASES[name]
    return minimal_encoding(struct) if ".minimal." in name else v1_encoding(struct)


def check_golden(
    frame: bytes,
    decoded: Any,
    expected: Any,
    *,
    minimal: bool,
    added: dict[str, dict[str, Added]] = ADDED_AFTER_V1,
) -> None:
    """A golden frame, decoded by today's decoder, still means what v1 meant.

    Raises:
        AssertionError: naming what changed.
    """
    assert type(decoded) is type(expected), f"decodes to {type(decoded).__name__}, v1 meant {type(expected).__name__}"
    assert decoded == expected, f"decodes to {decoded!r}, v1 meant {expected!r}"
    # Equality alone would let int -> Decimal through (Decimal(5) == 5) and says nothing about
    # field order; the wire bytes say both.
    if minimal:
        # Every optional field took its default, of the same type as v1's (the bytes say so), and
        # the required fields re-encode to this frame.
        assert _ENCODER.encode(decoded) == _ENCODER.encode(expected), "a field's type or a default's type changed"
        assert minimal_encoding(decoded) == frame, "the required fields re-encode differently"
    else:
        assert v1_encoding(decoded, added) == frame, "today's encoding differs from v1's"


def _structs_on_wire(value: Any, raw: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Every struct in `value`, nested ones too, with its map in `raw` (the frame, decoded untyped)."""
    if isinstance(value, msgspec.Struct):
        yield value, raw
        for f in msgspec.structs.fields(value):
            if f.encode_name in raw:
                yield from _structs_on_wire(getattr(value, f.name), raw[f.encode_name])
    elif isinstance(value, (list, tuple)):
        for item, raw_item in zip(value, raw, strict=True):
            yield from _structs_on_wire(item, raw_item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _structs_on_wire(item, raw[key])


def _reachable_structs() -> set[type]:
    """Every struct type reachable from the three channels."""
    found: set[type] = set()

    def walk(t: msgspec.inspect.Type) -> None:
        if isinstance(t, msgspec.inspect.StructType):
            if t.cls not in found:
                found.add(t.cls)
                for f in t.fields:
                    walk(f.type)
        elif isinstance(t, msgspec.inspect.Metadata):
            walk(t.type)
        elif isinstance(t, msgspec.inspect.UnionType):
            for member in t.types:
                walk(member)
        elif isinstance(t, msgspec.inspect.ListType):
            walk(t.item_type)
        elif isinstance(t, msgspec.inspect.DictType):
            walk(t.value_type)

    for root in (Envelope, Output, CoreSnapshot):
        walk(msgspec.inspect.type_info(root))
    return found


def _encode_names(cls: type, *, required: bool = False) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(cls) if f.required or not required}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_frame_decodes_to_the_v1_struct(name: str) -> None:
    channel, expected = GOLDEN_CASES[name]
    path = GOLDEN_DIR / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    frame = path.read_bytes()
    check_golden(frame, _DECODERS[channel].decode(frame), expected, minimal=".minimal." in name)
    assert golden_frame(name) == frame, f"{name}: the case no longer encodes to the v1 frame"


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
    """Every struct on any channel, nested ones too, appears in a full frame that carries every
    field v1 had (so each name and type is pinned), and only the fields added since are missing.
    A minimal frame carries exactly the required fields: everything else is a v1 default."""
    seen: set[type] = set()
    for name, (_, expected) in GOLDEN_CASES.items():
        on_wire = msgspec.msgpack.decode((GOLDEN_DIR / name).read_bytes())
        for struct, raw in _structs_on_wire(expected, on_wire):
            cls = type(struct)
            keys = set(raw) - {"type"}
            if ".minimal." in name:
                assert keys == _encode_names(cls, required=True), (name, cls.__name__, keys)
            else:
                seen.add(cls)
                v1_fields = _encode_names(cls) - set(ADDED_AFTER_V1.get(cls.__name__, {}))
                assert keys == v1_fields, (
                    f"{name}: {cls.__name__} is missing {sorted(v1_fields - keys)} and has {sorted(keys - v1_fields)}; "
                    "a field added after v1 goes into ADDED_AFTER_V1"
                )
    reachable = _reachable_structs()
    assert seen == reachable, f"structs without a full golden frame: {sorted(c.__name__ for c in reachable - seen)}"


def test_added_after_v1_matches_the_structs() -> None:
    """Each recorded addition is a field today, optional, with the default recorded for it."""
    by_name = {cls.__name__: cls for cls in _reachable_structs()}
    for cls_name, later in ADDED_AFTER_V1.items():
        assert cls_name in by_name, f"ADDED_AFTER_V1 names {cls_name}, which is not on the wire"
        fields = {f.encode_name: f for f in msgspec.structs.fields(by_name[cls_name])}
        for key, added in later.items():
            assert key in fields, f"ADDED_AFTER_V1: {cls_name} has no field {key}"
            f = fields[key]
            assert not f.required, f"{cls_name}.{key} was added after v1, so it needs a default"
            default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
            assert default == added.default, f"{cls_name}.{key}: default {default!r}, v1 frames mean {added.default!r}"
            assert added.note, f"{cls_name}.{key}: say which version added it"


# --------------------------------------------------------------------------------------------
# the golden check itself, on a toy struct: allowed evolution passes, breaking changes do not

_PROBE_V1: Final[list[Any]] = [("client_order_id", str), ("quantity", int), ("note", str, "")]
_VENUE_AFTER_V1: Final = {"Probe": {"venue": Added("", "probe v2")}}


def _probe(fields: list[Any]) -> Any:
    """A struct named Probe, configured like every message, with `fields` (msgspec.defstruct form)."""
    return msgspec.defstruct(
        "Probe", fields, kw_only=True, frozen=True, forbid_unknown_fields=True, tag_field="type", tag="probe"
    )


@pytest.mark.parametrize(
    ("today", "added", "verdict"),
    [
        pytest.param(_PROBE_V1, {}, "reads as v1", id="unchanged"),
        pytest.param([*_PROBE_V1, ("venue", str, "")], _VENUE_AFTER_V1, "reads as v1", id="appended-and-recorded"),
        pytest.param([*_PROBE_V1, ("venue", str, "")], {}, "differs", id="appended-not-recorded"),
        pytest.param(
            [*_PROBE_V1, ("venue", str, "")],
            {"Probe": {"venue": Added("SIM", "probe v2")}},
            "differs",
            id="appended-recorded-with-another-default",
        ),
        pytest.param([("venue", str, ""), *_PROBE_V1], _VENUE_AFTER_V1, "differs", id="added-not-last"),
        pytest.param([*_PROBE_V1, ("venue", str)], {}, "refused", id="added-required"),
        pytest.param([("client_order_id", str), ("qty", int), ("note", str, "")], {}, "refused", id="renamed"),
        pytest.param([("client_order_id", str), ("quantity", Decimal), ("note", str, "")], {}, "differs", id="retyped"),
        pytest.param([("quantity", int), ("client_order_id", str), ("note", str, "")], {}, "differs", id="reordered"),
        pytest.param(
            [("client_order_id", str), ("quantity", int), ("note", str, "-")], {}, "differs", id="new-default"
        ),
        pytest.param([("client_order_id", str), ("quantity", int), ("note", str)], {}, "refused", id="made-required"),
        pytest.param([("client_order_id", str), ("quantity", int)], {}, "refused", id="removed"),
    ],
)
def test_the_golden_check_tells_allowed_from_breaking_changes(
    today: list[Any], added: dict[str, dict[str, Added]], verdict: str
) -> None:
    v1, now = _probe(_PROBE_V1), _probe(today)
    full = v1(client_order_id="c1", quantity=5, note="n")
    minimal = v1(client_order_id="c2", quantity=7, note="")
    frames = [(msgspec.msgpack.encode(full), full, False), (minimal_encoding(minimal), minimal, True)]
    outcome = "reads as v1"
    for frame, case, is_minimal in frames:
        try:
            decoded = msgspec.msgpack.decode(frame, type=now)
        except msgspec.ValidationError:
            outcome = "refused"
            break
        try:
            # The case as this file would write it with today's struct: the v1 values, unconverted.
            expected = now(**msgspec.structs.asdict(case))
            check_golden(frame, decoded, expected, minimal=is_minimal, added=added)
        except AssertionError:
            outcome = "differs"
            break
    assert outcome == verdict


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
    """A producer that sends only required fields sends no `schema_version`; such a frame is
    version 1 forever, also after SCHEMA_VERSION is raised, so the default must stay 1 rather
    than follow SCHEMA_VERSION. This fails on the day that rule is broken."""
    frame = (GOLDEN_DIR / "envelope.cancel_order.minimal.msgpack").read_bytes()
    assert "schema_version" not in msgspec.msgpack.decode(frame)
    assert envelope_decoder().decode(frame).schema_version == 1
    assert envelope_decoder().decode(msgspec.msgpack.encode(_raw_envelope())).schema_version == 1
    assert SCHEMA_VERSION >= 1


def test_every_version_up_to_ours_decodes() -> None:
    for version in range(1, SCHEMA_VERSION + 1):
        env = envelope_decoder().decode(msgspec.msgpack.encode(_raw_envelope(schema_version=version)))
        assert env.schema_version == version


def test_newer_schema_version_is_refused() -> None:
    """A newer writer's message may mean something this reader does not know, even when it
    carries no new field: it is refused, and the refusal says why."""
    with pytest.raises(msgspec.ValidationError) as exc:
        envelope_decoder().decode(msgspec.msgpack.encode(_raw_envelope(schema_version=SCHEMA_VERSION + 1)))
    assert str(exc.value) == f"Expected `int` <= {SCHEMA_VERSION} - at `$.schema_version`"


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
