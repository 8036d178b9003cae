"""The committed JSON Schema matches the structs, and real messages conform to it.

Other languages only see `schemas/jsonschema/*.json`, so three things must hold:
1. the committed files are exactly what the structs generate today (else: run the export);
2. the documents are shaped as the structs say (tags, required fields, closed objects);
3. messages the real core produces validate against them.

The `jsonschema` package is not a dependency, so (3) uses a tiny validator for exactly the
keywords msgspec emits; it fails on any keyword it does not know instead of ignoring it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import (
    AdjustCash,
    CancelRejectedReport,
    CoreSnapshot,
    Envelope,
    FillReport,
    HaltTrading,
    NoOp,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    Output,
    Payload,
    Quote,
    ReplaceOrder,
    ReplaceRejectedReport,
    ResumeTrading,
    RiskFlag,
    SetRiskFlag,
    SubmissionUnknownReport,
    Timer,
    Trade,
)
from schemas.bus import BusMessage
from schemas.jsonschema import DEFAULT_DIR, DRAFT, SCHEMA_FILES, build_schemas, check, export, render
from services.cli import schema_cmd
from services.sequencer.core import SequencerCore
from services.sequencer.scenario import Scenario, demo_config

REGENERATE = "run `tradebus schema export` (or `make schema`) and commit schemas/jsonschema/"

# --------------------------------------------------------------------------------------------
# 1. committed files == generated


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_committed_schema_matches_structs(name: str) -> None:
    path = DEFAULT_DIR / name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    committed = path.read_text(encoding="ascii")
    expected = render(build_schemas()[name])
    assert committed == expected, f"{path} drifted from the structs in schemas/; {REGENERATE}"


def test_check_reports_nothing_for_the_committed_directory() -> None:
    assert check() == [], REGENERATE


def test_rendering_is_deterministic_and_canonical() -> None:
    first = {name: render(doc) for name, doc in build_schemas().items()}
    second = {name: render(doc) for name, doc in build_schemas().items()}
    assert first == second
    assert sorted(first) == ["bus.schema.json", "envelope.schema.json", "output.schema.json", "snapshot.schema.json"]
    for name, text in first.items():
        assert text.endswith("}\n") and not text.endswith("\n\n"), name
        # Re-rendering the parsed text gives the same bytes: keys sorted, formatting fixed.
        assert render(json.loads(text)) == text, name


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_each_document_has_header(name: str) -> None:
    doc = build_schemas()[name]
    assert doc["$schema"] == DRAFT == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == f"urn:tradebus:schema:{name.removesuffix('.schema.json')}"
    assert doc["title"].startswith("tradebus ")
    assert "integers" in doc["description"] and "price_decimals" in doc["description"]


def test_export_then_check_roundtrip_and_drift_detection(tmp_path: Path) -> None:
    assert check(tmp_path) == list(SCHEMA_FILES)  # empty directory: everything missing
    paths = export(tmp_path)
    assert [p.name for p in paths] == list(SCHEMA_FILES)
    assert check(tmp_path) == []
    (tmp_path / "output.schema.json").write_text("{}\n")
    (tmp_path / "snapshot.schema.json").unlink()
    assert check(tmp_path) == ["output.schema.json", "snapshot.schema.json"]
    export(tmp_path)
    assert check(tmp_path) == []


# --------------------------------------------------------------------------------------------
# 2. the documents are shaped as the structs say


def _struct_types(root: Any) -> dict[str, msgspec.inspect.StructType]:
    """Every struct reachable from `root`, by class name (the `$defs` key msgspec uses)."""
    found: dict[str, msgspec.inspect.StructType] = {}

    def walk(t: msgspec.inspect.Type) -> None:
        if isinstance(t, msgspec.inspect.StructType):
            if t.cls.__name__ in found:
                return
            found[t.cls.__name__] = t
            for f in t.fields:
                walk(f.type)
        elif isinstance(t, msgspec.inspect.UnionType):
            for member in t.types:
                walk(member)
        elif isinstance(t, (msgspec.inspect.ListType, msgspec.inspect.DictType)):
            if isinstance(t, msgspec.inspect.DictType):
                walk(t.key_type)
                walk(t.value_type)
            else:
                walk(t.item_type)

    walk(msgspec.inspect.type_info(root))
    return found


_ROOTS = {
    "bus.schema.json": BusMessage,
    "envelope.schema.json": Envelope,
    "output.schema.json": Output,
    "snapshot.schema.json": CoreSnapshot,
}


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_struct_is_a_closed_object_with_its_tag_and_required_fields(name: str) -> None:
    defs = build_schemas()[name]["$defs"]
    structs = _struct_types(_ROOTS[name])
    assert structs, name
    for cls_name, info in structs.items():
        d = defs[cls_name]
        assert d["type"] == "object"
        assert d["additionalProperties"] is False, f"{cls_name} must refuse unknown fields"
        field_names = [f.encode_name for f in info.fields]
        required = [f.encode_name for f in info.fields if f.required]
        if info.tag_field is not None:
            assert info.tag_field == "type"
            assert d["properties"]["type"] == {"enum": [info.tag]}, cls_name
            assert d["required"] == ["type", *required], cls_name
            assert set(d["properties"]) == {"type", *field_names}, cls_name
        else:
            assert cls_name == "Envelope"  # the only untagged struct on the wire
            assert d["required"] == required
            assert set(d["properties"]) == set(field_names)
        for f in info.fields:
            prop = d["properties"][f.encode_name]
            if f.required:
                assert "default" not in prop, (cls_name, f.name)
            else:
                assert prop["default"] == msgspec.to_builtins(f.default), (cls_name, f.name)


def test_every_closed_object_anywhere_says_additional_properties_false() -> None:
    """Any object schema with `properties` is a struct and must be closed (dicts have none)."""
    checked = 0

    def walk(node: Any) -> None:
        nonlocal checked
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                assert node.get("additionalProperties") is False, node.get("title")
                checked += 1
            for key, value in node.items():
                if key not in ("default",):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for doc in build_schemas().values():
        walk(doc)
    assert checked >= 21 + 12 + 8  # payloads + outputs + snapshot structs, at least


@pytest.mark.parametrize(
    ("name", "where", "union"),
    [
        ("envelope.schema.json", ("$defs", "Envelope", "properties", "payload"), Payload),
        ("output.schema.json", (), Output),
    ],
)
def test_union_lists_every_tag_once(name: str, where: tuple[str, ...], union: Any) -> None:
    node: Any = build_schemas()[name]
    for key in where:
        node = node[key]
    members = msgspec.inspect.type_info(union).types
    expected = {m.tag: f"#/$defs/{m.cls.__name__}" for m in members}
    assert node["discriminator"] == {"propertyName": "type", "mapping": expected}
    assert [alt["$ref"] for alt in node["anyOf"]] == list(expected.values())
    assert len(expected) == len(members)  # no two members share a tag


def test_enum_values_match_the_python_enums() -> None:
    from schemas import enums

    for name, doc in build_schemas().items():
        for def_name, d in doc["$defs"].items():
            cls = getattr(enums, def_name, None)
            if cls is not None:
                assert d["enum"] == sorted(m.value for m in cls), (name, def_name)


# --------------------------------------------------------------------------------------------
# 3. real messages validate


class SchemaViolation(AssertionError):
    pass


_ANNOTATIONS = {"title", "description", "default", "discriminator", "$schema", "$id", "$defs"}
_JSON_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    # Stricter than JSON Schema, which lets 1.0 pass as an integer: msgspec's strict decoders
    # refuse any float where an int is declared, so a faithful check must too.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> None:
    """Validate `value` against the subset of draft 2020-12 that msgspec emits.

    Raises:
        SchemaViolation: naming the path, on the first violation.
        AssertionError: on a keyword this validator does not implement (never silently skip).
    """
    unknown = (
        set(schema)
        - _ANNOTATIONS
        - {
            "$ref",
            "anyOf",
            "type",
            "enum",
            "properties",
            "required",
            "additionalProperties",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "minLength",
            "maxLength",
            "items",
            "propertyNames",
        }
    )
    assert not unknown, f"validator does not implement {sorted(unknown)} (at {path})"
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        validate(value, root["$defs"][ref.removeprefix("#/$defs/")], root, path)
    if "anyOf" in schema:
        errors = []
        for alternative in schema["anyOf"]:
            try:
                validate(value, alternative, root, path)
                break
            except SchemaViolation as exc:
                errors.append(str(exc))
        else:
            raise SchemaViolation(f"{path}: matches no alternative: {errors}")
    if "type" in schema and not _JSON_TYPES[schema["type"]](value):
        raise SchemaViolation(f"{path}: expected {schema['type']}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(f"{path}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaViolation(f"{path}: {value} < minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaViolation(f"{path}: {value} > maximum {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise SchemaViolation(f"{path}: {value} <= exclusiveMinimum {schema['exclusiveMinimum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise SchemaViolation(f"{path}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaViolation(f"{path}: longer than {schema['maxLength']}")
    if "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                raise SchemaViolation(f"{path}: missing required {key!r}")
        for key, item in value.items():
            if "propertyNames" in schema:
                validate(key, schema["propertyNames"], root, f"{path}<key {key!r}>")
            if key in properties:
                validate(item, properties[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                raise SchemaViolation(f"{path}: unknown field {key!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                validate(item, schema["additionalProperties"], root, f"{path}.{key}")


def _as_json(obj: Any) -> Any:
    """What another language sees: the struct's JSON encoding, parsed."""
    return json.loads(msgspec.json.encode(obj))


