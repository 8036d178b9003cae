"""CSV and CSV.gz files as columns of text, fast with pyarrow and precise with the csv module.

Every column is read as text so that numbers stay exact (convert.py parses them as decimals).
pyarrow reads a million rows in well under a second; when it refuses a file (a row with the
wrong number of fields, bad UTF-8, a broken quote) we read it again with the csv module, which
knows the row, keep the rows before the bad one, and hand back a `Failure` for it: the loader
still reports an earlier error of another kind first.

Rows count data rows from 1 as pyarrow does: the header is not a row and empty lines are skipped.
`line_of_row` maps a row back to its physical line for messages.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator, Sequence
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.csv as pacsv

from services.data.convert import Failure
from services.data.errors import DataError

__all__ = ["line_of_row", "read_csv_columns", "read_csv_header"]

# A bad row is shown in the message up to this many characters.
_MAX_SHOWN_CHARS: Final = 80
# pyarrow parses blocks in parallel and hands back one chunk per block; its 1 MiB default makes
# ~60 chunks for a million bars, and joining many small string chunks costs more than reading.
# 8 MiB blocks keep both cheap (measured on a 64 MB, 1M-row file: ~0.15 s read + 0.01 s join).
_BLOCK_BYTES: Final = 8 << 20


def _open_binary(path: str) -> IO[bytes]:
    if path.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    return open(path, "rb")


def _lines(raw: IO[bytes], counter: list[int]) -> Iterator[str]:
    """Decoded lines; counter[0] holds the physical line number of the last one yielded."""
    for number, line in enumerate(raw, 1):
        counter[0] = number
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _NotUtf8(number, str(exc)) from None


class _NotUtf8(Exception):
    def __init__(self, line: int, detail: str) -> None:
        super().__init__(detail)
        self.line = line


def read_csv_header(path: str) -> list[str]:
    """The column names of the header line.

    Raises:
        DataError: the file is empty or its header is not readable.
    """
    counter = [0]
    try:
        with _open_binary(path) as raw:
            header = next(csv.reader(_lines(raw, counter)), None)
    except _NotUtf8 as exc:
        raise DataError(path, f"header is not UTF-8 text ({exc})", line=exc.line) from None
    except (OSError, EOFError, csv.Error) as exc:
        raise DataError(path, f"cannot be read as CSV: {exc}") from None
    if not header or all(not name.strip() for name in header):
        raise DataError(path, "empty file (no header and no data rows)")
    return header


def read_csv_columns(path: str, columns: Sequence[str]) -> tuple[Any, Failure | None]:
    """The named columns as a pyarrow table of strings, and the first unreadable row if any.

    Raises:
        DataError: the file cannot be read at all.
    """
    try:
        # Compression is chosen here, not by pyarrow from the suffix: it would miss ".CSV.GZ".
        source = pa.input_stream(path, compression="gzip" if path.lower().endswith(".gz") else None)
        table = pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK_BYTES),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                include_columns=list(columns),
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, EOFError) as exc:
        return _read_slowly(path, columns, exc)
    return table, None


def _read_slowly(path: str, columns: Sequence[str], arrow_error: Exception) -> tuple[Any, Failure | None]:
    """Read row by row up to the first bad row (pyarrow refused the file and cannot say where)."""
    counter = [0]
    values: list[list[str]] = [[] for _ in columns]
    failure: Failure | None = None
    row = 0
    try:
        with _open_binary(path) as raw:
            reader = csv.reader(_lines(raw, counter))
            header = next(reader, None)
            if header is None:
                raise DataError(path, "empty file (no header and no data rows)")
            positions = [header.index(name) for name in columns]
            for fields in reader:
                if not fields:
                    continue  # an empty line: pyarrow skips it too, so row numbers agree
                if len(fields) != len(header):
                    shown = ",".join(fields)[:_MAX_SHOWN_CHARS]
                    failure = Failure(row, None, shown, f"has {len(fields)} fields but the header has {len(header)}")
                    break
                for column, position in zip(values, positions, strict=True):
                    column.append(fields[position])
                row += 1
    except _NotUtf8 as exc:
        failure = Failure(row, None, None, f"is not UTF-8 text ({exc})")
    except csv.Error as exc:
        failure = Failure(row, None, None, f"is not valid CSV ({exc})")
    except (OSError, EOFError) as exc:
        raise DataError(path, f"cannot be read: {exc}") from None
    if failure is None:
        # pyarrow refused what the csv module accepts: say what pyarrow said rather than guess.
        raise DataError(path, f"cannot be read as CSV: {arrow_error}")
    table = pa.table({name: pa.array(column, pa.string()) for name, column in zip(columns, values, strict=True)})
    return table, failure


def line_of_row(path: str, index: int) -> int | None:
    """Physical line (1-based, header included) where 0-based data row `index` ends, if readable."""
    counter = [0]
    try:
        with _open_binary(path) as raw:
            reader = csv.reader(_lines(raw, counter))
            if next(reader, None) is None:
                return None
            row = 0
            for fields in reader:
                if not fields:
                    continue
                if row == index:
                    return counter[0]
                row += 1
    except _NotUtf8 as exc:
        return exc.line
    except (OSError, EOFError, csv.Error):
        return None
    return None
