"""Plain-text tables and unit formatting for terminal output."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

__all__ = ["format_table", "scaled"]


def scaled(value: int, decimals: int) -> str:
    """An integer count of 10**-decimals units, shown in display units: 4200000, 2 -> '42000.00'."""
    return f"{Decimal(value).scaleb(-decimals):,.{decimals}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    """Left-align text, right-align numbers; one header rule."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))

    def is_number(text: str) -> bool:
        return text.replace(",", "").replace(".", "").replace("-", "").replace("+", "").isdigit()

    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(c.rjust(w) if is_number(c) else c.ljust(w) for c, w in zip(row, widths)))
    return "\n".join(lines)
