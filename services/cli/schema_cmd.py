"""`tradebus schema export|check`: keep the committed JSON Schema in step with the structs.

`export` regenerates the files from the structs; `check` exits 1 and names the files that drift,
for CI and for the contract test's twin on the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from schemas import jsonschema

__all__ = ["register", "run_check", "run_export"]

EXIT_OK = 0
EXIT_DRIFT = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `schema` command (with `export` and `check`) to the tradebus parser.

    Args:
        subparsers: the object returned by the top-level parser's ``add_subparsers()``.
    """
    parser = subparsers.add_parser(
        "schema",
        help="export or check the JSON Schema generated from the wire structs",
        description="JSON Schema (draft 2020-12) generated from the msgspec structs in schemas/.",
    )
    actions = parser.add_subparsers(dest="schema_action", required=True, metavar="ACTION")
    dir_help = f"directory of the schema files (default: {jsonschema.DEFAULT_DIR})"

    export = actions.add_parser("export", help="regenerate the schema files from the structs")
    export.add_argument("--dir", type=Path, default=None, help=dir_help)
    export.set_defaults(run=run_export)

    check = actions.add_parser("check", help="exit 1 if the committed schema files drift")
    check.add_argument("--dir", type=Path, default=None, help=dir_help)
    check.set_defaults(run=run_check)


def run_export(args: argparse.Namespace) -> int:
    """Write every schema file and list the paths on stdout.

    Returns:
        0 (the files are always written).
    """
    for path in jsonschema.export(args.dir):
        print(path)
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    """Compare the schema files with the structs.

    Returns:
        0 when every file matches, 1 when any is missing or differs (named on stderr).
    """
    directory = jsonschema.DEFAULT_DIR if args.dir is None else args.dir
    drifted = jsonschema.check(directory)
    if not drifted:
        print(f"schema files in {directory} match the structs")
        return EXIT_OK
    for name in drifted:
        print(f"drift: {directory / name}", file=sys.stderr)
    hint = "tradebus schema export" + ("" if args.dir is None else f" --dir {directory}")
    print(f"{len(drifted)} schema file(s) out of date; run `{hint}`", file=sys.stderr)
    return EXIT_DRIFT
