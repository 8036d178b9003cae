"""Which column of a file holds which field: case-insensitive names with a few common aliases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from services.data.errors import DataError

__all__ = ["BAR_COLUMNS", "TIME_ALIASES", "TRADE_COLUMNS", "resolve_columns"]

# Exports stamp bars by their open time under many names; "close_time" is deliberately absent
# (it would need timestamp="close" and is easy to confuse with open_time in Binance klines).
TIME_ALIASES: Final = ("timestamp", "datetime", "time", "date", "open_time")

# role -> (aliases, required)
BAR_COLUMNS: Final[Mapping[str, tuple[tuple[str, ...], bool]]] = {
    "time": (TIME_ALIASES, True),
    "open": (("open",), True),
    "high": (("high",), True),
    "low": (("low",), True),
    "close": (("close",), True),
    "volume": (("volume",), True),
}
TRADE_COLUMNS: Final[Mapping[str, tuple[tuple[str, ...], bool]]] = {
    "time": (TIME_ALIASES, True),
    "price": (("price",), True),
    "quantity": (("size", "quantity", "amount", "qty"), True),
    "side": (("side", "aggressor", "taker_side"), False),
}


def _describe(aliases: tuple[str, ...]) -> str:
    return aliases[0] if len(aliases) == 1 else f"one of {', '.join(aliases)}"


def resolve_columns(
    path: str,
    names: Sequence[str],
    wanted: Mapping[str, tuple[tuple[str, ...], bool]],
    *,
    optional: frozenset[str] = frozenset(),
) -> dict[str, str | None]:
    """Map each role to the file's column name (None for an absent optional role).

    Args:
        path: the file, for messages.
        names: the file's column names, as written.
        wanted: role -> (aliases, required).
        optional: roles that are required in `wanted` but may be absent here (a repair fills them).

    Raises:
        DataError: a required column is missing (names what is expected and what was found), or
            two columns name the same field.
    """
    normal = [name.strip().lstrip("\ufeff").lower() for name in names]
    found: dict[str, str | None] = {}
    missing: list[str] = []
    for role, (aliases, required) in wanted.items():
        matches = [name for name, key in zip(names, normal, strict=True) if key in aliases]  # file order
        if len(matches) > 1:
            listed = ", ".join(repr(m) for m in matches)
            raise DataError(
                path,
                f"columns {listed} {'both' if len(matches) == 2 else 'all'} name the {role}; "
                "keep one of them (or rename the others)",
                field=matches[1],
            )
        if matches:
            found[role] = matches[0]
        elif required and role not in optional:
            missing.append(_describe(aliases) if role != "time" else f"a time column ({_describe(aliases)})")
        else:
            found[role] = None
    if missing:
        expected = ", ".join(
            _describe(aliases) if role != "time" else f"a time column ({_describe(aliases)})"
            for role, (aliases, required) in wanted.items()
            if required
        )
        raise DataError(
            path,
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(expected {expected}; names are case-insensitive; found: {', '.join(names) or 'no columns'})",
        )
    return found
