"""Finding a strategy: by file path or module, native or Backtrader-style, as a native instance."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from services.strategy.api import Strategy

__all__ = ["StrategyLoadError", "as_native_strategy", "load_strategy_class"]


class StrategyLoadError(ValueError):
    """The strategy named cannot be found or is not a strategy."""


def load_strategy_class(spec: str) -> type[Any]:
    """Load `path/to/file.py[:ClassName]` or `package.module[:ClassName]`.

    Without a class name, the module must define exactly one strategy class (native or
    Backtrader-style) of its own.

    Raises:
        StrategyLoadError: the file or module does not exist, does not import, or names no single strategy.
    """
    target, _, class_name = spec.partition(":")
    if target.endswith(".py") or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise StrategyLoadError(f"strategy: file {target!r} does not exist")
        module_name = f"tradebus_strategy_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise StrategyLoadError(f"strategy: {target!r} is not a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise StrategyLoadError(f"strategy: importing {target!r} raised {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise StrategyLoadError(f"strategy: module {target!r} does not import: {exc}") from exc
    if class_name:
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls) or not _is_strategy_class(cls):
            raise StrategyLoadError(f"strategy: {target!r} has no strategy class {class_name!r}")
        return cls
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and _is_strategy_class(obj)
    ]
    if len(found) != 1:
        names = sorted(c.__name__ for c in found)
        raise StrategyLoadError(
            f"strategy: {target!r} defines {len(found)} strategy classes {names}; name one as {target}:ClassName"
        )
    return found[0]


def _is_strategy_class(cls: type[Any]) -> bool:
    if issubclass(cls, Strategy) and cls is not Strategy:
        return True
    bt_base = _btcompat_base()
    return bt_base is not None and issubclass(cls, bt_base) and cls is not bt_base


def _btcompat_base() -> type[Any] | None:
    try:
        from services.strategy.btcompat import Strategy as BtStrategy
    except ImportError:
        return None
    return BtStrategy


def as_native_strategy(strategy: Any, params: dict[str, Any]) -> Strategy:
    """A native strategy instance from a native instance or class, or a Backtrader-style class.

    Raises:
        StrategyLoadError: `strategy` is none of those, or `params` names unknown parameters.
    """
    if isinstance(strategy, Strategy):
        if params:
            raise StrategyLoadError("params: pass parameters to the strategy's constructor, not with an instance")
        return strategy
    if inspect.isclass(strategy) and issubclass(strategy, Strategy):
        try:
            return strategy(**params)
        except TypeError as exc:
            raise StrategyLoadError(f"params: {exc}") from exc
    bt_base = _btcompat_base()
    if inspect.isclass(strategy) and bt_base is not None and issubclass(strategy, bt_base):
        from services.strategy.btcompat import BacktraderAdapter

        try:
            adapter: Strategy = BacktraderAdapter(strategy, params)  # type: ignore[arg-type]
            return adapter
        except TypeError as exc:
            raise StrategyLoadError(f"params: {exc}") from exc
    raise StrategyLoadError(
        f"strategy: {strategy!r} is neither a tradebus Strategy (instance or class) nor a Backtrader-style "
        "strategy class (services.strategy.btcompat.Strategy)"
    )
