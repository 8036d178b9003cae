"""`tradebus replay JOURNAL [--checkpoints DIR] [--trace OUT.jsonl]`: re-run a journal, verify hashes.

Exit codes: 0 every checkpoint matched; 1 a checkpoint mismatched; 2 the journal is damaged or
unreadable, or the trace cannot be written (the error, naming file, offset and seq id for a
damaged journal, goes to stderr). The journal is only read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from services.sequencer.journal import JournalError
from services.sequencer.recovery import replay_journal

__all__ = ["EXIT_DAMAGED", "EXIT_MISMATCH", "EXIT_OK", "main", "register", "run"]

EXIT_OK: Final = 0
EXIT_MISMATCH: Final = 1
EXIT_DAMAGED: Final = 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `replay` subcommand to a `tradebus` argument parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="replay a journal from scratch and verify checkpoint state hashes",
        description=(
            "Replay JOURNAL under the config in its header and compare the state hash at every "
            "checkpoint's seq id, and the final one with --expect-hash or, for a backtest run "
            "folder, with the state_hash of the summary.json beside the journal. The journal is "
            "not modified. Exit 0: all match; 1: a mismatch; 2: damaged journal."
        ),
    )
    parser.add_argument("journal", type=Path, metavar="JOURNAL", help="journal file to replay")
    parser.add_argument("--checkpoints", type=Path, metavar="DIR", help="checkpoint directory to verify against")
    parser.add_argument("--trace", type=Path, metavar="OUT.jsonl", help="write the canonical transition trace here")
    parser.add_argument("--expect-hash", metavar="HASH", help="the final state hash the replay must reproduce")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run `tradebus replay` with parsed arguments; returns the exit code."""
    try:
        result = replay_journal(args.journal, args.checkpoints, trace=args.trace is not None)
    except (JournalError, OSError) as exc:
        print(f"tradebus replay: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    out = sys.stdout
    print(f"journal: {result.journal_path}", file=out)
    print(f"config hash: {result.config_hash}", file=out)
    print(f"records replayed: {result.records}", file=out)
    print(f"final seq id: {result.final_seq_id}", file=out)
    print(f"final state hash: {result.final_state_hash}", file=out)
    if result.tail_bytes:
        print(
            f"torn tail: {result.tail_bytes} bytes after the last complete record ignored "
            f"({result.tail_reason}); journal not modified",
            file=out,
        )
    for check in result.checks:
        if check.ok:
            print(f"checkpoint seq {check.seq_id}: OK {check.replayed_hash}", file=out)
        else:
            print(
                f"checkpoint seq {check.seq_id}: MISMATCH stored {check.stored_hash} "
                f"replayed {check.replayed_hash} ({check.detail})",
                file=out,
            )
    for skipped in result.skipped_checkpoints:
        print(f"checkpoint {skipped.path.name}: SKIPPED ({skipped.reason})", file=out)
    if args.trace is not None and result.trace is not None:
        try:
            args.trace.write_bytes(result.trace)
        except OSError as exc:
            print(f"tradebus replay: cannot write trace: {exc}", file=sys.stderr)
            return EXIT_DAMAGED
        lines = result.trace.count(b"\n")
        print(f"trace: {args.trace} ({lines} lines)", file=out)
    expected, where = _expected_hash(args)
    final_ok = True
    if expected is not None:
        final_ok = result.final_state_hash == expected
        verdict = "OK" if final_ok else f"MISMATCH expected {expected}"
        print(f"final state hash vs {where}: {verdict}", file=out)
    if not result.all_ok or not final_ok:
        return EXIT_MISMATCH
    return EXIT_OK


def _expected_hash(args: argparse.Namespace) -> tuple[str | None, str]:
    """The hash to compare with: --expect-hash, else a backtest's summary.json next to the journal."""
    if args.expect_hash:
        return args.expect_hash, "--expect-hash"
    summary = args.journal.parent / "summary.json"
    if not summary.is_file():
        return None, ""
    try:
        data = json.loads(summary.read_text())
        value = data["config"]["state_hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, ""
    return (value, str(summary)) if isinstance(value, str) else (None, "")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m services.cli.replay_cmd`), same as `tradebus replay`."""
    parser = argparse.ArgumentParser(prog="tradebus")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    args = parser.parse_args(["replay", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
