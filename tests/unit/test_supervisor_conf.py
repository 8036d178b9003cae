"""supervisord.conf generation: the programs and commands expected, the same bytes every time, and a
real supervisord runs it: programs come up RUNNING, and a crash-looping one goes FATAL (C4)."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.deploy.profile import load_profile
from services.deploy.supervisor_conf import programs, render_supervisor_conf, supervisor_files

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "ops" / "profiles" / "default.toml"
BIN = Path(sys.executable).parent
TIMEOUT_S = 20.0  # for anything we wait on; a healthy run takes a second or two

PROFILE = """\
[group]
name = "t"
run_dir = "run"
mode = "paper"

[[feeds]]
name = "a"
kind = "synthetic"
instrument = "X-USD"
seed = 1

[[feeds]]
name = "b"
kind = "synthetic"
instrument = "Y-USD"
seed = 2

[[venues]]
name = "sim"
kind = "paper"

[[strategies]]
name = "s1"
path = "strat.py"
"""

EXPECTED_PROGRAMS = ["sequencer", "gateway-sim", "strategy-s1", "feed-a", "feed-b"]


def _profile_file(tmp_path: Path) -> Path:
    (tmp_path / "strat.py").write_text("")
    path = tmp_path / "profile.toml"
    path.write_text(PROFILE)
    return path


def _parse(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=True)  # as supervisord reads it
    parser.read_string(text)
    return parser


def test_default_profile_conf_has_the_programs_and_commands() -> None:
    profile = load_profile(DEFAULT)
    conf = _parse(render_supervisor_conf(profile, DEFAULT))
    run_dir = REPO / "runs" / "group"
    names = [s.removeprefix("program:") for s in conf.sections() if s.startswith("program:")]
    assert names == ["sequencer", "gateway-SIM", "strategy-sma_cross", "feed-btc"]
    serve = [sys.executable, "-m", "services.cli.main", "serve"]
    profile_args = ["--profile", str(DEFAULT)]
    assert shlex.split(conf["program:sequencer"]["command"]) == [*serve, "sequencer", *profile_args]
    assert shlex.split(conf["program:gateway-SIM"]["command"]) == [*serve, "gateway", "SIM", *profile_args]
    assert shlex.split(conf["program:strategy-sma_cross"]["command"]) == [
        *serve,
        "strategy",
        "sma_cross",
        *profile_args,
    ]
    assert shlex.split(conf["program:feed-btc"]["command"]) == [*serve, "feed", "btc", *profile_args]
    priorities = [int(conf[f"program:{n}"]["priority"]) for n in names]
    assert priorities[0] < min(priorities[1:]), "the sequencer starts first"
    for name in names:
        section = conf[f"program:{name}"]
        assert section["autorestart"] == "unexpected" and section["exitcodes"] == "0"
        assert int(section["startretries"]) >= 1
        assert section["stdout_logfile"] == str(run_dir / "logs" / f"{name}.out.log")
        assert section["stderr_logfile"] == str(run_dir / "logs" / f"{name}.err.log")
        assert section["environment"] == 'PYTHONUNBUFFERED="1"'
        assert section["directory"] == str(REPO)
    assert conf["supervisord"]["pidfile"] == str(run_dir / "supervisord.pid")
    assert conf["supervisord"]["logfile"] == str(run_dir / "logs" / "supervisord.log")
    assert conf["supervisord"]["nodaemon"] == "false"
    assert conf["unix_http_server"]["file"] == str(run_dir / "supervisor.sock")
    assert conf["supervisorctl"]["serverurl"] == f"unix://{run_dir / 'supervisor.sock'}"
    assert "rpcinterface:supervisor" in conf


def test_same_profile_same_bytes(tmp_path: Path) -> None:
    path = _profile_file(tmp_path)
    first = render_supervisor_conf(load_profile(path), path)
    assert render_supervisor_conf(load_profile(path), path) == first
    assert render_supervisor_conf(load_profile(path), str(path)) == first
    assert [p.name for p in programs(load_profile(path))] == EXPECTED_PROGRAMS
    assert render_supervisor_conf(load_profile(path), path, nodaemon=True) != first


def test_long_run_dir_puts_the_socket_under_tmp_and_says_why(tmp_path: Path) -> None:
    path = _profile_file(tmp_path)
    path.write_text(PROFILE.replace('run_dir = "run"', f'run_dir = "{"r" * 110}"'))
    text = render_supervisor_conf(load_profile(path), path)
    conf = _parse(text)
    socket = conf["unix_http_server"]["file"]
    assert socket.startswith("/tmp/tradebus-") and len(socket) <= 100
    assert "over the 100-byte limit of unix socket paths" in text
    assert conf["supervisorctl"]["serverurl"] == f"unix://{socket}"


def test_percent_in_paths_is_escaped_for_supervisord(tmp_path: Path) -> None:
    odd = tmp_path / "100%"
    odd.mkdir()
    path = _profile_file(odd)
    text = render_supervisor_conf(load_profile(path), path)
    assert "100%%/run/supervisord.pid" in text
    assert "100%/" not in text.replace("%%", "")


# --- a real supervisord --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"  # a zombie has exited; nobody may reap it in a container


def _wait(predicate: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def stop_supervisord(conf: Path, pidfile: Path) -> None:
    """Shut a test's supervisord down whatever state it is in: shutdown, then TERM, then KILL."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if _alive(pid):
        subprocess.run([BIN / "supervisorctl", "-c", conf, "shutdown"], capture_output=True, timeout=TIMEOUT_S,
                       check=False)  # fmt: skip
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if _wait(lambda: not _alive(pid), 10.0):
            return
        os.kill(pid, sig)
    assert _wait(lambda: not _alive(pid), 5.0), f"supervisord {pid} survived SIGKILL"