def _real_run() -> tuple[list[Envelope], list[Output], CoreSnapshot]:
    """Every payload type, sequenced and applied by the real core."""
    sc = Scenario()
    sc.bar("BTC-USD", 4_200_000, 4_210_000, 4_190_000, 4_205_000)
    sc.emit(Trade(price=4_205_000, quantity=2, trade_id="p1"), producer="feed", instrument="BTC-USD")
    sc.emit(
        Quote(bid_price=4_204_000, bid_size=3, ask_price=4_206_000, ask_size=4),
        producer="feed",
        instrument="BTC-USD",
    )
    sc.advance()
    sc.place("c1")
    sc.accept("c1")
    sc.fill("c1", "t1", 4_000, 4_200_000, fee=25)
    sc.fill("c1", "t1", 4_000, 4_200_000, fee=25)  # duplicate venue trade id
    sc.emit(ReplaceOrder(strategy_id="s1", client_order_id="c1", quantity=8_000), producer="strategy-s1")
    sc.report(OrderReplacedReport(client_order_id="c1", quantity=8_000, price=4_200_000))
    sc.report(CancelRejectedReport(client_order_id="c1", reason="too late"))
    sc.report(ReplaceRejectedReport(client_order_id="c1", reason="no"))
    sc.cancel("c1")
    sc.cancelled("c1")
    sc.place("c2", order_type="limit", price=4_100_000)
    sc.report(SubmissionUnknownReport(client_order_id="c2", reason="timeout"))
    sc.report(OrderExpiredReport(client_order_id="c2"))
    sc.place("c3", price=4_000_000)
    sc.reject("c3")
    sc.report(OrderCancelledReport(client_order_id="nope"))  # unknown order: refused
    sc.place("c4", side="sell", quantity=10**12)  # more than held: rejected
    sc.emit(SetRiskFlag(strategy_id="s1", flag=RiskFlag.REDUCE_ONLY, enabled=True, reason="r"), producer="strategy-s1")
    sc.emit(NoOp(strategy_id="s1"), producer="strategy-s1", idempotency_key="noop-1")
    sc.emit(HaltTrading(reason="drill"), producer="control")
    sc.emit(ResumeTrading(reason="drill over"), producer="control")
    sc.emit(AdjustCash(currency="USD", amount=-5_000_000, reason="fee rebate"), producer="control")
    sc.timer()
    sc.emit(Timer(timer_id="t"), producer="clock", producer_seq=9)  # gap in the clock's counter
    sc.report(FillReport(client_order_id="c1", trade_id="t2", quantity=1, price=4_200_000))
    sc.report(OrderAcceptedReport(client_order_id="c2"))
    sc.report(OrderRejectedReport(client_order_id="c2", reason="late"))

    core = SequencerCore(demo_config())
    envelopes = sc.sequenced()
    outputs = [out for env in envelopes for out in core.apply(env)]
    return envelopes, outputs, core.snapshot()


