"""Every example strategy runs through `tradebus backtest` on the bundled data (two days of it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples/data"
# Extra --data arguments an example needs beyond the BTC minutes.
_DATA = {
    "pairs_ratio.py": ["--data", str(DATA / "ETH-USD_1m.csv"), "--data", f"BTC-USD@1h={DATA / 'BTC-USD_1m.csv'}"],
}
EXAMPLES = sorted(p.name for p in (REPO / "examples/strategies").glob("*.py"))


def test_every_example_is_listed() -> None:
    assert {"sma_cross.py", "sma_cross_bt.py", "pairs_ratio.py"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_from_the_command_line(name: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "backtest", f"examples/strategies/{name}",
         "--data", str(DATA / "BTC-USD_1m.csv"), *_DATA.get(name, []), "--to", "2024-01-03",
         "--fees", "0.001", "--run-dir", str(run_dir), "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Total return" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["warnings"] == []
    assert (run_dir / "report.png").stat().st_size > 10_000
