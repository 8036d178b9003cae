"""`tradebus up PROFILE` / `tradebus down PROFILE`: start and stop a process group under supervisord.

`up` checks the whole profile first: a broken profile prints every problem and exits 2 before
anything is written or started. Then it writes run_dir/supervisord.conf and starts the
supervisord installed next to this Python (the same environment as tradebus itself), which
starts the group's processes in priority order (docs/operations.md).

`down` asks that supervisord to shut down (supervisorctl shutdown) and waits until it has gone:
supervisord stops the processes in reverse start order first. It reads only [group] from the
profile, so a group can be stopped even after its data files have moved.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

from services.deploy.profile import ProfileError, load_profile, read_run_dir
from services.deploy.supervisor_conf import STOPWAITSECS, render_supervisor_conf, supervisor_files

__all__ = ["register"]

SUPERVISORD_START_TIMEOUT_S: Final = 15.0
"""How long `up` waits for the daemonised supervisord to write its pid file. It writes it right
after forking, before starting any program: seconds mean something is wrong (see its log)."""

SUPERVISORCTL_TIMEOUT_S: Final = 30.0
"""supervisorctl talks to a local socket: it answers at once or supervisord is hung."""

SUPERVISORD_STOP_TIMEOUT_S: Final = 120.0
"""How long `down` waits for supervisord to exit. It stops programs one priority at a time, each
within STOPWAITSECS (then SIGKILL): this covers a dozen slow programs."""

_POLL_S: Final = 0.1
_T = TypeVar("_T")


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="start a process group from a deployment profile (under supervisord)",
        description="Check the profile, write RUN_DIR/supervisord.conf and start supervisord with it.",
    )
    up.add_argument("profile", type=Path, help="deployment profile (TOML), e.g. ops/profiles/default.toml")
    up.add_argument(
        "--foreground", action="store_true", help="run supervisord in this terminal (Ctrl-C stops the group)"
    )
    up.add_argument(
        "--wait",
        action="store_true",
        help="backtest mode: show progress until the run ends, then print its summary and run folder",
    )
    up.add_argument("--down-after", action="store_true", help="with --wait: stop the group when the run has ended")
    up.set_defaults(run=_up)
    down = sub.add_parser(
        "down",
        help="stop a process group started with `tradebus up`",
        description="Shut down the group's supervisord (and so every process of the group).",
    )
    down.add_argument("profile", type=Path, help="the profile the group was started with")
    down.set_defaults(run=_down)


def _up(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"tradebus up: {exc}", file=sys.stderr)
        return 2
    supervisord = Path(sys.executable).parent / "supervisord"
    if not supervisord.is_file():
        print(f"tradebus up: {supervisord} not found; install supervisor in this environment", file=sys.stderr)
        return 1
    files = supervisor_files(profile.group.run_dir)
    pid = _running_pid(files.pidfile)
    if pid is not None:
        print(
            f"tradebus up: group {profile.group.name!r} is already running (supervisord pid {pid}); "
            f"stop it first with `tradebus down {args.profile}`",
            file=sys.stderr,
        )
        return 1
    try:
        conf = render_supervisor_conf(profile, args.profile, nodaemon=args.foreground)
        files.logs_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(files.conf, conf)
    except (OSError, ValueError) as exc:
        print(f"tradebus up: cannot write {files.conf}: {exc}", file=sys.stderr)
        return 1
    command = [str(supervisord), "-c", str(files.conf)]
    if args.foreground:
        print(f"tradebus up: group {profile.group.name!r} in the foreground; conf {files.conf}", flush=True)
        os.execv(command[0], command)  # supervisord takes over this process; Ctrl-C reaches it
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SUPERVISORD_START_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        print(f"tradebus up: supervisord did not daemonise in {SUPERVISORD_START_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    if done.returncode != 0:
        print(f"tradebus up: supervisord failed (exit {done.returncode}):\n{done.stdout}{done.stderr}", file=sys.stderr)
        return 1
    pid = _wait_for(lambda: _running_pid(files.pidfile), SUPERVISORD_START_TIMEOUT_S)
    if pid is None:
        print(f"tradebus up: supervisord did not start; see {files.logfile}", file=sys.stderr)
        return 1
    print(f"group {profile.group.name!r} started: supervisord pid {pid}")
    print(f"  conf  {files.conf}")
    print(f"  logs  {files.logs_dir}")
    print(f"  stop  tradebus down {args.profile}")
    if not getattr(args, "wait", False) or profile.group.mode != "backtest":
        return 0
    code = _wait_for_run(profile)
    if args.down_after:
        _down(args)
    return code


def _down(args: argparse.Namespace) -> int:
    try:
        run_dir = read_run_dir(args.profile)
    except ProfileError as exc:
        print(f"tradebus down: {exc}", file=sys.stderr)
        return 2
    files = supervisor_files(run_dir)
    pid = _running_pid(files.pidfile)
    if pid is None:
        print(f"tradebus down: not running (no live supervisord pid in {files.pidfile})")
        return 0
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    command = [str(supervisorctl), "-c", str(files.conf), "shutdown"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SUPERVISORCTL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        print(f"tradebus down: supervisorctl gave no answer in {SUPERVISORCTL_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    if done.returncode != 0:
        print(f"tradebus down: supervisorctl shutdown failed:\n{done.stdout}{done.stderr}", file=sys.stderr)
        return 1
    print(f"tradebus down: stopping (each process gets up to {STOPWAITSECS} s)...", flush=True)
    gone = _wait_for(lambda: True if _running_pid(files.pidfile) != pid else None, SUPERVISORD_STOP_TIMEOUT_S)
    if gone is None:
        print(f"tradebus down: supervisord (pid {pid}) still running after {SUPERVISORD_STOP_TIMEOUT_S:.0f} s",
              file=sys.stderr)  # fmt: skip
        return 1
    print("stopped")
    return 0


def _running_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` if that process is alive, else None."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return pid


def _wait_for(probe: Callable[[], _T | None], timeout_s: float) -> _T | None:
    """Poll `probe` until it returns something other than None, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value is not None or time.monotonic() >= deadline:
            return value
        time.sleep(_POLL_S)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# A bus backtest of the bundled data takes seconds; a long one is bounded only by its data, so