Start = Callable[..., Callable[[], dict[str, str]]]


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Start]:
    """start(startretries=, command_override=) runs supervisord on the test profile; returns status()."""
    path = _profile_file(tmp_path)
    profile = load_profile(path)
    files = supervisor_files(profile.group.run_dir)

    def start(**render: object) -> Callable[[], dict[str, str]]:
        files.logs_dir.mkdir(parents=True)
        files.conf.write_text(render_supervisor_conf(profile, path, **render))  # type: ignore[arg-type]
        subprocess.run([BIN / "supervisord", "-c", files.conf], check=True, timeout=TIMEOUT_S)
        assert _wait(files.pidfile.exists), f"no pid file; log:\n{files.logfile.read_text()}"

        def status() -> dict[str, str]:
            out = subprocess.run([BIN / "supervisorctl", "-c", files.conf, "status"], capture_output=True,
                                 text=True, timeout=TIMEOUT_S, check=False).stdout  # fmt: skip
            return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}

        return status

    try:
        yield start
    finally:
        stop_supervisord(files.conf, files.pidfile)


def test_supervisord_runs_every_program(supervisord: Start) -> None:
    sleep = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'"
    status = supervisord(startsecs=1, command_override={name: sleep for name in EXPECTED_PROGRAMS})
    assert _wait(lambda: set(status().values()) == {"RUNNING"}), status()
    assert list(status()) == sorted(EXPECTED_PROGRAMS)


def test_crash_looping_program_goes_fatal_and_the_others_stay_up(supervisord: Start, tmp_path: Path) -> None:
    """C4: a process that dies at start is retried `startretries` times, then left FATAL."""
    sleep = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'"
    override = {name: sleep for name in EXPECTED_PROGRAMS}
    override["feed-a"] = "/bin/sh -c 'exit 3'"
    status = supervisord(startsecs=1, startretries=1, command_override=override)
    assert _wait(lambda: status().get("feed-a") == "FATAL"), status()
    log = (tmp_path / "run" / "logs" / "supervisord.log").read_text()
    assert log.count("spawned: 'feed-a'") == 2, "one start and startretries=1 retry, then no more"
    assert "gave up: feed-a entered FATAL state" in log
    assert {name: state for name, state in status().items() if name != "feed-a"} == dict.fromkeys(
        sorted(set(EXPECTED_PROGRAMS) - {"feed-a"}), "RUNNING"
    )
