"""Golden traces: each named scenario, frozen as data, must replay to the same bytes.

Regenerate after a deliberate change with:  TRADEBUS_UPDATE_GOLDEN=1 make test
then review the diff of tests/contracts/golden/traces/ like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from schemas import Envelope
from services.sequencer.core import CoreConfig, SequencerCore
from services.sequencer.trace import TraceWriter
from tests.contracts.scenarios import SCENARIO_NAMES, SCENARIOS, run

GOLDEN = Path(__file__).parent / "golden" / "traces"
UPDATE = os.environ.get("TRADEBUS_UPDATE_GOLDEN") == "1"
_JSON = msgspec.json.Encoder(order="deterministic")
_ENVELOPE = msgspec.json.Decoder(Envelope)


def _jsonl(items: list) -> bytes:
    return b"".join(_JSON.encode(i) + b"\n" for i in items)


def _pretty(obj: object) -> str:
    return json.dumps(json.loads(_JSON.encode(obj)), indent=2, sort_keys=True) + "\n"


def _write_golden(name: str) -> None:
    spec = SCENARIOS[name]
    config, scenario = spec.build()
    envelopes = scenario.sequenced()
    result = run(config, envelopes)
    folder = GOLDEN / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(json.loads(config.canonical_json()), indent=2, sort_keys=True) + "\n"
    )
    (folder / "input.jsonl").write_bytes(_jsonl(envelopes))
    trace = TraceWriter()
    trace.extend(result.outputs)
    (folder / "trace.jsonl").write_bytes(trace.getvalue())
    snapshot = result.core.snapshot()
    (folder / "final_state.json").write_text(
        _pretty({"state_hash": result.core.state_hash(), "snapshot": snapshot})
    )


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario_behaviour(name: str) -> None:
    """The behaviour each scenario exists to pin down, stated as assertions."""
    spec = SCENARIOS[name]
    config, scenario = spec.build()
    spec.check(run(config, scenario.sequenced()))


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_golden_trace_replays_byte_identical(name: str) -> None:
    if UPDATE:
        _write_golden(name)
    folder = GOLDEN / name
    assert folder.is_dir(), f"no golden files for {name}: run TRADEBUS_UPDATE_GOLDEN=1 make test"
    config = CoreConfig.model_validate_json((folder / "config.json").read_text())
    envelopes = [_ENVELOPE.decode(line) for line in (folder / "input.jsonl").read_bytes().splitlines()]
    core = SequencerCore(config)
    trace = TraceWriter()
    for env in envelopes:
        trace.extend(core.apply(env))
    expected_trace = (folder / "trace.jsonl").read_bytes()
    assert trace.getvalue().decode().splitlines() == expected_trace.decode().splitlines()
    final = json.loads((folder / "final_state.json").read_text())
    assert core.state_hash() == final["state_hash"]


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_scenario_builder_still_produces_the_golden_input(name: str) -> None:
    """The Python builder and the frozen input agree (so behaviour tests and goldens match)."""
    config, scenario = SCENARIOS[name].build()
    folder = GOLDEN / name
    assert (folder / "input.jsonl").read_bytes() == _jsonl(scenario.sequenced())
    assert CoreConfig.model_validate_json((folder / "config.json").read_text()).config_hash() == config.config_hash()


def test_every_golden_folder_has_a_scenario() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == SCENARIO_NAMES
