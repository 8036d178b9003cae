"""Loading bars and trades: formats, time forms, exact decimals, windows, the bundled samples."""

from __future__ import annotations

from array import array
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.data import (
    AGGRESSOR_BUY,
    AGGRESSOR_SELL,
    AGGRESSOR_UNKNOWN,
    BarSeries,
    DataError,
    format_interval,
    format_time,
    load_bars,
    load_trades,
    parse_interval,
    parse_time,
    synthetic_bars,
)
from tests.unit.data_samples import GOOD_ROWS, HEADER, MINUTE, SAMPLE_DIR, SPEC, T0, bars_csv, make_sample_module, write

FIELDS = ("close_time_ns", "open", "high", "low", "close", "volume")


def _same_bars(a: BarSeries, b: BarSeries) -> None:
    assert a.interval_ns == b.interval_ns
    for name in FIELDS:
        assert getattr(a, name) == getattr(b, name), name


def test_csv_bars_are_exact_integers_in_instrument_units(tmp_path: Path) -> None:
    bars = load_bars(bars_csv(tmp_path, GOOD_ROWS), "BTC-USD", SPEC)
    assert (bars.instrument, bars.venue, bars.interval_ns) == ("BTC-USD", "SIM", MINUTE)
    # Stamped by open time (the default): each bar closes one interval later.
    assert bars.close_time_ns == array("q", [T0 + MINUTE, T0 + 2 * MINUTE, T0 + 3 * MINUTE])
    assert bars.open == array("q", [10000, 10050, 10000])
    assert bars.high == array("q", [10100, 10100, 10125])
    assert bars.low == array("q", [9900, 9900, 9975])
    assert bars.close == array("q", [10050, 10000, 10100])
    assert bars.volume == array("q", [10000, 25000, 1])
    assert bars.source.endswith("bars.csv")
    assert bars.repairs == {}
    assert len(bars) == 3


def test_timestamp_close_takes_the_stamp_as_close_time(tmp_path: Path) -> None:
    bars = load_bars(bars_csv(tmp_path, GOOD_ROWS), "BTC-USD", SPEC, timestamp="close")
    assert bars.close_time_ns[0] == T0


@pytest.mark.parametrize(("interval", "expected"), [("5m", 5 * MINUTE), (MINUTE, MINUTE), ("1h", 60 * MINUTE)])
def test_a_given_interval_wins_over_the_inferred_one(tmp_path: Path, interval: str | int, expected: int) -> None:
    bars = load_bars(bars_csv(tmp_path, GOOD_ROWS), "BTC-USD", SPEC, interval=interval)
    assert bars.interval_ns == expected
    assert bars.close_time_ns[0] == T0 + expected


def test_inferred_interval_is_the_most_common_gap(tmp_path: Path) -> None:
    rows = [f"{format_time(T0 + k * MINUTE)},1,1,1,1,1" for k in (0, 1, 2, 5, 6, 7)]  # a 3-minute hole
    assert load_bars(bars_csv(tmp_path, rows), "X", SPEC).interval_ns == MINUTE


def test_gzip_csv_loads_the_same(tmp_path: Path) -> None:
    plain = load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC)
    gz = load_bars(bars_csv(tmp_path, GOOD_ROWS, name="bars.CSV.GZ"), "X", SPEC)
    _same_bars(plain, gz)


def test_windows_line_endings_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *GOOD_ROWS]) + "\r\n").encode())
    _same_bars(load_bars(path, "X", SPEC), load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC))
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, GOOD_ROWS[0], "2024-01-01T00:01:00Z,x,1,1,1,1"])).encode())
    with pytest.raises(DataError, match=r"row 2 \(line 3\), field 'open': x is not a number"):
        load_bars(path, "X", SPEC)


def test_column_names_are_case_insensitive_with_aliases_and_extras(tmp_path: Path) -> None:
    rows = [
        "x, 2024-01-01 , 100 ,101,99,100.5,1,junk",
        "x,2024-01-02,100.5,101,99,100,2.5,junk",
    ]
    path = bars_csv(tmp_path, rows, header="Symbol,Date,OPEN,High, low ,Close,Volume,Note")
    bars = load_bars(path, "X", SPEC)
    assert bars.interval_ns == 1440 * MINUTE
    assert bars.close_time_ns[0] == T0 + 1440 * MINUTE
    assert bars.open[0] == 10000