@pytest.fixture(scope="module")
def real_run() -> tuple[list[Envelope], list[Output], CoreSnapshot]:
    return _real_run()


def test_real_envelopes_validate(real_run: tuple[list[Envelope], list[Output], CoreSnapshot]) -> None:
    envelopes, _, _ = real_run
    schema = build_schemas()["envelope.schema.json"]
    tags = set()
    for env in envelopes:
        validate(_as_json(env), schema, schema)
        tags.add(msgspec.inspect.type_info(type(env.payload)).tag)
    every_tag = {m.tag for m in msgspec.inspect.type_info(Payload).types}
    assert tags == every_tag, f"scenario misses payloads {sorted(every_tag - tags)}"


def test_real_outputs_validate(real_run: tuple[list[Envelope], list[Output], CoreSnapshot]) -> None:
    _, outputs, _ = real_run
    schema = build_schemas()["output.schema.json"]
    for out in outputs:
        validate(_as_json(out), schema, schema)
    kinds = {type(out).__name__ for out in outputs}
    # The run is built to reach most outputs; if the core stops emitting one, widen the run.
    assert kinds >= {
        "OrderTransitioned",
        "SubmitOrder",
        "FillBooked",
        "DuplicateDropped",
        "IntentRejected",
        "ReportRefused",
        "RequestCancel",
        "RequestReplace",
        "RiskFlagChanged",
        "CashAdjusted",
        "ProducerGap",
    }, kinds


