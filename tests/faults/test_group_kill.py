"""kill -9 of each process of a lockstep group mid-run (RELIABILITY C1, C2).

The killed process is restarted (here by the test, in `test_supervisor_restarts_...` by
supervisord), the run recovers by re-execution, and the final journal and state hash equal the
uninterrupted run's. The venue never saw an order twice within one incarnation of its book.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.deploy.profile import load_profile
from services.gateway.venue_log import read_venue_log
from tests.integration.group_support import (
    PROGRAMS,
    REPO,
    ROLES,
    journal_size,
    reference,
    start_process,
    start_processes,
    stop_processes,
    wait_for,
    write_profile,
)

pytestmark = pytest.mark.slow


def _kill_when_journal_reaches(
    profile, fraction_of: int, victim: subprocess.Popen[bytes], timeout_s: float = 60
) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while journal_size(profile) < fraction_of:
        assert time.monotonic() < deadline, "the run did not get far enough to be interrupted"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()


def _assert_no_order_twice_per_incarnation(profile) -> None:  # type: ignore[no-untyped-def]
    seen: set[tuple[int, str]] = set()
    for entry in read_venue_log(profile.group.run_dir / "logs" / "venue-SIM.jsonl"):
        if entry["kind"] != "submit":
            continue
        key = (entry["incarnation"], entry["client_order_id"])
        assert key not in seen, f"the venue saw {key} twice"
        seen.add(key)


@pytest.mark.parametrize("role", ROLES)
def test_kill_9_then_restart_ends_in_the_uninterrupted_state(role: str, tmp_path: Path) -> None:
    profile_path = write_profile(tmp_path)
    profile = load_profile(profile_path)
    expected = reference(profile_path, tmp_path / "in_process")
    full_size = (tmp_path / "in_process/journal.tbj").stat().st_size
    logs = tmp_path / "logs"
    processes = start_processes(profile_path, logs)
    try:
        _kill_when_journal_reaches(profile, full_size // 3, processes[role])
        processes[role] = start_process(profile_path, role, logs)
        run_dir = profile.group.run_dir
        wait_for(run_dir / "lockstep.done", 180, failed=run_dir / "lockstep.failed", logs=logs)
        assert (run_dir / "journal.tbj").read_bytes() == (tmp_path / "in_process/journal.tbj").read_bytes()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["config"]["state_hash"] == expected.state_hash
        _assert_no_order_twice_per_incarnation(profile)
    finally:
        stop_processes(processes)


def test_supervisor_restarts_a_killed_sequencer_and_the_run_completes(tmp_path: Path) -> None:
    profile_path = write_profile(tmp_path)
    profile = load_profile(profile_path)
    expected = reference(profile_path, tmp_path / "in_process")
    full_size = (tmp_path / "in_process/journal.tbj").stat().st_size
    tradebus = [sys.executable, "-m", "services.cli.main"]
    up = subprocess.run(
        [*tradebus, "up", str(profile_path)], check=False, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert up.returncode == 0, up.stderr
    conf = profile.group.run_dir / "supervisord.conf"
    ctl = [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(conf)]
    try:
        deadline = time.monotonic() + 60
        while journal_size(profile) < full_size // 3:
            assert time.monotonic() < deadline, "the group did not get going under supervisord"
            time.sleep(0.01)
        pid = int(
            subprocess.run([*ctl, "pid", PROGRAMS["sequencer"]], check=False, capture_output=True, text=True).stdout
        )
        os.kill(pid, signal.SIGKILL)
        run_dir = profile.group.run_dir
        wait_for(run_dir / "lockstep.done", 180, failed=run_dir / "lockstep.failed", logs=run_dir / "logs")
        new_pid = int(
            subprocess.run([*ctl, "pid", PROGRAMS["sequencer"]], check=False, capture_output=True, text=True).stdout
        )
        assert new_pid != pid, "supervisord did not restart the sequencer"
        assert (run_dir / "journal.tbj").read_bytes() == (tmp_path / "in_process/journal.tbj").read_bytes()
        assert json.loads((run_dir / "summary.json").read_text())["config"]["state_hash"] == expected.state_hash
    finally:
        subprocess.run([*tradebus, "down", str(profile_path)], check=False, cwd=REPO, capture_output=True, timeout=60)
