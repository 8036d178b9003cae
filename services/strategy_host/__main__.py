"""`python -m services.strategy_host PROFILE NAME`: run one strategy host (tests, debugging).

The supported entry point is ``tradebus serve strategy NAME --profile PROFILE``.
"""

from __future__ import annotations

import sys

from services.deploy.profile import ProfileError, load_profile
from services.strategy_host.main import EXIT_CONFIG, run_strategy_host


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m services.strategy_host PROFILE NAME", file=sys.stderr)
        return EXIT_CONFIG
    try:
        profile = load_profile(argv[0])
    except ProfileError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    return run_strategy_host(profile, argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
