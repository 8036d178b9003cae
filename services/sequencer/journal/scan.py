"""Checking a whole journal (`scan_journal`) and cutting its torn tail (`recover_journal`).

The reader decides what is a torn tail and what is corruption; this module reports it and,
for recovery, truncates the tail away: the only place bytes are ever removed from a journal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from schemas.envelope import Envelope
from services.sequencer.core.config import CoreConfig
from services.sequencer.journal.errors import JournalError
from services.sequencer.journal.format import JournalHeader, journal_config
from services.sequencer.journal.reader import JournalReader

__all__ = ["JournalScan", "recover_journal", "scan_journal"]


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a full check of a journal found.

    Attributes:
        path: the journal file.
        header: its file header.
        envelopes: every complete record's envelope (empty when scanned with keep_envelopes=False).
        records: how many complete records there are.
        data_start: offset of the first record.
        valid_end: offset just past the last complete record.
        tail_bytes_cut: bytes after `valid_end` that are a torn tail. `scan_journal` only reports
            them (they are still on disk); `recover_journal` has cut them.
        tail_reason: why the tail is not a record, or None for a clean end.
        last_seq_id: seq id of the last complete record (0 for none).
    """

    path: Path
    header: JournalHeader
    envelopes: list[Envelope] = field(repr=False)
    records: int
    data_start: int
    valid_end: int
    tail_bytes_cut: int
    tail_reason: str | None
    last_seq_id: int

    def config(self) -> CoreConfig:
        """The config this journal was written under (checked against the header's hash)."""
        return journal_config(self.header, self.path)


def scan_journal(path: str | os.PathLike[str], *, keep_envelopes: bool = True) -> JournalScan:
    """Check every record of a journal without modifying it.

    Raises:
        JournalCorrupted: damage before the tail, or a damaged file header.
    """
    reader = JournalReader(path)
    envelopes: list[Envelope] = []
    if keep_envelopes:
        envelopes.extend(reader)
    else:
        for _ in reader:
            pass
    return JournalScan(
        path=reader.path,
        header=reader.header,
        envelopes=envelopes,
        records=reader.records,
        data_start=reader.data_start,
        valid_end=reader.valid_end,
        tail_bytes_cut=reader.tail_bytes,
        tail_reason=reader.tail_reason,
        last_seq_id=reader.last_seq_id,
    )


def recover_journal(path: str | os.PathLike[str], *, keep_envelopes: bool = False) -> JournalScan:
    """Check a journal and cut a torn tail (truncate at the first damaged record, then fsync).

    Returns:
        The scan; `tail_bytes_cut` is how many bytes were removed.

    Raises:
        JournalCorrupted: damage before the tail or in the file header; the file is untouched.
    """
    scan = scan_journal(path, keep_envelopes=keep_envelopes)
    if scan.tail_bytes_cut:
        with open(scan.path, "r+b") as f:
            f.truncate(scan.valid_end)
            f.flush()
            os.fsync(f.fileno())
        size = scan.path.stat().st_size
        if size != scan.valid_end:  # paired check: the cut really happened
            raise JournalError(f"journal {scan.path}: truncate to {scan.valid_end} left {size} bytes")
    return scan
