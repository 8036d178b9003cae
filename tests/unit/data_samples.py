"""Shared helpers of the tests/unit/test_data_*.py files: an instrument spec and file writers."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from types import ModuleType

from services.sequencer.core.config import InstrumentSpec

SPEC = InstrumentSpec(venue="SIM", base="BTC", quote="USD", price_decimals=2, size_decimals=4)
HEADER = "timestamp,open,high,low,close,volume"
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MINUTE = 60_000_000_000
REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "examples" / "data"

# Three good one-minute bars stamped by open time.
GOOD_ROWS = [
    "2024-01-01T00:00:00Z,100,101,99,100.5,1",
    "2024-01-01T00:01:00Z,100.5,101,99,100,2.5",
    "2024-01-01T00:02:00Z,100,101.25,99.75,101,0.0001",
]


def write(tmp: Path, name: str, text: str) -> Path:
    """Write `text` to tmp/name (gzip-compressed when the name ends in .gz)."""
    path = tmp / name
    if name.lower().endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def bars_csv(tmp: Path, rows: list[str], *, header: str = HEADER, name: str = "bars.csv") -> Path:
    """A bars CSV with the header and rows given."""
    return write(tmp, name, "\n".join([header, *rows]) + "\n")


def make_sample_module() -> ModuleType:
    """examples/data/make_sample.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE_DIR / "make_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
