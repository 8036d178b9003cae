"""Framing one journal record: encode, check, and wrap in its length, seq id and checksum.

Apart from `format.py` (which defines the header Struct, which mypyc cannot compile) so that the
compiled build runs the per-record path natively.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import msgspec
from zlib_ng.zlib_ng import crc32  # zlib's CRC-32, bit for bit, SIMD-accelerated: see `crc32_agrees`

from schemas.enums import Source
from schemas.envelope import Envelope
from services.sequencer.journal.errors import RecordRefused

__all__ = ["MAX_RECORD_BYTES", "RECORD_HEADER", "crc32"]

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
    """Encode and check one record before it is written (see `_append_frame`)."""
    out = bytearray()
    _append_frame(out, env, expected_seq, decode_check)
    return bytes(out)


def _append_frame(out: bytearray, env: Envelope, expected_seq: int, decode_check: bool) -> None:
    """Encode and check one record, and append it (header, then payload) to `out`.

    `decode_check=False` skips decoding the bytes back: only for envelopes whose every value was
    already checked against the schema's limits another way (the backtest checks each market-data
    series once, `services/backtest/wire_limits.py`, before building envelopes from it).

    Raises:
        RecordRefused: seq id not `expected_seq`, payload over MAX_RECORD_BYTES, or the bytes
            would not decode back (a field outside the schema's limits). `out` is unchanged.
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
    crc = crc32(payload, crc32(_LEN_SEQ.pack(length, seq)))
    # Appended in place: one copy of the payload per record (a concatenation, then a join of the
    # batch, would copy it twice; measured 20% slower per record).
    out += RECORD_HEADER.pack(length, seq, crc)
    out += payload


def frame_records(
    envs: Sequence[Envelope], expected_seq: int, prechecked_market_data: bool = False
) -> bytearray:
    """Frame contiguous envelopes, each checked as `_append_frame` checks it, into one blob.

    Here rather than in the writer so that the compiled build runs the per-record loop natively.
    `prechecked_market_data` skips the decode-back of market-data envelopes only (see `_frame`).

    Raises:
        RecordRefused: any record fails its checks (the caller writes nothing).
    """
    market = Source.MARKET_DATA
    out = bytearray()
    for env in envs:
        _append_frame(out, env, expected_seq, not prechecked_market_data or env.source is not market)
        expected_seq += 1
    return out
