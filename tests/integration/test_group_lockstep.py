"""A lockstep backtest over the bus equals the in-process backtest, byte for byte (D5).

Real processes (sequencer, feed, gateway, strategy host), real ipc sockets, the example strategy
on the bundled data. The journal holds every input in order, so equal journals mean an equal
transition trace and an equal final state hash (replay derives both from the journal).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.deploy.profile import load_profile
from services.sequencer.recovery import replay_journal
from tests.integration.group_support import (
    reference,
    start_processes,
    stop_processes,
    wait_for,
    write_profile,
)


@pytest.fixture
def group(tmp_path: Path):  # type: ignore[no-untyped-def]
    profile_path = write_profile(tmp_path, rows=6_000)
    profile = load_profile(profile_path)
    logs = tmp_path / "logs"
    processes = start_processes(profile_path, logs)
    try:
        yield profile_path, profile, processes, logs
    finally:
        stop_processes(processes)


def test_bus_backtest_journal_and_state_hash_equal_the_in_process_run(group, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile_path, profile, _processes, logs = group
    run_dir = profile.group.run_dir
    wait_for(run_dir / "lockstep.done", 120, failed=run_dir / "lockstep.failed", logs=logs)
    expected = reference(profile_path, tmp_path / "in_process")
    assert len(expected.fills) >= 4, "the comparison means little if nothing trades"
    bus_journal = (run_dir / "journal.tbj").read_bytes()
    assert bus_journal == (tmp_path / "in_process/journal.tbj").read_bytes()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["state_hash"] == expected.state_hash
    assert replay_journal(run_dir / "journal.tbj").final_state_hash == expected.state_hash
    # The same summary table as the in-process run prints.
    assert (run_dir / "summary.txt").read_text().strip() == expected.summary().strip()
    assert (run_dir / "report.png").stat().st_size > 10_000


def test_up_wait_runs_the_group_under_supervisord_and_prints_the_summary(tmp_path: Path) -> None:
    """What `make run` does: start the group, show progress, print the summary, stop the group."""
    import subprocess
    import sys

    from tests.integration.group_support import REPO

    profile_path = write_profile(tmp_path, rows=3_000)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "up", str(profile_path), "--wait", "--down-after"],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Total return" in done.stdout and "report.png" in done.stdout
    assert "stopped" in done.stdout
    profile = load_profile(profile_path)
    assert (
        not (profile.group.run_dir / "supervisord.pid").exists()
        or "not running"
        in subprocess.run(
            [sys.executable, "-m", "services.cli.main", "down", str(profile_path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )
