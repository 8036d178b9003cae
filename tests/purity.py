"""The import contract for pure packages (the core, the matching model): an allow-list of
imports and a deny-list of I/O builtins and clock/environment attributes, checked on the source.

An allow-list, not a deny-list, for imports: a new import into a pure package has to be added to
its test on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

__all__ = ["FORBIDDEN_ATTRS", "FORBIDDEN_NAMES", "PurityRules", "sources"]

FORBIDDEN_NAMES = frozenset({"open", "input", "print", "exec", "eval", "__import__", "breakpoint"})
FORBIDDEN_ATTRS = frozenset({"environ", "getenv", "time_ns", "perf_counter", "monotonic", "now", "utcnow", "urandom"})


_ENVIRONMENT = frozenset({"environ", "getenv"})


def sources(package: Path) -> list[Path]:
    files = sorted(package.rglob("*.py"))
    assert files, f"no sources found under {package}"
    return files


class PurityRules:
    """What one pure package may import and call.

    Args:
        stdlib: standard-library top-level modules allowed.
        prefixes: our modules and libraries allowed (a module or anything below it).
        forbidden_names / forbidden_attrs: builtins it may not call, attributes it may not touch.
    """

    def __init__(
        self,
        stdlib: Collection[str],
        prefixes: Collection[str],
        forbidden_names: Collection[str] = FORBIDDEN_NAMES,
        forbidden_attrs: Collection[str] = FORBIDDEN_ATTRS,
    ) -> None:
        self.stdlib = frozenset(stdlib)
        self.prefixes = tuple(prefixes)
        self.forbidden_names = frozenset(forbidden_names)
        self.forbidden_attrs = frozenset(forbidden_attrs)

    def allowed(self, module: str) -> bool:
        root = module.split(".")[0]
        return root in self.stdlib or any(module == p or module.startswith(p + ".") for p in self.prefixes)

    def bad_imports(self, tree: ast.AST) -> list[str]:
        """Imported modules outside the allow-list, in source order."""
        names: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, "use absolute imports in a pure package"
                names.append(node.module or "")
        return [m for m in names if not self.allowed(m)]

    def bad_calls(self, tree: ast.AST) -> tuple[set[str], set[str]]:
        """(forbidden builtins called, forbidden attributes called or read).

        Clocks and randomness are calls (`time.time_ns()`, `datetime.now()`), so those names are
        flagged when called, and a data field that shares one (`report.time_ns`) is not; the
        environment is flagged on any access (`os.environ[...]`).
        """
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
        read = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} & _ENVIRONMENT
        return self.forbidden_names & calls, self.forbidden_attrs & (called | read)
