"""The strategy host process: one strategy of a profile, a replica of the core, the bus around them.

`run_strategy_host(profile, name)` is the process (``tradebus serve strategy NAME --profile P``
calls it). It loads the strategy class named by the profile, builds the core configuration the
sequencer uses (`core_config_for_profile`), and connects as peer ``strategy-<name>``:

- a `Subscriber` (publication + sync) feeds the replica: a snapshot first, then every record in
  order; gaps are filled by range requests, divergence by a new snapshot (`bus.resync`);
- an `IngressClient` carries heartbeats (role strategy, every interval), lockstep `TurnDone`
  answers, and free-running intent envelopes, which stay in its window until acknowledged and
  are re-sent after the sequencer comes back.

The group's mode picks the logic: ``backtest`` answers turns (`lockstep.LockstepHost`),
``paper`` / ``live`` runs free (`free_running.FreeRunningHost`). Neither blocks: the loop polls
with a timeout no longer than the next heartbeat is due.

Security: tcp endpoints use CURVE (`bus.security`) with this peer's key pair
``<keys_dir>/strategy-<name>.key_secret`` and the sequencer's public key
``<keys_dir>/<server_key>.key``, or plaintext if the profile allows it; ipc endpoints run without.

Exit codes: 0 after SIGTERM / SIGINT (sockets closed), 2 when the profile, the strategy or its
parameters are unusable, 1 when the replica cannot follow the sequencer (another config).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

import zmq

from bus import limits
from bus.codec import FrameError
from bus.heartbeat import HeartbeatSchedule
from bus.peer import IngressBackpressure, IngressClient, Subscriber
from bus.resync import StreamFollower
from bus.security import SecurityError
from bus.sockets import Security
from schemas.bus import Heartbeat, IngressRefused, PeerRole, PeerStatus, SnapshotReply, TurnRequest
from schemas.envelope import Envelope
from services.deploy.peer_security import client_security
from services.deploy.profile import Profile
from services.deploy.run_config import core_config_for_profile
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.errors import RestoreError
from services.strategy.api import Strategy
from services.strategy.loader import StrategyLoadError, as_native_strategy, load_strategy_class
from services.strategy_host.free_running import FreeRunningHost
from services.strategy_host.lockstep import LockstepHost
from services.strategy_host.series import profile_series
from services.strategy_host.session import MAX_HISTORY_RECORDS, ReplicaError, StrategySession

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_REPLICA", "StrategyHostProcess", "peer_id", "run_strategy_host"]

EXIT_OK: Final = 0
EXIT_REPLICA: Final = 1
EXIT_CONFIG: Final = 2

# Longest single wait of the loop: bounds how late a SIGTERM or a due heartbeat is noticed.
_MAX_POLL_MS: Final = 100
# On shutdown, how long a free-running host waits for the acknowledgements of what it sent last.
_SHUTDOWN_FLUSH_MS: Final = 1_000

_log = logging.getLogger("tradebus.strategy_host")


def peer_id(name: str) -> str:
    """The host's peer id, heartbeat name and CURVE key name: ``strategy-<name>``."""
    return f"strategy-{name}"


