"""A fault-injecting disk for journal and checkpoint tests: real files, damaged on purpose.

The record layout is parsed here with `struct` on its own, not through the journal module, so a
bug in the reader cannot hide itself from the tests that damage what it reads.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

from schemas import Envelope
from services.sequencer.core import CoreConfig, SequencerCore
from services.sequencer.journal import FsyncPolicy, JournalWriter
from services.sequencer.scenario import Scenario, demo_config

__all__ = [
    "RECORD_HEADER_SIZE",
    "append_bytes",
    "copy_file",
    "flip_bit",
    "mixed_envelopes",
    "record_spans",
    "reference_core",
    "reference_hash",
    "truncate_to",
    "write_journal",
]

MAGIC_SIZE = 8
RECORD_HEADER_SIZE = 16  # u32 length, u64 seq id, u32 crc32
_U32 = struct.Struct("<I")
_RECORD = struct.Struct("<IQI")


def mixed_envelopes(rounds: int = 3, price_offset: int = 0) -> list[Envelope]:
    """A sequenced stream mixing market data, intents and venue reports (10 per round).

    Per round: a bar, a trade, a limit buy placed, accepted and filled in two parts, then a
    prediction-market order placed, accepted, cancelled by the strategy and confirmed by the venue.
    `price_offset` shifts every BTC price: the same shape of run, a different state.
    """
    s = Scenario()
    for i in range(rounds):
        r = i + price_offset
        s.bar("BTC-USD", 4_200_000 + r, 4_210_000 + r, 4_190_000, 4_200_000 + r)
        s.trade("BTC-USD", 4_200_000 + r, 2_0000)
        s.place(f"b{r}", quantity=1_0000, price=4_200_000 + r)
        s.accept(f"b{r}")
        s.fill(f"b{r}", f"t{r}a", 4000, 4_200_000 + r)
        s.fill(f"b{r}", f"t{r}b", 6000, 4_200_000 + r)
        s.place(f"p{r}", instrument="PRES-YES", quantity=10, price=40 + r)
        s.accept(f"p{r}", venue="PM")
        s.cancel(f"p{r}")
        s.cancelled(f"p{r}", venue="PM")
        s.advance()
    return s.sequenced()


def write_journal(path: Path, envelopes: list[Envelope], config: CoreConfig | None = None) -> Path:
    """Write a complete journal (no fsync: tests do not need durability, only the bytes)."""
    with JournalWriter.create(path, config or demo_config(), fsync=FsyncPolicy.NEVER) as writer:
        for env in envelopes:
            writer.append(env)
    return path


def record_spans(path: Path) -> list[tuple[int, int]]:
    """(start, end) byte offsets of every complete record, parsed independently of the reader."""
    data = path.read_bytes()
    (header_length,) = _U32.unpack_from(data, MAGIC_SIZE)
    pos = MAGIC_SIZE + _U32.size + header_length + _U32.size
    spans = []
    while pos + RECORD_HEADER_SIZE <= len(data):
        length, _seq, _crc = _RECORD.unpack_from(data, pos)
        end = pos + RECORD_HEADER_SIZE + length
        if end > len(data):
            break
        spans.append((pos, end))
        pos = end
    return spans


def reference_core(envelopes: list[Envelope], config: CoreConfig | None = None) -> SequencerCore:
    """A fresh core fed `envelopes` in memory: the no-fault reference run."""
    core = SequencerCore(config or demo_config())
    for env in envelopes:
        core.apply(env)
    return core


def reference_hash(envelopes: list[Envelope], config: CoreConfig | None = None) -> str:
    """State hash of the reference run over `envelopes`."""
    return reference_core(envelopes, config).state_hash()


def truncate_to(path: Path, size: int) -> None:
    """Cut the file to `size` bytes, as a crash mid-append leaves it."""
    with open(path, "r+b") as f:
        f.truncate(size)


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    """Flip one bit in place: silent media corruption."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def append_bytes(path: Path, data: bytes) -> None:
    """Append raw bytes after the last record: garbage left by a crash or a stray writer."""
    with open(path, "ab") as f:
        f.write(data)


def copy_file(src: Path, dst: Path) -> Path:
    """A fresh copy to damage, so one pristine journal serves many cases."""
    shutil.copyfile(src, dst)
    os.utime(dst)
    return dst
