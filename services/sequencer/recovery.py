"""Recovery (latest valid checkpoint + journal suffix) and verifying replay.

`recover` is what the sequencer runs at start: it may cut a torn journal tail, and it refuses a
corrupted journal or a foreign config. `replay_journal` is the read-only audit behind
`tradebus replay`: a fresh core folds the whole journal and its state hash is compared with
every checkpoint's stored hash at that checkpoint's seq id (D3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from services.sequencer.checkpoint import (
    CheckpointError,
    SkippedCheckpoint,
    checkpoint_files,
    find_latest_checkpoint,
    read_checkpoint,
)
from services.sequencer.core import CoreConfig, SequencerCore
from services.sequencer.journal import ConfigMismatch, JournalError, JournalReader, recover_journal
from services.sequencer.trace import TraceWriter

__all__ = ["CheckpointCheck", "Recovery", "ReplayResult", "recover", "replay_journal"]


@dataclass(frozen=True, slots=True)
class Recovery:
    """The state recovered at start.

    Attributes:
        core: the core, at the journal's last seq id.
        config: the config it runs under (the journal header's).
        checkpoint_seq_id: seq id of the checkpoint restored, or None (full replay).
        checkpoint_path: its file, or None.
        replayed: envelopes applied from the journal after the checkpoint.
        tail_bytes_cut: bytes of torn tail cut from the journal.
        skipped_checkpoints: newer checkpoints passed over, with reasons.
    """

    core: SequencerCore
    config: CoreConfig
    checkpoint_seq_id: int | None
    checkpoint_path: Path | None
    replayed: int
    tail_bytes_cut: int
    skipped_checkpoints: list[SkippedCheckpoint] = field(default_factory=list)


def _check_config(path: Path, journal_config: CoreConfig, config: CoreConfig | None) -> CoreConfig:
    if config is None:
        return journal_config
    journal_hash = journal_config.config_hash()
    given_hash = config.config_hash()
    if given_hash != journal_hash:
        raise ConfigMismatch(path, journal_hash, given_hash)
    return config


def recover(
    journal_path: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] | None,
    config: CoreConfig | None = None,
) -> Recovery:
    """Rebuild the core: cut a torn journal tail, restore the latest valid checkpoint, replay the rest.

    Args:
        journal_path: the journal (modified only by cutting a torn tail).
        checkpoint_dir: where checkpoints live (None or missing: replay from the start).
        config: the config to run under; None uses the journal header's. Given, it must hash
            the same as the header's.

    Raises:
        JournalCorrupted: damage before the journal's tail, or in its header (S2).
        ConfigMismatch: `config` differs from the journal's (names both hashes).
        CheckpointConfigMismatch: a checkpoint was taken under another config.
    """
    scan = recover_journal(journal_path)
    run_config = _check_config(scan.path, scan.config(), config)
    skipped: list[SkippedCheckpoint] = []
    core: SequencerCore | None = None
    checkpoint_seq_id: int | None = None
    checkpoint_path: Path | None = None
    if checkpoint_dir is not None:
        search = find_latest_checkpoint(checkpoint_dir, run_config, max_seq_id=scan.last_seq_id)
        skipped = search.skipped
        if search.checkpoint is not None:
            core = search.core
            checkpoint_seq_id = search.checkpoint.seq_id
            checkpoint_path = search.path
    if core is None:
        core = SequencerCore(run_config)
    apply = core.apply
    reader = JournalReader(scan.path, after_seq_id=core.seq_id)
    replayed = 0
    for env in reader:
        apply(env)
        replayed += 1
    # Paired checks: the second read saw the journal the first one cut, and the core reached it.
    if reader.tail_bytes or reader.last_seq_id != scan.last_seq_id or core.seq_id != scan.last_seq_id:
        raise JournalError(
            f"journal {scan.path} changed during recovery: recovered through seq {scan.last_seq_id}, "
            f"replay read through {reader.last_seq_id} with a {reader.tail_bytes}-byte tail, core at {core.seq_id}"
        )
    return Recovery(
        core=core,
        config=run_config,
        checkpoint_seq_id=checkpoint_seq_id,
        checkpoint_path=checkpoint_path,
        replayed=replayed,
        tail_bytes_cut=scan.tail_bytes_cut,
        skipped_checkpoints=skipped,
    )


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """One checkpoint compared with the replay at its seq id.

    `ok` needs both: the replayed state hash equals the stored one, and the stored snapshot
    itself hashes to the stored hash (a checkpoint recovery would actually trust).
    """

    seq_id: int
    stored_hash: str
    replayed_hash: str
    ok: bool
    path: Path
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What `replay_journal` found.

    Attributes:
        journal_path: the journal replayed.
        config_hash: the config it was written and replayed under.
        records: envelopes replayed.
        final_seq_id: the core's seq id at the end.
        final_state_hash: the core's state hash at the end.
        checks: one per checkpoint reached, in seq order.
        skipped_checkpoints: checkpoint files not checked (unreadable, another config, beyond the journal).
        tail_bytes: bytes of torn tail after the last complete record (left on disk).
        tail_reason: why those bytes are not a record.
        trace: canonical trace lines of every output, when asked for.
    """

    journal_path: Path
    config_hash: str
    records: int
    final_seq_id: int
    final_state_hash: str
    checks: list[CheckpointCheck]
    skipped_checkpoints: list[SkippedCheckpoint]
    tail_bytes: int
    tail_reason: str | None
    trace: bytes | None = None

    @property
    def all_ok(self) -> bool:
        """True when every checkpoint checked matched."""
        return all(check.ok for check in self.checks)


def _load_checkpoints_for_replay(
    directory: str | os.PathLike[str] | None, config: CoreConfig, config_hash: str
) -> tuple[dict[int, tuple[Path, str, str]], list[SkippedCheckpoint]]:
    """seq id -> (path, stored hash, hash of the stored snapshot) for every readable checkpoint."""
    wanted: dict[int, tuple[Path, str, str]] = {}
    skipped: list[SkippedCheckpoint] = []
    if directory is None:
        return wanted, skipped
    for name_seq, path in reversed(checkpoint_files(directory)):
        try:
            checkpoint = read_checkpoint(path)
        except (CheckpointError, OSError) as exc:
            skipped.append(SkippedCheckpoint(path, str(exc)))
            continue
        if checkpoint.config_hash != config_hash:
            skipped.append(
                SkippedCheckpoint(path, f"taken under config {checkpoint.config_hash}, journal's is {config_hash}")
            )
            continue
        if checkpoint.seq_id != name_seq or checkpoint.snapshot.seq_id != name_seq:
            skipped.append(SkippedCheckpoint(path, f"name says seq {name_seq}, content says {checkpoint.seq_id}"))
            continue
        probe = SequencerCore(config)
        try:
            probe.restore(checkpoint.snapshot)
            snapshot_hash = probe.state_hash()
        except Exception as exc:  # noqa: BLE001  (reported per checkpoint; the replay goes on)
            snapshot_hash = f"<does not restore: {type(exc).__name__}: {exc}>"
        wanted[name_seq] = (path, checkpoint.state_hash, snapshot_hash)
    return wanted, skipped


def replay_journal(
    journal_path: str | os.PathLike[str],
    checkpoint_dir: str | os.PathLike[str] | None = None,
    trace: bool = False,
) -> ReplayResult:
    """Replay a journal from scratch under its own config and check every checkpoint's hash.

    Read-only: a torn tail is not cut; only complete records are replayed and the result says
    how many bytes were left over.

    Raises:
        JournalCorrupted: damage before the tail, or in the file header.
    """
    reader = JournalReader(journal_path)
    config = reader.config()
    config_hash = config.config_hash()
    wanted, skipped = _load_checkpoints_for_replay(checkpoint_dir, config, config_hash)
    core = SequencerCore(config)
    checks: list[CheckpointCheck] = []

    def check(seq_id: int) -> None:
        path, stored, snapshot_hash = wanted.pop(seq_id)
        replayed = core.state_hash()
        problems = []
        if replayed != stored:
            problems.append(f"replayed hash differs from stored {stored}")
        if snapshot_hash != stored:
            problems.append(f"stored snapshot hashes to {snapshot_hash}, not its stored hash")
        checks.append(CheckpointCheck(seq_id, stored, replayed, not problems, path, "; ".join(problems)))

    pending = sorted(wanted)
    if pending and pending[0] == 0:
        check(pending.pop(0))
    pending.reverse()  # pop() from the end yields the next seq id to check
    next_check = pending.pop() if pending else -1
    writer = TraceWriter() if trace else None
    apply = core.apply
    records = 0
    for env in reader:
        outputs = apply(env)
        records += 1
        if writer is not None:
            writer.extend(outputs)
        if env.seq_id == next_check:
            check(next_check)
            next_check = pending.pop() if pending else -1
    for seq_id in sorted(wanted):  # checkpoints past the last complete record
        path = wanted[seq_id][0]
        skipped.append(SkippedCheckpoint(path, f"seq {seq_id} is beyond the journal's last seq {reader.last_seq_id}"))
    return ReplayResult(
        journal_path=reader.path,
        config_hash=config_hash,
        records=records,
        final_seq_id=core.seq_id,
        final_state_hash=core.state_hash(),
        checks=checks,
        skipped_checkpoints=skipped,
        tail_bytes=reader.tail_bytes,
        tail_reason=reader.tail_reason,
        trace=writer.getvalue() if writer is not None else None,
    )
