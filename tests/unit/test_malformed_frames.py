"""RELIABILITY E1 at the decoder: a malformed frame is refused with a typed error, never a crash.

Every case decodes with the production decoder (`schemas.codec.envelope_decoder()`, one instance,
as a socket would hold it) and must raise `msgspec.DecodeError` (ValidationError is a subclass).
Any other exception escaping the decoder would take the ingress loop down, so `pytest.raises`
with exactly that type is the assertion: anything else errors the test. Field-level refusals
must also name the offending field path, because that path is what the refusal counter and the
producer's log report.
"""

from __future__ import annotations

import copy
import math
import tracemalloc
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import SCHEMA_VERSION, Bar, Envelope
from schemas.codec import envelope_decoder, msgpack_encoder
from schemas.types import MAX_ABS_AMOUNT, MAX_ID_CHARS, MAX_TEXT_CHARS
from tests.unit.wire_samples import ENVELOPES, PAYLOADS, envelope_for, tag

DECODER = envelope_decoder()
ENCODER = msgpack_encoder()
FRAMES = [ENCODER.encode(env) for env in ENVELOPES]
BY_TAG = {tag(type(p)): msgspec.to_builtins(envelope_for(p)) for p in PAYLOADS}

# Random inputs are bounded: the frame-size limit (E2) is the socket's job, not the decoder's.
MAX_RANDOM_FRAME_BYTES = 512
# Decoding is cheap (microseconds), so even `make test` affords hundreds of random frames; the
# soak profile (TRADEBUS_SOAK=1, tests/conftest.py) raises every count further.
RANDOM_EXAMPLES = max(500, settings.default.max_examples)
MUTATION_EXAMPLES = max(300, settings.default.max_examples)


def refuse(frame: bytes) -> msgspec.DecodeError:
    """Decode `frame`, which must be refused with msgspec's typed error; return that error."""
    with pytest.raises(msgspec.DecodeError) as caught:
        DECODER.decode(frame)
    return caught.value


def refuse_raw(raw: Any) -> str:
    """Encode a builtin object as MessagePack and return the decoder's refusal message."""
    return str(refuse(msgspec.msgpack.encode(raw)))


# A value no real frame holds: encoded, then replaced by hand-made bytes (see _frame_with_raw_value).
_MARKER = "\x00MARKER\x00"


def decodes_or_refuses(frame: bytes) -> None:
    """The only two acceptable outcomes for arbitrary input."""
    try:
        env = DECODER.decode(frame)
    except msgspec.DecodeError:
        return
    # Accepted: it must then be a complete, valid envelope that survives a round trip.
    assert isinstance(env, Envelope)
    assert DECODER.decode(ENCODER.encode(env)) == env


def at(path: str) -> str:
    """The suffix msgspec puts on a field-level error."""
    return f" - at `{path}`"


def with_payload(payload_tag: str, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BY_TAG[payload_tag])
    raw["payload"].update(changes)
    return raw


def with_envelope(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BY_TAG["place_order"])
    raw.update(changes)
    return raw


def test_samples_are_valid_frames() -> None:
    """The baseline every mutation below starts from decodes; otherwise refusals prove nothing."""
    for frame, env in zip(FRAMES, ENVELOPES, strict=True):
        assert DECODER.decode(frame) == env
    for raw in BY_TAG.values():
        DECODER.decode(msgspec.msgpack.encode(raw))


# --------------------------------------------------------------------------------------------
# random and damaged bytes


@settings(max_examples=RANDOM_EXAMPLES, deadline=None)
@given(st.binary(max_size=MAX_RANDOM_FRAME_BYTES))
def test_random_bytes_are_refused_or_decoded(frame: bytes) -> None:
    decodes_or_refuses(frame)


