"""The journal's on-disk format: magic, limits, record framing and the file header.

File layout (all integers little-endian)::

    b"TBJRNL01"                                   8 bytes of magic
    header_length u32 | JournalHeader (msgpack) | crc32 u32 over (header_length + header)
    record*

    record = payload_length u32 | seq_id u64 | crc32 u32 | payload (msgpack Envelope)
             crc32 covers payload_length, seq_id and the payload bytes

Everything both sides of the file must agree on lives here: `writer` frames records (`_frame`)
and encodes the header with it, `reader` checks and decodes them with it.

`_frame` lives here rather than in `writer` for speed as well as cohesion: CPython 3.11 compiles
a method call on a name bound by `import` (`_ENCODER.encode`, `_U32.pack`) to a plain attribute
load that builds a bound method on every call, about 13% slower per record than the LOAD_METHOD
it gets on a name defined in the same module.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Final

import msgspec

from services.sequencer.core.config import CoreConfig
from services.sequencer.journal.errors import JournalCorrupted, RecordRefused
from services.sequencer.journal.framing import (
    _LEN_SEQ,
    _U32,
    MAX_RECORD_BYTES,
    RECORD_HEADER,
)

__all__ = [
    "JOURNAL_FORMAT_VERSION",
    "JOURNAL_MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_RECORD_BYTES",
    "RECORD_HEADER",
    "JournalHeader",
    "journal_config",
    "read_journal_header",
]

JOURNAL_MAGIC: Final = b"TBJRNL01"
JOURNAL_FORMAT_VERSION: Final = 1
# The header holds the core config as JSON: instruments and limits, kilobytes in practice. The
# bound makes a damaged length prefix fail fast rather than allocate gigabytes.
MAX_HEADER_BYTES: Final = 1024 * 1024
_RECORD_HEADER_SIZE: Final = RECORD_HEADER.size
_CRC_COVERED_HEADER: Final = _LEN_SEQ.size

# Created once (STYLE 3): the record payload codec, shared by the writer and the reader.
_HEADER_ENCODER: Final = msgspec.msgpack.Encoder(order="deterministic")  # same config, same header bytes


class JournalHeader(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a journal was written under: replay uses exactly this config, nothing else."""

    format_version: int
    config_json: str  # CoreConfig.canonical_json(), decoded as UTF-8
    config_hash: str  # sha256 hex of config_json: checked on read against the JSON itself


def _encode_file_header(config: CoreConfig) -> bytes:
    config_json = config.canonical_json()
    header = JournalHeader(
        format_version=JOURNAL_FORMAT_VERSION,
        config_json=config_json.decode(),
        config_hash=config.config_hash(),
    )
    body = _HEADER_ENCODER.encode(header)
    if len(body) > MAX_HEADER_BYTES:
        raise RecordRefused(f"journal header is {len(body)} bytes, over MAX_HEADER_BYTES {MAX_HEADER_BYTES}")
    prefix = _U32.pack(len(body))
    return JOURNAL_MAGIC + prefix + body + _U32.pack(zlib.crc32(body, zlib.crc32(prefix)))


def _parse_file_header(data: bytes, path: Path) -> tuple[JournalHeader, int]:
    """Check and decode the file header. Returns it and the offset of the first record."""

    def bad(reason: str) -> JournalCorrupted:
        return JournalCorrupted(path, 0, None, reason)

    magic_end = len(JOURNAL_MAGIC)
    if len(data) < magic_end + _U32.size:
        raise bad(f"file is {len(data)} bytes, shorter than a file header")
    if data[:magic_end] != JOURNAL_MAGIC:
        raise bad(f"magic {bytes(data[:magic_end])!r} is not {JOURNAL_MAGIC!r}")
    (length,) = _U32.unpack_from(data, magic_end)
    if length > MAX_HEADER_BYTES:
        raise bad(f"header length {length} exceeds MAX_HEADER_BYTES {MAX_HEADER_BYTES}")
    body_start = magic_end + _U32.size
    body_end = body_start + length
    if body_end + _U32.size > len(data):
        raise bad(f"header length {length} runs past the end of the {len(data)}-byte file")
    (stored_crc,) = _U32.unpack_from(data, body_end)
    body = data[body_start:body_end]
    if zlib.crc32(body, zlib.crc32(data[magic_end:body_start])) != stored_crc:
        raise bad("header crc mismatch")
    try:
        header = msgspec.msgpack.decode(body, type=JournalHeader)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 escapes msgspec (#714)
        raise bad(f"header does not decode: {exc}") from None
    if header.format_version != JOURNAL_FORMAT_VERSION:
        raise bad(f"format version {header.format_version}, this reader knows {JOURNAL_FORMAT_VERSION}")
    return header, body_end + _U32.size


def journal_config(header: JournalHeader, path: Path) -> CoreConfig:
    """The core config a journal was written under, checked against the hash beside it.

    Raises:
        JournalCorrupted: the config JSON does not validate or does not hash to `config_hash`.
    """
    try:
        config = CoreConfig.model_validate_json(header.config_json)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise JournalCorrupted(path, 0, None, f"header config does not validate: {exc}") from None
    actual = config.config_hash()
    if actual != header.config_hash:
        raise JournalCorrupted(path, 0, None, f"header config hashes to {actual}, header says {header.config_hash}")
    return config


def read_journal_header(path: str | os.PathLike[str]) -> JournalHeader:
    """Read and check only the file header of a journal.

    Raises:
        JournalCorrupted: the header is damaged.
    """
    p = Path(path)
    prefix_size = len(JOURNAL_MAGIC) + _U32.size
    with open(p, "rb") as f:
        head = f.read(prefix_size)
        if len(head) == prefix_size:
            (length,) = _U32.unpack_from(head, len(JOURNAL_MAGIC))
            # Read no more than the bound allows: a damaged length must not allocate gigabytes.
            head += f.read(min(length, MAX_HEADER_BYTES + 1) + _U32.size)
    header, _ = _parse_file_header(head, p)
    return header
