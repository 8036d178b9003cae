"""Checkpoints: the core's whole state at a seq id, with its hash, written atomically.

Theory of operation
-------------------
File `checkpoint-{seq_id:020d}.ckpt` (the zero padding makes name order seq order)::

    b"TBCKPT01" | length u32 | Checkpoint (msgpack) | crc32 u32 over (length + Checkpoint)

Writing (C3): encode, write a temporary file in the same directory, flush, fsync, os.replace
onto the final name, fsync the directory. A crash at any step leaves either no new file (the
temporary one is ignored: its name does not match) or the complete new one. A partial file under
the final name (a filesystem that does not honour the order) fails its length or crc check.

Loading (S3): newest first, each candidate is checked in full: magic, length, crc, decode,
name vs content seq id, config hash, seq id within the journal, and finally restored into a
fresh core whose recomputed state hash must equal the stored one. The first that passes wins;
every one skipped is reported with its reason.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from schemas.state import CoreSnapshot
from services.sequencer.core import CoreConfig, SequencerCore
from services.sequencer.core.book import state_hash_of
from services.sequencer.journal import fsync_directory

__all__ = [
    "CHECKPOINT_MAGIC",
    "DEFAULT_KEEP_CHECKPOINTS",
    "MAX_CHECKPOINT_BYTES",
    "Checkpoint",
    "CheckpointConfigMismatch",
    "CheckpointError",
    "CheckpointSearch",
    "SkippedCheckpoint",
    "checkpoint_files",
    "checkpoint_path",
    "decode_checkpoint",
    "encode_checkpoint",
    "find_latest_checkpoint",
    "load_latest_checkpoint",
    "prune_checkpoints",
    "read_checkpoint",
    "write_checkpoint",
]

log = logging.getLogger(__name__)

CHECKPOINT_MAGIC: Final = b"TBCKPT01"
# State is bounded by the dedup windows (100k keys by default) and the open orders: tens of MB.
# A length prefix above this is damage, and the bound stops us allocating on its say-so.
MAX_CHECKPOINT_BYTES: Final = 1024 * 1024 * 1024
# Three survive two damaged checkpoints in a row (S3) at the cost of three states on disk.
DEFAULT_KEEP_CHECKPOINTS: Final = 3
_U32: Final = struct.Struct("<I")
_PREFIX_SIZE: Final = len(CHECKPOINT_MAGIC) + _U32.size
_NAME: Final = re.compile(r"^checkpoint-(\d{20})\.ckpt$")
_TEMP_PREFIX: Final = ".checkpoint-"
_TEMP_SUFFIX: Final = ".tmp"

_ENCODER: Final = msgspec.msgpack.Encoder(order="deterministic")


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The core's state at `seq_id`, the hash of that state and the config it was taken under."""

    seq_id: int
    state_hash: str
    config_hash: str
    snapshot: CoreSnapshot


_DECODER: Final = msgspec.msgpack.Decoder(Checkpoint)


class CheckpointError(Exception):
    """A checkpoint cannot be written or used."""


class CheckpointConfigMismatch(CheckpointError):
    """A checkpoint was taken under another config than the journal's: refuse, never guess."""

    def __init__(self, path: Path, checkpoint_hash: str, expected_hash: str) -> None:
        self.path = path
        self.checkpoint_hash = checkpoint_hash
        self.expected_hash = expected_hash
        super().__init__(
            f"checkpoint {path} was taken under config {checkpoint_hash} but the journal's config "
            f"is {expected_hash}; refusing to restore it (move it away if it belongs elsewhere)"
        )


