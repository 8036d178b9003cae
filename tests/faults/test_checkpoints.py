"""D3, S3, C3: checkpoints plus the journal suffix give the reference state, even when damaged.

Checkpoints here are taken from reference cores fed the first k envelopes in memory, exactly as
the sequencer takes them from its live core.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from services.sequencer import checkpoint as checkpoint_module
from services.sequencer.checkpoint import (
    CheckpointConfigMismatch,
    checkpoint_path,
    encode_checkpoint,
    find_latest_checkpoint,
    load_latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from services.sequencer.core import SequencerCore
from services.sequencer.journal import ConfigMismatch
from services.sequencer.recovery import recover
from services.sequencer.scenario import demo_config
from tests.faults.disk_faults import (
    flip_bit,
    mixed_envelopes,
    record_spans,
    reference_core,
    reference_hash,
    truncate_to,
    write_journal,
)

ENVELOPES = mixed_envelopes(rounds=3)
N = len(ENVELOPES)


@pytest.fixture(scope="module")
def hash_all() -> str:
    return reference_hash(ENVELOPES)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return write_journal(tmp_path / "journal.tbj", ENVELOPES)


def _checkpoint_at(directory: Path, k: int) -> Path:
    return write_checkpoint(directory, reference_core(ENVELOPES[:k]))


def _checkpoints(directory: Path, *seqs: int) -> dict[int, Path]:
    return {k: _checkpoint_at(directory, k) for k in seqs}


# ------------------------------------------------------------------------ D3


def test_checkpoint_at_every_k_plus_suffix_equals_full_replay(journal: Path, tmp_path: Path, hash_all: str) -> None:
    for k in range(N + 1):
        directory = tmp_path / f"ckpt-{k}"
        path = _checkpoint_at(directory, k)
        assert path.name == f"checkpoint-{k:020d}.ckpt"
        result = recover(journal, directory)
        assert (result.checkpoint_seq_id, result.replayed, result.skipped_checkpoints) == (k, N - k, []), k
        assert result.core.state_hash() == hash_all, f"checkpoint at {k} + suffix != full replay"


def test_checkpoint_round_trips_and_carries_its_hashes(tmp_path: Path) -> None:
    core = reference_core(ENVELOPES[:17])
    stored = read_checkpoint(write_checkpoint(tmp_path, core))
    assert (stored.seq_id, stored.state_hash, stored.config_hash) == (17, core.state_hash(), core.config_hash)
    assert stored.snapshot == core.snapshot()
    assert load_latest_checkpoint(tmp_path, demo_config()) == stored
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-00000000000000000017.ckpt"]  # no temp left


# ------------------------------------------------------------------------ S3


def _damages(path: Path) -> list[tuple[str, int | tuple[str, int]]]:
    size = path.stat().st_size
    return [
        ("empty", 0),
        ("magic only", 8),
        ("inside the length prefix", 10),
        ("half", size // 2),
        ("all but the crc", size - 4),
        ("one byte short", size - 1),
        ("bit flip in magic", ("flip", 2)),
        ("bit flip in length", ("flip", 9)),
        ("bit flip in body", ("flip", size // 2)),
        ("bit flip in crc", ("flip", size - 2)),
    ]


def _damage(path: Path, how: int | tuple[str, int]) -> None:
    """An int truncates to that size; ("flip", offset) flips a bit there."""
    if isinstance(how, int):
        truncate_to(path, how)
    else:
        flip_bit(path, how[1], 3)


@pytest.mark.parametrize("index", range(10))
def test_latest_checkpoint_damaged_falls_back_to_the_older(
    journal: Path, tmp_path: Path, hash_all: str, index: int
) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    name, how = _damages(paths[20])[index]
    _damage(paths[20], how)
    result = recover(journal, directory)
    assert (result.checkpoint_seq_id, result.replayed) == (10, N - 10), name
    assert [s.path for s in result.skipped_checkpoints] == [paths[20]], name
    assert result.skipped_checkpoints[0].reason, name
    assert result.core.state_hash() == hash_all, name


def test_latest_two_damaged_fall_back_to_the_oldest(journal: Path, tmp_path: Path, hash_all: str) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 5, 15, 25)
    truncate_to(paths[25], paths[25].stat().st_size // 3)
    flip_bit(paths[15], paths[15].stat().st_size // 2, 0)
    result = recover(journal, directory)
    assert (result.checkpoint_seq_id, result.replayed) == (5, N - 5)
    assert [s.path for s in result.skipped_checkpoints] == [paths[25], paths[15]]
    assert "truncated" in result.skipped_checkpoints[0].reason
    assert "crc" in result.skipped_checkpoints[1].reason
    assert result.core.state_hash() == hash_all


def test_no_valid_checkpoint_means_full_replay(journal: Path, tmp_path: Path, hash_all: str) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    for path in paths.values():
        flip_bit(path, 20, 5)
    result = recover(journal, directory)
    assert (result.checkpoint_seq_id, result.replayed, len(result.skipped_checkpoints)) == (None, N, 2)
    assert result.core.state_hash() == hash_all
    assert recover(journal, tmp_path / "missing-dir").replayed == N


def test_wrong_stored_state_hash_with_valid_crc_is_skipped(journal: Path, tmp_path: Path, hash_all: str) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    forged = msgspec.structs.replace(read_checkpoint(paths[20]), state_hash="0" * 64)
    paths[20].write_bytes(encode_checkpoint(forged))  # framing and crc are valid
    result = recover(journal, directory)
    assert result.checkpoint_seq_id == 10
    assert "stored state hash" in result.skipped_checkpoints[0].reason
    assert result.core.state_hash() == hash_all


def test_tampered_snapshot_with_its_old_hash_is_skipped(journal: Path, tmp_path: Path, hash_all: str) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    stored = read_checkpoint(paths[20])
    snapshot = msgspec.structs.replace(stored.snapshot, halted=not stored.snapshot.halted)
    paths[20].write_bytes(encode_checkpoint(msgspec.structs.replace(stored, snapshot=snapshot)))
    result = recover(journal, directory)
    assert result.checkpoint_seq_id == 10 and result.core.state_hash() == hash_all


def test_checkpoint_beyond_the_journal_is_skipped(journal: Path, tmp_path: Path) -> None:
    """The journal lost its last record (torn tail); the checkpoint at N describes state it cannot reach."""
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 20, N)
    truncate_to(journal, record_spans(journal)[-1][1] - 1)
    result = recover(journal, directory)
    assert (result.checkpoint_seq_id, result.replayed, result.tail_bytes_cut > 0) == (20, N - 21, True)
    assert result.skipped_checkpoints[0].path == paths[N]
    assert "beyond the journal" in result.skipped_checkpoints[0].reason
    assert result.core.state_hash() == reference_hash(ENVELOPES[:-1])


def test_checkpoint_whose_name_and_content_disagree_is_skipped(journal: Path, tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    paths[20].rename(checkpoint_path(directory, 25))
    search = find_latest_checkpoint(directory, demo_config(), max_seq_id=N)
    assert search.checkpoint is not None and search.checkpoint.seq_id == 10
    assert "name says seq 25" in search.skipped[0].reason


# ------------------------------------------------------------------------ C3


# (what a crash left, which file, how many bytes of the new checkpoint it holds, seq recovery uses).
# The temp name is what mkstemp would give; a final name holding fewer bytes than the whole file
# is the rename reaching disk before the data (a filesystem that does not order them).
CRASH_STEPS: list[tuple[str, str | None, str, int]] = [
    ("before the temp file exists", None, "none", 10),
    ("temp file created, empty", "temp", "empty", 10),
    ("temp file half written", "temp", "half", 10),
    ("temp file written, not fsynced or renamed", "temp", "all", 10),
    ("renamed: the new checkpoint is in place", "final", "all", 20),
    ("rename reached disk before the data: final name empty", "final", "empty", 10),
    ("rename reached disk before the data: final name partial", "final", "all but 100", 10),
]


@pytest.mark.parametrize(("step", "where", "amount", "expected"), CRASH_STEPS, ids=[c[0] for c in CRASH_STEPS])
def test_crash_at_each_step_of_writing_a_checkpoint(
    journal: Path, tmp_path: Path, hash_all: str, step: str, where: str | None, amount: str, expected: int
) -> None:
    blob = _checkpoint_at(tmp_path / "source", 20).read_bytes()
    directory = tmp_path / "ckpt"
    _checkpoints(directory, 10)
    data = {"none": b"", "empty": b"", "half": blob[: len(blob) // 2], "all": blob, "all but 100": blob[:-100]}[amount]
    if where == "temp":
        (directory / ".checkpoint-k2j4h8.tmp").write_bytes(data)
    elif where == "final":
        checkpoint_path(directory, 20).write_bytes(data)
    result = recover(journal, directory)
    assert result.checkpoint_seq_id == expected, step
    assert result.core.state_hash() == hash_all, step


def _fail_in(monkeypatch: pytest.MonkeyPatch, target: str, after_calls: int = 0) -> None:
    original = getattr(os, target)
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > after_calls:
            raise OSError(5, f"injected failure in os.{target}")
        return original(*args, **kwargs)

    monkeypatch.setattr(os, target, failing)


@pytest.mark.parametrize("target", ["fsync", "replace"])
def test_failed_checkpoint_write_leaves_no_partial_file(
    journal: Path, tmp_path: Path, hash_all: str, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    directory = tmp_path / "ckpt"
    _checkpoints(directory, 10)
    core20 = reference_core(ENVELOPES[:20])
    with monkeypatch.context() as patch:
        _fail_in(patch, target)
        with pytest.raises(OSError, match="injected"):
            write_checkpoint(directory, core20)
    assert sorted(p.name for p in directory.iterdir()) == ["checkpoint-00000000000000000010.ckpt"]
    result = recover(journal, directory)
    assert (result.checkpoint_seq_id, result.core.state_hash()) == (10, hash_all)


def test_failed_directory_fsync_after_rename_still_leaves_a_whole_checkpoint(
    journal: Path, tmp_path: Path, hash_all: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "ckpt"
    _checkpoints(directory, 10)
    with monkeypatch.context() as patch:
        _fail_in(patch, "fsync", after_calls=1)  # the file's fsync works, the directory's fails
        with pytest.raises(OSError, match="injected"):
            write_checkpoint(directory, reference_core(ENVELOPES[:20]))
    result = recover(journal, directory)
    assert result.checkpoint_seq_id in (10, 20)
    assert result.core.state_hash() == hash_all


# ------------------------------------------------------------------------ config


def test_checkpoint_under_another_config_is_refused(journal: Path, tmp_path: Path) -> None:
    other = demo_config(dedup_window=512)
    directory = tmp_path / "ckpt"
    _checkpoints(directory, 10)
    foreign = SequencerCore(other)
    for env in ENVELOPES[:20]:
        foreign.apply(env)
    write_checkpoint(directory, foreign)
    with pytest.raises(CheckpointConfigMismatch) as caught:
        recover(journal, directory)
    message = str(caught.value)
    assert other.config_hash() in message and demo_config().config_hash() in message


def test_recovery_under_another_config_is_refused(journal: Path) -> None:
    other = demo_config(dedup_window=512)
    with pytest.raises(ConfigMismatch) as caught:
        recover(journal, None, config=other)
    message = str(caught.value)
    assert other.config_hash() in message and demo_config().config_hash() in message
    assert recover(journal, None, config=demo_config()).replayed == N  # the same config is fine


# ------------------------------------------------------------------------ pruning


def test_prune_keeps_the_newest_and_removes_crash_leftovers(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 3, 6, 9, 12, 15)
    leftover = directory / ".checkpoint-abc.tmp"
    leftover.write_bytes(b"partial")
    removed = prune_checkpoints(directory, keep=3)
    assert sorted(removed) == sorted([paths[3], paths[6], leftover])
    assert sorted(p.name for p in directory.iterdir()) == sorted(paths[k].name for k in (9, 12, 15))
    assert prune_checkpoints(directory) == []
    with pytest.raises(ValueError):
        prune_checkpoints(directory, keep=0)


def test_load_latest_logs_what_it_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "ckpt"
    paths = _checkpoints(directory, 10, 20)
    truncate_to(paths[20], 30)
    with caplog.at_level("WARNING", logger=checkpoint_module.__name__):
        found = load_latest_checkpoint(directory, demo_config(), max_seq_id=N)
    assert found is not None and found.seq_id == 10
    assert str(paths[20]) in caplog.text and "truncated" in caplog.text
