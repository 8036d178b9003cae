"""The wire structs keep their promises: frozen, strict, uniquely tagged, and lossless round trips."""

from __future__ import annotations

from enum import Enum
from typing import Any

import msgspec
import pytest

from schemas import PAYLOAD_SOURCE, CoreSnapshot, Envelope, Output, Payload, Source, Timer
from schemas.base import Message, tag_of
from schemas.codec import (
    canonical_encoder,
    envelope_decoder,
    msgpack_encoder,
    output_decoder,
    snapshot_decoder,
)
from tests.unit.wire_samples import ENVELOPES, OUTPUTS, PAYLOADS, SNAPSHOT

PAYLOAD_TYPES: list[type] = [m.cls for m in msgspec.inspect.type_info(Payload).types]  # type: ignore[attr-defined]
OUTPUT_TYPES: list[type] = [m.cls for m in msgspec.inspect.type_info(Output).types]  # type: ignore[attr-defined]


def _all_struct_types() -> list[type]:
    """Every struct reachable from the three channels, in first-seen order."""
    seen: dict[type, None] = {}
    for root in (Envelope, Output, CoreSnapshot):
        for info in msgspec.inspect.multi_type_info([root]):
            _walk(info, seen)
    return list(seen)


def _walk(t: msgspec.inspect.Type, seen: dict[type, None]) -> None:
    if isinstance(t, msgspec.inspect.StructType):
        if t.cls in seen:
            return
        seen[t.cls] = None
        for f in t.fields:
            _walk(f.type, seen)
    elif isinstance(t, msgspec.inspect.Metadata):
        _walk(t.type, seen)
    elif isinstance(t, msgspec.inspect.UnionType):
        for member in t.types:
            _walk(member, seen)
    elif isinstance(t, msgspec.inspect.ListType):
        _walk(t.item_type, seen)
    elif isinstance(t, msgspec.inspect.DictType):
        _walk(t.value_type, seen)


ALL_TYPES = _all_struct_types()
SAMPLES: dict[type, Any] = {}
for _sample in [
    *PAYLOADS,
    *OUTPUTS,
    *ENVELOPES[:1],
    SNAPSHOT,
    *SNAPSHOT.orders,
    *SNAPSHOT.positions,
    *SNAPSHOT.cash,
    *SNAPSHOT.producers,
    *SNAPSHOT.idempotency,
    *SNAPSHOT.trade_ids,
    *SNAPSHOT.strategies,
]:
    SAMPLES.setdefault(type(_sample), _sample)


def _name(cls: type) -> str:
    return cls.__name__


def test_samples_cover_every_struct() -> None:
    assert set(SAMPLES) == set(ALL_TYPES), set(ALL_TYPES) ^ set(SAMPLES)
    assert len(ALL_TYPES) >= 21 + 12 + 8 + 1


# --------------------------------------------------------------------------------------------
# configuration: frozen, strict, tagged


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_struct_config(cls: type) -> None:
    config = cls.__struct_config__  # type: ignore[attr-defined]
    assert config.frozen, "messages are values: nobody may change one after decoding"
    assert config.forbid_unknown_fields, "an unknown field could change the meaning: refuse it"
    assert not config.omit_defaults, "every field is encoded: equal messages must give equal bytes"
    assert not config.array_like  # maps with names: readable by any MessagePack library
    if cls is Envelope:
        assert config.tag is None and config.tag_field is None
    else:
        assert issubclass(cls, Message)
        assert config.tag_field == "type"
        assert config.tag == tag_of(cls.__name__)


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_structs_are_frozen(cls: type) -> None:
    sample = SAMPLES[cls]
    field = msgspec.structs.fields(cls)[0].name
    with pytest.raises(AttributeError):
        setattr(sample, field, getattr(sample, field))
    with pytest.raises(AttributeError):
        sample.not_a_field = 1


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_unknown_fields_are_refused(cls: type) -> None:
    raw = msgspec.to_builtins(SAMPLES[cls])
    msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=cls)  # the baseline decodes
    raw["unexpected"] = 1
    with pytest.raises(msgspec.ValidationError, match="Object contains unknown field `unexpected`"):
        msgspec.msgpack.decode(msgspec.msgpack.encode(raw), type=cls)
    with pytest.raises(msgspec.ValidationError, match="Object contains unknown field `unexpected`"):
        msgspec.json.decode(msgspec.json.encode(raw), type=cls)