# waiting has no deadline: the sequencer's heartbeats show it is alive, and a failed run says so.
_PROGRESS_LISTEN_MS: Final = 500


def _wait_for_run(profile: Any) -> int:
    """Show the lockstep run's progress (seq ids) until the sequencer marks it done or failed."""
    import zmq
    from tqdm import tqdm

    from bus.codec import PUBLICATION, FrameCodec, FrameError
    from bus.sockets import subscriber
    from schemas.bus import Heartbeat, Sequenced, SequencedBatch

    run_dir = profile.group.run_dir
    done, failed = run_dir / "lockstep.done", run_dir / "lockstep.failed"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = subscriber(ctx, profile.endpoints.publication)
    codec = FrameCodec(PUBLICATION)
    bar = tqdm(unit=" seq", desc="bus backtest", mininterval=0.5, file=sys.stderr)
    seen = 0
    try:
        while not done.exists() and not failed.exists():
            if sub.poll(_PROGRESS_LISTEN_MS):
                for _ in range(10_000):
                    try:
                        message = codec.decode(sub.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
                    except FrameError:
                        continue
                    if isinstance(message, Sequenced):
                        seq = message.seq_id
                    elif isinstance(message, SequencedBatch):  # contiguous: the last is the highest
                        seq = message.records[-1].seq_id
                    else:
                        seq = message.last_seq_id if isinstance(message, Heartbeat) else 0
                    if seq > seen:
                        bar.update(seq - seen)
                        seen = seq
    except KeyboardInterrupt:
        print("tradebus up: stopped waiting (the group keeps running)", file=sys.stderr)
        return 130
    finally:
        bar.close()
        sub.close(linger=0)
        ctx.term()
    if failed.exists():
        print(f"tradebus up: the run failed: {failed.read_text().strip()}", file=sys.stderr)
        return 1
    summary = run_dir / "summary.txt"
    if summary.exists():
        print(summary.read_text(), end="")
    print(f"run folder: {run_dir}")
    for name in ("summary.json", "report.png", "report.html", "journal.tbj"):
        if (run_dir / name).exists():
            print(f"  {name:13} {run_dir / name}")
    return 0
