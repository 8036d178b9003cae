"""Reading a journal: every record checked, decoded from memory (the replay hot path).

Assertions are paired (STYLE 8): `writer` checks a record before writing it; here it is checked
again after reading (length bounded and inside the file, crc, seq contiguous, header seq ==
decoded seq).

Torn tail vs corruption (TigerBeetle). When the record at offset P fails its framing checks
(incomplete header, zero or oversized length, length past the end of file, crc mismatch) the
reader searches every byte offset after P for a *valid* record (crc ok, seq id above the last
good one). If one exists, the damage sits before data that was committed after it: that is
corruption and the journal is refused (`JournalCorrupted` names file, offset and seq id).
Otherwise the damage is a torn or garbage tail, the residue of a crash mid-append, and recovery
cuts the file at P. A record whose crc checks but whose seq id is wrong, or whose payload does
not decode, cannot come from a torn write (the crc matched): it is refused as corruption too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

from schemas.envelope import Envelope
from services.sequencer.core.config import CoreConfig
from services.sequencer.journal.errors import JournalCorrupted
from services.sequencer.journal.format import (
    _CRC_COVERED_HEADER,
    _RECORD_HEADER_SIZE,
    _parse_file_header,
    journal_config,
)
from services.sequencer.journal.framing import _DECODER, _U32, MAX_RECORD_BYTES, RECORD_HEADER
from services.sequencer.journal.framing import crc32 as framing_crc32

__all__ = ["JournalReader", "iter_envelopes"]

_NONZERO: Final = re.compile(rb"[^\x00]")  # damage scan: jump over zero-filled runs


def _describe_damage(data: bytes, pos: int) -> str:
    """Why the record at `pos` failed its framing checks (only called on the damage path)."""
    end = len(data)
    if end - pos < _RECORD_HEADER_SIZE:
        return f"incomplete record header ({end - pos} of {_RECORD_HEADER_SIZE} bytes)"
    length, _seq, _crc = RECORD_HEADER.unpack_from(data, pos)
    if length == 0:
        return "zero record length"
    if length > MAX_RECORD_BYTES:
        return f"record length {length} exceeds MAX_RECORD_BYTES {MAX_RECORD_BYTES}"
    if pos + _RECORD_HEADER_SIZE + length > end:
        return f"record length {length} runs {pos + _RECORD_HEADER_SIZE + length - end} bytes past end of file"
    return "crc mismatch"


def _find_valid_record(data: bytes, start: int, last_good_seq: int) -> tuple[int, int] | None:
    """First offset >= `start` holding a valid record (crc ok, seq > last good), or None.

    Byte by byte: a damaged length field tells us nothing about where the next record starts.
    Only run on the damage path, and cheap per offset: a random length rarely passes the bound.
    Runs of zero bytes (a preallocated or zero-filled tail) are skipped at C speed: a record's
    length is never 0, so no record starts where its 4 length bytes would all be zero.
    """
    end = len(data)
    last_start = end - _RECORD_HEADER_SIZE
    mv = memoryview(data)
    unpack = RECORD_HEADER.unpack_from
    crc32 = framing_crc32
    nonzero = _NONZERO.search
    pos = start
    while pos <= last_start:
        length, seq, crc = unpack(data, pos)
        if length == 0:
            found = nonzero(data, pos)
            if found is None:
                return None
            # The first nonzero byte may be the high byte of a length that starts up to 3 earlier.
            pos = max(pos + 1, found.start() - (_U32.size - 1))
            continue
        if length <= MAX_RECORD_BYTES and seq > last_good_seq:
            body = pos + _RECORD_HEADER_SIZE
            if (
                body + length <= end
                and crc32(mv[body : body + length], crc32(mv[pos : pos + _CRC_COVERED_HEADER])) == crc
            ):
                return pos, seq
        pos += 1
    return None


class JournalReader:
    """Iterate a journal's envelopes, checking every record; never modifies the file.

    The whole file is read into memory once and records are checked and decoded from
    memoryview slices: this loop is the replay hot path. After iteration ends (normally),
    `valid_end`, `tail_bytes`, `tail_reason`, `records` and `last_seq_id` describe what was found.
    A torn tail ends the iteration quietly (see `tail_bytes`); corruption raises.

    Args:
        path: the journal file.
        after_seq_id: records up to this seq id are checked (crc, seq) but not decoded or
            yielded: the suffix after a checkpoint.

    Raises (while iterating):
        JournalCorrupted: damage before the tail, a bad file header, or a crc-valid record with
            the wrong seq id or a payload that does not decode.
    """

    def __init__(self, path: str | os.PathLike[str], *, after_seq_id: int = 0) -> None:
        self.path = Path(path)
        self._data = self.path.read_bytes()
        self.header, self.data_start = _parse_file_header(self._data, self.path)
        self.file_size = len(self._data)
        self.after_seq_id = after_seq_id
        self.records = 0
        self.last_seq_id = 0
        self.valid_end = self.data_start
        self.tail_bytes = 0
        self.tail_reason: str | None = None
        self.finished = False

    def config(self) -> CoreConfig:
        """The config this journal was written under (checked against the header's hash)."""
        return journal_config(self.header, self.path)

    def __iter__(self) -> Iterator[Envelope]:
        data = self._data
        mv = memoryview(data)
        end = len(data)
        pos = self.data_start
        expected = 1  # seq id of the record at `pos`; every record before it was good
        skip_through = self.after_seq_id
        unpack = RECORD_HEADER.unpack_from
        crc32 = framing_crc32
        decode = _DECODER.decode
        hsize = _RECORD_HEADER_SIZE
        covered = _CRC_COVERED_HEADER
        max_len = MAX_RECORD_BYTES
        limit = end - hsize
        damaged = False
        try:
            while pos < end:
                if pos > limit:
                    damaged = True
                    break
                length, seq, crc = unpack(data, pos)
                body = pos + hsize
                stop = body + length
                if (
                    length == 0
                    or length > max_len
                    or stop > end
                    or crc32(mv[body:stop], crc32(mv[pos : pos + covered])) != crc
                ):
                    damaged = True
                    break
                if seq != expected:
                    raise JournalCorrupted(
                        self.path, pos, expected, f"crc-valid record carries seq id {seq}, expected {expected}"
                    )
                if seq > skip_through:
                    try:
                        env = decode(mv[body:stop])
                    # ValidationError is a DecodeError; msgspec lets invalid UTF-8 escape as
                    # UnicodeDecodeError (msgspec issue #714), so both mean "does not decode".
                    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                        raise JournalCorrupted(
                            self.path, pos, seq, f"crc-valid payload does not decode: {exc}"
                        ) from None
                    if env.seq_id != seq:
                        raise JournalCorrupted(
                            self.path, pos, seq, f"record header seq id {seq} != envelope seq_id {env.seq_id}"
                        )
                    yield env
                expected = seq + 1
                pos = stop
        finally:
            # Published on every exit (also a consumer stopping early), kept out of the loop body.
            self.records = expected - 1
            self.last_seq_id = expected - 1
            self.valid_end = pos
        if damaged:
            reason = _describe_damage(data, pos)
            following = _find_valid_record(data, pos + 1, expected - 1)
            if following is not None:
                at, seq = following
                raise JournalCorrupted(
                    self.path,
                    pos,
                    expected,
                    f"{reason}, yet a valid record (seq {seq}) follows at offset {at}: damage before the tail",
                )
            self.tail_bytes = end - pos
            self.tail_reason = reason
        self.finished = True


def iter_envelopes(path: str | os.PathLike[str], *, after_seq_id: int = 0) -> Iterator[Envelope]:
    """Yield the envelopes of a journal in seq order (the fast replay path); read-only.

    A torn tail ends the iteration silently; use `JournalReader` to learn about it.

    Raises:
        JournalCorrupted: see `JournalReader`.
    """
    return iter(JournalReader(path, after_seq_id=after_seq_id))
