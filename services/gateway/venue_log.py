"""The venue log: every order command a paper venue was handed, per venue incarnation.

One JSON object per line, appended to ``<run_dir>/logs/venue-<name>.jsonl``::

    {"incarnation": 3, "turn": 12, "seq_id": 40, "kind": "submit", "client_order_id": "o-7"}

An *incarnation* is one `SimulatedVenue` object: a gateway process starts one, and a lockstep
sequencer that restarts its run (turn 1 again) makes the gateway start another. Numbers increase
across processes: a new log continues from the last incarnation in the file, so a fault test
can read the whole file and check that within one incarnation no client order id was submitted
twice (RELIABILITY C1: "no client order id reaches the venue twice"). `turn` is the lockstep turn
(0 when free-running); `seq_id` is the seq id of the record whose output the command was.

A line is written (and flushed to the OS, not fsynced) before the venue sees the command, so a
gateway killed mid-command leaves the command in the log: the log may overstate, never hide,
what the venue saw. A torn last line (killed mid-write) is skipped when reading, and a new
process starts its first line on a line of its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Final

import msgspec

__all__ = ["VenueLog", "read_venue_log", "venue_log_path"]

# Enough of the file's end to hold many complete lines (each is under 300 bytes): the last
# incarnation number is on the last complete line.
_TAIL_BYTES: Final = 64 * 1024

_ENCODER = msgspec.json.Encoder()


class _Entry(msgspec.Struct, frozen=True):
    incarnation: int
    turn: int
    seq_id: int
    kind: str
    client_order_id: str


_DECODER = msgspec.json.Decoder(_Entry)


def venue_log_path(run_dir: Path, venue: str) -> Path:
    """``<run_dir>/logs/venue-<venue>.jsonl``."""
    return run_dir / "logs" / f"venue-{venue}.jsonl"


def read_venue_log(path: Path) -> list[dict[str, object]]:
    """Every complete, well-formed line of a venue log, in order (for tests and tools)."""
    out: list[dict[str, object]] = []
    if not path.exists():
        return out
    for line in path.read_bytes().splitlines():
        try:
            entry = _DECODER.decode(line)
        except msgspec.DecodeError:
            continue  # a torn line
        out.append(msgspec.structs.asdict(entry))
    return out


class VenueLog:
    """Append-only writer of one venue's log.

    Args:
        path: the log file (created with its directory); None keeps nothing (a log that only
            numbers incarnations, for tests that do not look at it).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._incarnation = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._incarnation = _last_incarnation(path)
            self._file = open(path, "ab")  # noqa: SIM115 - held open for the process's life
            if self._file.tell() > 0 and not _ends_with_newline(path):
                self._file.write(b"\n")  # a torn last line must not swallow our first one
                self._file.flush()

    @property
    def incarnation(self) -> int:
        """The current incarnation (0 before the first `new_incarnation`)."""
        return self._incarnation

    def new_incarnation(self) -> int:
        """Start the next incarnation and return its number."""
        self._incarnation += 1
        return self._incarnation

    def record(self, *, turn: int, seq_id: int, kind: str, client_order_id: str) -> None:
        """Append one command the venue is about to see, under the current incarnation."""
        assert self._incarnation >= 1, "record before new_incarnation"
        if self._file is None:
            return
        entry = _Entry(self._incarnation, turn, seq_id, kind, client_order_id)
        self._file.write(_ENCODER.encode(entry) + b"\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _last_incarnation(path: Path) -> int:
    """The incarnation of the last complete line (0 for a missing or empty log)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return 0
    for line in reversed(tail.splitlines()):
        try:
            return _DECODER.decode(line).incarnation
        except msgspec.DecodeError:
            continue  # torn, or cut in half by the tail window
    return 0
