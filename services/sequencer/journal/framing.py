"""Framing one journal record: encode, check, and wrap in its length, seq id and checksum.

Apart from `format.py` (which defines the header Struct, which mypyc cannot compile) so that the
compiled build runs the per-record path natively.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Final

import msgspec

from schemas.enums import Source
from schemas.envelope import Envelope
from services.sequencer.journal.errors import RecordRefused

__all__ = ["MAX_RECORD_BYTES", "RECORD_HEADER"]

# An envelope's fields are bounded by the schema (ids 64 chars, free text 256, no lists), so a
# valid one encodes to well under 4 KiB. 64 KiB leaves room for schema growth while letting the
# reader reject a garbage length at once instead of treating megabytes of tail as one record.
MAX_RECORD_BYTES: Final = 64 * 1024
# (payload length, seq id, crc32): 16 bytes, no padding ("<" packs tight).
RECORD_HEADER: Final = struct.Struct("<IQI")
_LEN_SEQ: Final = struct.Struct("<IQ")  # the part of the record header the crc covers
_U32: Final = struct.Struct("<I")

# Created once (STYLE 3): the record payload codec, shared by the writer and the reader.
_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(Envelope)


def _frame(env: Envelope, expected_seq: int, decode_check: bool = True) -> bytes:
    """Encode and check one record before it is written.

    `decode_check=False` skips decoding the bytes back: only for envelopes whose every value was
    already checked against the schema's limits another way (the backtest checks each market-data
    series once, `services/backtest/wire_limits.py`, before building envelopes from it).

    Raises:
        RecordRefused: seq id not `expected_seq`, payload over MAX_RECORD_BYTES, or the bytes
            would not decode back (a field outside the schema's limits).
    """
    seq = env.seq_id
    if seq != expected_seq:
        raise RecordRefused(f"envelope seq_id {seq} does not follow journal seq id {expected_seq - 1}")
    try:
        payload = _ENCODER.encode(env)
    except (msgspec.EncodeError, UnicodeEncodeError, TypeError) as exc:  # e.g. a lone surrogate in a str
        raise RecordRefused(f"envelope seq {seq} does not encode: {exc}") from None
    length = len(payload)
    if length > MAX_RECORD_BYTES:
        raise RecordRefused(f"envelope seq {seq} encodes to {length} bytes, over MAX_RECORD_BYTES {MAX_RECORD_BYTES}")
    if decode_check:
        try:
            decoded_seq = _DECODER.decode(payload).seq_id
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise RecordRefused(f"envelope seq {seq} would not decode when read back: {exc}") from None
        if decoded_seq != seq:
            raise RecordRefused(f"envelope seq {seq} decodes back with seq_id {decoded_seq}")
    crc = zlib.crc32(payload, zlib.crc32(_LEN_SEQ.pack(length, seq)))
    # The same bytes as (length, seq) + crc + payload, with one concatenation: the payload is
    # copied once, not twice (this runs for every record).
    return RECORD_HEADER.pack(length, seq, crc) + payload


def frame_records(envs: Sequence[Envelope], expected_seq: int, prechecked_market_data: bool = False) -> bytes:
    """Frame contiguous envelopes, each checked as `_frame` checks it, into one blob.

    Here rather than in the writer so that the compiled build runs the per-record loop natively.
    `prechecked_market_data` skips the decode-back of market-data envelopes only (see `_frame`).

    Raises:
        RecordRefused: any record fails its checks (the caller writes nothing).
    """
    market = Source.MARKET_DATA
    parts = []
    for env in envs:
        parts.append(_frame(env, expected_seq, not prechecked_market_data or env.source is not market))
        expected_seq += 1
    return b"".join(parts)
