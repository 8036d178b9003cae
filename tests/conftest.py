"""Shared test setup: hypothesis profiles.

`make test` runs the bounded profile; `TRADEBUS_SOAK=1` selects the long one (RELIABILITY.md:
"each test has a bounded form for make test and a longer form for soak runs"). Hypothesis prints
the failing example and how to reproduce it; `print_blob` adds the `@reproduce_failure` line.
"""

from __future__ import annotations

import os

from hypothesis import settings

# Derandomized: `make test` (and CI) explores the same examples on every run, so a red run
# means a change broke something, not that the dice found an old bug. The soak profile stays
# random: that is where new cases are found (then pinned as example tests).
settings.register_profile(
    "bounded",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    print_blob=True,
    derandomize=True,
)
settings.register_profile(
    "soak",
    max_examples=2_000,
    stateful_step_count=150,
    deadline=None,
    print_blob=True,
)
settings.load_profile("soak" if os.environ.get("TRADEBUS_SOAK") == "1" else "bounded")