@settings(max_examples=MUTATION_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FRAMES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_valid_frames_with_overwritten_bytes(frame: bytes, edits: list[tuple[int, int]]) -> None:
    """Damage inside a real frame (a length byte, a type byte, a key) reaches deep decoder paths
    that random bytes rarely do."""
    damaged = bytearray(frame)
    for position, value in edits:
        damaged[position % len(damaged)] = value
    decodes_or_refuses(bytes(damaged))


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.binary(max_size=16)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=MUTATION_EXAMPLES, deadline=None)
@given(
    st.sampled_from(sorted(BY_TAG)),
    st.dictionaries(
        st.sampled_from(
            [
                "payload",
                "source",
                "producer_seq",
                "seq_id",
                "venue",
                "event_time_ns",
                "idempotency_key",
                "schema_version",
            ]
        ),
        _values,
        min_size=1,
        max_size=3,
    ),
    st.dictionaries(st.text(max_size=16), _values, max_size=3),
)
def test_well_formed_msgpack_with_wrong_values(
    payload_tag: str, envelope_changes: dict[str, Any], payload_changes: dict[str, Any]
) -> None:
    """Structurally valid MessagePack, semantically anything: typed refusal or a valid envelope."""
    raw = copy.deepcopy(BY_TAG[payload_tag])
    raw["payload"].update(payload_changes)
    raw.update(envelope_changes)
    decodes_or_refuses(msgspec.msgpack.encode(raw))


@pytest.mark.parametrize("index", range(len(FRAMES)), ids=list(BY_TAG))
def test_truncated_at_every_cut(index: int) -> None:
    frame = FRAMES[index]
    for cut in range(len(frame)):
        error = refuse(frame[:cut])
        assert type(error) is msgspec.DecodeError, (cut, error)  # truncation is not a validation
        assert "truncated" in str(error), (cut, error)


def test_trailing_bytes_after_a_frame_are_refused() -> None:
    assert "trailing characters" in str(refuse(FRAMES[0] + b"\x00"))
    assert "trailing characters" in str(refuse(FRAMES[0] + FRAMES[1]))  # two messages, one frame


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "truncated"),
        (b"\xc1", "invalid opcode"),  # the one byte MessagePack never uses
        (b"\xc0", "Expected `object`, got `None`"),
        (b"\x91\x01", "Expected `object`, got `array`"),
        (b"\x80", "Object missing required field `source`"),
    ],
)
def test_not_an_envelope_at_all(frame: bytes, message: str) -> None:
    assert message in str(refuse(frame))


# --------------------------------------------------------------------------------------------
# huge declared lengths: a header claiming 2**31 items with nothing behind it


_HUGE = (2**31).to_bytes(4, "big")
HUGE_HEADERS = {
    "str32": b"\xdb" + _HUGE,
    "bin32": b"\xc6" + _HUGE,
    "array32": b"\xdd" + _HUGE,
    "map32": b"\xdf" + _HUGE,
    "ext32": b"\xc9" + _HUGE + b"\x01",
}


def _frame_with_raw_value(raw: dict[str, Any], replacement: bytes) -> bytes:
    """Encode `raw` (holding _MARKER as one value) and splice in hand-made bytes for it."""
    encoded = msgspec.msgpack.encode(raw)
    marker = msgspec.msgpack.encode(_MARKER)
    assert encoded.count(marker) == 1
    return encoded.replace(marker, replacement)


