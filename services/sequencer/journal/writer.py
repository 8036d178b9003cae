"""Writing a journal: records checked before they are written, fsync per policy, fail-stop.

The file header is written to a temporary file, fsynced and linked into place, so a journal
name never shows a half-written header: a damaged header is always corruption, never a crash.

Assertions are paired (STYLE 8): before writing, a record is checked by `format._frame` (seq
contiguous, size bounded, the encoded bytes decode back to the same seq id); `reader` checks it
again after reading.

Write failures (S5): after any OSError from write or fsync the writer is unusable. After a
failed fsync the kernel may have dropped the dirty pages and cleared the error, so retrying
could report success for data that is gone; the only safe answer is to stop and recover.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from schemas.envelope import Envelope
from services.sequencer.core.config import CoreConfig
from services.sequencer.journal.errors import JournalError, JournalFailed
from services.sequencer.journal.format import JournalHeader, _encode_file_header, _parse_file_header
from services.sequencer.journal.framing import _frame, frame_records
from services.sequencer.journal.scan import scan_journal

__all__ = ["DEFAULT_FSYNC_INTERVAL_MS", "FsyncPolicy", "JournalWriter", "fsync_directory"]

# INTERVAL policy: at most this much acknowledged input is at risk on power loss, in exchange for
# one fsync per interval instead of one per append (PostgreSQL's commit_delay idea).
DEFAULT_FSYNC_INTERVAL_MS: Final = 10


class FsyncPolicy(StrEnum):
    """When the writer makes appended records durable.

    ALWAYS: fsync after every append (or batch) before it returns: nothing acknowledged is lost.
    INTERVAL: fsync on an append once `fsync_interval_ms` has passed since the last fsync; the
        owner should also call `sync()` when input goes idle, or the last records wait.
    NEVER: leave it to the OS (backtests, benchmarks): a power loss may cut any suffix.
    """

    ALWAYS = "always"
    INTERVAL = "interval"
    NEVER = "never"


def fsync_directory(directory: Path) -> None:
    """fsync a directory so a create, rename or unlink inside it survives power loss."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalWriter:
    """Appends sequenced envelopes to a journal. Single writer; not thread-safe.

    Construct with `create` (new journal) or `open_for_append` (after `recover_journal`).
    Every record is checked before it is written; any OSError from write or fsync makes the
    writer unusable (`JournalFailed` on every later call), never carrying on (S5).

    Args:
        fsync: the FsyncPolicy.
        fsync_interval_ms: for INTERVAL, the least time between two fsyncs.
        clock_ns: monotonic clock for INTERVAL (a parameter so tests can drive it).
    """

    def __init__(
        self,
        path: Path,
        fd: int,
        header: JournalHeader,
        last_seq_id: int,
        *,
        fsync: FsyncPolicy,
        fsync_interval_ms: int,
        clock_ns: Callable[[], int],
    ) -> None:
        if fsync_interval_ms < 0:
            raise ValueError(f"fsync_interval_ms must be >= 0, got {fsync_interval_ms}")
        self.path = path
        self.header = header
        self.fsync_policy = FsyncPolicy(fsync)
        self._fd: int | None = fd
        self._last_seq_id = last_seq_id
        self._interval_ns = fsync_interval_ms * 1_000_000
        self._clock_ns = clock_ns
        self._last_fsync_ns = clock_ns()
        self._unsynced = False
        self._failure: str | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        config: CoreConfig,
        *,
        fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
        fsync_interval_ms: int = DEFAULT_FSYNC_INTERVAL_MS,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> JournalWriter:
        """Create a new journal holding only its file header, durably.

        Raises:
            FileExistsError: `path` exists (a journal is never overwritten).
        """
        p = Path(path)
        blob = _encode_file_header(config)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        try:
            try:
                _write_all(fd, blob)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, p)  # atomic and never clobbers: FileExistsError if a journal is there
        finally:
            os.unlink(tmp)
        fsync_directory(p.parent)
        header, _ = _parse_file_header(blob, p)
        return cls._open(p, header, 0, fsync=fsync, fsync_interval_ms=fsync_interval_ms, clock_ns=clock_ns)

    @classmethod
    def open_for_append(
        cls,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
        fsync_interval_ms: int = DEFAULT_FSYNC_INTERVAL_MS,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> JournalWriter:
        """Open an existing, recovered journal to append after its last record.

        Raises:
            JournalCorrupted: the journal is damaged.
            JournalError: it has a torn tail: run `recover_journal` first.
        """
        scan = scan_journal(path, keep_envelopes=False)
        if scan.tail_bytes_cut:
            raise JournalError(
                f"journal {scan.path} has a {scan.tail_bytes_cut}-byte torn tail at offset "
                f"{scan.valid_end} ({scan.tail_reason}); run recover_journal before appending"
            )
        return cls._open(
            scan.path,
            scan.header,
            scan.last_seq_id,
            fsync=fsync,
            fsync_interval_ms=fsync_interval_ms,
            clock_ns=clock_ns,
        )

    @classmethod
    def _open(
        cls,
        path: Path,
        header: JournalHeader,
        last_seq_id: int,
        *,
        fsync: FsyncPolicy,
        fsync_interval_ms: int,
        clock_ns: Callable[[], int],
    ) -> JournalWriter:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        return cls(path, fd, header, last_seq_id, fsync=fsync, fsync_interval_ms=fsync_interval_ms, clock_ns=clock_ns)

    # ------------------------------------------------------------------ appending

    @property
    def last_seq_id(self) -> int:
        """Seq id of the last record written (0 for an empty journal)."""
        return self._last_seq_id

    @property
    def failed(self) -> bool:
        """True once a write or fsync has failed: the writer refuses everything after."""
        return self._failure is not None

    def append(self, env: Envelope) -> None:
        """Append one envelope (seq id must be `last_seq_id + 1`), then fsync per policy.

        Raises:
            RecordRefused: the record failed its checks; nothing was written.
            JournalFailed: this or an earlier write/fsync failed.
        """
        fd = self._usable_fd()
        record = _frame(env, self._last_seq_id + 1)
        self._write(fd, record, env.seq_id)
        self._last_seq_id = env.seq_id
        self._after_write(fd)

    def append_batch(self, envs: Sequence[Envelope], *, prechecked_market_data: bool = False) -> None:
        """Group commit: append contiguous envelopes with one write and (per policy) one fsync.

        Every record is checked before anything is written: a refused record refuses the batch.
        `prechecked_market_data`: market-data envelopes skip the decode-back check because the
        caller has checked their values against the schema's limits (see `format._frame`).

        Raises:
            RecordRefused: a record failed its checks; nothing was written.
            JournalFailed: this or an earlier write/fsync failed.
        """
        fd = self._usable_fd()
        if not envs:
            return
        blob = frame_records(envs, self._last_seq_id + 1, prechecked_market_data)
        self._write(fd, blob, envs[-1].seq_id)
        self._last_seq_id = envs[-1].seq_id
        self._after_write(fd)

    def sync(self) -> None:
        """fsync now, whatever the policy.

        Raises:
            JournalFailed: this or an earlier write/fsync failed.
        """
        self._fsync(self._usable_fd())

    def close(self) -> None:
        """fsync (unless the policy is NEVER or the writer failed) and close. Idempotent."""
        fd = self._fd
        if fd is None:
            return
        try:
            if self._failure is None and self._unsynced and self.fsync_policy is not FsyncPolicy.NEVER:
                self._fsync(fd)
        finally:
            self._fd = None
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _usable_fd(self) -> int:
        if self._failure is not None:
            raise JournalFailed(self._failure)
        if self._fd is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._fd

    def _fail(self, what: str, exc: OSError) -> JournalFailed:
        self._failure = (
            f"journal {self.path}: {what} failed after seq {self._last_seq_id} "
            f"({errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror or exc}); "
            "the writer refuses further appends: restart and recover (RELIABILITY S5)"
        )
        return JournalFailed(self._failure)

    def _write(self, fd: int, blob: bytes | bytearray, seq_id: int) -> None:
        try:
            _write_all(fd, blob)
        except OSError as exc:
            raise self._fail(f"write of record(s) through seq {seq_id}", exc) from exc
        self._unsynced = True

    def _after_write(self, fd: int) -> None:
        policy = self.fsync_policy
        if (
            policy is FsyncPolicy.ALWAYS
            or policy is FsyncPolicy.INTERVAL
            and self._clock_ns() - self._last_fsync_ns >= self._interval_ns
        ):
            self._fsync(fd)

    def _fsync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._fail("fsync", exc) from exc
        self._unsynced = False
        self._last_fsync_ns = self._clock_ns()


def _write_all(fd: int, blob: bytes | bytearray) -> None:
    """os.write until every byte is out (a regular file may take a short write near disk full)."""
    view = memoryview(blob)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # defensive: a zero-byte write would loop forever
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]
