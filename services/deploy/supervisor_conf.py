"""supervisord.conf for a profile's process group.

One supervisord per group, all its files in the group's run_dir (socket excepted when run_dir is
too deep for a unix socket path, see `services.deploy.paths`). One [program] per process:

    sequencer          serve sequencer          priority 100: starts first, stops last
    gateway-<venue>    serve gateway <venue>    priority 200
    strategy-<name>    serve strategy <name>    priority 300
    feed-<name>        serve feed <name>        priority 400: data flows once everyone listens

Every program runs `<this python> -m services.cli.main serve <role> [<name>] --profile <profile>`,
so each process reads the same profile file and finds the same endpoints. The output depends only
on the profile, its path and this interpreter: the same inputs give the same bytes.

Crash loops (RELIABILITY C4): supervisord restarts a process that exits (autorestart), but a
process that dies within `startsecs` of starting has failed to start; after `startretries` such
failures in a row supervisord gives up and marks it FATAL instead of restarting it forever.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, NamedTuple

import services
from services.deploy.paths import socket_path
from services.deploy.profile import Profile

__all__ = [
    "LOG_BACKUPS",
    "LOG_MAXBYTES",
    "STARTRETRIES",
    "STARTSECS",
    "STOPSIGNAL",
    "STOPWAITSECS",
    "Program",
    "Role",
    "SupervisorFiles",
    "programs",
    "render_supervisor_conf",
    "serve_command",
    "supervisor_files",
]

Role = Literal["sequencer", "gateway", "strategy", "feed"]

STARTSECS: Final = 5
"""A process must stay up this long to count as started. Long enough that a process which dies
during start-up (bad config, cannot bind, resync refused) counts as a failed start, so a crash
loop ends in FATAL (C4); a process that crashes later is restarted without limit."""

STARTRETRIES: Final = 3
"""Failed starts in a row before supervisord gives up: the process goes FATAL, is not restarted,
and stays down until an operator acts (C4). supervisord waits 1, 2, 3 s between tries, so a
crash-looping process is FATAL within about STARTRETRIES * STARTSECS + 6 s."""

STOPSIGNAL: Final = "TERM"
"""Asks a process to stop cleanly: the sequencer syncs its journal, the others close sockets."""

STOPWAITSECS: Final = 10
"""How long a process may take to stop after STOPSIGNAL before supervisord sends SIGKILL. Enough
for a journal fsync and a final checkpoint; a kill is safe anyway (recovery), only slower."""

LOG_MAXBYTES: Final = "50MB"
LOG_BACKUPS: Final = 5
"""Each log rotates at LOG_MAXBYTES and keeps LOG_BACKUPS old files: at most 300 MB per log."""

_PRIORITY: Final[dict[Role, int]] = {"sequencer": 100, "gateway": 200, "strategy": 300, "feed": 400}

# The directory holding the `services` package: programs run there, so `-m services.cli.main`
# imports the same code that wrote this file.
_CODE_ROOT: Final = Path(services.__file__).resolve().parent.parent

# supervisord reads its file with inline comments after whitespace (';' or '#') and expands
# '%(name)s' in values: such text cannot be written as is.
_INLINE_COMMENT = re.compile(r"\s[;#]")


class Program(NamedTuple):
    """One supervised process: its program name and the `serve` arguments that start it."""

    name: str
    role: Role
    instance: str | None  # the feed, venue or strategy name; None for the sequencer

    @property
    def priority(self) -> int:
        return _PRIORITY[self.role]


class SupervisorFiles(NamedTuple):
    """Where a group's supervisord keeps its files. Depends on run_dir only."""

    conf: Path
    pidfile: Path
    logfile: Path
    logs_dir: Path
    socket: Path
    socket_moved_because: str | None


def supervisor_files(run_dir: Path) -> SupervisorFiles:
    """The supervisord files of the group whose run directory is `run_dir` (absolute)."""
    sock = socket_path(run_dir, "supervisor.sock")
    logs = run_dir / "logs"
    return SupervisorFiles(
        conf=run_dir / "supervisord.conf",
        pidfile=run_dir / "supervisord.pid",
        logfile=logs / "supervisord.log",
        logs_dir=logs,
        socket=sock.path,
        socket_moved_because=sock.moved_because,
    )


def programs(profile: Profile) -> tuple[Program, ...]:
    """Every process of the group, in start order (priority, then profile order)."""
    out = [Program("sequencer", "sequencer", None)]
    out += [Program(f"gateway-{v.name}", "gateway", v.name) for v in profile.venues]
    out += [Program(f"strategy-{s.name}", "strategy", s.name) for s in profile.strategies]
    out += [Program(f"feed-{f.name}", "feed", f.name) for f in profile.feeds]
    return tuple(sorted(out, key=lambda p: p.priority))  # stable: profile order within a role


