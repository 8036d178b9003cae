"""`tradebus serve ROLE [NAME] --profile PROFILE`: run one process of a group (supervisord calls this).

Roles: `sequencer`, `feed NAME`, `gateway VENUE`, `strategy NAME`. Each loads the same profile,
so every process agrees on endpoints, paths and the core's configuration. SIGTERM stops a
process cleanly (sockets closed, journal synced per policy); SIGKILL is what the fault tests use.

Exit codes: 0 stopped or finished; 1 the process failed (its error on stderr); 2 the profile or
the command line is wrong.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Final

__all__ = ["register", "run"]

ROLES: Final = ("sequencer", "feed", "gateway", "strategy")
DONE_MARKER: Final = "lockstep.done"


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `serve` subcommand to a `tradebus` argument parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run one process of a group (sequencer, feed, gateway, strategy)",
        description="Run one process of the group a profile describes. supervisord runs these; see `tradebus up`.",
    )
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("name", nargs="?", help="the feed, venue or strategy name (not for sequencer)")
    parser.add_argument("--profile", type=Path, required=True, metavar="PROFILE")
    parser.set_defaults(run=run)
    return parser


class _Stop:
    """Set by SIGTERM/SIGINT; polled by the serving loops."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, signum: int, frame: object) -> None:
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


def run(args: argparse.Namespace) -> int:
    from services.deploy.profile import ProfileError, load_profile

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.role} %(levelname)s %(message)s", stream=sys.stderr)
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"tradebus serve: {exc}", file=sys.stderr)
        return 2
    if args.role != "sequencer" and not args.name:
        print(f"tradebus serve {args.role}: give the {args.role}'s name", file=sys.stderr)
        return 2
    if args.role == "sequencer":
        return _serve_sequencer(profile, _Stop())  # the other roles install their own handlers
    if args.role == "feed":
        from services.feeds.main import run_feed

        return run_feed(profile, args.name)
    if args.role == "gateway":
        from services.gateway.main import run_gateway

        return run_gateway(profile, args.name)
    from services.strategy_host.main import run_strategy_host

    return run_strategy_host(profile, args.name)


def _serve_sequencer(profile: Any, stop: _Stop) -> int:
    from services.backtest.errors import BacktestError

    if profile.group.mode != "backtest":
        from services.sequencer.service import SequencerService

        SequencerService(profile).run(stop)
        return 0
    from services.sequencer.lockstep import LockstepSequencer

    sequencer = LockstepSequencer(profile)
    marker = profile.group.run_dir / DONE_MARKER
    for stale in (marker, profile.group.run_dir / "lockstep.failed", profile.group.run_dir / "summary.txt"):
        stale.unlink(missing_ok=True)
    try:
        try:
            result = sequencer.run()
        except BacktestError as exc:
            print(f"tradebus serve sequencer: {exc}", file=sys.stderr)
            (profile.group.run_dir / "lockstep.failed").write_text(f"{exc}\n")
            sequencer.serve_idle(stop)  # stay up (and visible) rather than be restarted into the same error
            return 1
        paths = result.write(profile.group.run_dir)
        summary = result.summary()
        print(summary, flush=True)
        (profile.group.run_dir / "summary.txt").write_text(f"{summary}\n")
        marker.write_text(f"{paths['summary']}\n")
        sequencer.serve_idle(stop)
        return 0
    finally:
        sequencer.close()
