"""The producer's window (bus.peer.IngressClient): cumulative acks, refusals, batch framing.

`IngressAck(producer_id, producer_seq)` is cumulative (schemas.bus.IngressAck): it covers every
envelope of that producer up to producer_seq, and nothing of any other producer. Envelopes that
wait side by side go out as one `EnvelopeBatch` frame, cut at the ingress frame limit and at
MAX_BATCH_ITEMS, never across a TurnDone; a lone envelope goes as a plain `envelope` frame.

Over inproc sockets (no network, no files): a ROUTER plays the sequencer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import zmq

from bus import limits
from bus.codec import ENVELOPE_BATCH_OVERHEAD_BYTES, INGRESS, INGRESS_REPLY, FrameCodec
from bus.peer import IngressBackpressure, IngressClient
from bus.sockets import ingress_server
from schemas.bus import EnvelopeBatch, IngressAck, IngressRefused, TurnDone
from schemas.envelope import Envelope
from tests.unit.wire_samples import ENVELOPES

ENV = ENVELOPES[0]
DEADLINE_S = 2.0
_names = itertools.count()


def env(producer: str, seq: int) -> Envelope:
    return msgspec.structs.replace(ENV, producer_id=producer, producer_seq=seq, seq_id=0)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


class Sequencer:
    """The server side: reads frames, sends replies to the one producer."""

    def __init__(self, ctx: zmq.Context[Any]) -> None:
        endpoint = f"inproc://ingress-window-{next(_names)}"
        self.socket = ingress_server(ctx, endpoint)
        self.endpoint = endpoint
        self.codec = FrameCodec(INGRESS)
        self.replies = FrameCodec(INGRESS_REPLY)
        self.identity = b""

    def frames(self, client: IngressClient, count: int) -> list[Any]:
        """The next `count` messages as decoded, flushing the client meanwhile."""
        got: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count:
            assert time.monotonic() < deadline, f"got {len(got)} of {count} frames"
            client.flush()
            if self.socket.poll(10, zmq.POLLIN):
                identity, *parts = self.socket.recv_multipart(zmq.NOBLOCK)
                self.identity = identity
                got.append(self.codec.decode(parts))
        assert not self.socket.poll(20, zmq.POLLIN), "more frames than expected"
        return got

    def reply(self, client: IngressClient, *messages: IngressAck | IngressRefused) -> None:
        for message in messages:
            self.socket.send_multipart([self.identity, *self.replies.encode(message)])
        got: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(messages):
            assert time.monotonic() < deadline
            got.extend(client.poll(10))
        assert got == list(messages)


def connected(ctx: zmq.Context[Any], **kwargs: Any) -> tuple[Sequencer, IngressClient]:
    server = Sequencer(ctx)
    client = IngressClient(ctx, server.endpoint, **kwargs)
    deadline = time.monotonic() + DEADLINE_S
    while not client.socket.poll(10, zmq.POLLOUT):
        assert time.monotonic() < deadline
    return server, client


def envelopes_of(frames: list[Any]) -> list[tuple[str, int]]:
    out = []
    for frame in frames:
        for e in frame.envelopes if isinstance(frame, EnvelopeBatch) else [frame]:
            out.append((e.producer_id, e.producer_seq))
    return out


# --------------------------------------------------------------------------------------------
# cumulative acknowledgements


def test_an_ack_covers_every_envelope_of_its_producer_up_to_its_seq(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    client.send_batch([env("a", n) for n in range(1, 6)] + [env("b", n) for n in range(1, 4)])
    assert envelopes_of(server.frames(client, 1)) == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("a", 5),
                                                      ("b", 1), ("b", 2), ("b", 3)]  # fmt: skip
    assert client.unacked == 8
    server.reply(client, IngressAck(producer_id="a", producer_seq=3, seq_id=3))
    assert client.unacked == 5  # a#1..3 gone; a#4, a#5 and b#1..3 stay
    server.reply(client, IngressAck(producer_id="b", producer_seq=1, seq_id=7))
    assert client.unacked == 4
    server.reply(client, IngressAck(producer_id="a", producer_seq=2, seq_id=2))  # stale: nothing more
    assert client.unacked == 4
    server.reply(client, IngressAck(producer_id="c", producer_seq=99, seq_id=9))  # nobody's
    assert client.unacked == 4
    server.reply(client, IngressAck(producer_id="a", producer_seq=100, seq_id=9))  # past the end
    assert client.unacked == 2
    assert client.resend_unacked() == 2
    assert envelopes_of(server.frames(client, 1)) == [("b", 2), ("b", 3)]
    server.reply(client, IngressAck(producer_id="b", producer_seq=3, seq_id=10))
    assert client.unacked == 0 and client.unsent == 0


def test_a_refusal_removes_only_its_envelope_and_a_later_ack_passes_it(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    client.send_batch([env("a", n) for n in range(1, 5)])
    server.frames(client, 1)
    server.reply(client, IngressRefused(reason="unauthorized", detail="no", producer_id="a", producer_seq=2))
    assert client.unacked == 3
    server.reply(client, IngressRefused(reason="malformed", detail="no producer named"))
    assert client.unacked == 3
    server.reply(client, IngressRefused(reason="unauthorized", detail="no", producer_id="a", producer_seq=1))
    assert client.unacked == 2
    server.reply(client, IngressAck(producer_id="a", producer_seq=4, seq_id=4))
    assert client.unacked == 0
    assert client._window == {}  # nothing lingers once every entry is passed


def test_an_envelope_sent_out_of_order_is_still_covered(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    for n in (5, 6, 2, 9, 1):
        client.send(env("a", n))
    server.frames(client, 5)
    server.reply(client, IngressAck(producer_id="a", producer_seq=5, seq_id=5))
    assert client.unacked == 2  # 6 and 9
    server.reply(client, IngressAck(producer_id="a", producer_seq=8, seq_id=8))
    assert client.unacked == 1
    assert client.resend_unacked() == 1
    assert envelopes_of(server.frames(client, 1)) == [("a", 9)]


def test_sending_the_same_envelope_again_keeps_one_window_entry(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx, max_unacked=2)
    client.send(env("a", 1))
    client.send(env("a", 1))
    client.send(env("a", 2))
    assert client.unacked == 2
    server.frames(client, 3)
    server.reply(client, IngressAck(producer_id="a", producer_seq=2, seq_id=2))
    assert client.unacked == 0 and client._window == {}


def test_an_envelope_acked_while_it_waits_is_not_sent_again(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    client.send_batch([env("a", n) for n in range(1, 4)])
    server.frames(client, 1)
    client.resend_unacked()  # queued again, but the socket writes at once: take them off the wire
    server.frames(client, 1)
    # Now queue copies without a connection to send them on, ack, and reconnect.
    client.socket.disconnect(server.endpoint)
    deadline = time.monotonic() + DEADLINE_S
    while client.socket.poll(10, zmq.POLLOUT):
        assert time.monotonic() < deadline
    assert client.resend_unacked() == 3 and client.unsent == 3
    client._forget_through("a", 2)  # what an ack arriving meanwhile does
    client.socket.connect(server.endpoint)
    assert envelopes_of(server.frames(client, 1)) == [("a", 3)]


# --------------------------------------------------------------------------------------------
# batch framing


def test_a_lone_envelope_goes_as_a_plain_frame(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    assert client.send(env("a", 1)) is True
    assert client.send_batch([env("a", 2)]) is True
    assert server.frames(client, 2) == [env("a", 1), env("a", 2)]


def test_envelopes_waiting_together_go_as_one_batch_and_a_turn_done_is_never_overtaken(
    ctx: zmq.Context[Any],
) -> None:
    server, client = connected(ctx)
    done = TurnDone(peer="feed-x", turn=1, envelopes=3)
    client.socket.disconnect(server.endpoint)  # let everything queue up
    deadline = time.monotonic() + DEADLINE_S
    while client.socket.poll(10, zmq.POLLOUT):
        assert time.monotonic() < deadline
    assert client.send_batch([env("a", 1), env("b", 1), env("a", 2)]) is False
    assert client.send_turn_done(done) is False
    assert client.send(env("a", 3)) is False
    assert client.send(env("a", 4)) is False
    assert client.unsent == 6
    client.socket.connect(server.endpoint)
    frames = server.frames(client, 3)
    assert frames[0] == EnvelopeBatch(envelopes=[env("a", 1), env("b", 1), env("a", 2)])
    assert frames[1] == done
    assert frames[2] == EnvelopeBatch(envelopes=[env("a", 3), env("a", 4)])
    assert client.counters.frames_out == 3


def test_batches_are_cut_at_the_frame_limit(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx)
    codec = FrameCodec(INGRESS)
    body = len(codec.encode(env("a", 1000))[1])
    per_frame = (limits.MAX_INGRESS_BYTES - ENVELOPE_BATCH_OVERHEAD_BYTES) // body
    n = 2 * per_frame + 7
    client.send_batch([env("a", k) for k in range(1000, 1000 + n)])
    frames = server.frames(client, 3)
    assert [len(f.envelopes) for f in frames] == [per_frame, per_frame, 7]
    assert all(len(codec.encode(f)[1]) <= limits.MAX_INGRESS_BYTES for f in frames)
    assert envelopes_of(frames) == [("a", k) for k in range(1000, 1000 + n)]


def test_batches_are_cut_at_the_item_limit(ctx: zmq.Context[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Realistic envelopes reach the frame limit long before MAX_BATCH_ITEMS: lower the bound.
    import bus.peer

    monkeypatch.setattr(bus.peer, "MAX_BATCH_ITEMS", 3)
    server, client = connected(ctx)
    client.send_batch([env("a", n) for n in range(1, 8)])
    frames = server.frames(client, 3)
    assert [len(f.envelopes) if isinstance(f, EnvelopeBatch) else 1 for f in frames] == [3, 3, 1]
    assert envelopes_of(frames) == [("a", n) for n in range(1, 8)]


def test_send_batch_refuses_a_batch_the_window_cannot_hold_and_queues_nothing(ctx: zmq.Context[Any]) -> None:
    server, client = connected(ctx, max_unacked=4)
    client.send_batch([env("a", 1), env("a", 2)])
    with pytest.raises(IngressBackpressure):
        client.send_batch([env("a", 3), env("a", 4), env("a", 5)])
    assert client.unacked == 2
    client.send_batch([env("a", 2), env("a", 3), env("a", 4)])  # a#2 is a repeat: room enough
    assert client.unacked == 4
    assert envelopes_of(server.frames(client, 2)) == [("a", 1), ("a", 2), ("a", 2), ("a", 3), ("a", 4)]
