"""Core benchmarks: `make bench` (writes .bench/core.json).

Each figure sits next to a trivial pure-Python loop over the same envelopes, measured in the same
run, so a noisy shared machine shows up in both and the ratio stays meaningful. Every timing is
the best of REPEATS runs. Targets (issue 2, one core): >= 300,000 market-data envelopes/s
applied, >= 50,000 order lifecycles/s, journal replay >= 200,000 envelopes/s.

    python -m tests.performance.bench_core [--out .bench/core.json] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from schemas import Envelope
from services.sequencer.core import SequencerCore
from services.sequencer.journal import FsyncPolicy, JournalWriter, iter_envelopes
from services.sequencer.scenario import Scenario, demo_config

REPEATS = 3
PX = 4_200_000
RAW_ENCODER = msgspec.msgpack.Encoder()  # the raw-write baseline: encode and write, no framing
TARGETS = {"md_apply": 300_000, "lifecycles": 50_000, "journal_replay": 200_000}


def best_of(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Smallest wall time of `repeats` calls. The garbage collector stays on, as in production."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def market_data(n: int) -> list[Envelope]:
    sc = Scenario()
    for i in range(n):
        sc.advance(1_000_000)
        sc.trade("BTC-USD", PX + (i % 97) - 48, quantity=1 + i % 50)
    return sc.sequenced()


def lifecycles(n: int) -> list[Envelope]:
    """Place, accept, fill; alternating sides so a cash account (no margin) stays funded."""
    sc = Scenario()
    sc.trade("BTC-USD", PX)
    for i in range(n):
        cid = f"o{i}"
        sc.place(cid, side="buy" if i % 2 == 0 else "sell", price=PX)
        sc.accept(cid)
        sc.fill(cid, f"t{i}", 1_0000, PX, fee=10)
    return sc.sequenced()


def apply_all(envs: list[Envelope]) -> Callable[[], None]:
    def run() -> None:
        core = SequencerCore(demo_config())
        apply = core.apply
        for env in envs:
            apply(env)

    return run


def trivial_loop(envs: list[Envelope]) -> Callable[[], None]:
    """The floor: touch each envelope's payload once in plain Python."""

    def run() -> None:
        last: dict[str, object] = {}
        for env in envs:
            last[env.instrument] = env.payload

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(".bench/core.json"))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the envelope counts")
    args = parser.parse_args(argv)
    n_md = int(300_000 * args.scale)
    n_life = int(50_000 * args.scale)
    results: dict[str, dict[str, Any]] = {}

    print(f"building {n_md:,} market-data envelopes and {n_life:,} order lifecycles ...", file=sys.stderr)
    md = market_data(n_md)
    life = lifecycles(n_life)

    def record(name: str, count: int, seconds: float, baseline_seconds: float, unit: str) -> None:
        rate = count / seconds
        base = count / baseline_seconds
        results[name] = {
            "count": count,
            "seconds": round(seconds, 4),
            "rate_per_s": round(rate),
            "unit": unit,
            "baseline_rate_per_s": round(base),
            "ratio_to_baseline": round(rate / base, 4),
            "target_per_s": TARGETS.get(name),
            "meets_target": None if name not in TARGETS else rate >= TARGETS[name],
        }

    record("md_apply", n_md, best_of(apply_all(md)), best_of(trivial_loop(md)), "envelopes")
    t_life = best_of(apply_all(life))
    # baseline: the trivial loop over the same three envelopes per lifecycle
    record("lifecycles", n_life, t_life, best_of(trivial_loop(life)), "lifecycles")
    results["lifecycles"]["envelopes_per_s"] = round(len(life) / t_life)

    with tempfile.TemporaryDirectory() as tmp:
        config = demo_config()
        for policy in (FsyncPolicy.NEVER, FsyncPolicy.INTERVAL):
            path = Path(tmp) / f"append-{policy}.tbj"

            def append(path: Path = path, policy: FsyncPolicy = policy) -> None:
                if path.exists():
                    path.unlink()
                with JournalWriter.create(path, config, fsync=policy) as journal:
                    for env in md:
                        journal.append(env)

            def raw_write(path: Path = Path(tmp) / "raw.bin") -> None:
                encoder = RAW_ENCODER
                with open(path, "wb") as fh:
                    fh.writelines(encoder.encode(env) for env in md)

            record(f"journal_append_{policy}", n_md, best_of(append), best_of(raw_write), "envelopes")
        journal_path = Path(tmp) / "append-never.tbj"

        def replay() -> None:
            core = SequencerCore(config)
            apply = core.apply
            for env in iter_envelopes(journal_path):
                apply(env)

        def decode_only() -> None:
            for _ in iter_envelopes(journal_path):
                pass

        record("journal_replay", n_md, best_of(replay), best_of(trivial_loop(md)), "envelopes")
        results["journal_replay"]["read_and_decode_only_per_s"] = round(n_md / best_of(decode_only))
        results["journal_replay"]["bytes"] = journal_path.stat().st_size

    from services.sequencer.core import engine

    build = "compiled (mypyc)" if engine.__file__.endswith(".so") else "interpreted"
    meta = {
        "core_build": build,
        "core_engine_file": engine.__file__,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "repeats": REPEATS,
        "load_average": os.getloadavg(),
        "command": "make bench  (python -m tests.performance.bench_core)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")

    header = f"{'benchmark':<26}{'rate/s':>12}{'baseline/s':>14}{'ratio':>9}{'target':>10}  ok"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        target = r["target_per_s"]
        ok = "" if target is None else ("yes" if r["meets_target"] else "NO")
        print(
            f"{name:<26}{r['rate_per_s']:>12,}{r['baseline_rate_per_s']:>14,}{r['ratio_to_baseline']:>9.3f}"
            f"{'' if target is None else f'{target:,}':>10}  {ok}"
        )
    print(f"\ncore: {build}; written to {args.out}  (python {meta['python']}, {meta['cpus']} cpus, load {meta['load_average'][0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
