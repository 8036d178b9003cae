"""The core compiled with mypyc (ops/compile_core.sh) gives byte-identical traces and the same
state hashes as the interpreted core: the reference design's Python-vs-Rust parity, for our two
builds of one core, and the same for a backtest (runner and venue compiled too). Compiling takes about 60 s, so this is marked slow; it still runs in make test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Runs inside the compiled build: replays every golden scenario and prints trace digests and hashes.
_PROBE = r"""
import hashlib, json, sys
from pathlib import Path
import msgspec
import services.sequencer.core.engine as engine
from schemas import Envelope
from services.sequencer.core import CoreConfig, SequencerCore
from services.sequencer.trace import TraceWriter
golden = Path(sys.argv[1])
decoder = msgspec.json.Decoder(Envelope)
result = {"engine": engine.__file__, "scenarios": {}}
for folder in sorted(p for p in golden.iterdir() if p.is_dir()):
    core = SequencerCore(CoreConfig.model_validate_json((folder / "config.json").read_text()))
    trace = TraceWriter()
    for line in (folder / "input.jsonl").read_bytes().splitlines():
        trace.extend(core.apply(decoder.decode(line)))
    result["scenarios"][folder.name] = [hashlib.sha256(trace.getvalue()).hexdigest(), core.state_hash()]
# A backtest through the compiled runner and venue: same journal bytes, same state hash.
import services.backtest.runner as runner
from services.backtest import BacktestConfig, instrument_spec_for, run_backtest
from services.data import load_bars
from services.strategy.loader import load_strategy_class
repo = Path(sys.argv[2])
config = BacktestConfig(matching={"taker_fee": "0.001", "maker_fee": "0.001"})
bars = load_bars(repo / "examples/data/BTC-USD_1m.csv", "BTC-USD", instrument_spec_for("BTC-USD", config), end="2024-01-03")
run = run_backtest(load_strategy_class(str(repo / "examples/strategies/sma_cross.py")), bars, config, run_dir="bt")
result["runner"] = runner.__file__
result["backtest"] = [run.state_hash, hashlib.sha256(Path("bt/journal.tbj").read_bytes()).hexdigest(), len(run.fills)]
print(json.dumps(result))
"""


@pytest.mark.slow
def test_compiled_core_matches_the_interpreted_core(tmp_path: Path) -> None:
    build = tmp_path / "compiled"
    subprocess.run(["bash", str(REPO / "ops" / "compile_core.sh"), str(build), sys.executable], check=True,
                   capture_output=True, timeout=600)
    golden = REPO / "tests" / "contracts" / "golden" / "traces"

    def probe(pythonpath: Path) -> dict:  # type: ignore[type-arg]
        out = subprocess.run([sys.executable, "-c", _PROBE, str(golden), str(REPO)], check=True, capture_output=True,
                             text=True, cwd=tmp_path, env={"PYTHONPATH": str(pythonpath), "PATH": "/usr/bin:/bin"})
        return json.loads(out.stdout)

    compiled = probe(build)
    interpreted = probe(REPO)
    assert compiled["engine"].endswith(".so"), f"the compiled build was not the one imported: {compiled['engine']}"
    assert interpreted["engine"].endswith(".py")
    assert compiled["scenarios"] == interpreted["scenarios"]
    assert compiled["runner"].endswith(".so") and interpreted["runner"].endswith(".py")
    assert compiled["backtest"] == interpreted["backtest"]
    assert compiled["backtest"][2] > 10, "the backtest should trade"
    assert len(compiled["scenarios"]) >= 10