@dataclass(frozen=True, slots=True)
class SkippedCheckpoint:
    """A checkpoint file passed over while looking for the latest valid one, and why."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class CheckpointSearch:
    """The result of `find_latest_checkpoint`.

    Attributes:
        checkpoint: the newest valid checkpoint, or None.
        path: its file.
        core: a fresh core already restored from it and verified (reuse it; None with no checkpoint).
        skipped: newer files passed over, newest first, with reasons.
    """

    checkpoint: Checkpoint | None
    path: Path | None
    core: SequencerCore | None
    skipped: list[SkippedCheckpoint] = field(default_factory=list)


def checkpoint_path(directory: str | os.PathLike[str], seq_id: int) -> Path:
    """Where the checkpoint at `seq_id` lives."""
    return Path(directory) / f"checkpoint-{seq_id:020d}.ckpt"


def checkpoint_files(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(seq id from the name, path) of every checkpoint file, newest first. Temp files excluded."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for entry in d.iterdir():
        m = _NAME.match(entry.name)
        if m is not None:
            found.append((int(m.group(1)), entry))
    found.sort(key=lambda item: item[0], reverse=True)
    return found


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    """The file bytes of a checkpoint: magic, length, msgpack, crc32.

    Raises:
        CheckpointError: the encoding exceeds MAX_CHECKPOINT_BYTES.
    """
    try:
        body = _ENCODER.encode(checkpoint)
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint at seq {checkpoint.seq_id} does not encode: {exc}") from None
    if len(body) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"checkpoint at seq {checkpoint.seq_id} is {len(body)} bytes, over MAX_CHECKPOINT_BYTES {MAX_CHECKPOINT_BYTES}"
        )
    prefix = _U32.pack(len(body))
    return CHECKPOINT_MAGIC + prefix + body + _U32.pack(zlib.crc32(body, zlib.crc32(prefix)))


def decode_checkpoint(data: bytes) -> Checkpoint:
    """Check the framing of checkpoint file bytes and decode them.

    Raises:
        CheckpointError: wrong magic, truncated, trailing bytes, crc mismatch, or undecodable.
    """
    if len(data) < _PREFIX_SIZE + _U32.size:
        raise CheckpointError(f"truncated: {len(data)} bytes, shorter than the framing")
    if data[: len(CHECKPOINT_MAGIC)] != CHECKPOINT_MAGIC:
        raise CheckpointError(f"magic {data[: len(CHECKPOINT_MAGIC)]!r} is not {CHECKPOINT_MAGIC!r}")
    (length,) = _U32.unpack_from(data, len(CHECKPOINT_MAGIC))
    expected_size = _PREFIX_SIZE + length + _U32.size
    if length > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"length {length} exceeds MAX_CHECKPOINT_BYTES {MAX_CHECKPOINT_BYTES}")
    if len(data) < expected_size:
        raise CheckpointError(f"truncated: {len(data)} bytes, framing says {expected_size}")
    if len(data) > expected_size:
        raise CheckpointError(f"{len(data) - expected_size} trailing bytes after the checkpoint")
    body = memoryview(data)[_PREFIX_SIZE : _PREFIX_SIZE + length]
    (stored_crc,) = _U32.unpack_from(data, _PREFIX_SIZE + length)
    if zlib.crc32(body, zlib.crc32(data[len(CHECKPOINT_MAGIC) : _PREFIX_SIZE])) != stored_crc:
        raise CheckpointError("crc mismatch")
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 escapes msgspec (#714)
        raise CheckpointError(f"does not decode: {exc}") from None


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and decode one checkpoint file (framing checks only; no state verification).

    Raises:
        CheckpointError: see `decode_checkpoint`.
        OSError: the file cannot be read.
    """
    return decode_checkpoint(Path(path).read_bytes())