def test_tags_are_snake_case_class_names() -> None:
    assert tag_of("FillReport") == "fill_report"
    assert tag_of("NoOp") == "no_op"
    assert tag_of("OrderAcceptedReport") == "order_accepted_report"
    for cls in ALL_TYPES:
        if cls is not Envelope:
            tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
            assert tag == tag.lower() and " " not in tag and tag.replace("_", "").isalnum(), tag


def test_tags_are_unique_within_and_across_the_unions() -> None:
    payload_tags = [tag_of(c.__name__) for c in PAYLOAD_TYPES]
    output_tags = [tag_of(c.__name__) for c in OUTPUT_TYPES]
    assert len(set(payload_tags)) == len(payload_tags) == 21
    assert len(set(output_tags)) == len(output_tags) == 12
    # A subscriber that sees both channels (a recorder, a bridge) must never confuse the two.
    assert not set(payload_tags) & set(output_tags)
    every_tag = [c.__struct_config__.tag for c in ALL_TYPES if c is not Envelope]  # type: ignore[attr-defined]
    assert len(set(every_tag)) == len(every_tag)


def test_every_payload_type_has_exactly_one_source() -> None:
    assert set(PAYLOAD_SOURCE) == set(PAYLOAD_TYPES)
    assert all(isinstance(source, Source) for source in PAYLOAD_SOURCE.values())
    # Every source carries something, and strategies carry exactly the intents.
    assert set(PAYLOAD_SOURCE.values()) == set(Source)
    intents = {c.__name__ for c, s in PAYLOAD_SOURCE.items() if s is Source.STRATEGY}
    assert intents == {"PlaceOrder", "CancelOrder", "ReplaceOrder", "SetRiskFlag", "NoOp"}


# --------------------------------------------------------------------------------------------
# round trips


_MSGPACK = msgpack_encoder()
_ENVELOPES = envelope_decoder()
_OUTPUTS = output_decoder()
_SNAPSHOTS = snapshot_decoder()


@pytest.mark.parametrize("env", ENVELOPES, ids=lambda e: type(e.payload).__name__)
def test_envelope_round_trip(env: Envelope) -> None:
    frame = _MSGPACK.encode(env)
    decoded = _ENVELOPES.decode(frame)
    assert decoded == env and type(decoded.payload) is type(env.payload)
    assert _MSGPACK.encode(decoded) == frame
    text = msgspec.json.encode(env)
    assert msgspec.json.decode(text, type=Envelope) == env
    assert msgspec.json.encode(msgspec.json.decode(text, type=Envelope)) == text


@pytest.mark.parametrize("out", OUTPUTS, ids=lambda o: type(o).__name__)
def test_output_round_trip(out: Any) -> None:
    frame = _MSGPACK.encode(out)
    decoded = _OUTPUTS.decode(frame)
    assert decoded == out and type(decoded) is type(out)
    assert _MSGPACK.encode(decoded) == frame
    text = msgspec.json.encode(out)
    assert msgspec.json.decode(text, type=Output) == out


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_every_struct_round_trips_on_its_own(cls: type) -> None:
    sample = SAMPLES[cls]
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(sample), type=cls) == sample
    assert msgspec.json.decode(msgspec.json.encode(sample), type=cls) == sample


def test_snapshot_round_trip_and_canonical_bytes() -> None:
    frame = _MSGPACK.encode(SNAPSHOT)
    assert _SNAPSHOTS.decode(frame) == SNAPSHOT
    canonical = canonical_encoder()
    first = canonical.encode(SNAPSHOT)
    assert canonical.encode(_SNAPSHOTS.decode(frame)) == first
    assert canonical_encoder().encode(msgspec.json.decode(msgspec.json.encode(SNAPSHOT), type=CoreSnapshot)) == first


