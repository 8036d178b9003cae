"""Checks and opt-in repairs of converted columns: each returns the first failing row, never raises.

Theory of operation. The loader converts every column (convert.py), cuts all columns at the
first conversion failure, and then runs these checks on what is left, in file order. Each check
finds its first failing row with one vectorised pass; the loader reports the earliest of all the
failures (ties: the order the checks ran), so the error a file gets does not depend on which
check happens to run first. A repair replaces its check: "clip" instead of the range checks,
"sort" instead of the order check, "drop_duplicates" instead of the duplicate check; each
counts the rows it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from services.data.convert import Failure, first_true
from services.data.errors import DataError

__all__ = [
    "BAR_REPAIRS",
    "REPAIRS",
    "TRADE_REPAIRS",
    "bar_range_failures",
    "check_repairs",
    "duplicates",
    "first_failure",
    "negative_failure",
    "nonpositive_failures",
    "order_failure",
    "stable_sort",
]

# Every repair, in the order the loader applies them, and what it does (docs/data.md says more).
REPAIRS: Final[dict[str, str]] = {
    "round": "round prices and sizes to the nearest tick, half to even",
    "fill_volume": "a missing volume column or empty volume cell becomes 0",
    "clip": "swap high and low when inverted, then clip open and close into [low, high]",
    "sort": "stable sort of the rows by time",
    "drop_duplicates": "of rows with equal times keep the last (in file order)",
}
BAR_REPAIRS: Final = frozenset(REPAIRS)
TRADE_REPAIRS: Final = frozenset({"round", "sort"})

CellText = Callable[[str, int], str]  # (role, 0-based file row) -> the cell as the file wrote it


def check_repairs(path: str, repair: Collection[str], allowed: frozenset[str], kind: str) -> frozenset[str]:
    """The requested repairs as a set, after checking each name.

    Raises:
        DataError: an unknown repair, or one that does not apply to `kind` ("bars", "trades").
    """
    if isinstance(repair, str):  # repair="sort" would otherwise be read as {'s', 'o', 'r', 't'}
        repair = (repair,)
    for name in repair:
        if name not in REPAIRS:
            raise DataError(path, f"unknown repair {name!r} (known: {', '.join(sorted(REPAIRS))})", field="repair")
        if name not in allowed:
            raise DataError(
                path,
                f"repair {name!r} does not apply to {kind} (for {kind}: {', '.join(sorted(allowed))})",
                field="repair",
            )
    return frozenset(repair)


def first_failure(failures: list[Failure]) -> Failure | None:
    """The failure at the earliest row; on a tie the one found first (checks run in a fixed order)."""
    best: Failure | None = None
    for failure in failures:
        if best is None or failure.index < best.index:
            best = failure
    return best


def nonpositive_failures(columns: dict[str, Any], names: dict[str, str], text: CellText) -> list[Failure]:
    """Prices must be positive: the first row <= 0 of each price column."""
    failures = []
    for role, values in columns.items():
        bad = first_true(pc.less_equal(values, 0))
        if bad >= 0:
            failures.append(Failure(bad, names[role], text(role, bad), "is not a positive price"))
    return failures


def negative_failure(values: Any, role: str, name: str, text: CellText, what: str) -> Failure | None:
    """Sizes must not be negative (`what`: 'volume must be >= 0')."""
    bad = first_true(pc.less(values, 0))
    return Failure(bad, name, text(role, bad), f"is negative ({what})") if bad >= 0 else None


def bar_range_failures(
    ohlc: dict[str, Any], names: dict[str, str], text: CellText, *, clip: bool
) -> tuple[list[Failure], dict[str, Any], int]:
    """high >= low and open, close within [low, high]; with `clip`, repair instead of failing.

    Returns:
        (failures, the columns after any clipping, rows clipped).
    """
    high, low = ohlc["high"], ohlc["low"]
    if clip:
        new_high, new_low = pc.max_element_wise(high, low), pc.min_element_wise(high, low)
        new_open = pc.min_element_wise(pc.max_element_wise(ohlc["open"], new_low), new_high)
        new_close = pc.min_element_wise(pc.max_element_wise(ohlc["close"], new_low), new_high)
        changed = pc.or_(
            pc.or_(pc.not_equal(new_high, high), pc.not_equal(new_open, ohlc["open"])),
            pc.not_equal(new_close, ohlc["close"]),
        )
        clipped = int(pc.sum(changed).as_py() or 0)
        return [], {"open": new_open, "high": new_high, "low": new_low, "close": new_close}, clipped
    failures = []
    bad = first_true(pc.less(high, low))
    if bad >= 0:
        failures.append(
            Failure(
                bad,
                names["high"],
                text("high", bad),
                f"< low {text('low', bad)} (high must be >= low; repair 'clip' swaps them)",
            )
        )
    for role in ("open", "close"):
        outside = pc.or_(pc.less(ohlc[role], low), pc.greater(ohlc[role], high))
        bad = first_true(outside)
        if bad >= 0:
            failures.append(
                Failure(
                    bad,
                    names[role],
                    text(role, bad),
                    f"is outside [low {text('low', bad)}, high {text('high', bad)}] "
                    f"({role} must lie within the bar's range; repair 'clip' moves it to the nearest bound)",
                )
            )
    return failures, ohlc, 0


def stable_sort(time: Any) -> tuple[Any, int]:
    """Indices that sort rows by time, keeping file order among equal times; and rows moved."""
    indices = pc.sort_indices(time)  # pyarrow's sort_indices is stable
    identity = pa.array(range(len(time)), pa.uint64())
    moved = int(pc.sum(pc.not_equal(indices, identity)).as_py() or 0) if len(time) else 0
    return indices, moved


def order_failure(time: Any, name: str, text: CellText) -> Failure | None:
    """Times (in file order) must not decrease: the first row earlier than the row before it."""
    if len(time) < 2:
        return None
    bad = first_true(pc.less(time[1:], time[:-1]))
    if bad < 0:
        return None
    row = bad + 1
    return Failure(
        row,
        name,
        text("time", row),
        f"is earlier than row {row}'s {text('time', row - 1)} (times must increase; repair 'sort' sorts the rows)",
    )


def duplicates(
    time: Any, rows: Any, name: str, text: CellText, *, drop: bool
) -> tuple[Any | None, int, Failure | None]:
    """Equal times of sorted rows: with `drop` a keep-mask (last of each run), else a failure.

    `rows` are the file rows of the (possibly sorted) rows: the failure is the pair whose later
    row comes first in the file.

    Returns:
        (keep mask or None, rows dropped, failure or None).
    """
    if len(time) < 2:
        return None, 0, None
    repeats = pc.equal(time[1:], time[:-1])  # repeats[k]: row k+1 repeats row k
    count = int(pc.sum(repeats).as_py() or 0)
    if count == 0:
        return None, 0, None
    if drop:
        # Keep row k unless the next row has the same time: the last of every run survives.
        keep = pa.concat_arrays([pc.invert(repeats), pa.array([True])])
        return keep, count, None
    later = pc.max_element_wise(rows[1:], rows[:-1])
    earliest = pc.min(pc.if_else(repeats, later, None)).as_py()
    pair = first_true(pc.and_(repeats, pc.equal(later, earliest)))
    first_row, second_row = sorted((rows[pair].as_py(), rows[pair + 1].as_py()))
    return None, 0, Failure(
        second_row,
        name,
        text("time", second_row),
        f"repeats the time of row {first_row + 1} (duplicate; repair 'drop_duplicates' keeps the last)",
    )