def write_checkpoint(directory: str | os.PathLike[str], core: SequencerCore) -> Path:
    """Write the core's state atomically as `checkpoint-{seq_id:020d}.ckpt` in `directory`.

    Steps: temp file in the same directory, write, flush, fsync, os.replace, fsync the
    directory. The directory is created if missing.

    Returns:
        The path of the new checkpoint.

    Raises:
        CheckpointError: the state is inconsistent with the core or too large.
        OSError: the write failed; no file under the final name was created or changed.
    """
    d = Path(directory)
    if not d.is_dir():
        d.mkdir(parents=True)
        fsync_directory(d.parent)  # the new directory's own entry must survive power loss too
    snapshot = core.snapshot()
    # The hash of the very snapshot written (core.state_hash() would build a second snapshot:
    # twice the stall of the sequencing loop on a large book).
    checkpoint = Checkpoint(
        seq_id=core.seq_id, state_hash=state_hash_of(snapshot), config_hash=core.config_hash, snapshot=snapshot
    )
    # Paired with the checks in `_verify`: what we write must describe the core it came from.
    if snapshot.seq_id != core.seq_id or snapshot.config_hash != core.config_hash:
        raise CheckpointError(
            f"snapshot (seq {snapshot.seq_id}, config {snapshot.config_hash}) does not match core "
            f"(seq {core.seq_id}, config {core.config_hash})"
        )
    blob = encode_checkpoint(checkpoint)
    final = checkpoint_path(d, checkpoint.seq_id)
    fd, tmp_name = tempfile.mkstemp(dir=d, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(d)
    return final


def _verify(
    path: Path, name_seq: int, config: CoreConfig, config_hash: str, max_seq_id: int | None
) -> tuple[Checkpoint, SequencerCore]:
    """Every check a checkpoint must pass before recovery trusts it.

    Raises:
        CheckpointConfigMismatch: taken under another config (not skippable).
        CheckpointError: any other failure (the caller skips the file).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"unreadable: {exc}") from None
    checkpoint = decode_checkpoint(data)
    if checkpoint.config_hash != config_hash or checkpoint.snapshot.config_hash != config_hash:
        found = checkpoint.config_hash if checkpoint.config_hash != config_hash else checkpoint.snapshot.config_hash
        raise CheckpointConfigMismatch(path, found, config_hash)
    if checkpoint.seq_id != name_seq or checkpoint.snapshot.seq_id != name_seq:
        raise CheckpointError(
            f"name says seq {name_seq}, content says {checkpoint.seq_id} (snapshot {checkpoint.snapshot.seq_id})"
        )
    if max_seq_id is not None and checkpoint.seq_id > max_seq_id:
        raise CheckpointError(f"seq {checkpoint.seq_id} is beyond the journal's last seq {max_seq_id}")
    core = SequencerCore(config)
    try:
        core.restore(checkpoint.snapshot)
    # Deliberately broad: a crc-valid snapshot that fails to restore in any way is a bad
    # checkpoint, and S3 says fall back to an older one rather than refuse to start.
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"does not restore: {type(exc).__name__}: {exc}") from None
    recomputed = core.state_hash()
    if recomputed != checkpoint.state_hash:
        raise CheckpointError(f"stored state hash {checkpoint.state_hash} != restored state hash {recomputed}")
    return checkpoint, core


def find_latest_checkpoint(
    directory: str | os.PathLike[str], config: CoreConfig, max_seq_id: int | None = None
) -> CheckpointSearch:
    """Find the newest checkpoint that passes every check, skipping (and reporting) the rest.

    A checkpoint whose config hash differs from `config`'s is not skipped but refused: the
    directory belongs to another book or another config, and recovering from an older
    checkpoint beside it would hide that. A journal is only replayed under its own config.

    Args:
        directory: the checkpoint directory (missing means no checkpoints).
        config: the journal's config; restores are verified under it.
        max_seq_id: the journal's last seq id; later checkpoints are skipped.

    Raises:
        CheckpointConfigMismatch: a candidate was taken under another config.
    """
    config_hash = config.config_hash()
    skipped: list[SkippedCheckpoint] = []
    for name_seq, path in checkpoint_files(directory):
        try:
            checkpoint, core = _verify(path, name_seq, config, config_hash, max_seq_id)
        except CheckpointConfigMismatch:
            raise
        except CheckpointError as exc:
            log.warning("skipping checkpoint %s: %s", path, exc)
            skipped.append(SkippedCheckpoint(path, str(exc)))
            continue
        return CheckpointSearch(checkpoint, path, core, skipped)
    return CheckpointSearch(None, None, None, skipped)


def load_latest_checkpoint(
    directory: str | os.PathLike[str], config: CoreConfig, max_seq_id: int | None = None
) -> Checkpoint | None:
    """The newest valid checkpoint, or None. Skipped files are logged (see `find_latest_checkpoint`).

    Raises:
        CheckpointConfigMismatch: a candidate was taken under another config.
    """
    return find_latest_checkpoint(directory, config, max_seq_id).checkpoint


def prune_checkpoints(directory: str | os.PathLike[str], keep: int = DEFAULT_KEEP_CHECKPOINTS) -> list[Path]:
    """Delete all but the `keep` newest checkpoints, and temp files left by crashed writes.

    Only the single writer (the sequencer) may call this: a temp file it removes could
    otherwise belong to a write in progress.

    Returns:
        The removed paths.

    Raises:
        ValueError: keep < 1 (recovery needs at least one checkpoint to fall back to).
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    d = Path(directory)
    removed = [path for _, path in checkpoint_files(d)[keep:]]
    if d.is_dir():
        removed += sorted(p for p in d.iterdir() if p.name.startswith(_TEMP_PREFIX) and p.name.endswith(_TEMP_SUFFIX))
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        fsync_directory(d)
    return removed
