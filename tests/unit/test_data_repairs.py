"""Opt-in repairs: each fixes what it names, counts what it changed, and leaves the rest checked."""

from __future__ import annotations

from array import array
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.data import REPAIRS, DataError, load_bars, load_trades
from tests.unit.data_samples import GOOD_ROWS, MINUTE, SPEC, T0, bars_csv, write

R1, R2, R3 = GOOD_ROWS


def _minutes(times: array[int]) -> list[int]:
    return [(t - T0) // MINUTE for t in times]


def test_sort_is_stable_and_counts_moved_rows(tmp_path: Path) -> None:
    path = bars_csv(tmp_path, [R3, R1, R2])
    bars = load_bars(path, "X", SPEC, repair=["sort"])
    assert _minutes(bars.close_time_ns) == [1, 2, 3]
    assert bars.close == array("q", [10050, 10000, 10100])  # whole rows moved, not just times
    assert bars.repairs == {"sort": 3}
    assert load_bars(bars_csv(tmp_path, GOOD_ROWS), "X", SPEC, repair=["sort"]).repairs == {}


def test_drop_duplicates_keeps_the_last_in_file_order(tmp_path: Path) -> None:
    replaced = "2024-01-01T00:01:00Z,100.5,101,99,99.5,7"  # same minute as R2, later in the file
    bars = load_bars(bars_csv(tmp_path, [R1, R2, replaced, R3]), "X", SPEC, repair=["drop_duplicates"])
    assert _minutes(bars.close_time_ns) == [1, 2, 3]
    assert bars.close[1] == 9950 and bars.volume[1] == 70000
    assert bars.repairs == {"drop_duplicates": 1}
    # With sort, "last" still means last in the file among equal times (the sort is stable).
    bars = load_bars(bars_csv(tmp_path, [R3, replaced, R1, R2]), "X", SPEC, repair=["sort", "drop_duplicates"])
    assert bars.close[1] == 10000
    assert bars.repairs == {"sort": 3, "drop_duplicates": 1}  # the second row kept its place


def test_clip_swaps_inverted_high_low_and_clips_open_close(tmp_path: Path) -> None:
    rows = [
        "2024-01-01T00:00:00Z,100,99,101,100,1",  # high < low: swapped
        "2024-01-01T00:01:00Z,105,101,99,98,1",  # open above high, close below low: clipped
        "2024-01-01T00:02:00Z,100,101,99,100,1",  # fine: untouched, not counted
    ]
    bars = load_bars(bars_csv(tmp_path, rows), "X", SPEC, repair=["clip"])
    assert (bars.high[0], bars.low[0]) == (10100, 9900)
    assert (bars.open[1], bars.close[1]) == (10100, 9900)
    assert bars.repairs == {"clip": 2}


def test_clip_does_not_hide_other_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="field 'low': 0 is not a positive price"):
        load_bars(bars_csv(tmp_path, ["2024-01-01T00:00:00Z,100,101,0,100,1"]), "X", SPEC, interval="1m",
                  repair=["clip"])


def test_round_is_half_to_even_to_the_tick_and_counts_values(tmp_path: Path) -> None:
    rows = [
        "2024-01-01T00:00:00Z,100.005,100.015,99.994,100.00,1.00005",
        "2024-01-01T00:01:00Z,100,100.5,99,100,2",
    ]
    bars = load_bars(bars_csv(tmp_path, rows), "X", SPEC, repair=["round"])
    assert (bars.open[0], bars.high[0], bars.low[0]) == (10000, 10002, 9999)  # .005 -> even 0, .015 -> 2
    assert bars.volume[0] == 10000  # 1.00005 at 4 decimals -> 1.0000 (half to even)
    assert bars.repairs == {"round": 4}


def test_fill_volume_for_a_missing_column_and_for_empty_cells(tmp_path: Path) -> None:
    no_volume = bars_csv(tmp_path, [r.rsplit(",", 1)[0] for r in GOOD_ROWS], header="time,open,high,low,close")
    with pytest.raises(DataError, match="missing column volume"):
        load_bars(no_volume, "X", SPEC)
    bars = load_bars(no_volume, "X", SPEC, repair=["fill_volume"])
    assert bars.volume == array("q", [0, 0, 0])
    assert bars.repairs == {"fill_volume": 3}
    gaps = bars_csv(tmp_path, [R1, R2.rsplit(",", 1)[0] + ",", R3], name="gaps.csv")
    with pytest.raises(DataError, match="row 2 .*field 'volume': empty value"):
        load_bars(gaps, "X", SPEC)
    bars = load_bars(gaps, "X", SPEC, repair=["fill_volume"])
    assert bars.volume == array("q", [10000, 0, 1])
    assert bars.repairs == {"fill_volume": 1}


@pytest.mark.parametrize("volume", [pa.array([None, 1.5]), pa.array([None, "1.5"], pa.large_string())])
def test_fill_volume_for_parquet_nulls(tmp_path: Path, volume: pa.Array) -> None:
    path = tmp_path / "v.parquet"
    prices = {name: pa.array(["100", "100"], pa.large_string()) for name in ("open", "high", "low", "close")}
    times = pa.array([T0, T0 + MINUTE], pa.timestamp("ns"))
    pq.write_table(pa.table({"time": times} | prices | {"Volume": volume}), path)
    with pytest.raises(DataError, match=r"row 1, field 'Volume': empty value"):
        load_bars(path, "X", SPEC)
    bars = load_bars(path, "X", SPEC, repair=["fill_volume"])
    assert bars.volume == array("q", [0, 15000])
    assert bars.repairs == {"fill_volume": 1}


def test_all_repairs_together_report_in_a_fixed_order(tmp_path: Path) -> None:
    rows = [R3, "2024-01-01T00:00:00Z,100.005,99,101,100,", R2, R2]
    bars = load_bars(bars_csv(tmp_path, rows), "X", SPEC, repair=sorted(REPAIRS))
    assert list(bars.repairs) == ["round", "fill_volume", "clip", "sort", "drop_duplicates"]
    assert bars.repairs == {"round": 1, "fill_volume": 1, "clip": 1, "sort": 4, "drop_duplicates": 1}
    assert _minutes(bars.close_time_ns) == [1, 2, 3]


def test_a_single_repair_name_as_a_string(tmp_path: Path) -> None:
    assert load_bars(bars_csv(tmp_path, [R2, R1]), "X", SPEC, repair="sort").repairs == {"sort": 2}


def test_trade_repairs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.csv",
        "timestamp,price,quantity\n2024-01-01T00:00:02Z,1.005,1\n2024-01-01T00:00:01Z,1,1\n2024-01-01T00:00:01Z,2,1\n",
    )
    trades = load_trades(path, "X", SPEC, repair=["sort", "round"])
    assert trades.price == array("q", [100, 200, 100])  # stable: equal times keep file order
    assert trades.repairs == {"round": 1, "sort": 3}
