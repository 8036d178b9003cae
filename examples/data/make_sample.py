"""Generate the bundled sample bars: `python examples/data/make_sample.py` (from the repo root).

Twenty days of synthetic one-minute bars for BTC-USD (around 30,000) and ETH-USD (around 2,000)
on the same aligned minutes from 2024-01-01T00:00:00Z, made by `services.data.synthetic_bars`
(seeded random walk with volatility regimes and trends; see that module). Writes:

    BTC-USD_1m.csv       timestamp (ISO-8601 UTC open time), open, high, low, close, volume
    ETH-USD_1m.csv       the same columns
    BTC-USD_1m.parquet   the BTC bars again: timestamp[ms, UTC], decimal128 prices and volume

Prices have 2 decimals and volumes 4, as the demo config's BTC-USD (price_decimals 2,
size_decimals 4). Running it again rewrites the same CSV bytes: the walk uses no libm.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from services.data import BarSeries, format_time, synthetic_bars
from services.sequencer.core.config import InstrumentSpec

OUT: Final = Path(__file__).parent
DAYS: Final = 20
BARS: Final = DAYS * 1_440
START_NS: Final = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
PRICE_DECIMALS: Final = 2
SIZE_DECIMALS: Final = 4
# instrument -> (seed, start price in price units, mean volume per minute in size units)
SAMPLES: Final = {
    "BTC-USD": (20240101, 30_000_00, 8_0000),
    "ETH-USD": (20240102, 2_000_00, 120_0000),
}


def spec(instrument: str) -> InstrumentSpec:
    """The instrument spec the sample files are written for (venue SIM, 2 price / 4 size decimals)."""
    base, quote = instrument.split("-")
    return InstrumentSpec(
        venue="SIM", base=base, quote=quote, price_decimals=PRICE_DECIMALS, size_decimals=SIZE_DECIMALS
    )


def sample_bars(instrument: str) -> BarSeries:
    """The bars of one sample instrument, exactly as written to its files."""
    seed, price, volume = SAMPLES[instrument]
    return synthetic_bars(
        BARS, instrument, spec(instrument), seed, start_price=price, mean_volume=volume, start_ns=START_NS
    )


def _decimal_text(value: int, decimals: int) -> str:
    sign, value = ("-", -value) if value < 0 else ("", value)
    whole, frac = divmod(value, 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"


def write_csv(bars: BarSeries, path: Path) -> None:
    """Bars as CSV stamped by open time, exact decimal text."""
    lines = ["timestamp,open,high,low,close,volume"]
    for t, o, h, lo, c, v in zip(
        bars.close_time_ns, bars.open, bars.high, bars.low, bars.close, bars.volume, strict=True
    ):
        prices = ",".join(_decimal_text(x, PRICE_DECIMALS) for x in (o, h, lo, c))
        lines.append(f"{format_time(t - bars.interval_ns)},{prices},{_decimal_text(v, SIZE_DECIMALS)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_parquet(bars: BarSeries, path: Path) -> None:
    """Bars as Parquet with typed columns: exact decimals, not floats."""

    def decimals(values: object, scale: int) -> pa.Array:
        # int64 units -> decimal128(19, 0) -> the same bytes read at the right scale.
        return pa.array(values, pa.int64()).cast(pa.decimal128(19, 0)).view(pa.decimal128(19, scale))

    open_ms = [(t - bars.interval_ns) // 1_000_000 for t in bars.close_time_ns]
    table = pa.table(
        {
            "timestamp": pa.array(open_ms, pa.timestamp("ms", tz="UTC")),
            "open": decimals(bars.open, PRICE_DECIMALS),
            "high": decimals(bars.high, PRICE_DECIMALS),
            "low": decimals(bars.low, PRICE_DECIMALS),
            "close": decimals(bars.close, PRICE_DECIMALS),
            "volume": decimals(bars.volume, SIZE_DECIMALS),
        }
    )
    pq.write_table(table, path, compression="zstd")


def main() -> int:
    for instrument in SAMPLES:
        bars = sample_bars(instrument)
        write_csv(bars, OUT / f"{instrument}_1m.csv")
        if instrument == "BTC-USD":
            write_parquet(bars, OUT / f"{instrument}_1m.parquet")
        lows, highs = min(bars.low), max(bars.high)
        print(f"{instrument}: {len(bars)} bars, low {_decimal_text(lows, 2)}, high {_decimal_text(highs, 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
