"""The paper venue gateway process: `run_gateway(profile, venue_name)`.

One process per `[[venues]]` entry, peer id ``gateway-<venue>``. It owns a `SimulatedVenue` built
from the profile (`core_config_for_profile`, the venue's `matching_config()`), connects to the
sequencer's ingress (DEALER) and publication (SUB), and sends a `Heartbeat` (role gateway) on
ingress every `limits.HEARTBEAT_INTERVAL_MS`.

- ``mode = "backtest"``: lockstep. Only `TurnRequest`s addressed to this peer are read from the
  publication; each is answered with a `TurnDone` on ingress (`services.gateway.turns`). The
  published records themselves are not followed: the sequencer hands the venue everything it
  needs in the turn payload.
- ``mode = "paper"`` / ``"live"``: free-running. A `bus.peer.Subscriber` follows the stream
  (snapshot, records, resync); `services.gateway.paper` drives the venue and the report envelopes
  it releases go out through a `bus.peer.IngressClient`, kept until acknowledged and sent again
  when the sequencer comes back from silence or the oldest has waited `_RESEND_AFTER_MS` (the
  core drops repeats by producer counter and idempotency key, so resending is always safe).

Every socket is non-blocking; the loop never waits longer than `_MAX_WAIT_MS`, so SIGTERM or
SIGINT is acted on within that: sockets are closed (linger 0) and the process exits 0. What was
not sent by then is lost with the venue (a paper venue lives in this process only).

Security: ``ipc://`` endpoints run without a mechanism; a ``tcp://`` endpoint uses CURVE with this
peer's key pair ``<keys_dir>/gateway-<venue>.key_secret`` and the sequencer's public key
``<keys_dir>/<server_key>.key`` (`bus.security`), or plaintext only if the profile says
``allow_plaintext_tcp``.

Exit codes: 0 stopped by a signal; 1 could not start (unknown venue, venue without instruments,
bad keys, unreadable profile).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

import zmq

from bus import limits
from bus.codec import PUBLICATION, FrameCodec, FrameError, kind_of
from bus.heartbeat import HeartbeatSchedule
from bus.peer import IngressBackpressure, IngressClient, Subscriber
from bus.security import SecurityError
from bus.sockets import Context, Security, Socket, subscriber
from schemas.bus import Heartbeat, IngressAck, IngressRefused, PeerRole, SnapshotReply, TurnRequest
from schemas.envelope import Envelope
from services.deploy.peer_security import client_security
from services.deploy.profile import Profile, ProfileError, load_profile
from services.deploy.run_config import core_config_for_profile
from services.gateway.paper import PaperGateway
from services.gateway.turns import TurnHandler
from services.gateway.venue_log import VenueLog, venue_log_path
from services.matching import SimulatedVenue

__all__ = ["GatewayService", "main", "peer_id", "run_gateway"]

_log = logging.getLogger("services.gateway")

# Longest a loop iteration waits on its sockets: bounds how late a signal, a heartbeat or a due
# report is acted on. 50 ms is far below the heartbeat interval and costs nothing when idle.
_MAX_WAIT_MS: Final = 50
_NS_PER_MS: Final = 1_000_000
_TURN_REQUEST_KIND: Final = kind_of(TurnRequest)
# Unacknowledged reports are sent again when the oldest has waited this long (the sequencer
# acknowledges within one journal commit, milliseconds): covers a sequencer restarted within its
# silence window, whose restart the heartbeat monitor never reports, and a lost envelope.
_RESEND_AFTER_MS: Final = limits.SILENT_AFTER_HEARTBEATS * limits.HEARTBEAT_INTERVAL_MS


def peer_id(venue_name: str) -> str:
    """The gateway's peer id (heartbeats, turn requests, key name): ``gateway-<venue>``."""
    return f"gateway-{venue_name}"


