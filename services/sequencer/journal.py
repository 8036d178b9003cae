"""The write-ahead journal: every sequenced envelope, appended before the core applies it.

Theory of operation
-------------------
File layout (all integers little-endian)::

    b"TBJRNL01"                                   8 bytes of magic
    header_length u32 | JournalHeader (msgpack) | crc32 u32 over (header_length + header)
    record*

    record = payload_length u32 | seq_id u64 | crc32 u32 | payload (msgpack Envelope)
             crc32 covers payload_length, seq_id and the payload bytes

The file header is written to a temporary file, fsynced and linked into place, so a journal
name never shows a half-written header: a damaged header is always corruption, never a crash.

Assertions are paired (STYLE 8): before writing, a record is checked (seq contiguous, size
bounded, the encoded bytes decode back to the same seq id); after reading, it is checked again
(length bounded and inside the file, crc, seq contiguous, header seq == decoded seq).

Torn tail vs corruption (TigerBeetle). When the record at offset P fails its framing checks
(incomplete header, zero or oversized length, length past the end of file, crc mismatch) the
reader searches every byte offset after P for a *valid* record (crc ok, seq id above the last
good one). If one exists, the damage sits before data that was committed after it: that is
corruption and the journal is refused (`JournalCorrupted` names file, offset and seq id).
Otherwise the damage is a torn or garbage tail, the residue of a crash mid-append, and recovery
cuts the file at P. A record whose crc checks but whose seq id is wrong, or whose payload does
not decode, cannot come from a torn write (the crc matched): it is refused as corruption too.

Write failures (S5): after any OSError from write or fsync the writer is unusable. After a
failed fsync the kernel may have dropped the dirty pages and cleared the error, so retrying
could report success for data that is gone; the only safe answer is to stop and recover.
"""

from __future__ import annotations

import errno
import os
import re
import struct
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import msgspec

from schemas.envelope import Envelope
from services.sequencer.core.config import CoreConfig

__all__ = [
    "DEFAULT_FSYNC_INTERVAL_MS",
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_RECORD_BYTES",
    "RECORD_HEADER",
    "ConfigMismatch",
    "FsyncPolicy",
    "JournalCorrupted",
    "JournalError",
    "JournalFailed",
    "JournalHeader",
    "JournalReader",
    "JournalScan",
    "JournalWriter",
    "RecordRefused",
    "fsync_directory",
    "iter_envelopes",
    "journal_config",
    "read_journal_header",
    "recover_journal",
    "scan_journal",
]

JOURNAL_MAGIC: Final = b"TBJRNL01"
JOURNAL_FORMAT_VERSION: Final = 1
# An envelope's fields are bounded by the schema (ids 64 chars, free text 256, no lists), so a
# valid one encodes to well under 4 KiB. 64 KiB leaves room for schema growth while letting the
# reader reject a garbage length at once instead of treating megabytes of tail as one record.
MAX_RECORD_BYTES: Final = 64 * 1024
# The header holds the core config as JSON: instruments and limits, kilobytes in practice. The
# bound makes a damaged length prefix fail fast rather than allocate gigabytes.
MAX_HEADER_BYTES: Final = 1024 * 1024
# (payload length, seq id, crc32): 16 bytes, no padding ("<" packs tight).
RECORD_HEADER: Final = struct.Struct("<IQI")
_LEN_SEQ: Final = struct.Struct("<IQ")  # the part of the record header the crc covers
_U32: Final = struct.Struct("<I")
_RECORD_HEADER_SIZE: Final = RECORD_HEADER.size
_CRC_COVERED_HEADER: Final = _LEN_SEQ.size
# INTERVAL policy: at most this much acknowledged input is at risk on power loss, in exchange for
# one fsync per interval instead of one per append (PostgreSQL's commit_delay idea).
DEFAULT_FSYNC_INTERVAL_MS: Final = 10

_NONZERO: Final = re.compile(rb"[^\x00]")  # damage scan: jump over zero-filled runs
_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Envelope)
_HEADER_ENCODER: Final = msgspec.msgpack.Encoder(order="deterministic")


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


class JournalHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a journal was written under: replay uses exactly this config, nothing else."""

    format_version: int
    config_json: str  # CoreConfig.canonical_json(), decoded as UTF-8
    config_hash: str  # sha256 hex of config_json: checked on read against the JSON itself


# ---------------------------------------------------------------------------------- errors


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalCorrupted(JournalError):
    """The journal is damaged before its tail (or in its file header): refuse to start (S2).

    Attributes:
        path: the journal file.
        offset: byte offset of the first damaged record (0 for the file header).
        seq_id: the seq id expected at that offset (None for the file header).
        reason: what check failed.
    """

    def __init__(self, path: Path, offset: int, seq_id: int | None, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.seq_id = seq_id
        self.reason = reason
        where = "file header" if seq_id is None else f"record seq {seq_id}"
        super().__init__(f"journal {path}: {where} at offset {offset} is corrupted: {reason}; refusing to use it")


class JournalFailed(JournalError):
    """A write or fsync failed: the writer refuses every later call (S5). Restart and recover."""


class RecordRefused(JournalError):
    """A record failed its checks before writing (our bug upstream). Nothing was written."""


class ConfigMismatch(JournalError):
    """A config does not match the one a journal was written under."""

    def __init__(self, path: Path, journal_hash: str, given_hash: str) -> None:
        self.path = path
        self.journal_hash = journal_hash
        self.given_hash = given_hash
        super().__init__(
            f"journal {path} was written under config {journal_hash} but config {given_hash} was "
            "given; a journal is only replayed under its own config"
        )


# ---------------------------------------------------------------------------------- helpers


def fsync_directory(directory: Path) -> None:
    """fsync a directory so a create, rename or unlink inside it survives power loss."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode_file_header(config: CoreConfig) -> bytes:
    config_json = config.canonical_json()
    header = JournalHeader(
        format_version=JOURNAL_FORMAT_VERSION,
        config_json=config_json.decode(),
        config_hash=config.config_hash(),
    )
    body = _HEADER_ENCODER.encode(header)
    if len(body) > MAX_HEADER_BYTES:
        raise RecordRefused(f"journal header is {len(body)} bytes, over MAX_HEADER_BYTES {MAX_HEADER_BYTES}")
    prefix = _U32.pack(len(body))
    return JOURNAL_MAGIC + prefix + body + _U32.pack(zlib.crc32(body, zlib.crc32(prefix)))


