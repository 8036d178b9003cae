"""Lockstep (bus backtest): the sequencer pulls the feed's stream, one turn at a time.

Theory of operation
-------------------
The lockstep sequencer (`services.sequencer.lockstep`) runs the in-process backtest loop and,
whenever it needs this feed's next envelopes, publishes ``TurnRequest(peer="feed-<name>",
kind="feed")`` whose payload is a `FeedPull(from_position, max_count)` (schemas.lockstep). The feed
answers on ingress: the envelopes at positions ``from_position ..`` of its stream (position 1 is
the first envelope; at most `max_count`), in order, then ``TurnDone`` carrying
`FeedPullDone(sent, ended)`; `ended` says nothing follows the last one sent. The sequencer merges
the feeds by the backtest ordering key itself, so the journal is the in-process one.

Turn rules:

- A pull is answered from the position it names: the feed keeps no state the run depends on.
  Reading on from where the previous pull stopped is the common case (the cursor continues);
  any other position (a new run from position 1, a restarted sequencer) reopens the stream and
  skips to it (`StreamCursor`).
- The turn answered last, asked again with the same payload: the answer was lost (the sequencer
  re-publishes an unanswered turn after a few seconds), so the same answer is sent again.
- Turns for other peers, other kinds, and payloads that do not decode are ignored (counted, logged).

The feed never pushes in lockstep: besides its answers it sends only heartbeats, which is how the
sequencer knows it is up before the run starts. It does not re-send on a reconnect either (an
answer lost with a connection is recovered by the repeated turn; re-sending as well would deliver
it twice). It runs until SIGTERM: the run may start over at any time.

`PullResponder` holds the rules and no sockets (tests drive it directly); `LockstepFeed` is the
loop around it: a SUB on the publication for the turn requests, the ingress client for answers.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final

import msgspec
import zmq

from bus import limits
from bus.codec import PUBLICATION, FrameCodec, FrameError, kind_of
from bus.heartbeat import HeartbeatSchedule
from bus.peer import IngressClient
from bus.sockets import Socket
from schemas.bus import Heartbeat, IngressRefused, PeerRole, TurnDone, TurnRequest
from schemas.envelope import Envelope
from schemas.lockstep import FeedPull, FeedPullDone
from services.feeds.source import FeedSource

__all__ = ["FEED_TURN_KIND", "LockstepFeed", "PullResponder", "StreamCursor"]

FEED_TURN_KIND: Final = "feed"
"""`TurnRequest.kind` of a feed pull (what `services.sequencer.lockstep.pulled_feed` sends)."""

_NS_PER_MS: Final = 1_000_000
_TURN_REQUEST: Final = kind_of(TurnRequest)
# Longest single wait: bounds how late a stop request or a due heartbeat is noticed.
_MAX_POLL_MS: Final = 100
# Publication messages drained per loop turn. The sequencer publishes every sequenced record;
# the feed reads only the kind part of those, so a thousand cost well under a millisecond.
_DRAIN_BATCH: Final = limits.POLL_BATCH_MSGS
# A heartbeat the socket would not take is tried again this soon (see services.feeds.pump).
_HEARTBEAT_RETRY_NS: Final = _MAX_POLL_MS * _NS_PER_MS
_PROGRESS_INTERVAL_NS: Final = 5_000 * _NS_PER_MS

_encode = msgspec.msgpack.Encoder().encode
_decode_pull = msgspec.msgpack.Decoder(FeedPull).decode

Answer = list[Envelope | TurnDone]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class StreamCursor:
    """Random access by position (1-based) to a stream that can only be read forward.

    Args:
        open_stream: makes a new iterator over the same envelopes each time.
    """

    def __init__(self, open_stream: Callable[[], Iterator[Envelope]]) -> None:
        self._open = open_stream
        self._it: Iterator[Envelope] | None = None
        self._position = 1  # position of the envelope `_next` returns
        self._peeked: Envelope | None = None
        self.reopened = 0  # times the stream was opened again (a run starting over)

    def read(self, position: int, max_count: int) -> tuple[list[Envelope], bool]:
        """Up to `max_count` envelopes from `position` on, and whether the stream ends after them.

        Returns:
            (envelopes, ended): `ended` is True when nothing follows the last one returned (also
            when `position` is past the end: no envelopes, ended).
        """
        assert position >= 1 and max_count >= 1
        if self._it is None or position < self._position:
            if self._it is not None:
                self.reopened += 1
            self._it = self._open()
            self._position = 1
            self._peeked = None
        while self._position < position:
            if self._next() is None:
                return [], True
        out: list[Envelope] = []
        while len(out) < max_count:
            env = self._next()
            if env is None:
                return out, True
            out.append(env)
        return out, self._peek() is None

    def _next(self) -> Envelope | None:
        env = self._peek()
        if env is not None:
            self._peeked = None
            self._position += 1
        return env

    def _peek(self) -> Envelope | None:
        if self._peeked is None:
            assert self._it is not None
            self._peeked = next(self._it, None)
        return self._peeked


class PullResponder:
    """The turn rules of the module docstring, without sockets.

    Args:
        peer: this feed's peer id (``feed-<name>``): turns for other peers are not ours.
        cursor: the feed's stream.
        log: one line per call.
    """

    def __init__(self, peer: str, cursor: StreamCursor, log: Callable[[str], None] = _stderr) -> None:
        self.peer = peer
        self.cursor = cursor
        self._log = log
        self._last: tuple[int, bytes, Answer] | None = None  # (turn, payload, answer)
        self.pulls = 0
        self.repeats = 0
        self.ignored = 0
        self.position = 1  # the position after the last envelope answered

    def on_turn(self, request: TurnRequest) -> Answer | None:
        """The messages to send for `request`, in order; None when it is not ours or unreadable."""
        if request.peer != self.peer:
            return None
        if request.kind != FEED_TURN_KIND:
            self.ignored += 1
            self._log(f"{self.peer}: turn {request.turn} of kind {request.kind!r} ignored: a feed answers pulls only")
            return None
        last = self._last
        if last is not None and last[0] == request.turn and last[1] == request.payload:
            self.repeats += 1
            return last[2]
        try:
            pull = _decode_pull(request.payload)
        except msgspec.DecodeError as exc:
            self.ignored += 1
            self._log(f"{self.peer}: turn {request.turn}: payload is not a FeedPull ({exc}); ignored")
            return None
        if pull.from_position < self.position and pull.from_position == 1 and self.pulls:
            self._log(f"{self.peer}: the run starts over (pull from position 1, turn {request.turn})")
        envelopes, ended = self.cursor.read(pull.from_position, pull.max_count)
        done = FeedPullDone(sent=len(envelopes), ended=ended)
        turn_done = TurnDone(peer=self.peer, turn=request.turn, envelopes=len(envelopes), payload=_encode(done))
        answer: Answer = [*envelopes, turn_done]
        self._last = (request.turn, request.payload, answer)
        self.pulls += 1
        self.position = pull.from_position + len(envelopes)
        return answer


class LockstepFeed:
    """The lockstep feed's loop: turn requests from the publication, answers to ingress.

    Args:
        client: the ingress client (answers and heartbeats).
        subscription: a SUB socket on the sequencer's publication (`bus.sockets.subscriber`).
        source: the feed's stream.
        peer: ``feed-<name>``.
        clock_ns: monotonic clock (heartbeats, progress lines).
        wall_ns: wall clock (heartbeat `sent_ns`: telemetry).
        log: one line per call.
    """

    def __init__(
        self,
        client: IngressClient,
        subscription: Socket,
        source: FeedSource,
        *,
        peer: str,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        heartbeat_interval_ms: int = limits.HEARTBEAT_INTERVAL_MS,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        self.client = client
        self.subscription = subscription
        self.source = source
        self.peer = peer
        self.responder = PullResponder(peer, StreamCursor(source.open), log)
        self._clock = clock_ns
        self._wall = wall_ns
        self._log = log
        self._codec = FrameCodec(PUBLICATION)
        self._heartbeats = HeartbeatSchedule(heartbeat_interval_ms, start_ns=clock_ns())
        self._outbox: deque[Envelope | TurnDone] = deque()
        self._next_progress_ns = clock_ns() + _PROGRESS_INTERVAL_NS
        self._reported_pulls = 0
        self.refused = 0

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Answer pulls until `should_stop()` (SIGTERM). Returns 0."""
        total = self.source.total
        self._log(
            f"feed {self.source.name}: lockstep, waiting for pulls; "
            f"{'?' if total is None else f'{total:,}'} envelopes, producers {', '.join(self.source.producers)}"
        )
        while not should_stop():
            now = self._clock()
            if self._heartbeats.due(now):
                beat = Heartbeat(peer=self.peer, role=PeerRole.FEED, sent_ns=self._wall(), last_seq_id=0)
                if self.client.send_heartbeat(beat):
                    self._heartbeats.sent(now)
                else:
                    self._heartbeats.next_due_ns = now + _HEARTBEAT_RETRY_NS
            self._send_outbox()
            timeout = min(self._heartbeats.timeout_ms(now), _MAX_POLL_MS)
            if self.subscription.poll(timeout, zmq.POLLIN):
                self._drain()
                self._send_outbox()
            for reply in self.client.poll(0):
                if isinstance(reply, IngressRefused):
                    self.refused += 1
                    self._log(f"feed {self.source.name}: refused: {reply.reason}: {reply.detail}")
            self._progress(self._clock())
        self._log(f"feed {self.source.name}: stopping on request; {self._progress_line()}")
        return 0

    def close(self) -> None:
        self.subscription.close(linger=0)
        self.client.close()

    def _drain(self) -> None:
        for _ in range(_DRAIN_BATCH):
            try:
                frames = self.subscription.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2 or frames[0] != _TURN_REQUEST:
                continue  # records and heartbeats: not the feed's business
            try:
                request = self._codec.decode(frames)
            except FrameError as exc:
                self._log(f"feed {self.source.name}: unreadable turn request refused: {exc.reason}: {exc.detail}")
                continue
            assert isinstance(request, TurnRequest)
            answer = self.responder.on_turn(request)
            if answer is not None:
                self._outbox.extend(answer)

    def _send_outbox(self) -> None:
        """Hand answers to the client in order; envelopes wait while the window is full."""
        client, outbox = self.client, self._outbox
        while outbox:
            item = outbox[0]
            if isinstance(item, TurnDone):
                client.send_turn_done(item)  # queued behind the turn's envelopes, never dropped
            elif client.unacked >= client.max_unacked:
                return
            else:
                client.send(item)
            outbox.popleft()

    def _progress(self, now: int) -> None:
        if now < self._next_progress_ns:
            return
        self._next_progress_ns = now + _PROGRESS_INTERVAL_NS
        if self.responder.pulls != self._reported_pulls:
            self._reported_pulls = self.responder.pulls
            self._log(f"feed {self.source.name}: {self._progress_line()}")

    def _progress_line(self) -> str:
        r = self.responder
        total = self.source.total
        line = f"{r.pulls:,} pulls answered, {r.position - 1:,}" + ("" if total is None else f" of {total:,}") + " sent"
        if r.repeats:
            line += f", {r.repeats} repeated"
        if r.cursor.reopened:
            line += f", run started over {r.cursor.reopened} time(s)"
        if self.refused:
            line += f", {self.refused} refused"
        return line
