"""The write-ahead journal: every sequenced envelope, appended before the core applies it.

Modules, each with its own theory of operation:

    format   the bytes on disk: magic, limits, record framing, the file header
    errors   JournalError and its kinds
    reader   JournalReader / iter_envelopes (replay), torn tail vs corruption
    scan     scan_journal (check only) and recover_journal (cut a torn tail)
    writer   JournalWriter, FsyncPolicy, fail-stop on write or fsync errors (S5)

Import from this package, not from the modules: only the names below are its public API.
"""

from __future__ import annotations

from services.sequencer.journal.errors import (
    ConfigMismatch,
    JournalCorrupted,
    JournalError,
    JournalFailed,
    RecordRefused,
)
from services.sequencer.journal.format import (
    JOURNAL_FORMAT_VERSION,
    JOURNAL_MAGIC,
    MAX_HEADER_BYTES,
    MAX_RECORD_BYTES,
    RECORD_HEADER,
    JournalHeader,
    journal_config,
    read_journal_header,
)
from services.sequencer.journal.reader import JournalReader, iter_envelopes
from services.sequencer.journal.scan import JournalScan, recover_journal, scan_journal
from services.sequencer.journal.writer import (
    DEFAULT_FSYNC_INTERVAL_MS,
    FsyncPolicy,
    JournalWriter,
    fsync_directory,
)

__all__ = [
    "DEFAULT_FSYNC_INTERVAL_MS",
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_RECORD_BYTES",
    "RECORD_HEADER",
    "ConfigMismatch",
    "FsyncPolicy",
    "JournalCorrupted",
    "JournalError",
    "JournalFailed",
    "JournalHeader",
    "JournalReader",
    "JournalScan",
    "JournalWriter",
    "RecordRefused",
    "fsync_directory",
    "iter_envelopes",
    "journal_config",
    "read_journal_header",
    "recover_journal",
    "scan_journal",
]