def _at_defaults(sample: Any) -> Any:
    """`sample` with every field that has a default left out, so it holds the default object itself."""
    cls = type(sample)
    return cls(**{f.name: getattr(sample, f.name) for f in msgspec.structs.fields(cls) if f.required})


def _wire_keys(cls: type) -> list[str]:
    """The keys a struct of `cls` must put on the wire, in order: its tag, then every field."""
    config = cls.__struct_config__  # type: ignore[attr-defined]
    tag = [config.tag_field] if config.tag_field else []
    return [*tag, *(f.encode_name for f in msgspec.structs.fields(cls))]


@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_every_field_is_on_the_wire(cls: type) -> None:
    """No omit_defaults: a field at its default is encoded like any other, in declaration order."""
    for value in (SAMPLES[cls], _at_defaults(SAMPLES[cls])):
        assert list(msgspec.msgpack.decode(_MSGPACK.encode(value))) == _wire_keys(cls)
        assert list(msgspec.json.decode(msgspec.json.encode(value))) == _wire_keys(cls)


def test_an_envelope_at_its_defaults_carries_them() -> None:
    env = Envelope(
        source=Source.TIMER,
        producer_id="clock",
        producer_seq=1,
        event_time_ns=0,
        payload=Timer(),
    )
    frame = _MSGPACK.encode(env)
    assert msgspec.msgpack.decode(frame) == {
        "source": "timer",
        "producer_id": "clock",
        "producer_seq": 1,
        "event_time_ns": 0,
        "payload": {"type": "timer", "timer_id": "clock"},
        "venue": "",
        "instrument": "",
        "idempotency_key": None,
        "seq_id": 0,
        "ingest_time_ns": 0,
        "schema_version": 1,
    }
    assert _ENVELOPES.decode(frame) == env
    # A producer that leaves the defaults out (another language may) sends the same message, and
    # re-encoding it gives the same bytes as the struct's.
    sparse = {
        "source": "timer",
        "producer_id": "clock",
        "producer_seq": 1,
        "event_time_ns": 0,
        "payload": {"type": "timer"},
    }
    decoded = _ENVELOPES.decode(msgspec.msgpack.encode(sparse))
    assert decoded == env
    assert _MSGPACK.encode(decoded) == frame


def _fresh(value: Any) -> Any:
    """An object equal to `value` but, where Python allows, not the same object (nested ones too)."""
    if isinstance(value, (bool, Enum)) or value is None:  # singletons: nothing to copy
        return value
    if isinstance(value, int):
        return int(str(value))
    if isinstance(value, str):
        return "".join(list(value))
    if isinstance(value, msgspec.Struct):
        return msgspec.structs.replace(
            value, **{f.name: _fresh(getattr(value, f.name)) for f in msgspec.structs.fields(value)}
        )
    if isinstance(value, list):
        return [_fresh(item) for item in value]
    if isinstance(value, dict):
        return {_fresh(key): _fresh(item) for key, item in value.items()}
    raise AssertionError(f"_fresh does not know {type(value).__name__}: extend it")


# Equal structs must encode to equal bytes: the state hash is "SHA-256 of the canonical encoding",
# and equal states must hash equal. (msgspec's omit_defaults compares defaults by identity, which
# broke this for Bar.interval_ns and Timer.timer_id; the schemas therefore encode every field.)
@pytest.mark.parametrize("cls", ALL_TYPES, ids=_name)
def test_equal_structs_encode_to_equal_bytes(cls: type) -> None:
    sample = SAMPLES[cls]
    at_defaults = _at_defaults(sample)  # holds the very default objects
    decoded: Any = msgspec.msgpack.decode(_MSGPACK.encode(at_defaults), type=cls)  # holds decoded copies
    for value in (sample, at_defaults):
        equal_copy = _fresh(value)
        assert equal_copy == value
        for encoder in (_MSGPACK, canonical_encoder()):
            assert encoder.encode(equal_copy) == encoder.encode(value), type(value).__name__
    assert decoded == at_defaults
    assert canonical_encoder().encode(decoded) == canonical_encoder().encode(at_defaults)
