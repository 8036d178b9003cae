"""`tradebus keys generate NAME [NAME ...] --dir DIR` and `tradebus keys show NAME --dir DIR`.

`generate` writes ``NAME.key`` (public, 0644) and ``NAME.key_secret`` (secret, 0600) for each
name; DIR is created 0700 if missing. It refuses to replace an existing key pair unless
``--force``, and checks every name before writing any file, so a refused run writes nothing.
`show` prints the Z85 public key of ``NAME.key`` (or of ``NAME.key_secret`` if only that exists):
the line to hand to whoever runs the servers this peer connects to.

Exit codes: 0 done; 1 refused (a key pair exists, a name is invalid, a key file is unsafe or
missing); 2 the files cannot be read or written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Final

from bus.security import (
    SecurityError,
    check_key_name,
    load_public_key,
    load_secret_key,
    public_key_path,
    secret_key_path,
    write_keypair,
)

__all__ = ["EXIT_IO", "EXIT_OK", "EXIT_REFUSED", "main", "register", "run"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_IO: Final = 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `keys` subcommand (with `generate` and `show`) to a `tradebus` argument parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "keys",
        help="generate and show CURVE key pairs for tcp:// endpoints",
        description=(
            "Manage CURVE key pairs. A key's NAME is the peer's identity: servers put NAME.key in "
            "their allow-list directory and authorize by that name."
        ),
    )
    actions = parser.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    generate = actions.add_parser(
        "generate",
        help="create NAME.key and NAME.key_secret (mode 0600) for each NAME",
        description="Create a key pair per NAME in DIR (created with mode 0700 if missing).",
    )
    generate.add_argument("names", nargs="+", metavar="NAME", help="peer identity, e.g. strategy-sma")
    generate.add_argument("--dir", type=Path, required=True, metavar="DIR", help="directory for the key files")
    generate.add_argument("--force", action="store_true", help="replace existing key pairs (old keys stop working)")
    generate.set_defaults(run=run)

    show = actions.add_parser("show", help="print the public key of NAME", description="Print NAME's Z85 public key.")
    show.add_argument("name", metavar="NAME", help="peer identity")
    show.add_argument("--dir", type=Path, required=True, metavar="DIR", help="directory holding the key files")
    show.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run `tradebus keys ...` with parsed arguments; returns the exit code."""
    try:
        if args.keys_action == "generate":
            return _generate(args.names, args.dir, force=args.force)
        return _show(args.name, args.dir)
    except SecurityError as exc:
        print(f"tradebus keys: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        print(f"tradebus keys: {exc}", file=sys.stderr)
        return EXIT_IO


def _generate(names: list[str], directory: Path, *, force: bool) -> int:
    # Check everything first: a run that refuses one name writes none.
    for name in names:
        check_key_name(name)
    if len(set(names)) != len(names):
        raise SecurityError(f"names repeat: {' '.join(names)}")
    if not force:
        existing = [
            str(path)
            for name in names
            for path in (secret_key_path(directory, name), public_key_path(directory, name))
            if path.exists()
        ]
        if existing:
            raise SecurityError(f"refusing to overwrite {', '.join(existing)} (use --force to replace them)")
    for name in names:
        public, secret = write_keypair(directory, name, overwrite=force)
        print(f"{name}: public {public}  secret {secret} (0600)  key {load_public_key(public).decode('ascii')}")
    return EXIT_OK


def _show(name: str, directory: Path) -> int:
    public = public_key_path(directory, name)
    secret = secret_key_path(directory, name)
    if public.exists():
        key = load_public_key(public)
    elif secret.exists():
        key = load_secret_key(secret).public  # F5 check applies: an unsafe secret file is refused
    else:
        raise SecurityError(f"no key files for {name!r} in {directory} (looked for {public.name} and {secret.name})")
    print(key.decode("ascii"))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m services.cli.keys_cmd`), same as `tradebus keys`."""
    parser = argparse.ArgumentParser(prog="tradebus")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register(sub)
    args = parser.parse_args(["keys", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
