"""The one error of the data loaders: bad input, located by file, row and field.

A market data file is a peer's input in STYLE 5's sense: we refuse it with a message a person can
act on (which file, which row, which field, what value, what rule) and never guess. Rows count data
rows from 1, the header not counted; for CSV files the physical line is given too, because that is
what an editor shows.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad market data: a file, a row, a field and a value that break a named rule.

    Attributes:
        path: the file, as given (for messages).
        row: 1-based data row (header not counted), or None for file-level errors.
        field: the column (as named in the file when known), or None.
        value: the offending value as text, or None.
        reason: what is wrong, without the location.
        line: the physical line in a CSV file (header included, 1-based), or None.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        row: int | None = None,
        field: str | None = None,
        value: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.field = field
        self.value = value
        self.reason = reason
        self.line = line
        where = path
        if row is not None:
            where += f" row {row}"
            if line is not None:
                where += f" (line {line})"
        if field is not None:
            where += f"{',' if row is not None else ''} field {field!r}"
        super().__init__(f"{where}: {reason}")
