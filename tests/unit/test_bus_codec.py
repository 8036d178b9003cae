"""Frames ``[kind, body]``: every channel's kinds round-trip; every bad frame is a typed refusal (E1).

The only exception a receive loop may see from `FrameCodec.decode` is `FrameError`, with one of
four stable reasons; anything else escaping would take the loop down, so `pytest.raises(FrameError)`
is the assertion and any other exception errors the test.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import limits
from bus.codec import (
    ENVELOPE_BATCH_KIND,
    ENVELOPE_BATCH_OVERHEAD_BYTES,
    ENVELOPE_KIND,
    INGRESS,
    INGRESS_REPLY,
    PUBLICATION,
    REFUSAL_REASONS,
    SEQUENCED_BATCH_KIND,
    SEQUENCED_KIND,
    SYNC_REPLY,
    SYNC_REQUEST,
    Channel,
    FrameCodec,
    FrameError,
    encode_envelope_batch,
    encode_sequenced_batch,
    kind_of,
)
from schemas.base import tag_of
from schemas.bus import (
    MAX_BATCH_ITEMS,
    MAX_RANGE_ITEMS,
    BusMessage,
    EnvelopeBatch,
    Heartbeat,
    IngressAck,
    IngressRefused,
    PeerRole,
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
from schemas.envelope import Envelope
from schemas.jsonschema import build_schemas
from schemas.market import Bar
from tests.unit.wire_samples import ENVELOPES, OUTPUTS, SNAPSHOT, T0

ROOT = Path(__file__).resolve().parents[2]
CHANNELS: list[Channel[Any]] = [INGRESS, INGRESS_REPLY, PUBLICATION, SYNC_REQUEST, SYNC_REPLY]

ENV = ENVELOPES[0]
SEQ = Sequenced(seq_id=99, envelope=ENV, outputs=list(OUTPUTS))
HB = Heartbeat(peer="sequencer-1", role=PeerRole.SEQUENCER, sent_ns=T0, last_seq_id=99)

# One message of every kind, per channel.
SAMPLES: dict[str, list[Any]] = {
    "ingress": [
        *ENVELOPES,
        EnvelopeBatch(envelopes=list(ENVELOPES)),
        HB,
        TurnDone(peer="strategy-s1", turn=3, envelopes=2, payload=b"\x01\x02"),
        StreamEnded(producer_id="file:BTC-USD", last_producer_seq=28_800),
    ],
    "ingress_reply": [
        IngressAck(producer_id="feed", producer_seq=5, seq_id=42),
        IngressRefused(reason="malformed", detail="Expected `int`", producer_id="feed", producer_seq=6),
    ],
    "publication": [
        SEQ,
        SequencedBatch(records=[SEQ, Sequenced(seq_id=100, envelope=ENVELOPES[1], outputs=[])]),
        HB,
        PeerStatus(peer="feed", role=PeerRole.FEED, alive=False, last_seen_ns=T0, missed_heartbeats=3),
        TurnRequest(peer="strategy-s1", turn=1, seq_id=99, kind="bar", payload=b"\x90"),
    ],
    "sync_request": [SnapshotRequest(request_id=1), RangeRequest(request_id=2, from_seq_id=5, to_seq_id=9)],
    "sync_reply": [
        SnapshotReply(request_id=1, seq_id=12, state_hash="ab" * 32, snapshot=SNAPSHOT),
        RangeReply(request_id=2, items=[SEQ], complete=True),
        SyncRefused(request_id=3, reason="pruned", detail="journal starts at 100"),
    ],
}


def codec(channel: Channel[Any]) -> FrameCodec[Any]:
    return FrameCodec(channel)


def refusal(channel: Channel[Any], frames: list[Any]) -> FrameError:
    with pytest.raises(FrameError) as caught:
        FrameCodec(channel).decode(frames)
    assert caught.value.reason in REFUSAL_REASONS
    assert len(caught.value.detail) <= 256
    return caught.value


# --------------------------------------------------------------------------------------------
# kinds and channels


def test_kind_is_the_struct_tag_or_envelope() -> None:
    assert kind_of(Envelope) == ENVELOPE_KIND == b"envelope"
    assert kind_of(IngressAck) == b"ingress_ack"
    assert kind_of(SnapshotReply) == b"snapshot_reply"
    for cls in msgspec.inspect.type_info(BusMessage).types:  # type: ignore[attr-defined]
        assert kind_of(cls.cls) == tag_of(cls.cls.__name__).encode("ascii") == cls.tag.encode("ascii")
    with pytest.raises(TypeError):
        kind_of(dict)


def test_channels_carry_what_the_protocol_says() -> None:
    assert INGRESS.kind_names == (b"envelope", b"envelope_batch", b"heartbeat", b"turn_done", b"stream_ended")
    assert INGRESS_REPLY.kind_names == (b"ingress_ack", b"ingress_refused")
    assert PUBLICATION.kind_names == (b"sequenced", b"sequenced_batch", b"heartbeat", b"peer_status", b"turn_request")
    assert SYNC_REQUEST.kind_names == (b"snapshot_request", b"range_request")
    assert SYNC_REPLY.kind_names == (b"snapshot_reply", b"range_reply", b"sync_refused")
    # Every transport message travels on some channel.
    carried = {cls for ch in CHANNELS for cls in ch.kinds}
    every = {t.cls for t in msgspec.inspect.type_info(BusMessage).types}  # type: ignore[attr-defined]
    assert every <= carried
    assert {ch.name for ch in CHANNELS} == set(SAMPLES)


def test_channel_limits_are_the_named_ones() -> None:
    assert INGRESS.max_bytes == INGRESS_REPLY.max_bytes == limits.MAX_INGRESS_BYTES
    assert PUBLICATION.max_bytes == limits.MAX_MESSAGE_BYTES
    assert SYNC_REQUEST.max_bytes == limits.MAX_SYNC_REQUEST_BYTES
    assert SYNC_REPLY.max_bytes == limits.MAX_SNAPSHOT_BYTES


def test_a_channel_refuses_duplicate_kinds() -> None:
    with pytest.raises(AssertionError, match="duplicate kinds"):
        Channel("twice", (Heartbeat, Heartbeat), 100)


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
def test_every_kind_round_trips(channel: Channel[Any]) -> None:
    c = codec(channel)
    samples = SAMPLES[channel.name]
    assert {type(m) for m in samples} == set(channel.kinds)
    for message in samples:
        frames = c.encode(message)
        assert len(frames) == 2 and all(isinstance(f, bytes) for f in frames)
        assert frames[0] == kind_of(type(message))
        assert c.decode(frames) == message
        # The body is exactly the message's own MessagePack: the journal and goldens hold the same.
        assert frames[1] == msgspec.msgpack.encode(message)
        # zmq.Frame (recv_multipart(copy=False)) and memoryview parts decode the same.
        assert c.decode([zmq.Frame(frames[0]), zmq.Frame(frames[1])]) == message
        assert c.decode([memoryview(frames[0]), memoryview(frames[1])]) == message


def test_a_full_range_reply_of_realistic_records_fits_the_publication_limit() -> None:
    items = [Sequenced(seq_id=i + 1, envelope=ENV, outputs=list(OUTPUTS[:2])) for i in range(MAX_RANGE_ITEMS)]
    frames = codec(SYNC_REPLY).encode(RangeReply(request_id=1, items=items, complete=True))
    assert len(frames[1]) < limits.MAX_MESSAGE_BYTES
    assert codec(SYNC_REPLY).decode(frames).items == items


# --------------------------------------------------------------------------------------------
# batch framing


def test_kind_constants_are_the_kinds() -> None:
    assert kind_of(EnvelopeBatch) == ENVELOPE_BATCH_KIND
    assert kind_of(Sequenced) == SEQUENCED_KIND
    assert kind_of(SequencedBatch) == SEQUENCED_BATCH_KIND


def test_a_batch_built_from_encoded_envelopes_is_the_batch_encoded() -> None:
    c = codec(INGRESS)
    bodies = [c.encode(env)[1] for env in ENVELOPES]
    frames = encode_envelope_batch(bodies)
    batch = EnvelopeBatch(envelopes=list(ENVELOPES))
    assert frames == c.encode(batch)  # the same bytes as encoding the struct
    assert c.decode(frames) == batch
    # The overhead constant covers the header at any length up to the item limit.
    many = [bodies[0]] * MAX_BATCH_ITEMS
    # (too big for the ingress frame limit as a whole: measure the body without the codec's check)
    body = msgspec.msgpack.encode(EnvelopeBatch(envelopes=[ENVELOPES[0]] * MAX_BATCH_ITEMS))
    assert len(body) - sum(map(len, many)) <= ENVELOPE_BATCH_OVERHEAD_BYTES
    assert len(frames[1]) - sum(map(len, bodies)) <= ENVELOPE_BATCH_OVERHEAD_BYTES


def test_a_batch_built_from_encoded_records_is_the_batch_encoded() -> None:
    c = codec(PUBLICATION)
    records = [Sequenced(seq_id=i + 1, envelope=env, outputs=list(OUTPUTS[:2])) for i, env in enumerate(ENVELOPES)]
    frames = encode_sequenced_batch([msgspec.msgpack.encode(r) for r in records])
    assert frames == c.encode(SequencedBatch(records=records))
    assert c.decode(frames).records == records


def test_batches_are_bounded_and_never_empty() -> None:
    raw = {"type": "envelope_batch", "envelopes": [msgspec.to_builtins(ENV)] * (MAX_BATCH_ITEMS + 1)}
    body = msgspec.msgpack.encode(raw)
    assert len(body) > limits.MAX_INGRESS_BYTES  # the frame limit refuses it first...
    assert refusal(INGRESS, [b"envelope_batch", body]).reason == "oversized"
    big_channel = Channel("big", (EnvelopeBatch,), 1 << 30)  # ... and the schema would too
    err = refusal(big_channel, [b"envelope_batch", body])
    assert err.reason == "malformed" and "$.envelopes" in err.detail
    err = refusal(INGRESS, [b"envelope_batch", msgspec.msgpack.encode({"type": "envelope_batch", "envelopes": []})])
    assert err.reason == "malformed" and "$.envelopes" in err.detail
    err = refusal(PUBLICATION, [b"sequenced_batch", msgspec.msgpack.encode({"type": "sequenced_batch", "records": []})])
    assert err.reason == "malformed" and "$.records" in err.detail


def test_one_bad_envelope_refuses_the_whole_batch() -> None:
    raw = {"type": "envelope_batch", "envelopes": [msgspec.to_builtins(ENV), _env_map(producer_seq=0)]}
    err = refusal(INGRESS, [b"envelope_batch", msgspec.msgpack.encode(raw)])
    assert err.reason == "malformed"
    assert "$.envelopes[1].producer_seq" in err.detail


@pytest.mark.parametrize("seq_ids", [[5, 7], [5, 5], [6, 5], [5, 6, 8, 9], [1, 3, 2, 4]])
def test_a_sequenced_batch_must_be_contiguous(seq_ids: list[int]) -> None:
    raw = {
        "type": "sequenced_batch",
        "records": [msgspec.to_builtins(Sequenced(seq_id=s, envelope=ENV, outputs=[])) for s in seq_ids],
    }
    err = refusal(PUBLICATION, [b"sequenced_batch", msgspec.msgpack.encode(raw)])
    assert err.reason == "malformed" and "contiguous" in err.detail
    with pytest.raises(ValueError, match="contiguous"):
        SequencedBatch(records=[Sequenced(seq_id=s, envelope=ENV, outputs=[]) for s in seq_ids])


# --------------------------------------------------------------------------------------------
# sending our own messages wrong is our bug


def test_encoding_a_kind_the_channel_does_not_carry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not carried on channel publication"):
        codec(PUBLICATION).encode(ENV)
    with pytest.raises(TypeError):
        codec(INGRESS).encode(SnapshotRequest(request_id=1))


def test_encoding_an_oversized_body_is_refused_before_sending() -> None:
    tiny: Channel[Heartbeat] = Channel("tiny", (Heartbeat,), 40)
    with pytest.raises(FrameError) as caught:
        FrameCodec(tiny).encode(HB)
    assert caught.value.reason == "oversized"
    assert "channel tiny allows 40" in caught.value.detail


# --------------------------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize("frames", [[], [b"envelope"], [b"envelope", b"", b""], [b"a", b"b", b"c", b"d"]])
def test_wrong_number_of_parts(frames: list[bytes]) -> None:
    err = refusal(INGRESS, frames)
    assert err.reason == "parts"
    assert f"got {len(frames)}" in err.detail


@pytest.mark.parametrize(
    "kind",
    [b"sequenced", b"ingress_ack", b"snapshot_request", b"", b"ENVELOPE", b"envelope\x00", b"\xff\xfe"],
)
def test_a_kind_not_on_the_channel_is_refused_without_decoding(kind: bytes) -> None:
    err = refusal(INGRESS, [kind, b"not even msgpack"])
    assert err.reason == "unknown_kind"
    assert "channel ingress" in err.detail


def test_a_huge_kind_part_is_shown_bounded() -> None:
    err = refusal(INGRESS, [b"k" * 100_000, b""])
    assert err.reason == "unknown_kind"
    assert "..." in err.detail and len(err.detail) < 200


def test_oversized_body_is_refused_before_decoding() -> None:
    body = b"\x00" * (limits.MAX_INGRESS_BYTES + 1)
    err = refusal(INGRESS, [b"envelope", body])
    assert err.reason == "oversized"
    assert str(limits.MAX_INGRESS_BYTES) in err.detail
    # At the limit it is decoded (and here refused as malformed, since it is garbage).
    assert refusal(INGRESS, [b"envelope", body[:-1]]).reason == "malformed"


def _env_map(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = msgspec.to_builtins(ENV)
    raw.update(changes)
    return raw


def _payload_map(**changes: Any) -> dict[str, Any]:
    raw = _env_map()
    raw["payload"] = {**raw["payload"], **changes}
    return raw


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"", "truncated"),
        (b"\xc1", ""),  # never-used msgpack byte
        (msgspec.msgpack.encode(ENV)[:-3], "truncated"),
        (msgspec.msgpack.encode(ENV) + b"\x00", "trailing"),
        (msgspec.msgpack.encode([1, 2, 3]), "Expected `object`"),
        (msgspec.msgpack.encode(_env_map(producer_seq="7")), "$.producer_seq"),
        (msgspec.msgpack.encode(_env_map(producer_seq=0)), "$.producer_seq"),
        (msgspec.msgpack.encode(_env_map(colour="red")), "colour"),
        (msgspec.msgpack.encode(_env_map(source="strategies")), "$.source"),
        (msgspec.msgpack.encode(_env_map(schema_version=2)), "$.schema_version"),
        (msgspec.msgpack.encode(_payload_map(type="place_orders")), "$.payload"),
    ],
)
def test_malformed_envelopes_name_the_problem(body: bytes, names: str) -> None:
    err = refusal(INGRESS, [b"envelope", body])
    assert err.reason == "malformed"
    assert err.detail.startswith("envelope: ")
    assert names in err.detail


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        *[("open", v) for v in (math.nan, math.inf, -math.inf, 1.0, 2**62 + 1, "4200000")],
        *[("volume", v) for v in (math.nan, 12.0, -5, 2**63)],
    ],
)
def test_prices_and_quantities_must_be_sane_integers(field: str, bad: Any) -> None:
    assert isinstance(ENV.payload, Bar)  # wire_samples' first envelope carries a bar
    err = refusal(INGRESS, [b"envelope", msgspec.msgpack.encode(_payload_map(**{field: bad}))])
    assert err.reason == "malformed"
    assert f"$.payload.{field}" in err.detail


def test_kind_and_body_tag_must_agree() -> None:
    body = msgspec.msgpack.encode(TurnDone(peer="p", turn=1))
    err = refusal(INGRESS, [b"heartbeat", body])
    assert err.reason == "malformed"
    assert "$.type" in err.detail


def test_invalid_utf8_is_malformed_not_a_crash() -> None:
    body = msgspec.msgpack.encode(HB).replace(b"sequencer-1", b"sequencer\xff1")
    err = refusal(PUBLICATION, [b"heartbeat", body])
    assert err.reason == "malformed"


def test_hostile_values_quoted_in_the_detail_are_cut() -> None:
    raw = msgspec.to_builtins(HB)
    raw["role"] = "x" * 10_000  # msgspec quotes an invalid enum value
    err = refusal(PUBLICATION, [b"heartbeat", msgspec.msgpack.encode(raw)])
    assert err.reason == "malformed"
    assert len(err.detail) == 256 and err.detail.endswith("...")
    # ... so the refusal still fits the message that reports it to the producer.
    refused = IngressRefused(reason=err.reason, detail=err.detail)
    assert codec(INGRESS_REPLY).decode(codec(INGRESS_REPLY).encode(refused)) == refused


def test_range_reply_over_the_item_limit_is_malformed() -> None:
    raw = {"type": "range_reply", "request_id": 1, "items": [msgspec.to_builtins(SEQ)] * (MAX_RANGE_ITEMS + 1), "complete": True}
    err = refusal(SYNC_REPLY, [b"range_reply", msgspec.msgpack.encode(raw)])
    assert err.reason == "malformed"
    assert "$.items" in err.detail


def test_a_part_that_is_not_bytes_is_malformed() -> None:
    assert refusal(INGRESS, [b"envelope", 12345]).reason == "malformed"


@settings(max_examples=max(300, settings().max_examples))  # cheap: hundreds even in make test
@given(
    channel=st.sampled_from(CHANNELS),
    parts=st.lists(st.binary(max_size=64), max_size=4),
    use_real_kind=st.booleans(),
)
def test_random_frames_decode_or_raise_frame_error_only(channel: Channel[Any], parts: list[bytes], use_real_kind: bool) -> None:
    if use_real_kind and parts:
        parts[0] = channel.kind_names[len(parts[-1]) % len(channel.kinds)]
    try:
        message = FrameCodec(channel).decode(parts)
    except FrameError as exc:
        assert exc.reason in REFUSAL_REASONS
        return
    assert type(message) in channel.kinds


# --------------------------------------------------------------------------------------------
# the contract other languages read


def test_bus_json_schema_lists_every_transport_message() -> None:
    doc = build_schemas()["bus.schema.json"]
    members = msgspec.inspect.type_info(BusMessage).types  # type: ignore[attr-defined]
    assert doc["discriminator"]["mapping"] == {m.tag: f"#/$defs/{m.cls.__name__}" for m in members}


def _human(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def test_protocol_doc_describes_the_framing_and_every_channel() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert "`[kind, body]`" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for channel in CHANNELS:
        row = rows[f"`{channel.name}`"]
        kinds = ", ".join(f"`{kind.decode()}`" for kind in channel.kind_names)
        assert f"| {kinds} |" in row, (channel.name, row)
        assert row.rstrip().endswith(f"| {_human(channel.max_bytes)} |"), (channel.name, row)
    for reason in REFUSAL_REASONS:
        assert f"`{reason}`" in text
