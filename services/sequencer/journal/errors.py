"""The journal's errors: one base class, a kind per way a journal or a write can fail.

`JournalCorrupted` is a peer's bad input in STYLE 5's sense (the disk handed us damage: refuse
the journal, name file, offset and seq id); `JournalFailed` is the fail-stop after a write or
fsync error (S5); `RecordRefused` is our own bug upstream, caught before anything is written.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigMismatch",
    "JournalCorrupted",
    "JournalError",
    "JournalFailed",
    "RecordRefused",
]


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalCorrupted(JournalError):
    """The journal is damaged before its tail (or in its file header): refuse to start (S2).

    Attributes:
        path: the journal file.
        offset: byte offset of the first damaged record (0 for the file header).
        seq_id: the seq id expected at that offset (None for the file header).
        reason: what check failed.
    """

    def __init__(self, path: Path, offset: int, seq_id: int | None, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.seq_id = seq_id
        self.reason = reason
        where = "file header" if seq_id is None else f"record seq {seq_id}"
        super().__init__(f"journal {path}: {where} at offset {offset} is corrupted: {reason}; refusing to use it")


class JournalFailed(JournalError):
    """A write or fsync failed: the writer refuses every later call (S5). Restart and recover."""


class RecordRefused(JournalError):
    """A record failed its checks before writing (our bug upstream). Nothing was written."""


class ConfigMismatch(JournalError):
    """A config does not match the one a journal was written under."""

    def __init__(self, path: Path, journal_hash: str, given_hash: str) -> None:
        self.path = path
        self.journal_hash = journal_hash
        self.given_hash = given_hash
        super().__init__(
            f"journal {path} was written under config {journal_hash} but config {given_hash} was "
            "given; a journal is only replayed under its own config"
        )
