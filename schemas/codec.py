"""Encoders and typed decoders. Create one per socket or file and reuse it: creation is the cost."""

from __future__ import annotations

import msgspec

from schemas.envelope import Envelope
from schemas.outputs import Output
from schemas.state import CoreSnapshot

__all__ = [
    "DecodeError",
    "canonical_encoder",
    "envelope_decoder",
    "msgpack_encoder",
    "output_decoder",
    "snapshot_decoder",
]

DecodeError = msgspec.DecodeError


def envelope_decoder() -> msgspec.msgpack.Decoder[Envelope]:
    """Typed, strict decoder for inbound envelopes (raises msgspec.ValidationError naming the field)."""
    return msgspec.msgpack.Decoder(Envelope)


def output_decoder() -> msgspec.msgpack.Decoder[Output]:
    """Typed decoder for the core's published outputs."""
    return msgspec.msgpack.Decoder(Output)


def snapshot_decoder() -> msgspec.msgpack.Decoder[CoreSnapshot]:
    return msgspec.msgpack.Decoder(CoreSnapshot)


def msgpack_encoder() -> msgspec.msgpack.Encoder:
    return msgspec.msgpack.Encoder()


def canonical_encoder() -> msgspec.msgpack.Encoder:
    """Encoder with sorted map keys: the same value always gives the same bytes (for hashes)."""
    return msgspec.msgpack.Encoder(order="deterministic")