def run_strategy_host(profile: Profile, name: str) -> int:
    """Run the strategy host for strategy `name` of `profile` until SIGTERM / SIGINT.

    Returns:
        The process exit code (`EXIT_OK`, `EXIT_CONFIG`, `EXIT_REPLICA`).
    """
    _setup_logging()
    try:
        process = StrategyHostProcess.from_profile(profile, name)
    except (KeyError, StrategyLoadError, SecurityError, ValueError, OSError) as exc:
        _log.error("strategy %s: %s", name, exc)
        return EXIT_CONFIG
    previous = {sig: signal.signal(sig, process.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )


def _security(profile: Profile, peer: str, endpoint: str) -> Security | None:
    """See `services.deploy.peer_security.client_security`."""
    return client_security(profile, peer, endpoint)


class StrategyHostProcess:
    """The socket loop around a `LockstepHost` or a `FreeRunningHost`.

    Args:
        peer: ``strategy-<name>``.
        mode: the group's mode (``backtest`` is lockstep; ``paper`` / ``live`` run free).
        new_session: makes a fresh `StrategySession`.
        endpoints: (ingress, publication, sync).
        security: (ingress, subscriber) security, None for plain ipc.
        series_for: see `LockstepHost`.
        heartbeat_interval_ms: our heartbeat interval, also the sequencer's (silence detection).
    """

    def __init__(
        self,
        *,
        peer: str,
        mode: str,
        new_session: Callable[[], StrategySession],
        endpoints: tuple[str, str, str],
        security: tuple[Security | None, Security | None] = (None, None),
        series_for: Callable[[Any], list[Any]] | None = None,
        heartbeat_interval_ms: int = limits.HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self.peer = peer
        self.lockstep = mode == "backtest"
        self._new_session = new_session
        self.endpoints = endpoints
        self.security = security
        self.series_for = series_for
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._stop = False
        self._outbox: deque[Envelope] = deque()
        self.host: LockstepHost | FreeRunningHost | None = None

    @classmethod
    def from_profile(cls, profile: Profile, name: str) -> StrategyHostProcess:
        """Everything the process needs from the profile, checked before any socket exists.

        Raises:
            KeyError: no strategy `name`.
            StrategyLoadError: the strategy class cannot be loaded, or its parameters are wrong.
            SecurityError: tcp endpoints without usable keys.
        """
        entry = profile.strategy(name)
        cls_ = load_strategy_class(entry.path.spec)
        params = dict(entry.params)
        as_native_strategy(cls_, params)  # refuses unknown parameters now, not at the first turn
        core_config = core_config_for_profile(profile)
        peer = peer_id(name)
        mode = profile.group.mode
        history = MAX_HISTORY_RECORDS if mode == "backtest" else 0

        def new_session() -> StrategySession:
            return _session(cls_, params, entry.strategy_id, core_config, profile.account.currency, history)

        endpoints = profile.endpoints
        sub_security = _security(profile, peer, endpoints.publication)
        if (sub_security is None) != (_security(profile, peer, endpoints.sync) is None):
            raise SecurityError("endpoints.publication and endpoints.sync must both be ipc or both be tcp")
        return cls(
            peer=peer,
            mode=mode,
            new_session=new_session,
            endpoints=(endpoints.ingress, endpoints.publication, endpoints.sync),
            security=(_security(profile, peer, endpoints.ingress), sub_security),
            series_for=lambda names: profile_series(profile, core_config, names),
        )

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Ask the loop to finish (a signal handler: only sets a flag)."""
        self._stop = True

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Connect, serve until asked to stop, close. Returns the exit code."""
        ctx: zmq.Context[Any] = zmq.Context()
        client: IngressClient | None = None
        sub: Subscriber | None = None
        try:
            ingress, publication, sync = self.endpoints
            host: LockstepHost | FreeRunningHost
            if self.lockstep:
                host = LockstepHost(self.peer, self._new_session, series_for=self.series_for)
            else:
                host = FreeRunningHost(self._new_session())
            self.host = host

            def on_snapshot(reply: SnapshotReply) -> None:
                host.on_snapshot(reply.snapshot)

            client = IngressClient(ctx, ingress, security=self.security[0], routing_id=self.peer.encode())
            sub = Subscriber(
                ctx,
                publication,
                sync,
                on_snapshot=on_snapshot,
                on_message=self._on_message(client),
                security=self.security[1],
                heartbeat_interval_ms=self.heartbeat_interval_ms,
            )
            _log.info(
                "%s: %s mode, strategy %s, publication %s",
                self.peer,
                "lockstep" if self.lockstep else "free-running",
                host.session.strategy_id,
                publication,
            )
            return self._serve(client, sub)
        except (ReplicaError, RestoreError) as exc:
            _log.error("%s: the replica cannot follow the sequencer: %s", self.peer, exc)
            return EXIT_REPLICA
        finally:
            if sub is not None:
                sub.close()
            if client is not None:
                client.close()
            ctx.destroy(linger=0)

    def _on_message(self, client: IngressClient) -> Callable[[Heartbeat | PeerStatus | TurnRequest], None]:
        def on_message(message: Heartbeat | PeerStatus | TurnRequest) -> None:
            if isinstance(message, TurnRequest):
                if isinstance(self.host, LockstepHost):
                    self.host.on_turn(message)
            elif isinstance(message, PeerStatus) and message.role is PeerRole.SEQUENCER and message.alive:
                # The sequencer is (back) up: what it had not acknowledged may have died with it.
                client.resend_unacked()

        return on_message

    def _serve(self, client: IngressClient, sub: Subscriber) -> int:
        schedule = HeartbeatSchedule(self.heartbeat_interval_ms, start_ns=time.monotonic_ns())
        host = self.host
        assert host is not None
        while not self._stop:
            now = time.monotonic_ns()
            if schedule.due(now):
                client.send_heartbeat(
                    Heartbeat(
                        peer=self.peer,
                        role=PeerRole.STRATEGY,
                        sent_ns=time.time_ns(),
                        last_seq_id=host.session.replica.seq_id,
                    )
                )
                schedule.sent(now)
            timeout = min(schedule.timeout_ms(time.monotonic_ns()), _MAX_POLL_MS)
            records = sub.poll(timeout)
            if isinstance(host, LockstepHost):
                self._lockstep_step(host, client, sub, records)
            else:
                self._outbox.extend(host.on_records(records, ready=sub.ready))
                if sub.ready:
                    self._outbox.extend(host.pump())
                self._send_outbox(client)
            self._log_replies(client.poll(0))
        if isinstance(host, FreeRunningHost):
            self._outbox.extend(host.stop())
            self._send_outbox(client)
            deadline = time.monotonic_ns() + _SHUTDOWN_FLUSH_MS * 1_000_000
            while (client.unacked or self._outbox) and time.monotonic_ns() < deadline:
                self._log_replies(client.poll(_MAX_POLL_MS))
                self._send_outbox(client)
        _log.info("%s: stopping", self.peer)
        return EXIT_OK

    def _lockstep_step(self, host: LockstepHost, client: IngressClient, sub: Subscriber, records: list[Any]) -> None:
        host.on_records(records)
        for answer in host.step():
            client.send_turn_done(answer)
        if host.resync_requested:
            # A new run: re-follow the stream from a new snapshot (seq ids may have started over).
            host.resync_requested = False
            # Request ids keep counting: a late reply to the old follower's request cannot be
            # taken for the answer to the new one's (it would install the old run's state).
            sub.follower = StreamFollower(first_request_id=sub.follower.next_request_id)
            _log.info("%s: the sequencer restarted the run; resyncing", self.peer)
        waiting = host.waiting_for
        if waiting is not None and waiting > sub.follower.known_seq_id:
            # The request proves records up to `waiting` were published (same socket, earlier):
            # tell the follower, so it fetches a tail no later record or heartbeat would reveal.
            sub.follower.on_heartbeat(waiting)

    def _send_outbox(self, client: IngressClient) -> None:
        outbox = self._outbox
        while outbox:
            try:
                client.send(outbox[0])
            except IngressBackpressure:
                return  # the window is full: acknowledgements first
            except FrameError as exc:
                _log.error("%s: intent not sent: %s", self.peer, exc)
            outbox.popleft()

    def _log_replies(self, replies: list[Any]) -> None:
        for reply in replies:
            if isinstance(reply, IngressRefused):
                _log.warning(
                    "%s: ingress refused %s#%s: %s: %s",
                    self.peer,
                    reply.producer_id,
                    reply.producer_seq,
                    reply.reason,
                    reply.detail,
                )


def _session(
    cls_: type[Any], params: dict[str, Any], strategy_id: str, core_config: CoreConfig, currency: str, history: int
) -> StrategySession:
    strategy: Strategy = as_native_strategy(cls_, dict(params))
    return StrategySession(
        strategy, strategy_id=strategy_id, core_config=core_config, currency=currency, history=history
    )