@pytest.mark.parametrize("header", sorted(HUGE_HEADERS))
@pytest.mark.parametrize("where", ["frame", "producer_id", "idempotency_key", "payload", "payload.client_order_id"])
def test_huge_declared_lengths(header: str, where: str) -> None:
    if where == "frame":
        frame = HUGE_HEADERS[header]
    elif where.startswith("payload."):
        frame = _frame_with_raw_value(with_payload("place_order", **{where[8:]: _MARKER}), HUGE_HEADERS[header])
    else:
        frame = _frame_with_raw_value(with_envelope(**{where: _MARKER}), HUGE_HEADERS[header])
    tracemalloc.start()
    try:
        refuse(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The decoder must not trust the header and reserve 2**31 slots before reading them.
    assert peak < 1 << 20, f"decoder allocated {peak} bytes for a {len(frame)}-byte frame"


# --------------------------------------------------------------------------------------------
# field-level refusals name the field


def _fields(cls: type) -> list[msgspec.inspect.Field]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return list(info.fields)


def _unwrap(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """Strip documentation-only metadata (descriptions) from a field type."""
    return t.type if isinstance(t, msgspec.inspect.Metadata) else t


def _not_none(t: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """`T` for a field typed `T | None`, else the type itself (metadata stripped)."""
    t = _unwrap(t)
    if isinstance(t, msgspec.inspect.UnionType):
        members = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
        if len(members) == 1:
            return _unwrap(members[0])
    return t


def _wrong_values(t: msgspec.inspect.Type) -> list[Any]:
    """Values of the wrong MessagePack type for a field of type `t` (plus an array, which no
    envelope or payload field accepts)."""
    t = _unwrap(t)
    if isinstance(t, msgspec.inspect.UnionType):  # T | None: wrong for T is wrong for the union
        members = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
        if len(members) == 1:
            return [v for v in _wrong_values(members[0]) if v is not None]
        return ["not a message", 7, [1]]  # the payload union
    if isinstance(t, msgspec.inspect.IntType):
        return ["7", True, None, [1], {"n": 7}]
    if isinstance(t, msgspec.inspect.StrType):
        return [7, b"bytes", False, [1]]
    if isinstance(t, msgspec.inspect.BoolType):
        return [1, 0, "true", None, [1]]
    if isinstance(t, msgspec.inspect.EnumType):
        return [7, "no_such_member", "", [1]]
    raise AssertionError(f"no wrong values defined for {t!r}: extend _wrong_values")


_ENVELOPE_FIELDS = [(f.encode_name, v) for f in _fields(Envelope) for v in _wrong_values(f.type)]
_PAYLOAD_FIELDS = [
    (tag(type(p)), f.encode_name, v) for p in PAYLOADS for f in _fields(type(p)) for v in _wrong_values(f.type)
]


@pytest.mark.parametrize(("field", "value"), _ENVELOPE_FIELDS)
def test_wrong_type_in_envelope_field(field: str, value: Any) -> None:
    assert refuse_raw(with_envelope(**{field: value})).endswith(at(f"$.{field}"))


@pytest.mark.parametrize(("payload_tag", "field", "value"), _PAYLOAD_FIELDS)
def test_wrong_type_in_payload_field(payload_tag: str, field: str, value: Any) -> None:
    assert refuse_raw(with_payload(payload_tag, **{field: value})).endswith(at(f"$.payload.{field}"))


def test_every_required_field_is_required() -> None:
    for name in (f.encode_name for f in _fields(Envelope) if f.required):
        raw = with_envelope()
        del raw[name]
        assert refuse_raw(raw) == f"Object missing required field `{name}`"
    for payload_tag, raw in BY_TAG.items():
        payload_type = next(type(p) for p in PAYLOADS if tag(type(p)) == payload_tag)
        for name in ["type", *(f.encode_name for f in _fields(payload_type) if f.required)]:
            broken = copy.deepcopy(raw)
            del broken["payload"][name]
            assert refuse_raw(broken) == f"Object missing required field `{name}`" + at("$.payload")


@pytest.mark.parametrize(
    "bad_tag", ["no_such_message", "PlaceOrder", "place-order", "", "order_filled", "submit_order"]
)
def test_unknown_payload_tag(bad_tag: str) -> None:
    """Output tags (`submit_order`) are not inbound payloads either."""
    message = refuse_raw(with_payload("place_order", type=bad_tag))
    assert message == f"Invalid value {bad_tag!r}" + at("$.payload.type")


def test_unknown_fields_are_refused() -> None:
    assert refuse_raw(with_envelope(colour="red")) == "Object contains unknown field `colour`"
    message = refuse_raw(with_payload("fill_report", colour="red"))
    assert message == "Object contains unknown field `colour`" + at("$.payload")


# Every (payload, field) holding a strictly positive quantity, and every one that may be zero.
_POSITIVE = [
    ("place_order", "quantity"),
    ("trade", "quantity"),
    ("fill_report", "quantity"),
    ("order_replaced_report", "quantity"),
    ("replace_order", "quantity"),
]
_NON_NEGATIVE = [("bar", "volume"), ("quote", "bid_size"), ("quote", "ask_size")]


@pytest.mark.parametrize(("payload_tag", "field"), _POSITIVE)
@pytest.mark.parametrize("value", [0, -1, -MAX_ABS_AMOUNT, -(2**63)])
def test_zero_and_negative_quantities(payload_tag: str, field: str, value: int) -> None:
    message = refuse_raw(with_payload(payload_tag, **{field: value}))
    assert message == "Expected `int` >= 1" + at(f"$.payload.{field}"), message  # gt=0 reads as >= 1


@pytest.mark.parametrize(("payload_tag", "field"), _NON_NEGATIVE)
def test_negative_sizes(payload_tag: str, field: str) -> None:
    assert refuse_raw(with_payload(payload_tag, **{field: -1})).endswith(at(f"$.payload.{field}"))
    DECODER.decode(msgspec.msgpack.encode(with_payload(payload_tag, **{field: 0})))  # zero is fine


def test_positive_and_non_negative_lists_are_complete() -> None:
    """Every Quantity-typed payload field is in _POSITIVE, every NonNegQuantity in _NON_NEGATIVE."""
    positive, non_negative = [], []
    for p in PAYLOADS:
        for f in _fields(type(p)):
            t = _not_none(f.type)
            if isinstance(t, msgspec.inspect.IntType) and t.le == MAX_ABS_AMOUNT:
                if t.gt == 0:
                    positive.append((tag(type(p)), f.encode_name))
                elif t.ge == 0:
                    non_negative.append((tag(type(p)), f.encode_name))
    assert sorted(positive) == sorted(_POSITIVE)
    assert sorted(non_negative) == sorted(_NON_NEGATIVE)


_PRICES = [
    ("place_order", "price"),
    ("place_order", "stop_price"),
    ("trade", "price"),
    ("fill_report", "price"),
    ("bar", "open"),
    ("quote", "bid_price"),
    ("replace_order", "price"),
    ("order_replaced_report", "price"),
    ("fill_report", "fee"),
    ("adjust_cash", "amount"),
]


@pytest.mark.parametrize(("payload_tag", "field"), _PRICES)
@pytest.mark.parametrize("value", [MAX_ABS_AMOUNT + 1, 2**63 - 1, 2**64 - 1, -MAX_ABS_AMOUNT - 1, -(2**63)])
def test_amounts_beyond_max_abs_amount(payload_tag: str, field: str, value: int) -> None:
    message = refuse_raw(with_payload(payload_tag, **{field: value}))
    bound = f"<= {MAX_ABS_AMOUNT}" if value > 0 else f">= {-MAX_ABS_AMOUNT}"
    assert bound in message and message.endswith(at(f"$.payload.{field}")), message


def test_amounts_at_max_abs_amount_are_accepted() -> None:
    """The limit itself is legal: refusals above are about the bound, not about big numbers."""
    raw = with_payload("adjust_cash", amount=-MAX_ABS_AMOUNT)
    assert DECODER.decode(msgspec.msgpack.encode(raw)).payload.amount == -MAX_ABS_AMOUNT
    raw = with_payload("place_order", quantity=MAX_ABS_AMOUNT, price=MAX_ABS_AMOUNT)
    assert DECODER.decode(msgspec.msgpack.encode(raw)).payload.quantity == MAX_ABS_AMOUNT


_INT_FIELDS = [
    ("place_order", "quantity"),
    ("place_order", "price"),
    ("place_order", "expire_time_ns"),
    ("trade", "price"),
    ("fill_report", "fee"),
    ("bar", "volume"),
    ("bar", "interval_ns"),
    ("quote", "ask_price"),
    ("adjust_cash", "amount"),
]


@pytest.mark.parametrize(("payload_tag", "field"), _INT_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1.5, 1.0, 0.0, -0.0])
def test_floats_where_ints_are_required(payload_tag: str, field: str, value: float) -> None:
    """Money is never a float, not even an integral one: another language writing 1.0 is refused,
    so a rounding bug surfaces at the producer instead of inside the books."""
    message = refuse_raw(with_payload(payload_tag, **{field: value}))
    assert "got `float`" in message and message.endswith(at(f"$.payload.{field}")), message


@pytest.mark.parametrize("field", ["producer_seq", "event_time_ns", "seq_id", "ingest_time_ns", "schema_version"])
@pytest.mark.parametrize("value", [math.nan, math.inf, 2.0])
def test_floats_in_envelope_counters(field: str, value: float) -> None:
    assert refuse_raw(with_envelope(**{field: value})).endswith(at(f"$.{field}"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("producer_seq", 0, "Expected `int` >= 1"),
        ("producer_seq", -1, "Expected `int` >= 1"),
        ("event_time_ns", -1, "Expected `int` >= 0"),
        ("seq_id", 2**63, "Expected `int` <= 9223372036854775807"),
        ("ingest_time_ns", 2**64 - 1, "Expected `int` <= 9223372036854775807"),
        ("schema_version", 0, "Expected `int` >= 1"),
        # A newer writer may mean something this reader does not know (tests/contracts covers it).
        ("schema_version", SCHEMA_VERSION + 1, f"Expected `int` <= {SCHEMA_VERSION}"),
    ],
)
def test_envelope_counters_out_of_range(field: str, value: int, message: str) -> None:
    assert refuse_raw(with_envelope(**{field: value})) == message + at(f"$.{field}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(high=100, low=101, open=100, close=100), "bar high 100 < low 101"),
        (dict(high=200, low=100, open=99, close=150), "bar open 99 outside [low 100, high 200]"),
        (dict(high=200, low=100, open=150, close=201), "bar close 201 outside [low 100, high 200]"),
    ],
)
def test_inconsistent_bar(changes: dict[str, int], message: str) -> None:
    error = refuse(msgspec.msgpack.encode(with_payload("bar", **changes)))
    assert isinstance(error, msgspec.ValidationError)
    assert str(error) == message + at("$.payload")


@pytest.mark.parametrize("interval_ns", [0, -60, -(2**63)])
def test_bar_interval_must_be_positive(interval_ns: int) -> None:
    message = refuse_raw(with_payload("bar", interval_ns=interval_ns))
    assert message == "Expected `int` >= 1" + at("$.payload.interval_ns"), message  # gt=0 reads as >= 1


@pytest.mark.parametrize("interval_ns", [2**63, 2**64 - 1])
def test_bar_interval_beyond_int64_is_refused(interval_ns: int) -> None:
    message = refuse_raw(with_payload("bar", interval_ns=interval_ns))
    assert message == "Expected `int` <= 9223372036854775807" + at("$.payload.interval_ns"), message


def test_bar_interval_bounds_are_accepted() -> None:
    for interval_ns in (1, 2**63 - 1):
        payload = DECODER.decode(msgspec.msgpack.encode(with_payload("bar", interval_ns=interval_ns))).payload
        assert isinstance(payload, Bar) and payload.interval_ns == interval_ns


def test_crossed_quote() -> None:
    error = refuse(msgspec.msgpack.encode(with_payload("quote", bid_price=101, ask_price=100)))
    assert isinstance(error, msgspec.ValidationError)
    assert str(error) == "crossed quote: bid_price 101 > ask_price 100" + at("$.payload")
    # A locked quote (bid == ask) is not crossed.
    DECODER.decode(msgspec.msgpack.encode(with_payload("quote", bid_price=100, ask_price=100)))


def _string_fields() -> list[tuple[str, str, int, int]]:
    """(payload tag or "" for the envelope, field, min_length, max_length) of every str field."""
    out = []
    for payload_tag, cls in [("", Envelope), *((tag(type(p)), type(p)) for p in PAYLOADS)]:
        for f in _fields(cls):
            t = _not_none(f.type)
            if isinstance(t, msgspec.inspect.StrType):
                assert t.max_length is not None, f"{cls.__name__}.{f.name} has no length limit"
                out.append((payload_tag, f.encode_name, t.min_length or 0, t.max_length))
    return out


STRING_FIELDS = _string_fields()


def _refuse_string(payload_tag: str, field: str, value: str) -> str:
    raw = with_payload(payload_tag, **{field: value}) if payload_tag else with_envelope(**{field: value})
    message = refuse_raw(raw)
    assert message.endswith(at(f"$.payload.{field}" if payload_tag else f"$.{field}")), message
    return message


@pytest.mark.parametrize(("payload_tag", "field", "min_length", "max_length"), STRING_FIELDS)
def test_over_long_strings(payload_tag: str, field: str, min_length: int, max_length: int) -> None:
    assert max_length in (MAX_ID_CHARS, MAX_TEXT_CHARS, 16)
    message = _refuse_string(payload_tag, field, "x" * (max_length + 1))
    assert f"Expected `str` of length <= {max_length}" in message


def test_ids_over_max_id_chars_are_refused_everywhere() -> None:
    """The id fields the dedup tables key on: all bounded by MAX_ID_CHARS."""
    id_fields = {(t, f) for t, f, _, hi in STRING_FIELDS if hi == MAX_ID_CHARS}
    for must in [
        ("", "producer_id"),
        ("", "idempotency_key"),
        ("place_order", "client_order_id"),
        ("place_order", "strategy_id"),
        ("fill_report", "trade_id"),
        ("", "venue"),
        ("", "instrument"),
    ]:
        assert must in id_fields
    for payload_tag, field in sorted(id_fields):
        _refuse_string(payload_tag, field, "i" * (MAX_ID_CHARS + 1))
        # Length counts characters, not bytes: 64 four-byte characters are still fine.
        raw = (
            with_payload(payload_tag, **{field: "\U0001f600" * MAX_ID_CHARS})
            if payload_tag
            else with_envelope(**{field: "\U0001f600" * MAX_ID_CHARS})
        )
        DECODER.decode(msgspec.msgpack.encode(raw))


@pytest.mark.parametrize(("payload_tag", "field", "min_length", "max_length"), [s for s in STRING_FIELDS if s[2] > 0])
def test_empty_ids_are_refused(payload_tag: str, field: str, min_length: int, max_length: int) -> None:
    assert "Expected `str` of length >= 1" in _refuse_string(payload_tag, field, "")


@pytest.mark.parametrize("where", ["producer_id", "key", "payload.client_order_id", "payload.type"])
def test_invalid_utf8_is_refused_with_decode_error(where: str) -> None:
    """Invalid UTF-8 in a string value or a map key is malformed input like any other."""
    invalid = b"\xa2\xff\xfe"
    if where == "key":
        frame = _frame_with_raw_value(with_envelope(**{_MARKER: 1}), invalid)
    elif where.startswith("payload."):
        frame = _frame_with_raw_value(with_payload("place_order", **{where[8:]: _MARKER}), invalid)
    else:
        frame = _frame_with_raw_value(with_envelope(**{where: _MARKER}), invalid)
    refuse(frame)


def test_invalid_utf8_refusal_says_what_and_keeps_the_cause() -> None:
    """msgspec before 0.23 raises UnicodeDecodeError here (msgspec#714); the codec's StrictDecoder
    turns it into a DecodeError a receive loop catches, keeping the original as the cause. msgspec
    0.23 raises DecodeError itself; either way the receive loop sees one exception type."""
    error = refuse(_frame_with_raw_value(with_envelope(producer_id=_MARKER), b"\xa2\xff\xfe"))
    assert type(error) is msgspec.DecodeError
    assert "utf-8" in str(error).lower(), error
    if str(error).startswith("invalid UTF-8 in a string"):  # translated by StrictDecoder
        assert isinstance(error.__cause__, UnicodeDecodeError)
