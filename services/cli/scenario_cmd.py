"""`tradebus scenario DIR`: sequence, journal and apply a recorded scenario, then summarize it.

DIR holds `config.json` (a CoreConfig) and `input.jsonl` (one unsequenced Envelope per line, in
arrival order). Envelopes are merged by event time with the deterministic tie-break, journaled
before they are applied, checkpointed every N, and the run folder gets the journal,
checkpoints, the canonical trace, the final state and a summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import pydantic
from tqdm import tqdm

from schemas import Envelope, FillBooked, IntentRejected, OrderTransitioned, Output, ReportRefused
from services.cli.tables import format_table, scaled
from services.sequencer.checkpoint import prune_checkpoints, write_checkpoint
from services.sequencer.core import CoreConfig, Sequencer, SequencerCore
from services.sequencer.journal import FsyncPolicy, JournalError, JournalWriter, iter_envelopes
from services.sequencer.recovery import recover
from services.sequencer.trace import TraceWriter

__all__ = ["ScenarioError", "load_scenario", "register"]

# Big enough that checkpoints cost little; small enough that recovery replays a short suffix.
DEFAULT_CHECKPOINT_EVERY = 5_000
# Recovery falls back past a damaged checkpoint to an older one; three gives two fallbacks.
CHECKPOINTS_KEPT = 3


class ScenarioError(Exception):
    """A scenario folder that cannot be used; the message names the file, line and field."""


def register(sub: Any) -> None:
    p = sub.add_parser("scenario", help="run a recorded scenario through the core and summarize it")
    p.add_argument("scenario", type=Path, help="folder with config.json and input.jsonl")
    p.add_argument("--run-dir", type=Path, default=None, help="where to write the run (default runs/<name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a run that stopped (e.g. killed): recover from its checkpoints and journal",
    )
    p.add_argument("--fsync", choices=[f.value for f in FsyncPolicy], default=FsyncPolicy.INTERVAL.value)
    p.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY, metavar="N")
    p.set_defaults(run=_run)


def load_scenario(folder: Path) -> tuple[CoreConfig, list[Envelope]]:
    """Read and validate a scenario folder.

    Raises:
        ScenarioError: a missing file, invalid config, or an envelope that does not decode.
    """
    config_path = folder / "config.json"
    input_path = folder / "input.jsonl"
    for path in (config_path, input_path):
        if not path.is_file():
            raise ScenarioError(f"{path}: not found (a scenario folder holds config.json and input.jsonl)")
    try:
        config = CoreConfig.model_validate_json(config_path.read_bytes())
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ScenarioError(f"{config_path}: {where}: {first['msg']} (got {first.get('input')!r})") from exc
    decoder = msgspec.json.Decoder(Envelope)
    envelopes = []
    with input_path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                envelopes.append(decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise ScenarioError(f"{input_path} line {number}: {exc}") from exc
    return config, envelopes


def _run(args: argparse.Namespace) -> int:
    try:
        config, envelopes = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"tradebus scenario: {exc}", file=sys.stderr)
        return 2
    if args.checkpoint_every < 1:
        print(f"tradebus scenario: --checkpoint-every must be >= 1, got {args.checkpoint_every}", file=sys.stderr)
        return 2
    run_dir: Path = args.run_dir or Path("runs") / args.scenario.name
    journal_path = run_dir / "journal.tbj"
    resuming = args.resume and journal_path.exists()
    if run_dir.exists() and not resuming:
        if not args.overwrite:
            print(f"tradebus scenario: {run_dir} exists; pass --overwrite to replace it", file=sys.stderr)
            return 2
        shutil.rmtree(run_dir)
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)

    sequencer = Sequencer(config.source_priority)
    ordered = sorted(envelopes, key=sequencer.merge_key)
    core = SequencerCore(config)
    trace = TraceWriter()
    counts: Counter[str] = Counter()
    fsync = FsyncPolicy(args.fsync)
    if resuming:
        try:
            journal = _resume(journal_path, run_dir / "checkpoints", config, ordered, core, trace, counts, fsync)
        except (JournalError, ScenarioError) as exc:
            print(f"tradebus scenario: cannot resume {run_dir}: {exc}", file=sys.stderr)
            return 2
        sequencer.last_seq_id = core.seq_id
    else:
        journal = JournalWriter.create(journal_path, config, fsync=fsync)
    with journal:
        remaining = ordered[core.seq_id :]
        for env in tqdm(remaining, desc="applying", unit="env", disable=None, file=sys.stderr):
            stamped = sequencer.stamp(env, ingest_time_ns=env.event_time_ns)
            journal.append(stamped)
            outputs = core.apply(stamped)
            trace.extend(outputs)
            _count(stamped, outputs, counts)
            if stamped.seq_id % args.checkpoint_every == 0:
                write_checkpoint(run_dir / "checkpoints", core)
                prune_checkpoints(run_dir / "checkpoints", keep=CHECKPOINTS_KEPT)
        journal.sync()
    write_checkpoint(run_dir / "checkpoints", core)
    prune_checkpoints(run_dir / "checkpoints", keep=CHECKPOINTS_KEPT)
    (run_dir / "trace.jsonl").write_bytes(trace.getvalue())
    snapshot = core.snapshot()
    state_hash = core.state_hash()
    (run_dir / "final_state.json").write_bytes(
        msgspec.json.format(msgspec.json.encode({"state_hash": state_hash, "snapshot": snapshot}))
    )
    (run_dir / "summary.json").write_text(
        json.dumps({"seq_id": core.seq_id, "state_hash": state_hash, "counts": dict(sorted(counts.items()))}, indent=2)
        + "\n"
    )
    print(_summary(config, core, counts, run_dir, state_hash))
    return 0


def _count(env: Envelope, outputs: list[Output], counts: Counter[str]) -> None:
    counts[f"source:{env.source}"] += 1
    for out in outputs:
        counts[f"output:{out.__struct_config__.tag}"] += 1
        if isinstance(out, IntentRejected):
            counts[f"rejected:{out.reason}"] += 1
        elif isinstance(out, ReportRefused):
            counts[f"refused:{out.reason}"] += 1
        elif isinstance(out, OrderTransitioned):
            counts[f"transition:{out.from_state}->{out.to_state}"] += 1
        elif isinstance(out, FillBooked):
            counts["fills"] += 1


def _resume(
    journal_path: Path,
    checkpoint_dir: Path,
    config: CoreConfig,
    ordered: list[Envelope],
    core: SequencerCore,
    trace: TraceWriter,
    counts: Counter[str],
    fsync: FsyncPolicy,
) -> JournalWriter:
    """Recover a stopped run, bring `core` to its last journaled seq id, reopen the journal.

    Recovery (cut a torn tail, latest valid checkpoint, replay the suffix) gives the state; the
    journal is then replayed once more from the start to rebuild the trace and summary of the
    part already run, and the two must agree. Each journaled envelope must be the scenario's
    envelope at that position: a journal from another scenario is refused.

    Raises:
        ScenarioError: the journal does not belong to this scenario or config.
        JournalError: the journal is damaged before its tail.
    """
    recovered = recover(journal_path, checkpoint_dir, config).core
    for env in iter_envelopes(journal_path):
        expected = (
            msgspec.structs.replace(
                ordered[env.seq_id - 1], seq_id=env.seq_id, ingest_time_ns=ordered[env.seq_id - 1].event_time_ns
            )
            if env.seq_id <= len(ordered)
            else None
        )
        if env != expected:
            raise ScenarioError(f"journal record seq {env.seq_id} is not this scenario's envelope at that position")
        outputs = core.apply(env)
        trace.extend(outputs)
        _count(env, outputs, counts)
    if core.state_hash() != recovered.state_hash():
        raise ScenarioError("recovered state differs from a full replay of the journal")
    print(f"resuming after seq {core.seq_id} of {len(ordered)}", file=sys.stderr)
    return JournalWriter.open_for_append(journal_path, fsync=fsync)


def _summary(config: CoreConfig, core: SequencerCore, counts: Counter[str], run_dir: Path, state_hash: str) -> str:
    def section(prefix: str) -> list[tuple[str, int]]:
        return sorted(((k.removeprefix(prefix), v) for k, v in counts.items() if k.startswith(prefix)))

    parts = [
        format_table(["source", "envelopes"], section("source:"), title="Input"),
        format_table(["transition", "count"], section("transition:"), title="\nOrder transitions"),
    ]
    refusals = [(f"intent {k}", v) for k, v in section("rejected:")] + [
        (f"report {k}", v) for k, v in section("refused:")
    ]
    if refusals:
        parts.append(format_table(["refusal", "count"], refusals, title="\nRefused"))
    duplicates = counts.get("output:duplicate_dropped", 0)
    parts.append(f"\nfills booked: {counts.get('fills', 0)}    duplicates dropped: {duplicates}")
    book = core.book
    rows = []
    for name, pos in sorted(book.portfolio.positions.items()):
        inst = config.instruments[name]
        qd = config.currencies[inst.quote].decimals
        last = book.last_prices.get(name)
        value = 0 if last is None else last * pos.quantity * 10 ** (qd - inst.price_decimals - inst.size_decimals)
        rows.append(
            (
                name,
                scaled(pos.quantity, inst.size_decimals),
                "-" if last is None else scaled(last, inst.price_decimals),
                scaled(pos.realized_pnl, qd),
                scaled(value - pos.cost, qd),
            )
        )
    parts.append(format_table(["instrument", "position", "last", "realized", "unrealized"], rows, title="\nPositions"))
    cash_rows = [
        (c, scaled(cash.balance, config.currencies[c].decimals), scaled(cash.fees, config.currencies[c].decimals))
        for c, cash in sorted(book.portfolio.cash.items())
    ]
    parts.append(format_table(["currency", "balance", "fees paid"], cash_rows, title="\nCash"))
    open_rows = [
        (o.client_order_id, o.strategy_id, o.instrument, o.intent.side, o.state, o.filled_quantity, o.quantity)
        for o in book.open_orders.values()
    ]
    if open_rows:
        parts.append(
            format_table(
                ["order", "strategy", "instrument", "side", "state", "filled", "qty"], open_rows, title="\nOpen orders"
            )
        )
    parts.append(f"\nfinal seq id {core.seq_id}   state hash {state_hash}")
    parts.append(f"run folder   {run_dir}  (journal.tbj, checkpoints/, trace.jsonl, final_state.json, summary.json)")
    parts.append(f"verify with  tradebus replay {run_dir / 'journal.tbj'} --checkpoints {run_dir / 'checkpoints'}")
    return "\n".join(parts)