DAY = 86_400_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", T0),
        ("2024-01-01T00:00:00", T0),  # naive means UTC
        ("2024-01-01 00:00:00", T0),
        ("2024-01-01T02:00:00+02:00", T0),
        ("2023-12-31T19:00:00-0500", T0),
        ("2024-01-01T00:00", T0),
        ("2024-01-01", T0),
        ("2024-01-01T00:00:00.123456789Z", T0 + 123_456_789),
        ("2024-01-01T00:00:00.5", T0 + 500_000_000),
        ("1704067200", T0),  # epoch seconds
        ("1704067200000", T0),  # ms
        ("1704067200000000", T0),  # us
        ("1704067200000000000", T0),  # ns
        ("1704067200.25", T0 + 250_000_000),  # fractional seconds, exact
    ],
)
def test_time_forms(tmp_path: Path, text: str, expected: int) -> None:
    path = bars_csv(tmp_path, [f"{text},1,1,1,1,1"])
    bars = load_bars(path, "X", SPEC, interval="1m", timestamp="close")
    assert bars.close_time_ns[0] == expected
    assert parse_time(text) == expected  # the start/end arguments follow the same rule


def test_epoch_unit_rule_boundaries() -> None:
    # Below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
    assert parse_time("99999999999") == 99_999_999_999 * 10**9
    assert parse_time("100000000000") == 100_000_000_000 * 10**6
    assert parse_time("100000000000000") == 100_000_000_000_000 * 10**3
    assert parse_time("100000000000000000") == 100_000_000_000_000_000


