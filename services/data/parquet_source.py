"""Parquet files as pyarrow columns, typed as written (convert.py handles each type exactly)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.data.errors import DataError

__all__ = ["read_parquet_columns", "read_parquet_header"]


def _refuse(path: str, exc: Exception) -> DataError:
    if os.path.exists(path) and os.path.getsize(path) == 0:
        return DataError(path, "empty file (0 bytes)")
    return DataError(path, f"cannot be read as Parquet: {exc}")


def read_parquet_header(path: str) -> list[str]:
    """The column names from the file's schema.

    Raises:
        DataError: missing, empty or not a Parquet file.
    """
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise _refuse(path, exc) from None


def read_parquet_columns(path: str, columns: Sequence[str]) -> Any:
    """The named columns as a pyarrow table.

    Raises:
        DataError: the file cannot be read.
    """
    try:
        return pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise _refuse(path, exc) from None
