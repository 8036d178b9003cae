"""Bad data is refused with the file, row, field and value named, and always the first error by row."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.data import DataError, load_bars, load_trades, resample, synthetic_bars
from tests.unit.data_samples import GOOD_ROWS, HEADER, SPEC, T0, bars_csv, write

R1, R2, R3 = GOOD_ROWS


def _error(path: Path, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as info:
        load_bars(path, "X", SPEC, **kwargs)  # type: ignore[arg-type]
    return info.value


# (rows, row, line, field, value, message fragment): one case per rule.
CASES = [
    ([R1, "2024-01-01T00:01:00Z,abc,101,99,100,2"], 2, 3, "open", "abc", "abc is not a number"),
    ([R1, "2024-01-01T00:01:00Z,100,,99,100,2"], 2, 3, "high", "", "empty value"),
    ([R1, "2024-13-01T00:01:00Z,100,101,99,100,2"], 2, 3, "timestamp", "2024-13-01T00:01:00Z",
     "2024-13-01T00:01:00Z is not a valid date (month must be in 1..12)"),
    ([R1, "2024-01-01T25:00:00Z,100,101,99,100,2"], 2, 3, "timestamp", "2024-01-01T25:00:00Z",
     "is not a valid time of day (25:00:00)"),
    ([R1, "yesterday,100,101,99,100,2"], 2, 3, "timestamp", "yesterday",
     "yesterday is not a time (expected ISO-8601 like 2024-01-31T12:00:00Z, a date, or an epoch number)"),
    ([R2, R1], 2, 3, "timestamp", "2024-01-01T00:00:00Z",
     "2024-01-01T00:00:00Z is earlier than row 1's 2024-01-01T00:01:00Z (times must increase; repair 'sort'"),
    ([R1, R2, R2], 3, 4, "timestamp", "2024-01-01T00:01:00Z",
     "repeats the time of row 2 (duplicate; repair 'drop_duplicates' keeps the last)"),
    ([R1, "2024-01-01T00:01:00Z,101.75,101.5,102.0,102,2"], 2, 3, "high", "101.5",
     "101.5 < low 102.0 (high must be >= low; repair 'clip' swaps them)"),
    (["2024-01-01T00:00:00Z,102,101,99,100.5,1"], 1, 2, "open", "102",
     "102 is outside [low 99, high 101] (open must lie within the bar's range; repair 'clip'"),
    (["2024-01-01T00:00:00Z,100,101,99,98.99,1"], 1, 2, "close", "98.99", "98.99 is outside [low 99, high 101]"),
    (["2024-01-01T00:00:00Z,100,101,99,100,-0.5"], 1, 2, "volume", "-0.5", "-0.5 is negative (volume must be >= 0)"),
    (["2024-01-01T00:00:00Z,100,101,0,100,1"], 1, 2, "low", "0", "0 is not a positive price"),
    (["2024-01-01T00:00:00Z,100.001,101,99,100,1"], 1, 2, "open", "100.001",
     "100.001 is not a multiple of the tick 0.01 (price_decimals 2; repair 'round' rounds to the nearest tick)"),
    (["2024-01-01T00:00:00Z,100,101,99,100,0.00001"], 1, 2, "volume", "0.00001",
     "is not a multiple of the tick 0.0001 (size_decimals 4"),
    (["2024-01-01T00:00:00Z,1e30,101,99,100,1"], 1, 2, "open", "1e30", "1e30 is too large"),
    (["1704067200,100,101,99,100,1", "1704067260000,100,101,99,100,1"], 2, 3, "timestamp", "1704067260000",
     "1704067260000 looks like epoch ms but the first row looks like epoch s"),
    (["1704067200,100,101,99,100,1", "2024-01-01,100,101,99,100,1"], 2, 3, "timestamp", "2024-01-01",
     "is not an epoch number like the first row"),
    (["1969-12-31T23:59:59Z,100,101,99,100,1"], 1, 2, "timestamp", "1969-12-31T23:59:59Z", "is before 1970-01-01"),
]


@pytest.mark.parametrize(("rows", "row", "line", "field", "value", "fragment"), CASES)
def test_each_rule_names_file_row_field_and_value(
    tmp_path: Path, rows: list[str], row: int, line: int, field: str, value: str, fragment: str
) -> None:
    path = bars_csv(tmp_path, rows)
    error = _error(path, interval="1m")
    assert (error.path, error.row, error.line, error.field, error.value) == (str(path), row, line, field, value)
    assert str(error).startswith(f"{path} row {row} (line {line}), field {field!r}: ")
    assert fragment in str(error)
    assert isinstance(error, ValueError)


def test_the_spec_example_message(tmp_path: Path) -> None:
    rows = [f"2024-01-01T00:{k:02d}:00Z,101.75,102,101,101.5,1" for k in range(5)]
    rows.append("2024-01-01T00:05:00Z,101.75,101.5,102.0,102,1")
    path = bars_csv(tmp_path, rows)
    assert str(_error(path)) == (
        f"{path} row 6 (line 7), field 'high': 101.5 < low 102.0 (high must be >= low; repair 'clip' swaps them)"
    )


def test_the_first_error_by_row_wins_whatever_its_kind(tmp_path: Path) -> None:
    bad_range = "2024-01-01T00:01:00Z,100,99,101,100,1"  # high < low, row 2
    bad_number = "2024-01-01T00:02:00Z,abc,101,99,100,1"  # unparseable, row 3
    early = "2024-01-01T00:00:30Z,100,101,99,100,1"  # out of order
    assert _error(bars_csv(tmp_path, [R1, bad_range, bad_number])).row == 2
    assert _error(bars_csv(tmp_path, [R1, bad_number, bad_range])).row == 2
    assert _error(bars_csv(tmp_path, [R1, R2, early, bad_number])).field == "timestamp"
    # A malformed row ends what can be read: an error before it still comes first.
    assert _error(bars_csv(tmp_path, [R1, bad_range, "2024-01-01T00:02:00Z,1"])).row == 2
    # Within one row: parsing before ranges, then the columns in file order.
    same_row = "2024-01-01T00:01:00Z,100,99,101,abc,1"
    assert _error(bars_csv(tmp_path, [R1, same_row])).field == "close"


def test_duplicate_reported_at_the_first_repeat_in_file_order_even_when_sorting(tmp_path: Path) -> None:
    rows = [R3, R1, R2, R1]  # after sorting, R1 (rows 2 and 4) repeats
    error = _error(bars_csv(tmp_path, rows), repair=["sort"])
    assert (error.row, error.field) == (4, "timestamp")
    assert "repeats the time of row 2" in str(error)


def test_a_row_with_the_wrong_number_of_fields(tmp_path: Path) -> None:
    path = bars_csv(tmp_path, [R1, "2024-01-01T00:01:00Z,100,101"])
    error = _error(path)
    assert (error.row, error.line, error.field) == (2, 3, None)
    assert str(error) == f"{path} row 2 (line 3): '2024-01-01T00:01:00Z,100,101' has 3 fields but the header has 6"


def test_row_and_line_differ_after_empty_lines_and_quoted_newlines(tmp_path: Path) -> None:
    text = f'{HEADER},note\n{R1},"two\nlines"\n\n{R2},x\n2024-01-01T00:02:00Z,bad,101,99,100,1,y\n'
    error = _error(write(tmp_path, "b.csv", text))
    assert (error.row, error.line) == (3, 6)


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{R1}\n".encode() + b"2024-01-01T00:01:00Z,100,101,99,100,\xff\n")
    error = _error(path)
    assert (error.row, error.line, error.field) == (2, 3, None)
    assert "the row is not UTF-8 text" in str(error)


def test_missing_columns_name_expected_and_found(tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "Date,Open,High,Low,Close\n2024-01-01,1,2,0.5,1\n")
    assert str(_error(path)) == (
        f"{path}: missing column volume (expected a time column (one of timestamp, datetime, time, date, "
        "open_time), open, high, low, close, volume; names are case-insensitive; found: Date, Open, High, Low, Close)"
    )
    path = write(tmp_path, "n.csv", "when,price\n1,2\n")
    message = str(_error(path))
    assert "missing columns a time column (one of timestamp, datetime, time, date, open_time), open, high" in message
    assert "found: when, price" in message


def test_two_columns_for_one_field(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "date,time,open,high,low,close,volume\n")
    error = _error(path)
    assert error.field == "time"
    assert "columns 'date', 'time' both name the time; keep one of them" in str(error)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.csv", "", "empty file (no header and no data rows)"),
        ("h.csv", HEADER + "\n", "empty file (a header but no data rows)"),
        ("e.parquet", "", "empty file (0 bytes)"),
        ("x.parquet", "not parquet", "cannot be read as Parquet"),
        ("bars.txt", HEADER, "unknown file type (suffix .txt; expected .csv, .csv.gz or .parquet)"),
        ("bars.json.gz", HEADER, "unknown file type (suffix .json.gz;"),
    ],
)
def test_file_level_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = write(tmp_path, name, content)
    error = _error(path)
    assert str(error).startswith(f"{path}: ")
    assert message in str(error)
    assert error.row is None


def test_a_missing_file(tmp_path: Path) -> None:
    assert str(_error(tmp_path / "nope.csv")) == f"{tmp_path / 'nope.csv'}: no such file"


def test_bad_arguments_are_data_errors_naming_the_argument(tmp_path: Path) -> None:
    path = bars_csv(tmp_path, GOOD_ROWS)
    assert _error(path, interval="1M").field == "interval"
    assert "'1M' is not a positive interval" in str(_error(path, interval="1M"))
    assert _error(path, timestamp="middle").field == "timestamp"
    error = _error(path, start="tomorrow")
    assert (error.field, error.value) == ("start", "tomorrow")
    assert "start: 'tomorrow' is not a time" in str(error)
    assert "cannot infer the bar interval from 1 bar; pass interval=" in str(_error(bars_csv(tmp_path, [R1])))


def test_parquet_errors_name_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    columns = {
        "timestamp": pa.array([T0, T0 + 60 * 10**9, T0 + 120 * 10**9], pa.timestamp("ns")),
        "open": pa.array([Decimal(100), None, Decimal(100)], pa.decimal128(10, 2)),
        "high": [101.0, 101.0, 101.004],
        "low": [99, 99, 99],
        "close": ["100", "100", "100"],
        "volume": [1, 1, 1],
    }
    pq.write_table(pa.table(columns), path)
    error = _error(path)
    assert str(error) == f"{path} row 2, field 'open': empty value"
    assert error.line is None  # Parquet has rows, not lines
    columns["open"] = pa.array([Decimal(100)] * 3, pa.decimal128(10, 2))
    pq.write_table(pa.table(columns), path)
    error = _error(path)
    assert (error.row, error.field, error.value) == (3, "high", "101.004")
    assert "is not a multiple of the tick 0.01" in str(error)
    columns["high"] = pa.array([True] * 3)
    pq.write_table(pa.table(columns), path)
    assert "field 'high': True has type bool; expected numbers" in str(_error(path))


def test_trade_errors(tmp_path: Path) -> None:
    header = "timestamp,price,size,side\n"
    cases = [
        ("2024-01-01T00:00:00Z,1,0,buy\n", "size", "0 is not a positive size"),
        ("2024-01-01T00:00:00Z,-1,1,buy\n", "price", "-1 is not a positive price"),
        ("2024-01-01T00:00:00Z,1,1,long\n", "side", "long is not a side (expected buy or b, sell or s"),
    ]
    for row, field, fragment in cases:
        path = write(tmp_path, "t.csv", header + "2024-01-01T00:00:00Z,1,1,b\n" + row)
        with pytest.raises(DataError) as info:
            load_trades(path, "X", SPEC)
        assert (info.value.row, info.value.field) == (2, field)
        assert fragment in str(info.value)
    path = write(tmp_path, "t.csv", header + "2024-01-01T00:00:01Z,1,1,b\n2024-01-01T00:00:00Z,1,1,b\n")
    expected = "row 2 (line 3), field 'timestamp': 2024-01-01T00:00:00Z is earlier"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_trades(path, "X", SPEC)


def test_repair_names_are_checked(tmp_path: Path) -> None:
    path = bars_csv(tmp_path, GOOD_ROWS)
    error = _error(path, repair=["sort", "tidy"])
    assert str(error) == (
        f"{path} field 'repair': unknown repair 'tidy' (known: clip, drop_duplicates, fill_volume, round, sort)"
    )
    with pytest.raises(DataError, match=r"repair 'clip' does not apply to trades \(for trades: round, sort\)"):
        load_trades(path, "X", SPEC, repair=["clip"])


def test_resample_refuses_intervals_that_are_not_multiples() -> None:
    bars = synthetic_bars(10, "X", SPEC, seed=1)
    for interval in ("90s", "30s"):
        expected = f"cannot resample 1m bars to {interval}: the new interval must be a whole multiple of 1m"
        with pytest.raises(DataError, match=expected):
            resample(bars, interval)
    with pytest.raises(DataError, match="is not a positive interval"):
        resample(bars, "fortnight")
