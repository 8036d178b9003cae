"""RELIABILITY D2: the core imports no I/O, no clock, no randomness, reads no environment.

An allow-list, not a deny-list: a new import into the core has to be added here on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.purity import PurityRules, sources

CORE = Path(__file__).resolve().parents[2] / "services" / "sequencer" / "core"

# Pure standard-library modules the core may use; our own pure layers and the two libraries the
# contract is written in.
RULES = PurityRules(
    stdlib={
        "__future__", "bisect", "collections", "dataclasses", "decimal", "enum", "functools",
        "hashlib", "heapq", "itertools", "json", "math", "operator", "re", "typing",
    },
    prefixes=("schemas", "services.sequencer.core", "msgspec", "pydantic"),
)


@pytest.mark.parametrize("path", sources(CORE), ids=lambda p: p.name)
def test_core_module_imports_only_pure_modules(path: Path) -> None:
    bad = RULES.bad_imports(ast.parse(path.read_text(), filename=str(path)))
    assert not bad, f"{path.name} imports {bad}: the core must not do I/O, read clocks or randomness"


@pytest.mark.parametrize("path", sources(CORE), ids=lambda p: p.name)
def test_core_module_calls_no_io_builtins(path: Path) -> None:
    calls, attrs = RULES.bad_calls(ast.parse(path.read_text(), filename=str(path)))
    assert not calls, f"{path.name} calls {calls}"
    assert not attrs, f"{path.name} touches {attrs}"


def test_the_checker_catches_a_clock_read(tmp_path: Path) -> None:
    """The guard itself must be able to fail."""
    tree = ast.parse("import time\nimport os\nx = time.time_ns()\ny = os.environ\nz = report.time_ns\n")
    assert RULES.bad_imports(tree) == ["time", "os"]
    assert RULES.bad_calls(tree) == (set(), {"time_ns", "environ"})  # a field named time_ns is fine


def test_importing_the_core_pulls_in_no_socket_or_zmq() -> None:
    """Run in a fresh interpreter so other tests' imports cannot hide a transitive import.

    Only our transport stack is checked at run time: pydantic's own imports (importlib.metadata
    pulls in socket and threading) are library internals; the static allow-list above is what
    keeps the core's own code pure.
    """
    import subprocess
    import sys

    code = (
        "import sys; import services.sequencer.core, schemas; "
        "bad = sorted(m for m in ('zmq', 'asyncio', 'bus') "
        "if m in sys.modules); print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing the core loaded {out}"
