"""Real time (paper, live): a feed pushes its envelopes into ingress, never dropped, paced.

Theory of operation
-------------------
One synchronous loop, poll-driven (nothing blocks longer than `max_poll_ms`):

1. Heartbeat. A `Heartbeat` (role feed) every `heartbeat_interval_ms` through the ingress client
   (`bus.heartbeat.HeartbeatSchedule`). One the socket does not take (not connected yet, or
   envelopes waiting in front of it) is dropped and tried again 100 ms later.
2. Send. Envelopes go out in stream order while they are due (`services.feeds.pacing`) and the
   unacknowledged window has room; those due together go as one `IngressClient.send_batch`
   (`EnvelopeBatch` frames), a lone one as a plain envelope. The window (`IngressClient.max_unacked`) is the flow
   control: the sequencer acknowledges an envelope once it is journaled; at the limit the loop
   polls for acknowledgements and waits. Nothing is ever dropped.
3. End of stream. After the last envelope, one `StreamEnded(producer_id, last_producer_seq)` per
   producer id of the feed, written behind every envelope (only once the client's queue is
   empty: the connection is FIFO, so it arrives after them).
4. Done when every envelope is acknowledged (or refused) and the stream ends are written: exit
   code 0, or 1 if the sequencer refused anything. Heartbeats continue until then. An endless
   feed (synthetic, count unlimited) runs until SIGTERM.

Re-sending. Envelopes the socket took may die with the connection, so after a reconnect
(`services.feeds.connection`: the sequencer restarted, or the network came back) the loop calls
`IngressClient.resend_unacked` and writes the stream ends again behind them. Optionally
(`stall_resend_ms`) it does the same when nothing has been acknowledged for that long although
something is outstanding: an ack the sequencer could not send is otherwise never repeated.

Restarts. A feed process that restarts begins again at producer_seq 1 (or at `resume_from`): the
sequencer drops what it already has by (producer_id, producer_seq), acknowledging each repeat,
so a restart costs time (and a duplicate-drop record per repeat in the journal), never data.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import zmq

from bus import limits
from bus.codec import INGRESS, FrameCodec
from bus.conflate import Conflator
from bus.heartbeat import HeartbeatSchedule
from bus.peer import IngressClient
from schemas.bus import Heartbeat, IngressAck, IngressRefused, PeerRole, StreamEnded
from schemas.envelope import Envelope
from services.feeds.connection import ReconnectWatch
from services.feeds.pacing import Pacer
from services.feeds.source import FeedSource

__all__ = ["EXIT_DONE", "EXIT_REFUSED", "FeedPump", "FeedStats"]

EXIT_DONE: Final = 0
"""Everything acknowledged, or stopped by a signal."""
EXIT_REFUSED: Final = 1
"""The run ended, but the sequencer refused some of it."""

_NS_PER_MS: Final = 1_000_000

# Longest single wait: bounds how late a stop request, a reconnect or a progress line is noticed.
DEFAULT_MAX_POLL_MS: Final = 100
# Envelopes offered per loop turn before acks and heartbeats are looked at again: enough to keep
# the window full at hundreds of thousands a second, short enough for a turn to stay < 10 ms.
DEFAULT_SEND_BATCH: Final = 1_000
# A progress line at most this often; plus one at the start and one at the end.
DEFAULT_PROGRESS_INTERVAL_MS: Final = 5_000
# Refusals logged one by one before only every REFUSAL_LOG_EVERY-th is.
_REFUSALS_LOGGED: Final = 10
_REFUSAL_LOG_EVERY: Final = 1_000

# Paced feeds wait for the connection before the first envelope; they look again this often.
_CONNECT_CHECK_MS: Final = 10

# A heartbeat the socket would not take (no connection yet, envelopes queued) is tried again this
# soon rather than a whole interval later: a new feed announces itself as soon as it is connected.
_HEARTBEAT_RETRY_NS: Final = DEFAULT_MAX_POLL_MS * _NS_PER_MS


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class FeedStats:
    """Counts of one run (telemetry and tests).

    Attributes:
        offered: envelopes handed to the ingress client (once each; repeats not counted).
        skipped: envelopes before `resume_from`, not sent.
        refused: envelopes (or stream ends) the sequencer refused.
        resends: times the window was sent again (reconnects and stalls).
        stream_ends_sent: `StreamEnded` messages written (repeats included).
        conflated: live data replaced by a newer value of its instrument while the window was
            full (the sequencer sees the gap in the producer counter as a `ProducerGap`).
    """

    offered: int = 0
    skipped: int = 0
    refused: int = 0
    resends: int = 0
    stream_ends_sent: int = 0
    conflated: int = 0


class FeedPump:
    """Runs one feed's stream into an `IngressClient` (see the module docstring).

    Args:
        client: the connected ingress client; its `max_unacked` is the window.
        source: what to send.
        peer: the id in our heartbeats (e.g. ``feed-btc``).
        clock_ns: monotonic clock (pacing, heartbeat schedule, stalls).
        wall_ns: wall clock (heartbeat `sent_ns` only: telemetry).
        heartbeat_interval_ms: heartbeat period.
        stall_resend_ms: re-send the window after this long without any reply while something is
            outstanding; None: only after a reconnect.
        resume_from: skip envelopes whose producer_seq is below this (a restart that knows where
            the sequencer got to); 1 sends everything.
        conflate: live data that cannot wait (a real-time feed): when the window is full, keep
            only the latest due envelope per instrument and count the others (ARCHITECTURE,
            Backpressure). Off: wait for room, drop nothing (files, replays, pace "max").
        log: where progress and problems go (one line per call).
    """

    def __init__(
        self,
        client: IngressClient,
        source: FeedSource,
        *,
        peer: str,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        heartbeat_interval_ms: int = limits.HEARTBEAT_INTERVAL_MS,
        stall_resend_ms: int | None = None,
        resume_from: int = 1,
        max_poll_ms: int = DEFAULT_MAX_POLL_MS,
        send_batch: int = DEFAULT_SEND_BATCH,
        progress_interval_ms: int = DEFAULT_PROGRESS_INTERVAL_MS,
        conflate: bool = False,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        assert source.producers and len(set(source.producers)) == len(source.producers), source.producers
        assert resume_from >= 1 and max_poll_ms >= 0 and send_batch >= 1
        assert stall_resend_ms is None or stall_resend_ms > 0
        self.client = client
        self.source = source
        self.peer = peer
        self.stats = FeedStats()
        self._clock = clock_ns
        self._wall = wall_ns
        self._log = log
        self._pacer = Pacer(source.pace)
        self._heartbeats = HeartbeatSchedule(heartbeat_interval_ms, start_ns=clock_ns())
        self._stall_ns = None if stall_resend_ms is None else stall_resend_ms * _NS_PER_MS
        self._resume_from = resume_from
        self._max_poll_ms = max_poll_ms
        self._send_batch = send_batch
        self._progress_ns = progress_interval_ms * _NS_PER_MS
        self._codec = FrameCodec(INGRESS)
        self._envelopes = source.open()
        self._next: Envelope | None = None  # taken from the stream, not yet accepted by the client
        self._exhausted = False
        self._last_seq: dict[str, int] = dict.fromkeys(source.producers, 0)
        self._ends_to_write: list[str] = []  # producers whose StreamEnded is (again) due
        self._waiting_since_ns: int | None = None
        self._started_ns = clock_ns()
        self._next_progress_ns = self._started_ns + self._progress_ns
        self._watch = ReconnectWatch(client.socket)
        self._conflator: Conflator[str, Envelope] | None = Conflator() if conflate else None

    # ------------------------------------------------------------------------------- the loop

    @property
    def finished(self) -> bool:
        """Everything sent and acknowledged (or refused), and the stream ends written."""
        return (
            self._exhausted
            and self._next is None
            and not self._ends_to_write
            and self.client.unacked == 0
            and self.client.unsent == 0
            and not (self._conflator is not None and len(self._conflator))
        )

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Send the whole stream and wait for the sequencer to acknowledge it.

        Args:
            should_stop: polled every turn (at most `max_poll_ms` apart); True ends the run at
                once (SIGTERM): unacknowledged envelopes are simply sent again next start.

        Returns:
            `EXIT_DONE`, or `EXIT_REFUSED` when the sequencer refused something.
        """
        total = self.source.total
        self._log(
            f"feed {self.source.name}: starting, {'?' if total is None else f'{total:,}'} envelopes, "
            f"producers {', '.join(self.source.producers)}, pace {self.source.pace}, "
            f"window {self.client.max_unacked:,}"
            + (f", resuming at producer_seq {self._resume_from}" if self._resume_from > 1 else "")
        )
        while True:
            if should_stop():
                self._log(f"feed {self.source.name}: stopping on request; {self._progress_line()}")
                return EXIT_DONE
            now = self._clock()
            if self._watch.check():
                self._resend("reconnected")
            if self._heartbeats.due(now):
                self._heartbeat(now)
            wait_ms = self._send_due(now)
            self._write_stream_ends()
            if self.finished:
                self._log(f"feed {self.source.name}: done, everything acknowledged; {self._progress_line()}")
                return EXIT_DONE if self.stats.refused == 0 else EXIT_REFUSED
            timeout = min(self._heartbeats.timeout_ms(now), self._max_poll_ms)
            if wait_ms is not None:
                timeout = min(timeout, wait_ms)
            replies = self.client.poll(timeout)
            now = self._clock()
            self._handle(replies, now)
            self._check_stall(now)
            if now >= self._next_progress_ns:
                self._next_progress_ns = now + self._progress_ns
                self._log(f"feed {self.source.name}: {self._progress_line()}")

    def close(self) -> None:
        """Stop monitoring and close the client's socket (linger 0)."""
        self._watch.close()
        self.client.close()

    # ------------------------------------------------------------------------------- sending

    def _take(self) -> Envelope | None:
        """The next envelope to send (skipping those before `resume_from`), or None at the end."""
        if self._next is not None:
            return self._next
        if self._exhausted:
            return None
        for env in self._envelopes:
            last = self._last_seq.get(env.producer_id)
            assert last is not None, f"envelope of undeclared producer {env.producer_id!r}"
            assert env.producer_seq == last + 1, (env.producer_id, env.producer_seq, last)
            self._last_seq[env.producer_id] = env.producer_seq
            if env.producer_seq < self._resume_from:
                self.stats.skipped += 1
                continue
            self._next = env
            return env
        self._exhausted = True
        self._ends_to_write = list(self.source.producers)
        return None

    def _send_due(self, now: int) -> int | None:
        """Offer due envelopes to the client while the window has room: all that are due at
        once go in one `IngressClient.send_batch` (few frames), a lone one with `send`.

        Returns:
            Milliseconds until the next envelope is due (0: more could go now), or None when
            waiting is not about time (window full, or nothing left).
        """
        due: list[Envelope] = []
        wait = self._collect_due(now, due)
        if len(due) == 1:
            self.client.send(due[0])
        elif due:
            self.client.send_batch(due)
        self.stats.offered += len(due)
        return wait

    def _collect_due(self, now: int, due: list[Envelope]) -> int | None:
        """Move due envelopes from the stream to `due` (at most `send_batch`, and only as many
        as the window has room for); returns what `_send_due` returns."""
        client = self.client
        room = client.max_unacked - client.unacked
        conflator = self._conflator
        if conflator is not None and len(conflator) and room > 0:
            # What was held back goes first, in the order its instruments first waited.
            held = conflator.drain()
            due.extend(waiting for _, waiting in held[:room])
            for instrument, waiting in held[room:]:
                conflator.offer(instrument, waiting)
        for _ in range(self._send_batch):
            env = self._take()
            if env is None:
                return None
            pacer = self._pacer
            if not pacer.unpaced and not pacer.anchored and not client.socket.poll(0, zmq.POLLOUT):
                # Paced: the schedule starts when the sequencer can take the first envelope (the
                # DEALER is writable only once connected), or a slow connect would burst the start.
                return _CONNECT_CHECK_MS
            due_ns = pacer.due_ns(env.event_time_ns, now)
            if due_ns > now:
                return -(-(due_ns - now) // _NS_PER_MS)
            if len(due) >= room:
                if conflator is None:
                    return None
                # Live data, window full: the newest value per instrument replaces an older one
                # still waiting (counted); it goes when acknowledgements make room.
                before = conflator.conflated
                if not conflator.offer(env.instrument, env):
                    return None  # too many instruments waiting: wait like a replay would
                self.stats.conflated += conflator.conflated - before
                self._next = None
                continue
            due.append(env)
            self._next = None
        return 0

    def _heartbeat(self, now: int) -> None:
        heartbeat = Heartbeat(peer=self.peer, role=PeerRole.FEED, sent_ns=self._wall(), last_seq_id=0)
        if self.client.send_heartbeat(heartbeat):
            self._heartbeats.sent(now)
        else:  # not connected yet, or envelopes waiting (which show we are alive): try again soon
            self._heartbeats.next_due_ns = now + _HEARTBEAT_RETRY_NS

    def _write_stream_ends(self) -> None:
        """Write pending `StreamEnded`s once nothing else waits in the client's queue (FIFO)."""
        if not self._ends_to_write or self.client.unsent:
            return
        socket = self.client.socket
        while self._ends_to_write:
            pid = self._ends_to_write[0]
            frames = self._codec.encode(StreamEnded(producer_id=pid, last_producer_seq=self._last_seq[pid]))
            try:
                socket.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                return  # not connected or queue full: next turn
            self._ends_to_write.pop(0)
            self.stats.stream_ends_sent += 1

    def _resend(self, why: str) -> None:
        again = self.client.resend_unacked()
        if self._exhausted:
            self._ends_to_write = list(self.source.producers)
        self.stats.resends += 1
        self._log(
            f"feed {self.source.name}: {why}: sending {again:,} unacknowledged envelopes"
            + (f" and {len(self._ends_to_write)} stream end(s)" if self._ends_to_write else "")
            + " again"
        )

    # ------------------------------------------------------------------------------- replies

    def _handle(self, replies: Sequence[IngressAck | IngressRefused], now: int) -> None:
        for reply in replies:
            if isinstance(reply, IngressAck):
                continue
            self.stats.refused += 1
            n = self.stats.refused
            if n <= _REFUSALS_LOGGED or n % _REFUSAL_LOG_EVERY == 0:
                self._log(
                    f"feed {self.source.name}: refused #{n}: {reply.reason}: {reply.detail}"
                    + (f" ({reply.producer_id} #{reply.producer_seq})" if reply.producer_id else "")
                )
        outstanding = self.client.unacked > 0
        if not outstanding:
            self._waiting_since_ns = None
        elif replies or self._waiting_since_ns is None:
            self._waiting_since_ns = now

    def _check_stall(self, now: int) -> None:
        if self._stall_ns is None or self._waiting_since_ns is None:
            return
        if now - self._waiting_since_ns >= self._stall_ns:
            self._waiting_since_ns = now
            self._resend(f"no acknowledgement for {self._stall_ns // _NS_PER_MS:,} ms")

    # ------------------------------------------------------------------------------- logging

    def _progress_line(self) -> str:
        elapsed_s = max((self._clock() - self._started_ns) / 1e9, 1e-9)
        offered = self.stats.offered
        acked = offered - self.client.unacked - self.stats.refused
        total = self.source.total
        of = "" if total is None else f"/{total - self.stats.skipped:,}"
        parts = [
            f"{offered:,}{of} sent",
            f"{max(acked, 0):,} acknowledged",
            f"{self.client.unacked:,} in window",
            f"{offered / elapsed_s:,.0f}/s",
        ]
        if self.stats.refused:
            parts.append(f"{self.stats.refused:,} refused")
        if self.stats.resends:
            parts.append(f"{self.stats.resends} resends")
        if self.stats.conflated:
            parts.append(f"{self.stats.conflated:,} conflated")
        return ", ".join(parts)