class _BySocketType:
    """Security for a `Subscriber` whose publication and sync endpoints differ in transport: it
    applies one setting to the SUB socket and the other to the sync DEALER."""

    def __init__(self, sub: Security | None, sync: Security | None) -> None:
        self._sub = sub
        self._sync = sync

    def _of(self, socket: Socket) -> Security | None:
        return self._sub if socket.socket_type == zmq.SUB else self._sync

    def apply_server(self, socket: Socket) -> None:
        raise SecurityError("a gateway binds no socket")

    def apply_client(self, socket: Socket) -> None:
        chosen = self._of(socket)
        if chosen is not None:
            chosen.apply_client(socket)


def _security(profile: Profile, endpoint: str, peer: str) -> Security | None:
    """See `services.deploy.peer_security.client_security`."""
    return client_security(profile, peer, endpoint)


class GatewayService:
    """One gateway process's sockets and loop (lockstep or free-running, from the profile's mode).

    Args:
        profile: the group's profile.
        venue_name: which `[[venues]]` entry this gateway runs.
        clock_ns: monotonic clock for heartbeats and report release (injectable for tests).

    Raises:
        KeyError: no venue of that name in the profile.
        ValueError: the venue cannot be built (e.g. no instrument of the profile trades there).
        SecurityError, OSError: keys for a tcp endpoint are missing or unsafe.
    """

    def __init__(self, profile: Profile, venue_name: str, *, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        venue_profile = profile.venue(venue_name)
        self.peer = peer_id(venue_name)
        self.mode = profile.group.mode
        core_config = core_config_for_profile(profile)
        matching = venue_profile.matching_config()

        def new_venue() -> SimulatedVenue:
            return SimulatedVenue(venue_name, core_config, matching)

        new_venue()  # refuse to start with a venue that cannot be built, before any socket exists
        instruments = sorted(name for name, spec in core_config.instruments.items() if spec.venue == venue_name)
        self._clock = clock_ns
        self._stop = threading.Event()
        self._log_file = VenueLog(venue_log_path(profile.group.run_dir, venue_name))
        self.ctx: Context = zmq.Context()
        self._closers: list[Callable[[], None]] = []
        endpoints = profile.endpoints
        try:
            self.ingress = IngressClient(
                self.ctx, endpoints.ingress, security=_security(profile, endpoints.ingress, self.peer)
            )
            self._closers.append(self.ingress.close)
            pub_security = _security(profile, endpoints.publication, self.peer)
            sync_security = _security(profile, endpoints.sync, self.peer)
            self.turns: TurnHandler | None = None
            self.paper: PaperGateway | None = None
            self._turn_sub: Socket | None = None
            self._subscriber: Subscriber | None = None
            if self.mode == "backtest":
                self.turns = TurnHandler(self.peer, new_venue, self._log_file)
                self._turn_sub = subscriber(self.ctx, endpoints.publication, security=pub_security)
                self._closers.append(self._turn_sub.close)
            else:
                self.paper = PaperGateway(
                    new_venue(), instruments, release_latency_ns=matching.latency_ns, log=self._log_file
                )
                self._subscriber = Subscriber(
                    self.ctx,
                    endpoints.publication,
                    endpoints.sync,
                    on_snapshot=self._on_snapshot,
                    security=(
                        pub_security
                        if type(pub_security) is type(sync_security)
                        else _BySocketType(pub_security, sync_security)
                    ),
                    clock_ns=clock_ns,
                )
                self._closers.append(self._subscriber.close)
        except BaseException:
            self.close()
            raise
        self._pub_codec = FrameCodec(PUBLICATION)
        self._heartbeats = HeartbeatSchedule(limits.HEARTBEAT_INTERVAL_MS, start_ns=clock_ns())
        self._outbox: deque[Envelope] = deque()  # released reports the ingress window could not take yet
        self._last_seq_id = 0
        self._sequencer_seen = False
        self._sequencer_alive = False
        # Reports handed to ingress and not yet acknowledged: producer_seq -> when last sent.
        self._inflight: dict[int, int] = {}
        self._producer_id = self.paper.producer_id if self.paper is not None else ""
        _log.info(
            "%s: mode %s, venue %s, instruments %s, latency %d ns, venue incarnation %d",
            self.peer,
            self.mode,
            venue_name,
            ",".join(instruments),
            matching.latency_ns,
            self._log_file.incarnation,
        )

    # ------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Ask the loop to stop (signal handlers call this); it returns within `_MAX_WAIT_MS`."""
        self._stop.set()

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()
        self.ctx.destroy(linger=0)
        self._log_file.close()

    def run(self) -> int:
        """Serve until `request_stop`. Returns the exit code (0)."""
        step = self._step_lockstep if self.mode == "backtest" else self._step_free_running
        while not self._stop.is_set():
            step()
            self._drain_ingress()
            self._heartbeat()
        stats = self.turns.stats if self.turns is not None else (self.paper.stats if self.paper else None)
        _log.info("%s: stopping; %s; ingress %s", self.peer, stats, self.ingress.counters.as_dict())
        return 0

    # ------------------------------------------------------------------ lockstep

    def _step_lockstep(self) -> None:
        socket = self._turn_sub
        turns = self.turns
        assert socket is not None and turns is not None
        if not socket.poll(self._wait_ms(), zmq.POLLIN):
            return
        for _ in range(limits.POLL_BATCH_MSGS):
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) == 2 and frames[0] != _TURN_REQUEST_KIND:
                continue  # records, heartbeats, peer status: not decoded, the turn payload has it all
            try:
                message = self._pub_codec.decode(frames)
            except FrameError as exc:
                self.ingress.counters.refuse(exc.reason)
                _log.warning("%s: publication frame refused: %s", self.peer, exc)
                continue
            assert isinstance(message, TurnRequest)
            done = turns.handle(message)
            if done is not None:
                self._last_seq_id = max(self._last_seq_id, message.seq_id)
                self.ingress.send_turn_done(done)

    # ------------------------------------------------------------------ free-running

    def _on_snapshot(self, reply: SnapshotReply) -> None:
        assert self.paper is not None
        _log.info("%s: snapshot at seq %d", self.peer, reply.seq_id)
        self.paper.on_snapshot(reply.snapshot, self._clock())

    def _step_free_running(self) -> None:
        paper = self.paper
        sub = self._subscriber
        assert paper is not None and sub is not None
        records = sub.poll(self._wait_ms())
        now = self._clock()
        for record in records:
            paper.on_record(record, now)
        self._last_seq_id = sub.follower.applied_seq_id
        alive = sub.sequencer_alive
        if alive and not self._sequencer_alive:
            if self._sequencer_seen:
                # It went silent and came back (restarted?): what it had not journaled is lost
                # with it, and the core drops what it had, so send every unacknowledged report again.
                again = self.ingress.resend_unacked()
                now = self._clock()
                for producer_seq in self._inflight:
                    self._inflight[producer_seq] = now
                _log.info("%s: sequencer back; %d unacknowledged reports sent again", self.peer, again)
            self._sequencer_seen = True
        self._sequencer_alive = alive
        self._outbox.extend(paper.release(now, ready=sub.ready))
        self._send_outbox()

    def _send_outbox(self) -> None:
        outbox = self._outbox
        while outbox:
            try:
                self.ingress.send(outbox[0])
                self._inflight[outbox[0].producer_seq] = self._clock()
            except IngressBackpressure:
                return  # the window is full: acknowledgements free it, the next step sends on
            except FrameError as exc:  # a report larger than ingress takes: our bug, cannot be sent
                _log.error("%s: report %s not sendable: %s", self.peer, outbox[0], exc)
            outbox.popleft()

    # ------------------------------------------------------------------ both

    def _wait_ms(self) -> int:
        now = self._clock()
        wait = min(_MAX_WAIT_MS, self._heartbeats.timeout_ms(now))
        if self._outbox:
            wait = min(wait, 5)  # the ingress window is full: acknowledgements arrive on ingress, not here
        elif self.paper is not None:
            due = self.paper.next_release_ns()
            if due is not None:
                wait = min(wait, max(0, -(-(due - now) // _NS_PER_MS)))
        return wait

    def _drain_ingress(self) -> None:
        now = self._clock()
        ingress = self.ingress
        replies = ingress.poll(0)
        inflight = self._inflight
        for reply in replies:
            if reply.producer_id != self._producer_id:
                continue
            if isinstance(reply, IngressAck):  # cumulative: every report up to producer_seq
                for producer_seq in [seq for seq in inflight if seq <= reply.producer_seq]:
                    del inflight[producer_seq]
            else:
                inflight.pop(reply.producer_seq, None)
        if ingress.unacked == 0:
            inflight.clear()
        elif inflight and now - next(iter(inflight.values())) >= _RESEND_AFTER_MS * _NS_PER_MS:
            # The oldest report has waited too long: a sequencer that restarted faster than its
            # silence shows lost what it had not journaled. The core drops what it already has.
            again = ingress.resend_unacked()
            for producer_seq in inflight:
                inflight[producer_seq] = now
            _log.warning("%s: a report unacknowledged for %d ms: %d sent again", self.peer, _RESEND_AFTER_MS, again)
        for reply in replies:
            if isinstance(reply, IngressRefused):
                _log.warning(
                    "%s: ingress refused %s#%d: %s %s",
                    self.peer,
                    reply.producer_id,
                    reply.producer_seq,
                    reply.reason,
                    reply.detail,
                )

    def _heartbeat(self) -> None:
        now = self._clock()
        if not self._heartbeats.due(now):
            return
        self.ingress.send_heartbeat(
            Heartbeat(peer=self.peer, role=PeerRole.GATEWAY, sent_ns=time.time_ns(), last_seq_id=self._last_seq_id)
        )
        self._heartbeats.sent(now)


def run_gateway(profile: Profile | str | os.PathLike[str], venue_name: str) -> int:
    """Run the gateway of `venue_name` until SIGTERM / SIGINT.

    Args:
        profile: a loaded profile, or the path of one.
        venue_name: the `[[venues]]` entry to serve.

    Returns:
        The exit code: 0 stopped by a signal, 1 could not start.
    """
    _configure_logging(peer_id(venue_name))
    try:
        loaded = profile if isinstance(profile, Profile) else load_profile(profile)
        service = GatewayService(loaded, venue_name)
    except ProfileError as exc:
        _log.error("%s", exc)
        return 1
    except KeyError as exc:
        _log.error("cannot start %s: %s", peer_id(venue_name), exc.args[0] if exc.args else exc)
        return 1
    except (ValueError, SecurityError, OSError, zmq.ZMQError) as exc:
        _log.error("cannot start %s: %s", peer_id(venue_name), exc)
        return 1
    previous = _install_signal_handlers(service.request_stop)
    try:
        return service.run()
    finally:
        service.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _install_signal_handlers(stop: Callable[[], None]) -> dict[int, Any]:
    """SIGTERM and SIGINT ask the loop to stop (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: FrameType | None) -> None:
        stop()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _configure_logging(peer: str) -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {peer} %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m services.gateway.main VENUE --profile PROFILE`` (what `tradebus serve gateway` runs)."""
    parser = argparse.ArgumentParser(prog="services.gateway.main", description="Run one paper venue gateway.")
    parser.add_argument("venue", help="the [[venues]] entry to serve")
    parser.add_argument("--profile", required=True, help="the group's profile (TOML)")
    args = parser.parse_args(argv)
    return run_gateway(args.profile, args.venue)


if __name__ == "__main__":
    sys.exit(main())
