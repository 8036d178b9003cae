"""Encoders and typed decoders. Create one per socket or file and reuse it: creation is the cost."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from schemas.envelope import Envelope
from schemas.outputs import Output
from schemas.state import CoreSnapshot

__all__ = [
    "DecodeError",
    "StrictDecoder",
    "canonical_encoder",
    "envelope_decoder",
    "msgpack_encoder",
    "output_decoder",
    "snapshot_decoder",
]

DecodeError = msgspec.DecodeError
T = TypeVar("T")


class StrictDecoder(Generic[T]):
    """A typed msgpack decoder whose every refusal is a `msgspec.DecodeError`.

    msgspec before 0.23 lets invalid UTF-8 in a string escape as `UnicodeDecodeError` (msgspec#714);
    a receive loop that catches only `DecodeError` would die on one hostile frame. This is the one
    place that translates it (kept while older msgspec releases satisfy our requirement).
    """

    __slots__ = ("_decode",)

    def __init__(self, type_: type[T]) -> None:
        self._decode = msgspec.msgpack.Decoder(type_).decode

    def decode(self, frame: bytes | bytearray | memoryview) -> T:
        """Decode one frame.

        Raises:
            msgspec.DecodeError: malformed bytes (`msgspec.ValidationError`, a subclass, when
                the bytes are msgpack but break the schema; its message names the field path).
        """
        try:
            return self._decode(frame)
        except UnicodeDecodeError as exc:
            raise msgspec.DecodeError(f"invalid UTF-8 in a string: {exc.reason} at byte {exc.start}") from exc


def envelope_decoder() -> StrictDecoder[Envelope]:
    """Typed, strict decoder for inbound envelopes (raises msgspec.ValidationError naming the field)."""
    return StrictDecoder(Envelope)


def output_decoder() -> StrictDecoder[Output]:
    """Typed decoder for the core's published outputs."""
    return StrictDecoder(Output)  # type: ignore[arg-type]


def snapshot_decoder() -> StrictDecoder[CoreSnapshot]:
    return StrictDecoder(CoreSnapshot)


def msgpack_encoder() -> msgspec.msgpack.Encoder:
    return msgspec.msgpack.Encoder()


def canonical_encoder() -> msgspec.msgpack.Encoder:
    """Encoder with sorted map keys: the same value always gives the same bytes (for hashes)."""
    return msgspec.msgpack.Encoder(order="deterministic")
