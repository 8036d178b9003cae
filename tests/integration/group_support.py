"""Running a real process group in tests: a small lockstep profile, its processes, and its reference.

The reference is the in-process backtest of the same profile (`backtest_config_for`) on the same
data: a lockstep group must write its journal byte for byte (D5), with or without faults.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from services.backtest import run_backtest
from services.deploy.profile import Profile, load_profile
from services.deploy.run_config import backtest_config_for
from services.feeds.file_feed import load_feed_series
from services.strategy.loader import load_strategy_class

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "examples/data/BTC-USD_1m.csv"
STRATEGY = REPO / "examples/strategies/sma_cross.py"
ROLES = ("sequencer", "gateway SIM", "strategy sma", "feed btc")
PROGRAMS = {
    "sequencer": "sequencer",
    "gateway SIM": "gateway-SIM",
    "strategy sma": "strategy-sma",
    "feed btc": "feed-btc",
}


def write_profile(tmp_path: Path, *, rows: int = 28_800, resample: str = "15m") -> Path:
    """A lockstep profile over the first `rows` minutes of the bundled BTC data."""
    data = tmp_path / "BTC-USD_1m.csv"
    with DATA.open() as src, data.open("w") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    profile = tmp_path / "profile.toml"
    profile.write_text(
        f"""
[group]
name = "test"
run_dir = "run"
mode = "backtest"

[journal]
fsync = "never"

[[feeds]]
name = "btc"
kind = "file"
data = ["{data}"]
resample = "{resample}"

[[venues]]
name = "SIM"
kind = "paper"

[venues.matching]
maker_fee = "0.001"
taker_fee = "0.001"

[[strategies]]
name = "sma"
path = "{STRATEGY}:SmaCross"
"""
    )
    return profile


def reference(profile_path: Path, run_dir: Path) -> Any:
    """The in-process backtest of the profile: its journal goes to run_dir."""
    profile = load_profile(profile_path)
    config = backtest_config_for(profile)
    series = load_feed_series(profile.feeds[0], config)  # type: ignore[arg-type]
    return run_backtest(load_strategy_class(str(STRATEGY)), series, config, run_dir=run_dir)


def start_processes(profile_path: Path, logs: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Every process of the group, directly (no supervisord): the test plays supervisor."""
    logs.mkdir(parents=True, exist_ok=True)
    return {role: start_process(profile_path, role, logs) for role in ROLES}


def start_process(profile_path: Path, role: str, logs: Path) -> subprocess.Popen[bytes]:
    name = role.replace(" ", "_")
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "serve", *role.split(), "--profile", str(profile_path)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in processes.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in processes.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_for(path: Path, timeout_s: float, *, failed: Path | None = None, logs: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if failed is not None and failed.exists():
            raise AssertionError(f"run failed: {failed.read_text()}")
        if time.monotonic() > deadline:
            tails = ""
            if logs is not None:
                for log in sorted(logs.glob("*.log")):
                    tails += f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise AssertionError(f"{path} did not appear in {timeout_s} s{tails}")
        time.sleep(0.05)


def journal_size(profile: Profile) -> int:
    path = profile.group.run_dir / "journal.tbj"
    return path.stat().st_size if path.exists() else 0
