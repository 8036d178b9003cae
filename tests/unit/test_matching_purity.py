"""The matching model is pure like the core: no I/O, no clock, no randomness, no environment.

An allow-list, not a deny-list (the same shape as test_core_purity.py): a new import into
services/matching has to be added here on purpose.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.purity import FORBIDDEN_ATTRS, FORBIDDEN_NAMES, PurityRules, sources

ROOT = Path(__file__).resolve().parents[2]
MATCHING = ROOT / "services" / "matching"

# Our pure layers: the wire schemas, the core's config and rules, and this package. `hash` and
# `id` are out too: their values differ between runs.
RULES = PurityRules(
    stdlib={
        "__future__", "bisect", "collections", "dataclasses", "decimal", "enum", "functools",
        "heapq", "itertools", "math", "operator", "typing",
    },
    prefixes=(
        "schemas", "services.sequencer.core.config", "services.sequencer.core.rules", "services.matching",
        "msgspec", "pydantic",
    ),
    forbidden_names=FORBIDDEN_NAMES | {"hash", "id"},
    forbidden_attrs=FORBIDDEN_ATTRS | {"random"},
)


@pytest.mark.parametrize("path", sources(MATCHING), ids=lambda p: p.name)
def test_matching_module_imports_only_pure_modules(path: Path) -> None:
    bad = RULES.bad_imports(ast.parse(path.read_text(), filename=str(path)))
    assert not bad, f"{path.name} imports {bad}: the matching model must not do I/O, read clocks or randomness"


@pytest.mark.parametrize("path", sources(MATCHING), ids=lambda p: p.name)
def test_matching_module_calls_no_io_builtins(path: Path) -> None:
    calls, attrs = RULES.bad_calls(ast.parse(path.read_text(), filename=str(path)))
    assert not calls, f"{path.name} calls {calls}"
    assert not attrs, f"{path.name} touches {attrs}"


def test_the_checker_catches_a_clock_a_logger_and_the_core_engine() -> None:
    """The guard itself must be able to fail."""
    tree = ast.parse("import time\nimport logging\nfrom services.sequencer.core.engine import SequencerCore\n")
    assert RULES.bad_imports(tree) == ["time", "logging", "services.sequencer.core.engine"]


_RUN = """
import hashlib
from tests.unit.test_matching_core import _play
from tests.unit.test_matching_core import MatchingConfig
steps = [
    ("place", dict(cid="o1", otype="limit", side="buy", price=99, stop=None, tif="gtc", qty=250,
                   post_only=False, link="none", expire=1)),
    ("place", dict(cid="o2", otype="stop", side="sell", price=None, stop=97, tif="day", qty=120,
                   post_only=False, link="oco", expire=1)),
    ("place", dict(cid="o3", otype="market", side="buy", price=None, stop=None, tif="gtc", qty=90,
                   post_only=False, link="none", expire=1)),
    ("place", dict(cid="o4", otype="limit", side="sell", price=104, stop=None, tif="gtc", qty=90,
                   post_only=False, link="child", expire=1)),
    ("market", ("bar", 98, 100, 3)),
    ("market", ("trade", 96, 50, 0)),
    ("market", ("quote", 99, 500, 2)),
    ("market", ("bar", 104, 400, 5)),
]
loop = _play(MatchingConfig(latency_ns=5, taker_fee="0.001"), True, steps)
print(hashlib.sha256(repr(loop.outputs).encode()).hexdigest())
"""


def test_reports_do_not_depend_on_the_hash_seed() -> None:
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        digests.add(
            subprocess.run(
                [sys.executable, "-c", _RUN], env=env, cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        )
    assert len(digests) == 1, digests
    assert len(digests.pop().strip()) == 64