def serve_command(program: Program, profile_path: Path) -> list[str]:
    """The argv that runs `program`: `<python> -m services.cli.main serve <role> [<name>] --profile <path>`."""
    instance = [program.instance] if program.instance is not None else []
    return [sys.executable, "-m", "services.cli.main", "serve", program.role, *instance, "--profile", str(profile_path)]


def render_supervisor_conf(
    profile: Profile,
    profile_path: str | Path,
    *,
    nodaemon: bool = False,
    startsecs: int = STARTSECS,
    startretries: int = STARTRETRIES,
    command_override: Mapping[str, str] | None = None,
) -> str:
    """The supervisord.conf text of `profile`'s group.

    Args:
        profile: the loaded profile.
        profile_path: the profile file; made absolute, it goes on every command line.
        nodaemon: supervisord stays in the foreground (`tradebus up --foreground`).
        startsecs, startretries: for tests; see STARTSECS and STARTRETRIES.
        command_override: for tests: program name -> command line to run instead of `serve`.

    Raises:
        ValueError: a path holds text supervisord would misread (a newline, or ';' / '#' after
            whitespace, which it takes for a comment).
    """
    path = Path(profile_path).absolute()
    files = supervisor_files(profile.group.run_dir)
    progs = programs(profile)
    override = dict(command_override or {})
    unknown = sorted(set(override) - {p.name for p in progs})
    assert not unknown, f"command_override names no program: {unknown}"
    assert startsecs >= 0 and startretries >= 0, (startsecs, startretries)

    lines = [
        f"; supervisord.conf of tradebus group {profile.group.name!r}, generated by `tradebus up` from",
        f"; {_value(str(path))}",
        "; Do not edit: `tradebus up` writes it again every time.",
        "",
        "[unix_http_server]",
    ]
    if files.socket_moved_because:
        lines.append(f"; {_value(files.socket_moved_because)}")
    lines += [
        f"file = {_value(str(files.socket))}",
        "chmod = 0700",
        "",
        "[supervisord]",
        f"logfile = {_value(str(files.logfile))}",
        f"logfile_maxbytes = {LOG_MAXBYTES}",
        f"logfile_backups = {LOG_BACKUPS}",
        f"pidfile = {_value(str(files.pidfile))}",
        f"childlogdir = {_value(str(files.logs_dir))}",
        f"directory = {_value(str(profile.group.run_dir))}",
        f"identifier = tradebus-{profile.group.name}",
        f"nodaemon = {'true' if nodaemon else 'false'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{_value(str(files.socket))}",
    ]
    for prog in progs:
        command = override.get(prog.name) or shlex.join(serve_command(prog, path))
        log = files.logs_dir / prog.name
        lines += [
            "",
            f"[program:{prog.name}]",
            f"command = {_value(command)}",
            f"directory = {_value(str(_CODE_ROOT))}",
            f"priority = {prog.priority}",
            "autostart = true",
            # Restarted when it dies (a signal, a non-zero exit), not when it finishes: a paper
            # feed that sent all its data exits 0 and must not start over and send it again.
            "autorestart = unexpected",
            "exitcodes = 0",
            f"startsecs = {startsecs}",
            f"startretries = {startretries}",
            f"stopsignal = {STOPSIGNAL}",
            f"stopwaitsecs = {STOPWAITSECS}",
            "stopasgroup = true",
            "killasgroup = true",
            f"stdout_logfile = {_value(f'{log}.out.log')}",
            f"stdout_logfile_maxbytes = {LOG_MAXBYTES}",
            f"stdout_logfile_backups = {LOG_BACKUPS}",
            f"stderr_logfile = {_value(f'{log}.err.log')}",
            f"stderr_logfile_maxbytes = {LOG_MAXBYTES}",
            f"stderr_logfile_backups = {LOG_BACKUPS}",
            'environment = PYTHONUNBUFFERED="1"',
        ]
    return "\n".join(lines) + "\n"


def _value(text: str) -> str:
    """`text` as a supervisord.conf value: '%' doubled (supervisord expands %(name)s)."""
    if "\n" in text or "\r" in text:
        raise ValueError(f"{text!r}: a newline cannot be written to supervisord.conf")
    if _INLINE_COMMENT.search(text):
        raise ValueError(f"{text!r}: ';' or '#' after whitespace would start a comment in supervisord.conf")
    return text.replace("%", "%%")
