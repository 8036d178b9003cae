"""`tradebus serve feed NAME --profile PATH`: one feed process, from its profile entry to exit.

`run_feed(profile, name)` is the entry point (the `serve` command calls it); it

1. loads the profile (a path, or an already loaded `Profile`) and finds the feed by name;
2. builds what it sends (`source_for`): a file feed's envelopes exactly as the in-process
   backtest journals them (`services.feeds.file_feed`), or a synthetic feed's seeded walk
   (`services.feeds.synthetic_feed`);
3. connects to the sequencer (`IngressClient` on the profile's ingress endpoint) and runs, by the
   group's mode:

   - ``backtest``: lockstep (`services.feeds.lockstep`). The sequencer pulls the stream turn by
     turn (a SUB on the publication carries its `FeedPull` requests) and merges the feeds by the
     backtest ordering key itself; the feed's `pace` does not apply (as the profile documents).
     The feed answers until SIGTERM: a run may start over at any time.
   - ``paper`` / ``live``: real time (`services.feeds.pump`). The feed pushes its stream at its
     `pace` ("max", or k x real time by event time), within its unacknowledged window, then a
     `StreamEnded` per producer, and exits 0 once everything is acknowledged.

   SIGTERM / SIGINT stop either cleanly: sockets closed, exit 0.

Synthetic feeds start their first bar at `start_ns`: given, or in a backtest
`services.data.synthetic.DEFAULT_START_NS` (2024-01-01, as `synthetic_bars`: the run is
reproducible), or in real time the wall clock rounded down to a whole interval.

Identity. The feed is peer ``feed-<name>`` (its supervisor program name): the id in its
heartbeats, which the lockstep sequencer waits for, and, on tcp endpoints with CURVE, the name of
its key pair in `[security] keys_dir` (``feed-<name>.key_secret``; the sequencer's public key is
``<server_key>.key``). ipc endpoints run without CURVE, as the sequencer binds them.

Exit codes: 0 done (everything acknowledged) or stopped by a signal; 1 the sequencer refused
something; 2 the feed cannot start (profile, data, keys, endpoint).

For tests and by hand, without the `serve` command::

    python -m services.feeds.main NAME --profile PATH [--resume-from N] [--max-unacked N] [--start-ns NS]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from types import FrameType, TracebackType
from typing import Any, Final, Self

import zmq

from bus import limits
from bus.peer import IngressClient
from bus.security import SecurityError
from bus.sockets import Security, subscriber
from services.backtest.config import instrument_spec_for
from services.data.synthetic import DEFAULT_START_NS
from services.data.times import parse_interval
from services.deploy.peer_security import client_security
from services.deploy.profile import FileFeed, Profile, ProfileError, SyntheticFeed, load_profile
from services.deploy.run_config import backtest_config_for
from services.feeds.file_feed import file_feed_stream
from services.feeds.lockstep import LockstepFeed
from services.feeds.pump import FeedPump
from services.feeds.source import FeedSource
from services.feeds.synthetic_feed import live_start_ns, synthetic_envelopes, synthetic_producer_id

__all__ = [
    "EXIT_CANNOT_START",
    "STALL_RESEND_MS",
    "feed_identity",
    "main",
    "run_feed",
    "security_for_endpoint",
    "source_for",
]

EXIT_CANNOT_START: Final = 2

# Real time: re-send the window after this long without any acknowledgement although something
# is outstanding (an ack the sequencer could not send). Ten heartbeat intervals: a healthy
# sequencer acknowledges within milliseconds, and a restarted one is caught by the reconnect.
STALL_RESEND_MS: Final = 10 * limits.HEARTBEAT_INTERVAL_MS

_IDENTITY_PREFIX: Final = "feed-"
_MAX_IDENTITY_CHARS: Final = 64  # a key name and a heartbeat peer id (schemas.types.MAX_ID_CHARS)


def feed_identity(name: str) -> str:
    """``feed-<name>``: heartbeat peer id and CURVE key name.

    Raises:
        ValueError: longer than 64 characters (feed names over 59 characters).
    """
    identity = f"{_IDENTITY_PREFIX}{name}"
    if len(identity) > _MAX_IDENTITY_CHARS:
        raise ValueError(f"feed identity {identity!r} is over {_MAX_IDENTITY_CHARS} characters: shorten the feed name")
    return identity


def security_for_endpoint(profile: Profile, identity: str, endpoint: str) -> Security | None:
    """The security of a connection to `endpoint`, as the sequencer binds it.

    tcp: CURVE with the client key pair ``<identity>`` and the sequencer's public key
    ``<server_key>`` when the profile has keys, else plaintext if the profile allows it
    (`bus.security.security_for`). ipc: None (the file system is the boundary).

    Raises:
        SecurityError: a key file is missing or readable by others, or tcp without CURVE.
        OSError: a key file cannot be read.
    """
    return client_security(profile, identity, endpoint)


def source_for(
    profile: Profile, name: str, *, start_ns: int | None = None, wall_ns: Callable[[], int] = time.time_ns
) -> FeedSource:
    """What feed `name` of `profile` sends (files are loaded and checked here, once).

    Args:
        start_ns: synthetic feeds: open time of the first bar (see the module docstring for the
            default). Ignored by file feeds.
        wall_ns: the wall clock, for that default in real time.

    Raises:
        KeyError: no feed of that name.
        DataError: a data file cannot be read or holds bad data (a ValueError).
        ValueError: a producer id or value outside the wire limits, a bad start price.
    """
    feed = profile.feed(name)
    config = backtest_config_for(profile)
    lockstep = profile.group.mode == "backtest"
    pace = "max" if lockstep else feed.pace
    if isinstance(feed, FileFeed):
        stream = file_feed_stream(profile, feed, config)
        return FeedSource(feed.name, stream.producers, stream.envelopes, pace, stream.total)
    assert isinstance(feed, SyntheticFeed)
    spec = instrument_spec_for(feed.instrument, config)
    if start_ns is None:
        start_ns = DEFAULT_START_NS if lockstep else live_start_ns(wall_ns(), parse_interval(feed.interval))
    open_stream = partial(synthetic_envelopes, feed, spec, start_ns=start_ns)
    open_stream()  # refuses a bad start price or a long producer id now, not at the first pull
    total = None if feed.count == "unlimited" else feed.count
    return FeedSource(feed.name, (synthetic_producer_id(feed.instrument),), open_stream, pace, total)


def run_feed(
    profile: Profile | str | os.PathLike[str],
    name: str,
    *,
    resume_from: int = 1,
    max_unacked: int = limits.INGRESS_MAX_UNACKED,
    start_ns: int | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Run feed `name` of `profile` (see the module docstring for what each mode does).

    Args:
        profile: a loaded profile, or the path of its TOML file.
        name: the feed's name in the profile.
        resume_from: real time: skip envelopes whose producer_seq is below this (default: send
            all; the sequencer drops and acknowledges what it already has).
        max_unacked: the unacknowledged window (flow control).
        start_ns: synthetic feeds: first bar's open time.
        log: one line per call (default: stderr).

    Returns:
        The process exit code: 0 done or stopped by SIGTERM/SIGINT, 1 refused, 2 cannot start.
    """
    say = log if log is not None else _stderr
    try:
        loaded = profile if isinstance(profile, Profile) else load_profile(profile)
        identity = feed_identity(name)
        source = source_for(loaded, name, start_ns=start_ns)
        endpoints = loaded.endpoints
        ingress_security = security_for_endpoint(loaded, identity, endpoints.ingress)
        publication_security = security_for_endpoint(loaded, identity, endpoints.publication)
    except KeyError as exc:
        say(f"feed {name}: cannot start: {exc.args[0] if exc.args else exc}")
        return EXIT_CANNOT_START
    except (ProfileError, ValueError, SecurityError, OSError) as exc:
        say(f"feed {name}: cannot start: {exc}")
        return EXIT_CANNOT_START
    lockstep = loaded.group.mode == "backtest"
    feed = loaded.feed(name)
    if lockstep and feed.pace != "max":
        say(f"feed {name}: pace {feed.pace} does not apply: a backtest pulls the feeds in lockstep")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        with _StopOnSignals() as stop:
            try:
                client = IngressClient(ctx, endpoints.ingress, security=ingress_security, max_unacked=max_unacked)
            except (zmq.ZMQError, SecurityError, ValueError) as exc:
                say(f"feed {name}: cannot connect to {endpoints.ingress}: {exc}")
                return EXIT_CANNOT_START
            if lockstep:
                try:
                    sub = subscriber(ctx, endpoints.publication, security=publication_security)
                except (zmq.ZMQError, SecurityError, ValueError) as exc:
                    client.close()
                    say(f"feed {name}: cannot subscribe to {endpoints.publication}: {exc}")
                    return EXIT_CANNOT_START
                puller = LockstepFeed(client, sub, source, peer=identity, log=say)
                try:
                    return puller.run(stop.is_set)
                finally:
                    puller.close()
            # A synthetic feed in real time stands for a live source: it cannot wait for the
            # sequencer, so under backpressure it conflates per instrument. Files never do.
            live = isinstance(loaded.feed(name), SyntheticFeed) and source.pace != "max"
            pump = FeedPump(
                client, source, peer=identity, stall_resend_ms=STALL_RESEND_MS, resume_from=resume_from,
                conflate=live, log=say,
            )  # fmt: skip
            try:
                return pump.run(stop.is_set)
            finally:
                pump.close()
    finally:
        ctx.term()


