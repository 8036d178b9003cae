"""Unix socket paths short enough to bind.

A unix socket path (supervisord's control socket, ZeroMQ `ipc://` endpoints) must fit in
`sockaddr_un.sun_path`: 108 bytes on Linux, 104 on macOS, including the terminating NUL. A run
directory deep in a home or CI workspace easily pushes `<run_dir>/supervisor.sock` past that,
and the bind then fails with an error that does not say why. So a socket that would be too long
goes under /tmp instead, named by a hash of the run directory: the same run directory always
maps to the same path (every process of a group, and `tradebus down`, find it again), and two
run directories do not collide.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final, NamedTuple

__all__ = ["MAX_UNIX_SOCKET_PATH", "SHORT_SOCKET_DIR", "SocketPath", "socket_path"]

MAX_UNIX_SOCKET_PATH: Final = 100
"""Longest socket path we bind, in bytes: the smallest sun_path (macOS, 104 with the NUL) less a
margin. Longer paths move under SHORT_SOCKET_DIR."""

SHORT_SOCKET_DIR: Final = Path("/tmp")
"""Where too-long sockets go. A fixed directory, not $TMPDIR: the path must be the same for every
process of the group and for the generated config, whatever their environment (determinism)."""

_DIGEST_CHARS: Final = 16  # 64 bits of sha256: collisions between run directories are not a concern


class SocketPath(NamedTuple):
    """A socket path and, when it was moved under /tmp, why (for a comment in generated files)."""

    path: Path
    moved_because: str | None


def socket_path(directory: Path, name: str) -> SocketPath:
    """`directory/name` if it is short enough to bind, else a hash-named path under /tmp.

    Args:
        directory: absolute directory the socket belongs to (the group's run_dir).
        name: file name of the socket, e.g. 'supervisor.sock'.
    """
    assert directory.is_absolute(), directory
    assert "/" not in name and name, name
    wanted = directory / name
    length = len(os.fsencode(wanted))
    if length <= MAX_UNIX_SOCKET_PATH:
        return SocketPath(wanted, None)
    digest = hashlib.sha256(os.fsencode(directory)).hexdigest()[:_DIGEST_CHARS]
    short = SHORT_SOCKET_DIR / f"tradebus-{digest}-{name}"
    assert len(os.fsencode(short)) <= MAX_UNIX_SOCKET_PATH, short
    reason = (
        f"{wanted} would be {length} bytes, over the {MAX_UNIX_SOCKET_PATH}-byte limit of unix socket paths; "
        f"moved to {SHORT_SOCKET_DIR} under a name hashed from the run directory"
    )
    return SocketPath(short, reason)
