"""`tradebus replay`: exit 0 when every checkpoint matches, 1 on a mismatch, 2 on a damaged journal.

Run both in-process (through `replay_cmd.register`, as `tradebus` wires it) and as a real
subprocess of `python -m services.cli.main`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from services.cli import replay_cmd
from services.sequencer.checkpoint import encode_checkpoint, read_checkpoint, write_checkpoint
from services.sequencer.core import SequencerCore
from services.sequencer.scenario import demo_config
from services.sequencer.trace import TraceWriter
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
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A journal of N envelopes and checkpoints at 10 and 20, as a sequencer run leaves them."""
    write_journal(tmp_path / "journal.tbj", ENVELOPES)
    for k in (10, 20):
        write_checkpoint(tmp_path / "checkpoints", reference_core(ENVELOPES[:k]))
    return tmp_path


def _tamper_hash(run_dir: Path, seq_id: int) -> None:
    """Rewrite a checkpoint with a valid crc but a wrong stored state hash."""
    path = run_dir / "checkpoints" / f"checkpoint-{seq_id:020d}.ckpt"
    forged = msgspec.structs.replace(read_checkpoint(path), state_hash="f" * 64)
    path.write_bytes(encode_checkpoint(forged))
    assert read_checkpoint(path).state_hash == "f" * 64  # framing still valid


def _corrupt_record(run_dir: Path, index: int) -> int:
    journal = run_dir / "journal.tbj"
    start, _end = record_spans(journal)[index]
    flip_bit(journal, start + 20, 2)
    return start


def _in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="tradebus")
    replay_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["replay", *argv])
    code = args.run(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _subprocess(*argv: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "replay", *argv],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr


# ------------------------------------------------------------------------ in-process


def test_all_checkpoints_match(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _in_process(capsys, str(run_dir / "journal.tbj"), "--checkpoints", str(run_dir / "checkpoints"))
    assert (code, err) == (0, "")
    assert f"records replayed: {N}" in out
    assert f"final seq id: {N}" in out
    assert f"final state hash: {reference_hash(ENVELOPES)}" in out
    assert f"checkpoint seq 10: OK {reference_hash(ENVELOPES[:10])}" in out
    assert f"checkpoint seq 20: OK {reference_hash(ENVELOPES[:20])}" in out
    assert "MISMATCH" not in out


def test_tampered_checkpoint_is_a_mismatch(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tamper_hash(run_dir, 20)
    code, out, _err = _in_process(capsys, str(run_dir / "journal.tbj"), "--checkpoints", str(run_dir / "checkpoints"))
    assert code == 1
    assert "checkpoint seq 10: OK" in out
    assert f"checkpoint seq 20: MISMATCH stored {'f' * 64} replayed {reference_hash(ENVELOPES[:20])}" in out
    assert f"final state hash: {reference_hash(ENVELOPES)}" in out  # the replay itself still completes


def test_self_consistent_checkpoint_from_a_diverged_run_is_a_mismatch(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The determinism check proper: the checkpoint is intact, but its state is not this journal's."""
    other = mixed_envelopes(rounds=3, price_offset=7)[:20]
    diverged = reference_core(other)
    write_checkpoint(run_dir / "checkpoints", diverged)  # replaces checkpoint 20, crc and hash valid
    code, out, _err = _in_process(capsys, str(run_dir / "journal.tbj"), "--checkpoints", str(run_dir / "checkpoints"))
    assert code == 1
    assert (
        f"checkpoint seq 20: MISMATCH stored {diverged.state_hash()} replayed {reference_hash(ENVELOPES[:20])}" in out
    )


def test_damaged_checkpoint_is_reported_not_a_mismatch(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = run_dir / "checkpoints" / f"checkpoint-{20:020d}.ckpt"
    truncate_to(path, 40)
    code, out, _err = _in_process(capsys, str(run_dir / "journal.tbj"), "--checkpoints", str(run_dir / "checkpoints"))
    assert code == 0
    assert f"{path.name}: SKIPPED (truncated" in out and "checkpoint seq 10: OK" in out


def test_corrupted_journal_exits_2_naming_file_offset_and_seq(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = run_dir / "journal.tbj"
    offset = _corrupt_record(run_dir, 4)
    before = journal.read_bytes()
    code, out, err = _in_process(capsys, str(journal), "--checkpoints", str(run_dir / "checkpoints"))
    assert (code, out) == (2, "")
    assert str(journal) in err and f"offset {offset}" in err and "seq 5" in err
    assert journal.read_bytes() == before


def test_torn_tail_is_replayed_up_to_the_last_whole_record(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = run_dir / "journal.tbj"
    truncate_to(journal, journal.stat().st_size - 5)
    before = journal.read_bytes()
    code, out, _err = _in_process(capsys, str(journal))
    assert code == 0
    assert f"records replayed: {N - 1}" in out and "torn tail:" in out and "journal not modified" in out
    assert journal.read_bytes() == before


def test_missing_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _in_process(capsys, str(tmp_path / "nope.tbj"))
    assert code == 2 and "nope.tbj" in err


def test_trace_matches_the_in_memory_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = run_dir / "trace.jsonl"
    code, out, _err = _in_process(capsys, str(run_dir / "journal.tbj"), "--trace", str(out_path))
    assert code == 0 and f"trace: {out_path}" in out
    core = SequencerCore(demo_config())
    expected = TraceWriter()
    for env in ENVELOPES:
        expected.extend(core.apply(env))
    assert expected.count > N  # the scenario produces outputs worth comparing
    assert out_path.read_bytes() == expected.getvalue()


# ------------------------------------------------------------------------ subprocess


def test_subprocess_exit_codes(run_dir: Path) -> None:
    journal = str(run_dir / "journal.tbj")
    checkpoints = str(run_dir / "checkpoints")

    code, out, err = _subprocess(journal, "--checkpoints", checkpoints)
    assert code == 0, err
    assert f"final state hash: {reference_hash(ENVELOPES)}" in out
    assert "checkpoint seq 10: OK" in out and "checkpoint seq 20: OK" in out

    _tamper_hash(run_dir, 10)
    code, out, err = _subprocess(journal, "--checkpoints", checkpoints)
    assert code == 1, err
    assert "checkpoint seq 10: MISMATCH" in out and "checkpoint seq 20: OK" in out

    offset = _corrupt_record(run_dir, 12)
    code, out, err = _subprocess(journal, "--checkpoints", checkpoints)
    assert code == 2
    assert journal in err and f"offset {offset}" in err and "seq 13" in err