class _StopOnSignals:
    """SIGTERM / SIGINT set a flag the loops poll (at most 100 ms apart); handlers restored on exit.

    Outside the main thread signals cannot be caught: nothing is installed, the flag stays unset.
    """

    _SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self._set = False
        self._previous: list[tuple[int, Any]] = []

    def is_set(self) -> bool:
        return self._set

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._set = True

    def __enter__(self) -> Self:
        try:
            for signum in self._SIGNALS:
                self._previous.append((signum, signal.signal(signum, self._handle)))
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, previous in reversed(self._previous):
            # None: the handler was not installed from Python; the default is the closest.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m services.feeds.main NAME --profile PATH``: run one feed (test harness)."""
    parser = argparse.ArgumentParser(prog="python -m services.feeds.main", description="Run one feed of a profile.")
    parser.add_argument("name", help="the feed's name in the profile")
    parser.add_argument("--profile", required=True, help="the profile's TOML file")
    parser.add_argument("--resume-from", type=int, default=1, metavar="N", help="real time: first producer_seq to send")
    parser.add_argument("--max-unacked", type=int, default=limits.INGRESS_MAX_UNACKED, metavar="N", help="window")
    parser.add_argument("--start-ns", type=int, default=None, metavar="NS", help="synthetic feeds: first bar's open")
    args = parser.parse_args(argv)
    if args.resume_from < 1 or args.max_unacked < 1:
        parser.error("--resume-from and --max-unacked must be at least 1")
    return run_feed(
        args.profile, args.name, resume_from=args.resume_from, max_unacked=args.max_unacked, start_ns=args.start_ns
    )


if __name__ == "__main__":
    sys.exit(main())
