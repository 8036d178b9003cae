"""RELIABILITY D2: the core imports no I/O, no clock, no randomness, reads no environment.

An allow-list, not a deny-list: a new import into the core has to be added here on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "services" / "sequencer" / "core"

# Pure standard-library modules the core may use.
ALLOWED_STDLIB = {
    "__future__", "bisect", "collections", "dataclasses", "decimal", "enum", "functools",
    "hashlib", "heapq", "itertools", "json", "math", "operator", "re", "typing",
}
# Our own pure layers and the two libraries the contract is written in.
ALLOWED_PREFIXES = ("schemas", "services.sequencer.core", "msgspec", "pydantic")
FORBIDDEN_NAMES = {"open", "input", "print", "exec", "eval", "__import__", "breakpoint"}
FORBIDDEN_ATTRS = {"environ", "getenv", "time_ns", "perf_counter", "monotonic", "now", "utcnow", "urandom"}


def _core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no core sources found under {CORE}"
    return files


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "use absolute imports in the core"
            names.append(node.module or "")
    return names


def _allowed(module: str) -> bool:
    root = module.split(".")[0]
    return root in ALLOWED_STDLIB or any(module == p or module.startswith(p + ".") for p in ALLOWED_PREFIXES)


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_module_imports_only_pure_modules(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [m for m in _imported_modules(tree) if not _allowed(m)]
    assert not bad, f"{path.name} imports {bad}: the core must not do I/O, read clocks or randomness"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: p.name)
def test_core_module_calls_no_io_builtins(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    attrs = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    assert not FORBIDDEN_NAMES & set(calls), f"{path.name} calls {FORBIDDEN_NAMES & set(calls)}"
    assert not FORBIDDEN_ATTRS & set(attrs), f"{path.name} touches {FORBIDDEN_ATTRS & set(attrs)}"


def test_the_checker_catches_a_clock_read(tmp_path: Path) -> None:
    """The guard itself must be able to fail."""
    tree = ast.parse("import time\nfrom os import environ\nx = time.time_ns()\n")
    assert [m for m in _imported_modules(tree) if not _allowed(m)] == ["time", "os"]


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