def test_real_snapshot_validates(real_run: tuple[list[Envelope], list[Output], CoreSnapshot]) -> None:
    _, _, snapshot = real_run
    schema = build_schemas()["snapshot.schema.json"]
    encoded = _as_json(snapshot)
    assert encoded["orders"] and encoded["positions"] and encoded["cash"] and encoded["idempotency"]
    validate(encoded, schema, schema)


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda m: m["payload"].update(quantity=0), "exclusiveMinimum"),
        (lambda m: m["payload"].update(quantity=1.0), "expected integer"),
        (lambda m: m["payload"].update(type="place_orders"), "matches no alternative"),
        (lambda m: m["payload"].update(colour="red"), "matches no alternative"),
        (lambda m: m.update(colour="red"), "unknown field 'colour'"),
        (lambda m: m.pop("producer_seq"), "missing required 'producer_seq'"),
        (lambda m: m.update(source="strategies"), "not in"),
        (lambda m: m.update(producer_id="x" * 65), "longer than 64"),
    ],
)
def test_validator_rejects_broken_envelopes(mutate: Any, complaint: str) -> None:
    """The validator can fail: otherwise the tests above would prove nothing."""
    sc = Scenario()
    message = _as_json(sc.place("c1"))
    schema = build_schemas()["envelope.schema.json"]
    validate(message, schema, schema)
    mutate(message)
    with pytest.raises(SchemaViolation, match=complaint.replace("(", r"\(")):
        validate(message, schema, schema)


# --------------------------------------------------------------------------------------------
# the command, in process (services.cli.main imports modules other people are writing)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradebus")
    schema_cmd.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    code: int = args.run(args)
    return code


def test_cli_check_passes_on_committed_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["schema", "check"]) == 0
    assert "match the structs" in capsys.readouterr().out


def test_cli_export_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["schema", "check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for name in SCHEMA_FILES:
        assert f"drift: {tmp_path / name}" in err
    assert "tradebus schema export" in err

    assert _run(["schema", "export", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / n) for n in SCHEMA_FILES]
    assert _run(["schema", "check", "--dir", str(tmp_path)]) == 0
    documents = build_schemas()
    for name in SCHEMA_FILES:
        assert (tmp_path / name).read_text(encoding="ascii") == render(documents[name])

    envelope = tmp_path / "envelope.schema.json"
    envelope.write_text(envelope.read_text().replace('"maxLength": 64', '"maxLength": 65', 1))
    capsys.readouterr()
    assert _run(["schema", "check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "envelope.schema.json" in err and "output.schema.json" not in err


def test_cli_requires_an_action() -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["schema"])
    assert exc.value.code == 2