def _parse_file_header(data: bytes, path: Path) -> tuple[JournalHeader, int]:
    """Check and decode the file header. Returns it and the offset of the first record."""

    def bad(reason: str) -> JournalCorrupted:
        return JournalCorrupted(path, 0, None, reason)

    magic_end = len(JOURNAL_MAGIC)
    if len(data) < magic_end + _U32.size:
        raise bad(f"file is {len(data)} bytes, shorter than a file header")
    if data[:magic_end] != JOURNAL_MAGIC:
        raise bad(f"magic {bytes(data[:magic_end])!r} is not {JOURNAL_MAGIC!r}")
    (length,) = _U32.unpack_from(data, magic_end)
    if length > MAX_HEADER_BYTES:
        raise bad(f"header length {length} exceeds MAX_HEADER_BYTES {MAX_HEADER_BYTES}")
    body_start = magic_end + _U32.size
    body_end = body_start + length
    if body_end + _U32.size > len(data):
        raise bad(f"header length {length} runs past the end of the {len(data)}-byte file")
    (stored_crc,) = _U32.unpack_from(data, body_end)
    body = data[body_start:body_end]
    if zlib.crc32(body, zlib.crc32(data[magic_end:body_start])) != stored_crc:
        raise bad("header crc mismatch")
    try:
        header = msgspec.msgpack.decode(body, type=JournalHeader)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 escapes msgspec (#714)
        raise bad(f"header does not decode: {exc}") from None
    if header.format_version != JOURNAL_FORMAT_VERSION:
        raise bad(f"format version {header.format_version}, this reader knows {JOURNAL_FORMAT_VERSION}")
    return header, body_end + _U32.size


def journal_config(header: JournalHeader, path: Path) -> CoreConfig:
    """The core config a journal was written under, checked against the hash beside it.

    Raises:
        JournalCorrupted: the config JSON does not validate or does not hash to `config_hash`.
    """
    try:
        config = CoreConfig.model_validate_json(header.config_json)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise JournalCorrupted(path, 0, None, f"header config does not validate: {exc}") from None
    actual = config.config_hash()
    if actual != header.config_hash:
        raise JournalCorrupted(path, 0, None, f"header config hashes to {actual}, header says {header.config_hash}")
    return config


def read_journal_header(path: str | os.PathLike[str]) -> JournalHeader:
    """Read and check only the file header of a journal.

    Raises:
        JournalCorrupted: the header is damaged.
    """
    p = Path(path)
    prefix_size = len(JOURNAL_MAGIC) + _U32.size
    with open(p, "rb") as f:
        head = f.read(prefix_size)
        if len(head) == prefix_size:
            (length,) = _U32.unpack_from(head, len(JOURNAL_MAGIC))
            # Read no more than the bound allows: a damaged length must not allocate gigabytes.
            head += f.read(min(length, MAX_HEADER_BYTES + 1) + _U32.size)
    header, _ = _parse_file_header(head, p)
    return header


def _describe_damage(data: bytes, pos: int) -> str:
    """Why the record at `pos` failed its framing checks (only called on the damage path)."""
    end = len(data)
    if end - pos < _RECORD_HEADER_SIZE:
        return f"incomplete record header ({end - pos} of {_RECORD_HEADER_SIZE} bytes)"
    length, _seq, _crc = RECORD_HEADER.unpack_from(data, pos)
    if length == 0:
        return "zero record length"
    if length > MAX_RECORD_BYTES:
        return f"record length {length} exceeds MAX_RECORD_BYTES {MAX_RECORD_BYTES}"
    if pos + _RECORD_HEADER_SIZE + length > end:
        return f"record length {length} runs {pos + _RECORD_HEADER_SIZE + length - end} bytes past end of file"
    return "crc mismatch"


def _find_valid_record(data: bytes, start: int, last_good_seq: int) -> tuple[int, int] | None:
    """First offset >= `start` holding a valid record (crc ok, seq > last good), or None.

    Byte by byte: a damaged length field tells us nothing about where the next record starts.
    Only run on the damage path, and cheap per offset: a random length rarely passes the bound.
    Runs of zero bytes (a preallocated or zero-filled tail) are skipped at C speed: a record's
    length is never 0, so no record starts where its 4 length bytes would all be zero.
    """
    end = len(data)
    last_start = end - _RECORD_HEADER_SIZE
    mv = memoryview(data)
    unpack = RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    nonzero = _NONZERO.search
    pos = start
    while pos <= last_start:
        length, seq, crc = unpack(data, pos)
        if length == 0:
            found = nonzero(data, pos)
            if found is None:
                return None
            # The first nonzero byte may be the high byte of a length that starts up to 3 earlier.
            pos = max(pos + 1, found.start() - (_U32.size - 1))
            continue
        if length <= MAX_RECORD_BYTES and seq > last_good_seq:
            body = pos + _RECORD_HEADER_SIZE
            if (
                body + length <= end
                and crc32(mv[body : body + length], crc32(mv[pos : pos + _CRC_COVERED_HEADER])) == crc
            ):
                return pos, seq
        pos += 1
    return None


# ---------------------------------------------------------------------------------- reading


class JournalReader:
    """Iterate a journal's envelopes, checking every record; never modifies the file.

    The whole file is read into memory once and records are checked and decoded from
    memoryview slices: this loop is the replay hot path. After iteration ends (normally),
    `valid_end`, `tail_bytes`, `tail_reason`, `records` and `last_seq_id` describe what was found.
    A torn tail ends the iteration quietly (see `tail_bytes`); corruption raises.

    Args:
        path: the journal file.
        after_seq_id: records up to this seq id are checked (crc, seq) but not decoded or
            yielded: the suffix after a checkpoint.

    Raises (while iterating):
        JournalCorrupted: damage before the tail, a bad file header, or a crc-valid record with
            the wrong seq id or a payload that does not decode.
    """

    def __init__(self, path: str | os.PathLike[str], *, after_seq_id: int = 0) -> None:
        self.path = Path(path)
        self._data = self.path.read_bytes()
        self.header, self.data_start = _parse_file_header(self._data, self.path)
        self.file_size = len(self._data)
        self.after_seq_id = after_seq_id
        self.records = 0
        self.last_seq_id = 0
        self.valid_end = self.data_start
        self.tail_bytes = 0
        self.tail_reason: str | None = None
        self.finished = False

    def config(self) -> CoreConfig:
        """The config this journal was written under (checked against the header's hash)."""
        return journal_config(self.header, self.path)

    def __iter__(self) -> Iterator[Envelope]:
        data = self._data
        mv = memoryview(data)
        end = len(data)
        pos = self.data_start
        expected = 1  # seq id of the record at `pos`; every record before it was good
        skip_through = self.after_seq_id
        unpack = RECORD_HEADER.unpack_from
        crc32 = zlib.crc32
        decode = _DECODER.decode
        hsize = _RECORD_HEADER_SIZE
        covered = _CRC_COVERED_HEADER
        max_len = MAX_RECORD_BYTES
        limit = end - hsize
        damaged = False
        try:
            while pos < end:
                if pos > limit:
                    damaged = True
                    break
                length, seq, crc = unpack(data, pos)
                body = pos + hsize
                stop = body + length
                if (
                    length == 0
                    or length > max_len
                    or stop > end
                    or crc32(mv[body:stop], crc32(mv[pos : pos + covered])) != crc
                ):
                    damaged = True
                    break
                if seq != expected:
                    raise JournalCorrupted(
                        self.path, pos, expected, f"crc-valid record carries seq id {seq}, expected {expected}"
                    )
                if seq > skip_through:
                    try:
                        env = decode(mv[body:stop])
                    # ValidationError is a DecodeError; msgspec lets invalid UTF-8 escape as
                    # UnicodeDecodeError (msgspec issue #714), so both mean "does not decode".
                    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                        raise JournalCorrupted(
                            self.path, pos, seq, f"crc-valid payload does not decode: {exc}"
                        ) from None
                    if env.seq_id != seq:
                        raise JournalCorrupted(
                            self.path, pos, seq, f"record header seq id {seq} != envelope seq_id {env.seq_id}"
                        )
                    yield env
                expected = seq + 1
                pos = stop
        finally:
            # Published on every exit (also a consumer stopping early), kept out of the loop body.
            self.records = expected - 1
            self.last_seq_id = expected - 1
            self.valid_end = pos
        if damaged:
            reason = _describe_damage(data, pos)
            following = _find_valid_record(data, pos + 1, expected - 1)
            if following is not None:
                at, seq = following
                raise JournalCorrupted(
                    self.path,
                    pos,
                    expected,
                    f"{reason}, yet a valid record (seq {seq}) follows at offset {at}: damage before the tail",
                )
            self.tail_bytes = end - pos
            self.tail_reason = reason
        self.finished = True


def iter_envelopes(path: str | os.PathLike[str], *, after_seq_id: int = 0) -> Iterator[Envelope]:
    """Yield the envelopes of a journal in seq order (the fast replay path); read-only.

    A torn tail ends the iteration silently; use `JournalReader` to learn about it.

    Raises:
        JournalCorrupted: see `JournalReader`.
    """
    return iter(JournalReader(path, after_seq_id=after_seq_id))


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a full check of a journal found.

    Attributes:
        path: the journal file.
        header: its file header.
        envelopes: every complete record's envelope (empty when scanned with keep_envelopes=False).
        records: how many complete records there are.
        data_start: offset of the first record.
        valid_end: offset just past the last complete record.
        tail_bytes_cut: bytes after `valid_end` that are a torn tail. `scan_journal` only reports
            them (they are still on disk); `recover_journal` has cut them.
        tail_reason: why the tail is not a record, or None for a clean end.
        last_seq_id: seq id of the last complete record (0 for none).
    """

    path: Path
    header: JournalHeader
    envelopes: list[Envelope] = field(repr=False)
    records: int
    data_start: int
    valid_end: int
    tail_bytes_cut: int
    tail_reason: str | None
    last_seq_id: int

    def config(self) -> CoreConfig:
        """The config this journal was written under (checked against the header's hash)."""
        return journal_config(self.header, self.path)


def scan_journal(path: str | os.PathLike[str], *, keep_envelopes: bool = True) -> JournalScan:
    """Check every record of a journal without modifying it.

    Raises:
        JournalCorrupted: damage before the tail, or a damaged file header.
    """
    reader = JournalReader(path)
    envelopes: list[Envelope] = []
    if keep_envelopes:
        envelopes.extend(reader)
    else:
        for _ in reader:
            pass
    return JournalScan(
        path=reader.path,
        header=reader.header,
        envelopes=envelopes,
        records=reader.records,
        data_start=reader.data_start,
        valid_end=reader.valid_end,
        tail_bytes_cut=reader.tail_bytes,
        tail_reason=reader.tail_reason,
        last_seq_id=reader.last_seq_id,
    )


def recover_journal(path: str | os.PathLike[str], *, keep_envelopes: bool = False) -> JournalScan:
    """Check a journal and cut a torn tail (truncate at the first damaged record, then fsync).

    Returns:
        The scan; `tail_bytes_cut` is how many bytes were removed.

    Raises:
        JournalCorrupted: damage before the tail or in the file header; the file is untouched.
    """
    scan = scan_journal(path, keep_envelopes=keep_envelopes)
    if scan.tail_bytes_cut:
        with open(scan.path, "r+b") as f:
            f.truncate(scan.valid_end)
            f.flush()
            os.fsync(f.fileno())
        size = scan.path.stat().st_size
        if size != scan.valid_end:  # paired check: the cut really happened
            raise JournalError(f"journal {scan.path}: truncate to {scan.valid_end} left {size} bytes")
    return scan


# ---------------------------------------------------------------------------------- writing


def _frame(env: Envelope, expected_seq: int) -> bytes:
    """Encode and check one record before it is written.

    Raises:
        RecordRefused: seq id not `expected_seq`, payload over MAX_RECORD_BYTES, or the bytes
            would not decode back (a field outside the schema's limits).
    """
    seq = env.seq_id
    if seq != expected_seq:
        raise RecordRefused(f"envelope seq_id {seq} does not follow journal seq id {expected_seq - 1}")
    try:
        payload = _ENCODER.encode(env)
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError) as exc:  # e.g. a lone surrogate in a str
        raise RecordRefused(f"envelope seq {seq} does not encode: {exc}") from None
    length = len(payload)
    if length > MAX_RECORD_BYTES:
        raise RecordRefused(f"envelope seq {seq} encodes to {length} bytes, over MAX_RECORD_BYTES {MAX_RECORD_BYTES}")
    try:
        decoded_seq = _DECODER.decode(payload).seq_id
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise RecordRefused(f"envelope seq {seq} would not decode when read back: {exc}") from None
    if decoded_seq != seq:
        raise RecordRefused(f"envelope seq {seq} decodes back with seq_id {decoded_seq}")
    head = _LEN_SEQ.pack(length, seq)
    return head + _U32.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


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

    def append_batch(self, envs: Sequence[Envelope]) -> None:
        """Group commit: append contiguous envelopes with one write and (per policy) one fsync.

        Every record is checked before anything is written: a refused record refuses the batch.

        Raises:
            RecordRefused: a record failed its checks; nothing was written.
            JournalFailed: this or an earlier write/fsync failed.
        """
        fd = self._usable_fd()
        if not envs:
            return
        expected = self._last_seq_id + 1
        parts = []
        for env in envs:
            parts.append(_frame(env, expected))
            expected += 1
        self._write(fd, b"".join(parts), envs[-1].seq_id)
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

    def _write(self, fd: int, blob: bytes, seq_id: int) -> None:
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


def _write_all(fd: int, blob: bytes) -> None:
    """os.write until every byte is out (a regular file may take a short write near disk full)."""
    view = memoryview(blob)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # defensive: a zero-byte write would loop forever
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]
