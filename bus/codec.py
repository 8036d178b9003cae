"""Frames on the wire: ``[kind, body]``, one codec per channel.

Theory of operation: every ZeroMQ message of tradebus is exactly two parts. `kind` is the ASCII
name of the message type (``b"envelope"`` for an `Envelope`, else the struct's tag, e.g.
``b"ingress_ack"``); `body` is its MessagePack encoding (schemas.bus explains why the kind is
outside the body). A `Channel` lists the kinds one socket role may carry and the largest body it
accepts; a `FrameCodec` for that channel holds one encoder and one typed, strict decoder per
kind, created once (creation is the expensive part of msgspec).

Decoding is the boundary where a peer's bad input is refused (STYLE point 5): every failure is a
`FrameError` with a stable `reason` code, never another exception, so a receive loop catches one
type, counts `reason`, optionally tells the peer (`IngressRefused`) and carries on. Encoding our
own message onto the wrong channel is our bug and raises TypeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec

from bus.limits import MAX_INGRESS_BYTES, MAX_MESSAGE_BYTES, MAX_SNAPSHOT_BYTES, MAX_SYNC_REQUEST_BYTES
from schemas.base import Message, tag_of
from schemas.bus import (
    MAX_BATCH_ITEMS,
    EnvelopeBatch,
    Heartbeat,
    IngressAck,
    IngressRefused,
    PeerStatus,
    RangeReply,
    RangeRequest,
    Sequenced,
    SequencedBatch,
    SnapshotReply,
    SnapshotRequest,
    StreamEnded,
    SyncRefused,
    TurnDone,
    TurnRequest,
)
from schemas.codec import StrictDecoder
from schemas.envelope import Envelope
from schemas.types import MAX_TEXT_CHARS

__all__ = [
    "ENVELOPE_BATCH_KIND",
    "ENVELOPE_BATCH_OVERHEAD_BYTES",
    "ENVELOPE_KIND",
    "INGRESS",
    "INGRESS_REPLY",
    "PUBLICATION",
    "REFUSAL_REASONS",
    "SEQUENCED_BATCH_KIND",
    "SEQUENCED_KIND",
    "SYNC_REPLY",
    "SYNC_REQUEST",
    "Channel",
    "FrameCodec",
    "FrameError",
    "FrameLike",
    "IngressMessage",
    "IngressReplyMessage",
    "PublicationMessage",
    "RefusalReason",
    "SyncReplyMessage",
    "SyncRequestMessage",
    "encode_envelope_batch",
    "encode_sequenced_batch",
    "kind_of",
]

ENVELOPE_KIND: Final = b"envelope"
ENVELOPE_BATCH_KIND: Final = b"envelope_batch"
SEQUENCED_KIND: Final = b"sequenced"
SEQUENCED_BATCH_KIND: Final = b"sequenced_batch"

RefusalReason = Literal["parts", "unknown_kind", "malformed", "oversized"]
# Stable codes: telemetry counts by them and IngressRefused carries them; never rename one.
REFUSAL_REASONS: Final[tuple[RefusalReason, ...]] = ("parts", "unknown_kind", "malformed", "oversized")

# What a receive loop hands to `decode`: pyzmq gives bytes, or zmq.Frame with copy=False (which
# supports the buffer protocol and `.bytes`); tests pass bytes.
FrameLike = bytes | bytearray | memoryview | Any

T = TypeVar("T")

# A kind name is shown in a refusal; a hostile kind part may be long or binary.
_MAX_SHOWN_KIND_BYTES: Final = 40
# msgspec's messages quote offending values (an unknown enum value, a wrong tag), which a hostile
# peer controls: details are cut to fit `IngressRefused.detail` (schemas.types.MAX_TEXT_CHARS).
_MAX_DETAIL_CHARS: Final = MAX_TEXT_CHARS


class FrameError(Exception):
    """A frame refused before it reached the application.

    Attributes:
        reason: one of `REFUSAL_REASONS`: ``parts`` (not exactly two parts), ``unknown_kind``
            (kind not allowed on this channel), ``malformed`` (body is not valid MessagePack for
            the kind, or breaks the schema; `detail` then holds msgspec's message, which names the
            field path, e.g. ``Expected `int` >= 1 - at `$.producer_seq```), ``oversized`` (body
            larger than the channel allows).
        detail: human-readable, bounded; safe to log and to send back in `IngressRefused`.
    """

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        assert reason in REFUSAL_REASONS, reason
        if len(detail) > _MAX_DETAIL_CHARS:
            detail = detail[: _MAX_DETAIL_CHARS - 3] + "..."
        super().__init__(f"{reason}: {detail}")
        self.reason: RefusalReason = reason
        self.detail = detail


def kind_of(cls: type[Any]) -> bytes:
    """The kind part for a message class: ``b"envelope"`` or the struct's tag as ASCII.

    Raises:
        TypeError: for a class that is neither `Envelope` nor a tagged `schemas.base.Message`.
    """
    if cls is Envelope:
        return ENVELOPE_KIND
    if isinstance(cls, type) and issubclass(cls, Message):
        tag = tag_of(cls.__name__)
        # The struct's own tag (what goes in its `type` field) is what the kind must agree with.
        assert cls.__struct_config__.tag == tag, (cls, cls.__struct_config__.tag)
        return tag.encode("ascii")
    raise TypeError(f"{cls!r} is not a wire message (Envelope or a schemas.base.Message)")


@dataclass(frozen=True, slots=True)
class Channel(Generic[T]):
    """The kinds one socket role may carry, and the largest body it accepts.

    Attributes:
        name: for errors and telemetry (``ingress``, ``publication``, ...).
        kinds: the message classes allowed, in a fixed order.
        max_bytes: the largest body; also the receiving socket's zmq.MAXMSGSIZE.
    """

    name: str
    kinds: tuple[type[T], ...]
    max_bytes: int

    def __post_init__(self) -> None:
        names = [kind_of(cls) for cls in self.kinds]
        assert len(set(names)) == len(names), f"channel {self.name}: duplicate kinds {names}"
        assert self.max_bytes > 0

    @property
    def kind_names(self) -> tuple[bytes, ...]:
        return tuple(kind_of(cls) for cls in self.kinds)


IngressMessage = Envelope | EnvelopeBatch | Heartbeat | TurnDone | StreamEnded
IngressReplyMessage = IngressAck | IngressRefused
PublicationMessage = Sequenced | SequencedBatch | Heartbeat | PeerStatus | TurnRequest
SyncRequestMessage = SnapshotRequest | RangeRequest
SyncReplyMessage = SnapshotReply | RangeReply | SyncRefused

# Producers (feeds, gateways, strategy hosts, control) -> the sequencer's ingress ROUTER.
INGRESS: Final[Channel[IngressMessage]] = Channel(
    "ingress", (Envelope, EnvelopeBatch, Heartbeat, TurnDone, StreamEnded), MAX_INGRESS_BYTES
)
# The sequencer's ingress ROUTER -> the producer that sent the envelope.
INGRESS_REPLY: Final[Channel[IngressReplyMessage]] = Channel(
    "ingress_reply", (IngressAck, IngressRefused), MAX_INGRESS_BYTES
)
# The sequencer's PUB -> every subscriber. Heartbeats travel here too, after the records they
# count, so a subscriber that sees Heartbeat(last_seq_id=n) has been sent every record <= n.
# Records go one per frame (`Sequenced`) or several (`SequencedBatch`): a subscriber reads both.
PUBLICATION: Final[Channel[PublicationMessage]] = Channel(
    "publication",
    (Sequenced, SequencedBatch, Heartbeat, PeerStatus, TurnRequest),
    MAX_MESSAGE_BYTES,
)
# A follower's sync DEALER -> the sequencer's sync ROUTER.
SYNC_REQUEST: Final[Channel[SyncRequestMessage]] = Channel(
    "sync_request", (SnapshotRequest, RangeRequest), MAX_SYNC_REQUEST_BYTES
)
# The sync ROUTER -> the follower that asked. Snapshots can be large (limits.MAX_SNAPSHOT_BYTES).
SYNC_REPLY: Final[Channel[SyncReplyMessage]] = Channel(
    "sync_reply",
    (SnapshotReply, RangeReply, SyncRefused),
    MAX_SNAPSHOT_BYTES,
)


class _EnvelopeBatchFrame(msgspec.Struct, tag_field="type", tag="envelope_batch"):
    """`EnvelopeBatch` on the wire, built from envelopes already encoded (msgspec.Raw is copied
    as is): a producer keeps each envelope's bytes for re-sending, so a batch costs a copy,
    not a second encoding. Same bytes as encoding the `EnvelopeBatch` (a unit test holds it)."""

    envelopes: list[msgspec.Raw]


# What an EnvelopeBatch body adds to its envelopes' bodies: the map header, the `type` and
# `envelopes` keys, the tag and the array header (at most 5 bytes); measured, not guessed.
ENVELOPE_BATCH_OVERHEAD_BYTES: Final = len(msgspec.msgpack.encode(_EnvelopeBatchFrame(envelopes=[]))) + 4

_batch_encoder = msgspec.msgpack.Encoder()


class _SequencedBatchFrame(msgspec.Struct, tag_field="type", tag="sequenced_batch"):
    """`SequencedBatch` on the wire from records already encoded (the publisher encodes each
    record once, to size the batch). Same bytes as encoding the `SequencedBatch`."""

    records: list[msgspec.Raw]


def encode_sequenced_batch(bodies: Sequence[bytes]) -> list[bytes]:
    """The frame parts of a `SequencedBatch` of records already encoded (msgpack of `Sequenced`
    with contiguous, ascending seq ids: the caller's to keep), in order.

    The caller keeps within the channel's limits (at most `MAX_BATCH_ITEMS` bodies, the whole
    within `PUBLICATION.max_bytes`; both asserted).
    """
    assert 1 <= len(bodies) <= MAX_BATCH_ITEMS, len(bodies)
    body = _batch_encoder.encode(_SequencedBatchFrame(records=[msgspec.Raw(b) for b in bodies]))
    assert len(body) <= MAX_MESSAGE_BYTES, len(body)
    return [SEQUENCED_BATCH_KIND, body]


def encode_envelope_batch(bodies: Sequence[bytes]) -> list[bytes]:
    """The frame parts of an `EnvelopeBatch` of envelopes already encoded (each a `body` from
    ``FrameCodec(INGRESS).encode``), in order.

    The caller keeps within the channel's limits: at most `MAX_BATCH_ITEMS` bodies whose sizes
    plus `ENVELOPE_BATCH_OVERHEAD_BYTES` fit `INGRESS.max_bytes` (asserted: a bigger frame would
    make the sequencer's socket drop our connection).
    """
    assert 1 <= len(bodies) <= MAX_BATCH_ITEMS, len(bodies)
    body = _batch_encoder.encode(_EnvelopeBatchFrame(envelopes=[msgspec.Raw(b) for b in bodies]))
    assert len(body) <= MAX_INGRESS_BYTES, len(body)
    return [ENVELOPE_BATCH_KIND, body]


def _shown(kind: bytes) -> str:
    """A kind part as it may appear in a refusal: bounded, printable."""
    text = repr(kind[:_MAX_SHOWN_KIND_BYTES])
    return text + ("..." if len(kind) > _MAX_SHOWN_KIND_BYTES else "")


def _as_bytes(part: FrameLike) -> bytes | bytearray | memoryview:
    """The buffer of one received part (zmq.Frame exposes `.buffer`; bytes pass through)."""
    if isinstance(part, (bytes, bytearray, memoryview)):
        return part
    buffer = getattr(part, "buffer", None)
    if isinstance(buffer, memoryview):
        return buffer
    raise FrameError("malformed", f"frame part of type {type(part).__name__} is not bytes")


class FrameCodec(Generic[T]):
    """Encode and decode the frames of one channel. Create one per socket and reuse it.

    Not thread-safe (msgspec encoders keep an internal buffer); one per socket is the rule anyway.
    """

    __slots__ = ("_by_type", "_decoders", "_encoder", "channel")

    def __init__(self, channel: Channel[T]) -> None:
        self.channel = channel
        self._encoder = msgspec.msgpack.Encoder()
        self._decoders: dict[bytes, StrictDecoder[T]] = {kind_of(cls): StrictDecoder(cls) for cls in channel.kinds}
        self._by_type: dict[type[Any], bytes] = {cls: kind_of(cls) for cls in channel.kinds}

    def encode(self, message: T) -> list[bytes]:
        """The two frame parts for `message`.

        Returns:
            ``[kind, body]``, ready for ``socket.send_multipart``.

        Raises:
            TypeError: `message` is not one of this channel's kinds (our bug, not the peer's).
            FrameError: reason ``oversized`` if the body exceeds the channel's `max_bytes`: the
                receiving socket would drop it and disconnect us.
        """
        kind = self._by_type.get(type(message))
        if kind is None:
            raise TypeError(f"{type(message).__name__} is not carried on channel {self.channel.name}")
        body = self._encoder.encode(message)
        if len(body) > self.channel.max_bytes:
            raise FrameError(
                "oversized",
                f"{kind.decode()} body is {len(body)} bytes, channel {self.channel.name} allows {self.channel.max_bytes}",
            )
        return [kind, body]

    def decode(self, frames: Sequence[FrameLike]) -> T:
        """Decode one received message (its parts, without any ROUTER identity part).

        Args:
            frames: the parts as received: bytes, or zmq.Frame objects (copy=False).

        Returns:
            The typed message; its class is one of the channel's kinds.

        Raises:
            FrameError: with reason ``parts``, ``unknown_kind``, ``oversized`` or ``malformed``.
        """
        if len(frames) != 2:
            raise FrameError("parts", f"expected 2 parts [kind, body] on {self.channel.name}, got {len(frames)}")
        kind = bytes(_as_bytes(frames[0]))
        decoder = self._decoders.get(kind)
        if decoder is None:
            raise FrameError("unknown_kind", f"kind {_shown(kind)} is not carried on channel {self.channel.name}")
        body = _as_bytes(frames[1])
        size = body.nbytes if isinstance(body, memoryview) else len(body)
        # The socket's MAXMSGSIZE normally refuses this first; inproc sockets never check it.
        if size > self.channel.max_bytes:
            raise FrameError(
                "oversized",
                f"{kind.decode()} body is {size} bytes, channel {self.channel.name} allows {self.channel.max_bytes}",
            )
        try:
            return decoder.decode(body)
        except msgspec.DecodeError as exc:  # ValidationError is a subclass
            raise FrameError("malformed", f"{kind.decode()}: {exc}") from None
