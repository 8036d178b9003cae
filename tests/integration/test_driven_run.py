"""The driven loop (what the bus backtest's sequencer runs) is the in-process loop: same journal.

The lockstep bus backtest drives `services.backtest.runner` through a `Drive` (external source,
venue objects, a publication sink). Here the drive is local (the merged data, SimulatedVenues, the
strategy object itself), so any difference from `run_backtest` is the driven path's own: the
precondition of D5, checked without processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.backtest import BacktestConfig, run_backtest
from services.backtest.config import core_config_for, instrument_spec_for
from services.backtest.runner import Drive, _Run
from services.data import load_bars, merge, resample
from services.matching.venue import SimulatedVenue
from services.sequencer.recovery import replay_journal
from services.strategy.loader import as_native_strategy, load_strategy_class

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples/data/BTC-USD_1m.csv"
STRATEGY = REPO / "examples/strategies/sma_cross.py"


def _series(config: BacktestConfig) -> Any:
    bars = load_bars(DATA, "BTC-USD", instrument_spec_for("BTC-USD", config))
    return resample(bars, "15m")


def _driven(strategy: Any, config: BacktestConfig, run_dir: Path) -> tuple[Any, list[tuple[int, int]]]:
    series = _series(config)
    core_config = core_config_for(["BTC-USD"], config)
    venues = {name: SimulatedVenue(name, core_config, config.matching) for name in core_config.venues}
    published: list[tuple[int, int]] = []
    drive = Drive(
        ["BTC-USD"],
        merge(series),
        venues,
        lambda env, out: published.append((env.seq_id, len(out))),
        by_reference=False,
    )
    run = _Run(strategy, [], config, run_dir, False, drive)
    return run.execute(), published


def test_the_driven_loop_writes_the_in_process_journal(tmp_path: Path) -> None:
    config = BacktestConfig(matching={"taker_fee": "0.001", "maker_fee": "0.001"})
    cls = load_strategy_class(str(STRATEGY))
    expected = run_backtest(cls, _series(config), config, run_dir=tmp_path / "in_process")
    driven, published = _driven(as_native_strategy(cls, {}), config, tmp_path / "driven")
    assert len(expected.fills) > 10, "the example must trade for this comparison to mean anything"
    assert (tmp_path / "driven/journal.tbj").read_bytes() == (tmp_path / "in_process/journal.tbj").read_bytes()
    assert driven.state_hash == expected.state_hash
    # The fast path computes its equity curve from cash/position steps after the loop; the driven
    # (merged) path point by point: the same floats, bit for bit.
    for column in ("time_ns", "equity", "cash", "exposure"):
        assert getattr(driven.curve, column).tobytes() == getattr(expected.curve, column).tobytes(), column
    # Every applied envelope went to the sink once, in seq order (what the sequencer publishes).
    assert [seq for seq, _ in published] == list(range(1, len(published) + 1))
    assert published[-1][0] == replay_journal(tmp_path / "driven/journal.tbj").final_seq_id
