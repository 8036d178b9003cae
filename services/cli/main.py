"""`tradebus` command line. Each subcommand lives in its own module with a `register` function."""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main"]

# Subcommand modules, in the order `tradebus --help` lists them.
_COMMAND_MODULES = (
    "services.cli.backtest_cmd",
    "services.cli.scenario_cmd",
    "services.cli.replay_cmd",
    "services.cli.schema_cmd",
    "services.cli.up_cmd",
    "services.cli.serve_cmd",
    "services.cli.status_cmd",
    "services.cli.keys_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradebus", description="Deterministic trading engine.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