def test_parse_time_accepts_datetimes_dates_and_ns() -> None:
    assert parse_time(datetime(2024, 1, 1)) == T0  # naive = UTC
    assert parse_time(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == T0
    assert parse_time(datetime(2024, 1, 1, 0, 0, 0, 7, tzinfo=UTC)) == T0 + 7_000
    assert parse_time(date(2024, 1, 1)) == T0
    assert parse_time(T0 + 1) == T0 + 1
    with pytest.raises(ValueError, match="start: 'soon' is not a time"):
        parse_time("soon", name="start")
    with pytest.raises(TypeError, match="end: expected"):
        parse_time(1.5, name="end")  # type: ignore[arg-type]


def test_format_time_round_trips() -> None:
    for ns in (T0, T0 + 1, T0 + 120_000_000, 0):
        assert parse_time(format_time(ns)) == ns
    assert format_time(T0 + 500_000_000) == "2024-01-01T00:00:00.5Z"


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1m", MINUTE), ("5m", 5 * MINUTE), ("15min", 15 * MINUTE), ("1h", 60 * MINUTE), ("1d", DAY),
     ("1w", 7 * DAY), ("30s", MINUTE // 2), ("250ms", 250_000_000), ("7", None)],
)
def test_intervals(text: str, ns: int | None) -> None:
    if ns is None:
        with pytest.raises(ValueError, match="'7' is not a positive interval like '1m'"):
            parse_interval(text)
        return
    assert parse_interval(text) == ns
    assert parse_interval(format_interval(ns)) == ns
    for bad in ("1M", "0m", "-1m", 0, -5):
        with pytest.raises(ValueError):
            parse_interval(bad)


@settings(max_examples=40)
@given(
    st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999999.99"), places=2),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["{}", "{:f}", "{:E}"]),
)
def test_decimal_text_converts_exactly(
    tmp_path_factory: pytest.TempPathFactory, prices: list[Decimal], form: str
) -> None:
    tmp = tmp_path_factory.mktemp("exact")
    rows = [f"{format_time(T0 + k * MINUTE)},{form.format(p)},{form.format(p)},{form.format(p)},{form.format(p)},0"
            for k, p in enumerate(prices)]
    bars = load_bars(bars_csv(tmp, rows), "X", SPEC, interval="1m")
    assert list(bars.close) == [int(p * 100) for p in prices]


def test_values_a_binary_float_would_corrupt_stay_exact(tmp_path: Path) -> None:
    # 0.29 * 100 is 28.999999999999996 in binary floating point; 1.005 * 100 is 100.49999999999999.
    rows = ["2024-01-01T00:00:00Z,0.29,1.005,0.01,0.29,0.0003"]
    spec = SPEC.model_copy(update={"price_decimals": 3})
    bars = load_bars(bars_csv(tmp_path, rows), "X", spec, interval="1m")
    assert (bars.open[0], bars.high[0], bars.low[0], bars.volume[0]) == (290, 1005, 10, 3)


def _parquet(tmp: Path, columns: dict[str, pa.Array], name: str = "bars.parquet") -> Path:
    path = tmp / name
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_column_types_give_the_csv_series(tmp_path: Path) -> None:
    csv_bars = load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC)
    opens = [Decimal(100), Decimal("100.5"), Decimal(100)]
    highs = [101.0, 101.0, 101.25]  # floats: taken as the tick they are within float noise of
    lows = ["99", "99", "99.75"]  # text: parsed as decimals
    closes = [Decimal("100.5"), Decimal(100), Decimal(101)]
    for time_column in (
        pa.array([T0 + k * MINUTE for k in range(3)], pa.timestamp("ns")),
        pa.array([(T0 + k * MINUTE) // 10**6 for k in range(3)], pa.timestamp("ms", tz="UTC")),
        pa.array([(T0 + k * MINUTE) // 10**9 for k in range(3)], pa.int64()),  # epoch seconds
        pa.array([format_time(T0 + k * MINUTE) for k in range(3)]),
    ):
        path = _parquet(
            tmp_path,
            {
                "Timestamp": time_column,
                "open": pa.array(opens, pa.decimal128(10, 1)),
                "high": pa.array(highs, pa.float64()),
                "low": pa.array(lows, pa.string()),
                "close": pa.array(closes, pa.decimal128(12, 4)),
                "volume": pa.array([Decimal(1), Decimal("2.5"), Decimal("0.0001")], pa.decimal128(20, 6)),
            },
        )
        _same_bars(load_bars(path, "X", SPEC), csv_bars)


def test_parquet_integer_prices_are_whole_units(tmp_path: Path) -> None:
    path = _parquet(
        tmp_path,
        {"date": pa.array([date(2024, 1, 1), date(2024, 1, 2)], pa.date32())}
        | {name: pa.array([100, 101], pa.int32()) for name in ("open", "high", "low", "close", "volume")},
    )
    bars = load_bars(path, "X", SPEC)
    assert bars.open == array("q", [10000, 10100])
    assert bars.volume == array("q", [1_000_000, 1_010_000])
    assert bars.interval_ns == DAY and bars.close_time_ns[0] == T0 + DAY


def test_parquet_float_rounding_is_half_to_even_under_repair_round(tmp_path: Path) -> None:
    path = _parquet(
        tmp_path,
        {"time": pa.array([T0 // 10**9], pa.timestamp("s"))}
        | {name: pa.array([0.125], pa.float64()) for name in ("open", "high", "low", "close")}
        | {"volume": pa.array([1.0])},
    )
    with pytest.raises(DataError, match=r"0.125 is not a multiple of the tick 0.01"):
        load_bars(path, "X", SPEC, interval="1m")
    bars = load_bars(path, "X", SPEC, interval="1m", repair=["round"])
    assert bars.open[0] == 12  # 12.5 ticks rounds to the even 12
    assert bars.repairs == {"round": 4}


@pytest.mark.parametrize(
    ("start", "end", "closes"),
    [
        (None, None, [1, 2, 3]),
        (T0 + 2 * MINUTE, None, [2, 3]),  # start inclusive, on close time
        (None, T0 + 3 * MINUTE, [1, 2]),  # end exclusive
        ("2024-01-01T00:02:00Z", "2024-01-01T00:03:00Z", [2]),
        (datetime(2024, 1, 1, 0, 2), datetime(2024, 1, 1, 0, 3, 0, 1), [2, 3]),
        (date(2024, 1, 1), date(2024, 1, 2), [1, 2, 3]),
    ],
)
def test_start_end_window_on_close_time(tmp_path: Path, start: object, end: object, closes: list[int]) -> None:
    bars = load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC, start=start, end=end)  # type: ignore[arg-type]
    assert [(t - T0) // MINUTE for t in bars.close_time_ns] == closes
    assert len(bars.open) == len(closes)


def test_an_empty_window_says_what_the_file_covers(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no rows with time in \[2025-01-01T00:00:00Z, -\) \(the file covers "
                       r"2024-01-01T00:01:00Z to 2024-01-01T00:03:00Z\)"):
        load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC, start="2025-01-01")
    with pytest.raises(DataError, match="end 2024-01-01T00:00:00Z is not after start"):
        load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC, start="2024-01-01T00:01", end="2024-01-01")


def test_trades_with_sides_and_shared_stamps(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "trades.csv",
        "time,price,qty,side\n"
        "2024-01-01T00:00:00.001Z,100.25,0.5,buy\n"
        "2024-01-01T00:00:00.001Z,100.24,1,S\n"
        "2024-01-01T00:00:01Z,100.3,0.0001,\n",
    )
    trades = load_trades(path, "BTC-USD", SPEC)
    assert trades.time_ns == array("q", [T0 + 1_000_000, T0 + 1_000_000, T0 + 1_000_000_000])
    assert trades.price == array("q", [10025, 10024, 10030])
    assert trades.quantity == array("q", [5000, 10000, 1])
    assert trades.aggressor == bytes([AGGRESSOR_BUY, AGGRESSOR_SELL, AGGRESSOR_UNKNOWN])
    later = load_trades(path, "BTC-USD", SPEC, start=T0 + 2_000_000)
    assert later.price == array("q", [10030]) and later.aggressor == bytes([AGGRESSOR_UNKNOWN])


def test_trades_without_a_side_column(tmp_path: Path) -> None:
    path = write(tmp_path, "t.parquet", "")
    pq.write_table(
        pa.table({"timestamp": pa.array([T0 // 1000], pa.timestamp("us")), "price": [Decimal("1.5")], "amount": [2]}),
        path,
    )
    trades = load_trades(path, "X", SPEC)
    assert (trades.price[0], trades.quantity[0], trades.aggressor) == (150, 20000, None)


def test_sample_files_load_cleanly_and_match_their_generator() -> None:
    sample = make_sample_module()
    btc_csv = load_bars(SAMPLE_DIR / "BTC-USD_1m.csv", "BTC-USD", sample.spec("BTC-USD"))
    btc_parquet = load_bars(SAMPLE_DIR / "BTC-USD_1m.parquet", "BTC-USD", sample.spec("BTC-USD"))
    eth = load_bars(SAMPLE_DIR / "ETH-USD_1m.csv", "ETH-USD", sample.spec("ETH-USD"))
    assert len(btc_csv) == len(eth) == 20 * 1440
    assert btc_csv.repairs == eth.repairs == {}
    assert btc_csv.interval_ns == eth.interval_ns == MINUTE
    assert btc_csv.close_time_ns == eth.close_time_ns  # aligned minutes
    assert btc_csv.close_time_ns[0] == T0 + MINUTE
    _same_bars(btc_csv, btc_parquet)  # CSV and Parquet give identical series
    _same_bars(btc_csv, sample.sample_bars("BTC-USD"))  # the committed file is what the seed makes
    assert 20_000_00 < min(btc_csv.low) and max(btc_csv.high) < 40_000_00
    assert 1_000_00 < min(eth.low) and max(eth.high) < 3_000_00


def test_synthetic_bars_are_seeded_and_well_formed() -> None:
    a = synthetic_bars(5_000, "X", SPEC, seed=3)
    b = synthetic_bars(5_000, "X", SPEC, seed=3)
    c = synthetic_bars(5_000, "X", SPEC, seed=4)
    _same_bars(a, b)
    assert a.close != c.close
    assert a.source == "synthetic:seed=3"
    for o, h, lo, cl, v in zip(a.open, a.high, a.low, a.close, a.volume, strict=True):
        assert 1 <= lo <= min(o, cl) and max(o, cl) <= h and v >= 0
    assert all(a.open[i + 1] == a.close[i] for i in range(len(a) - 1))
    assert len(synthetic_bars(0, "X", SPEC, seed=1)) == 0
    with pytest.raises(ValueError, match="n must be >= 0"):
        synthetic_bars(-1, "X", SPEC, seed=1)
