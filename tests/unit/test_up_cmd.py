"""`tradebus up` refuses a broken profile before anything starts; `up` then `down` starts and stops a group."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.main import main
from services.deploy import supervisor_conf
from services.deploy.supervisor_conf import Program, supervisor_files
from tests.unit.test_supervisor_conf import BIN, PROFILE, TIMEOUT_S, _wait, stop_supervisord


def _all_execd(conf: Path, count: int) -> bool:
    """Every one of `count` programs has a pid whose command line is the fake `serve`."""
    out = subprocess.run([BIN / "supervisorctl", "-c", conf, "pid", "all"], capture_output=True, text=True,
                         timeout=TIMEOUT_S, check=False).stdout  # fmt: skip
    pids = [line.strip() for line in out.splitlines() if line.strip().isdigit() and line.strip() != "0"]
    try:
        return len(pids) == count and all(b"time.sleep" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids)
    except OSError:
        return False


def _profile(tmp_path: Path, text: str = PROFILE) -> Path:
    (tmp_path / "strat.py").write_text("")
    path = tmp_path / "profile.toml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Programs sleep instead of running `serve` (written elsewhere): this tests up/down, not serve."""

    def sleep(program: Program, profile_path: Path) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(30)", program.name]

    monkeypatch.setattr(supervisor_conf, "serve_command", sleep)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Path]:
    path = _profile(tmp_path)
    files = supervisor_files(tmp_path / "run")
    try:
        yield path
    finally:
        stop_supervisord(files.conf, files.pidfile)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            ('kind = "synthetic"', 'kind = "synthetic"\ncolour = "red"'),
            "feeds[0].colour: extra inputs are not permitted",
        ),
        (('path = "strat.py"', 'path = "gone.py"'), "strategies[0].path: file not found"),
        (('mode = "paper"', "mode = "), "TOML syntax error at line 4"),
    ],
)
@pytest.mark.usefixtures("fake_serve", "group")  # should the check fail, what starts is harmless and stopped
def test_up_with_a_broken_profile_exits_2_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, str], named: str
) -> None:
    path = _profile(tmp_path, PROFILE.replace(*change))
    assert main(["up", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradebus up: profile ")
    assert named in err
    run_dir = tmp_path / "run"
    assert not (run_dir / "supervisord.conf").exists()
    assert not (run_dir / "supervisord.pid").exists()
    assert not run_dir.exists()


def test_down_when_not_running_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down", str(_profile(tmp_path))]) == 0
    assert "not running" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_serve")
def test_up_then_down(group: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = supervisor_files(group.parent / "run")
    assert main(["up", str(group)]) == 0
    assert "started: supervisord pid" in capsys.readouterr().out
    assert files.pidfile.exists()
    commands = [shlex.split(line.removeprefix("command = ")) for line in files.conf.read_text().splitlines()
                if line.startswith("command = ")]  # fmt: skip
    assert [c[-1] for c in commands] == ["sequencer", "gateway-sim", "strategy-s1", "feed-a", "feed-b"]

    assert main(["up", str(group)]) == 1, "a second up must not start a second supervisord"
    # supervisord loses a SIGTERM that reaches a child between fork and exec (it then waits
    # stopwaitsecs and SIGKILLs): stop only once every program runs our command.
    assert _wait(lambda: _all_execd(files.conf, 5)), "the programs did not start"
    assert "already running" in capsys.readouterr().err

    assert main(["down", str(group)]) == 0
    assert "stopped" in capsys.readouterr().out
    assert not files.pidfile.exists()
