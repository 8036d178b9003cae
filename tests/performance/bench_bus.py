"""Bus benchmarks: the real sequencer process against raw pyzmq hops, per transport, in one run.

    python -m tests.performance.bench_bus --out .bench/bus.json [--quick] [--transports ipc,tcp]

For each transport (ipc, tcp), five cases; every process is a real OS process on this host:

- `throughput`: the sequencer (`python -m services.cli.main serve sequencer --profile P`, mode
  paper, journal fsync "interval") with one feed process pushing N market-data envelopes (Bar,
  BTC-USD, producer ``file:BTC-USD``) through `bus.peer.IngressClient` as fast as its unacked
  window allows (what the window has room for goes in one `send_batch`, as the feed pump sends a
  backlog: `EnvelopeBatch` frames), and one subscriber (this process) counting the records of
  `Sequenced` and `SequencedBatch` frames until it has seen seq id N. The sequencer acknowledges
  cumulatively, once per producer per loop batch. Envelopes/s = N / (first send -> last record
  seen), best of `--repeats` runs (3).
- `raw_throughput`: the same N frames of the same sizes through one relay process doing no
  decoding: DEALER -> ROUTER, then PUB -> SUB, with an ack back per frame and the same unacked
  window. Same socket factories (`bus.sockets`): the cost of the bare per-envelope socket
  operations (one frame in, one ack, one record out) that batching and cumulative acks amortise
  in the `throughput` case, so that case may now beat it.
- `latency`: tick to order command. Feed -> sequencer -> echo strategy -> PlaceOrder intent ->
  sequencer -> gateway probe (this process). The feed sends one tick every `pace_ms`, stamped with
  its send time (``event_time_ns = time.monotonic_ns()``; CLOCK_MONOTONIC is system-wide on
  Linux); the echo strategy (a small process below, NOT the strategy host) answers each tick with
  a limit buy of 1 size unit at 1.00, far below the market, carrying the tick's event time; the
  probe follows the publication with `bus.peer.Subscriber` and stamps the `SubmitOrder` output
  when it arrives. Like a gateway would, the probe then answers with an `OrderRejectedReport`, so
  the book holds a handful of open orders instead of thousands (the cash check of a buy,
  `risk.committed_buy_cash`, walks every open order). The first `warmup` ticks are dropped.
- `raw_latency`: the same path over bare sockets, same message sizes and pacing: DEALER ->
  ROUTER relay -> PUB/SUB echo -> DEALER -> ROUTER relay -> PUB/SUB probe, no decoding anywhere.
- `latency_strategy_host`: `latency` with the real strategy host (``tradebus serve strategy``)
  running `ECHO_STRATEGY`, the same echo on the native strategy API, instead of the echo process.

Each latency case also reports `first_hop` (feed -> sequencer -> probe, the tick's own record)
and its ten slowest ticks (stalls such as a checkpoint show up there as a run of neighbours).
`--py-spy DIR` records CPU profiles of the sequencer and the feed during the throughput cases;
`--sequencer-module` runs a patched copy of the CLI as the sequencer, to measure a change.

Ratios compare cases of the same run (a shared 2-core machine is noisy; the ratios are what hold).
Targets (issue; reported, not asserted): sequencer >= 150,000 envelopes/s; latency p50 <= 2x and
p99 <= 3x the raw three-hop round trip.

Every child process is killed on the way out (SIGTERM, then SIGKILL), dies with this process
(PR_SET_PDEATHSIG on Linux), and has its own deadline; every wait here has a timeout.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import msgspec
import zmq

REPO: Final = Path(__file__).resolve().parents[2]
MODULE: Final = "tests.performance.bench_bus"

N_FULL: Final = 200_000
N_QUICK: Final = 20_000
TICKS: Final = 2_000
WARMUP_TICKS: Final = 100
REPEATS: Final = 3  # throughput runs per case; the best is kept
PACE_MS: Final = 2.0
FSYNC_INTERVAL_MS: Final = 100
TRANSPORTS: Final = ("ipc", "tcp")
CASES: Final = ("throughput", "raw_throughput", "latency", "raw_latency", "latency_strategy_host")
TARGETS: Final = {"sequencer_envelopes_per_s": 150_000, "latency_p50_vs_raw_max": 2.0, "latency_p99_vs_raw_max": 3.0}

VENUE: Final = "SIM"
INSTRUMENT: Final = "BTC-USD"
FEED_PRODUCER: Final = f"file:{INSTRUMENT}"
STRATEGY_ID: Final = "echo"
GATEWAY_PRODUCER: Final = f"venue:{VENUE}"
PX: Final = 4_200_000  # 42,000.00 in price units (2 decimals)
BID: Final = 100  # 1.00: a limit buy this low never fills and needs 0.0001 USD of cash per order
STRATEGY_LABEL: Final = "echo process, not the strategy host"
HOST_LABEL: Final = "the strategy host (tradebus serve strategy) running ECHO_STRATEGY"

# The same echo as a native strategy, for the strategy host (the `latency_strategy_host` case).
ECHO_STRATEGY: Final = """\
from services.strategy import BarClosed, Strategy


class Echo(Strategy):
    \"\"\"Every bar: a limit buy of one size unit at 1.00, far below the market (never fills).\"\"\"

    wants_order_events = False

    def on_event(self, ctx, event):
        if type(event) is BarClosed:
            return ctx.buy(event.instrument, 0.0001, price=1.0)
        return None
"""

READY_TIMEOUT_S: Final = 20.0  # a process start (imports, profile, sockets) plus a heartbeat or two
STOP_TIMEOUT_S: Final = 5.0
ACK_WAIT_S: Final = 10.0  # after its last send, a feed waits this long for the last acks
SEND_DEADLINE_S: Final = 300.0  # a burst feed gives up sending after this long
_MARK: Final = struct.Struct("<QQ")  # raw frames: index and send time after a one-byte type
_MARK_BYTES: Final = 1 + _MARK.size


# ================================================================================ small helpers


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _python() -> list[str]:
    """This interpreter with our flags: -P when we run with it (a compiled build on PYTHONPATH first)."""
    return [sys.executable, *(["-P"] if sys.flags.safe_path else [])]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values_ns: list[int]) -> dict[str, float]:
    """Nearest-rank p50/p95/p99 (and min, mean, max) in microseconds."""
    if not values_ns:
        return {"samples": 0}
    s = sorted(values_ns)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] / 1_000

    return {
        "samples": len(s),
        "min_us": s[0] / 1_000,
        "p50_us": rank(0.50),
        "p95_us": rank(0.95),
        "p99_us": rank(0.99),
        "max_us": s[-1] / 1_000,
        "mean_us": sum(s) / len(s) / 1_000,
    }


def python_loop_ns(iterations: int = 2_000_000) -> float:
    """Nanoseconds per iteration of a trivial Python loop: how fast this machine runs Python, so
    figures from different machines can be compared (a recent desktop does about 15-30 ns)."""
    best = math.inf
    for _ in range(3):
        total = 0
        started = time.perf_counter_ns()
        for i in range(iterations):
            total += i
        best = min(best, (time.perf_counter_ns() - started) / iterations)
    return round(best, 1)


def core_build() -> str:
    """Whether the sequencer core this interpreter imports (and so its children) is the mypyc build."""
    from services.sequencer.core import engine

    return "compiled" if (engine.__file__ or "").endswith(".so") else "interpreted"


# ================================================================================ wire samples


def _bar_envelope(seq: int, event_time_ns: int) -> Any:
    from schemas.enums import Source
    from schemas.envelope import Envelope
    from schemas.market import Bar

    px = PX + (seq % 97) - 48
    return Envelope(
        source=Source.MARKET_DATA, producer_id=FEED_PRODUCER, producer_seq=seq, event_time_ns=event_time_ns,
        payload=Bar(open=px, high=px + 50, low=px - 50, close=px + 10, volume=1_0000 + seq % 500),
        venue=VENUE, instrument=INSTRUMENT,
    )  # fmt: skip


def _place_envelope(seq: int, tick_seq: int, event_time_ns: int) -> Any:
    from schemas.enums import OrderType, Side, Source
    from schemas.envelope import Envelope
    from schemas.intents import PlaceOrder

    intent = PlaceOrder(
        strategy_id=STRATEGY_ID, client_order_id=f"echo-{tick_seq}", instrument=INSTRUMENT,
        side=Side.BUY, order_type=OrderType.LIMIT, quantity=1, price=BID,
    )  # fmt: skip
    return Envelope(
        source=Source.STRATEGY, producer_id=f"strategy:{STRATEGY_ID}", producer_seq=seq,
        event_time_ns=event_time_ns, payload=intent, venue=VENUE, instrument=INSTRUMENT,
    )  # fmt: skip


def _reject_envelope(seq: int, client_order_id: str, event_time_ns: int) -> Any:
    from schemas.enums import Source
    from schemas.envelope import Envelope
    from schemas.reports import OrderRejectedReport

    return Envelope(
        source=Source.BROKER_REPORT, producer_id=GATEWAY_PRODUCER, producer_seq=seq, event_time_ns=event_time_ns,
        payload=OrderRejectedReport(client_order_id=client_order_id, reason="bench probe"),
        venue=VENUE, instrument=INSTRUMENT,
    )  # fmt: skip


def wire_sizes() -> dict[str, int]:
    """Body sizes of the real frames, measured through the real core: the raw cases send these."""
    from bus.codec import INGRESS, INGRESS_REPLY, PUBLICATION, FrameCodec
    from schemas.bus import IngressAck, Sequenced
    from services.deploy.run_config import core_config_for_profile
    from services.sequencer.core import SequencerCore
    from services.sequencer.core.sequencing import Sequencer

    with tempfile.TemporaryDirectory(dir="/tmp", prefix="tbbus-") as tmp:
        from services.deploy.profile import load_profile

        profile = load_profile(write_profile(Path(tmp), "ipc", GroupSettings()))
        core = SequencerCore(core_config_for_profile(profile))
    sequencer = Sequencer()
    now = time.time_ns()
    t = time.monotonic_ns()
    ingress, publication, replies = FrameCodec(INGRESS), FrameCodec(PUBLICATION), FrameCodec(INGRESS_REPLY)
    tick = sequencer.stamp(_bar_envelope(123_456, t), now)
    tick_rec = Sequenced(seq_id=tick.seq_id, envelope=tick, outputs=core.apply(tick))
    place = sequencer.stamp(_place_envelope(123_456, 123_456, t), now)
    order_rec = Sequenced(seq_id=place.seq_id, envelope=place, outputs=core.apply(place))
    assert any(type(o).__name__ == "SubmitOrder" for o in order_rec.outputs), order_rec.outputs
    ack = IngressAck(producer_id=FEED_PRODUCER, producer_seq=123_456, seq_id=123_456)
    return {
        "tick_envelope": len(ingress.encode(tick)[1]),
        "tick_record": len(publication.encode(tick_rec)[1]),
        "intent_envelope": len(ingress.encode(place)[1]),
        "order_record": len(publication.encode(order_rec)[1]),
        "ack": len(replies.encode(ack)[1]),
    }


# ================================================================================ the group's files


@dataclass(frozen=True)
class GroupSettings:
    """How the sequencer's group is set up.

    Attributes:
        fsync_interval_ms: journal fsync "interval" policy, at most one fsync per this many ms.
        checkpoint_every: `[checkpoint] every_events`; None: the profile default.
        sequencer_module: run as `python -m MODULE serve sequencer --profile P` (a patched copy
            can be measured against the real one).
    """

    fsync_interval_ms: int = FSYNC_INTERVAL_MS
    checkpoint_every: int | None = None
    sequencer_module: str = "services.cli.main"


def write_profile(directory: Path, transport: str, settings: GroupSettings) -> Path:
    """A paper-mode profile in `directory` (short: ipc paths must fit a Unix socket)."""
    (directory / f"{INSTRUMENT}_1m.csv").write_text("timestamp,open,high,low,close,volume\n")
    (directory / "echo_strategy.py").write_text(ECHO_STRATEGY)
    if transport == "ipc":
        endpoints = {name: f"ipc://{directory / (name[0] + '.sock')}" for name in ("ingress", "publication", "sync")}
        security = ""
    else:
        endpoints = {name: f"tcp://127.0.0.1:{_free_port()}" for name in ("ingress", "publication", "sync")}
        security = "\n[security]\nallow_plaintext_tcp = true\n"
    every = settings.checkpoint_every
    checkpoint = "" if every is None else f"\n[checkpoint]\nevery_events = {every}\n"
    text = f"""\
[group]
name = "bench"
run_dir = "run"
mode = "paper"

[endpoints]
ingress = "{endpoints["ingress"]}"
publication = "{endpoints["publication"]}"
sync = "{endpoints["sync"]}"
{security}
[journal]
fsync = "interval"
fsync_interval_ms = {settings.fsync_interval_ms}
{checkpoint}
[[feeds]]
name = "btc"
kind = "file"
data = ["{INSTRUMENT}_1m.csv"]

[[venues]]
name = "{VENUE}"
kind = "paper"

[[strategies]]
name = "{STRATEGY_ID}"
path = "echo_strategy.py:Echo"
"""
    path = directory / "profile.toml"
    path.write_text(text)
    return path


def _endpoints(transport: str, directory: Path) -> dict[str, str]:
    """Endpoints for the raw relay (no profile involved)."""
    if transport == "ipc":
        return {"ingress": f"ipc://{directory / 'ri.sock'}", "publication": f"ipc://{directory / 'rp.sock'}"}
    return {"ingress": f"tcp://127.0.0.1:{_free_port()}", "publication": f"tcp://127.0.0.1:{_free_port()}"}


# ================================================================================ child processes


class Child:
    """One child process: stdout is a pipe of JSON lines, stderr a log file in the workspace."""

    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads of ours run at fork
        )  # fmt: skip
        self._buffer = b""
        self.cpu_start = _cpu_seconds(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def message(self, timeout_s: float) -> dict[str, Any]:
        """The next JSON line the child prints; raises if it exits or says nothing in time."""
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: nothing within {timeout_s:.0f} s{self._tail()}")
            readable, _, _ = select.select([fd], [], [], min(left, 0.2))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}){self._tail()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        decoded: dict[str, Any] = json.loads(line)
        return decoded

    def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        message = self.message(timeout_s)
        if message.get("event") != event:
            raise RuntimeError(f"{self.name}: expected {event!r}, got {message}")
        return message

    def cpu_used(self) -> float | None:
        now = _cpu_seconds(self.proc.pid)
        return None if now is None or self.cpu_start is None else now - self.cpu_start

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL; always reaps."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()[-8:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(lines)) if lines else ""


class Group:
    """Children started for one case; all stopped on exit, whatever happens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []

    def role(self, name: str, role: str, **args: Any) -> Child:
        return self.command(name, [*_python(), "-m", MODULE, "--role", role, "--args", json.dumps(args)])

    def command(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.workdir)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


@contextmanager
def workspace(keep: bool = False) -> Iterator[Group]:
    """A short temp dir under /tmp (ipc paths < 107 bytes) and the children of one case."""
    workdir = Path(tempfile.mkdtemp(dir="/tmp", prefix="tbbus-"))
    group = Group(workdir)
    try:
        yield group
    finally:
        group.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def zmq_context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        yield ctx
    finally:
        ctx.destroy(linger=0)


def _start_sequencer(group: Group, profile: Path, module: str) -> Child:
    return group.command("sequencer", [*_python(), "-m", module, "serve", "sequencer", "--profile", str(profile)])


def _start_py_spy(group: Group, pid: int, out: Path) -> Child | None:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return None
    return group.command("py-spy", [str(spy), "record", "-f", "raw", "-r", "250", "-o", str(out), "--pid", str(pid)])


# ================================================================================ driver side


class _SeqOnly(msgspec.Struct):
    """Just the seq id of a published `Sequenced` (msgspec skips the rest without building it)."""

    seq_id: int


class _BatchSeqOnly(msgspec.Struct):
    """Just the seq ids of a published `SequencedBatch`."""

    records: list[_SeqOnly]


def wait_for_kind(sock: Any, kind: bytes, timeout_s: float) -> None:
    """Until a frame of `kind` arrives on a SUB: the publisher is up and our subscription reached it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(50) and sock.recv_multipart(zmq.NOBLOCK)[0] == kind:
            return
    raise TimeoutError(f"no {kind.decode()} on the publication within {timeout_s:.0f} s")


class RecordCounter:
    """A SUB on the publication (the bus's own factory and HWM) that counts records.

    `decode_seq`: read each record's seq id (sequencer cases: gaps are counted); the raw cases
    only count frames (their bodies are not MessagePack).
    """

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, *, decode_seq: bool) -> None:
        from bus.sockets import subscriber

        self.sock = subscriber(ctx, endpoint)
        self.decode_seq = decode_seq
        self._decode = msgspec.msgpack.Decoder(_SeqOnly).decode
        self._decode_batch = msgspec.msgpack.Decoder(_BatchSeqOnly).decode

    def wait_for(self, kind: bytes, timeout_s: float) -> None:
        wait_for_kind(self.sock, kind, timeout_s)

    def count(self, n: int, timeout_s: float, alive: Callable[[], bool]) -> dict[str, Any]:
        """Records until seq id n (or n frames); the time the last one arrived."""
        sock, decode, decode_seq, decode_batch = self.sock, self._decode, self.decode_seq, self._decode_batch
        cpu_start = time.process_time()
        seen = gaps = last = 0
        first_ns = last_ns = 0
        deadline = time.monotonic() + timeout_s
        while last < n:
            if not sock.poll(100):
                if time.monotonic() > deadline or not alive():
                    break
                continue
            while True:
                try:
                    kind, body = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if kind == b"sequenced_batch":  # the sequencer's records of one loop turn
                    if not first_ns:
                        first_ns = time.monotonic_ns()
                    for record in decode_batch(body).records:
                        seen += 1
                        if record.seq_id != last + 1:
                            gaps += 1
                        last = record.seq_id
                    if last >= n and not last_ns:
                        last_ns = time.monotonic_ns()
                    continue
                if kind != b"sequenced":
                    continue
                if not first_ns:
                    first_ns = time.monotonic_ns()
                seen += 1
                if decode_seq:
                    seq = decode(body).seq_id
                    if seq != last + 1:
                        gaps += 1
                    last = seq
                else:
                    last = seen
                if last >= n and not last_ns:
                    last_ns = time.monotonic_ns()
        return {"records_seen": seen, "last_seq_id": last, "gaps": gaps, "first_record_ns": first_ns,
                "last_record_ns": last_ns, "complete": last >= n,
                "cpu_seconds": time.process_time() - cpu_start}  # fmt: skip


def case_throughput(
    transport: str, n: int, *, settings: GroupSettings = GroupSettings(), py_spy_dir: Path | None = None
) -> dict[str, Any]:
    """The sequencer process, one feed process, one counting subscriber (this process).

    `py_spy_dir`: record CPU profiles of the sequencer and the feed there (py-spy, raw format)."""
    with workspace() as group, zmq_context() as ctx:
        profile = write_profile(group.workdir, transport, settings)
        from services.deploy.profile import load_profile

        endpoints = load_profile(profile).endpoints
        counter = RecordCounter(ctx, endpoints.publication, decode_seq=True)
        sequencer = _start_sequencer(group, profile, settings.sequencer_module)
        counter.wait_for(b"heartbeat", READY_TIMEOUT_S)
        spies = []
        if py_spy_dir is not None:
            spies.append(_start_py_spy(group, sequencer.pid, py_spy_dir / f"sequencer-{transport}.txt"))
        sequencer.cpu_start = _cpu_seconds(sequencer.pid)
        feed = group.role("feed", "feed_burst", ingress=endpoints.ingress, n=n)
        if py_spy_dir is not None:
            spies.append(_start_py_spy(group, feed.pid, py_spy_dir / f"feed-{transport}.txt"))
        feed.expect("ready", READY_TIMEOUT_S)  # envelopes built, connected: the clock starts at its first send
        counted = counter.count(n, timeout_s=max(60.0, n / 2_000), alive=sequencer.alive)
        sent = _feed_result(feed, counted, sequencer)
        seq_cpu = sequencer.cpu_used()
        if spies:
            sequencer.stop()  # py-spy writes its profile when the target exits
            for spy in spies:
                if spy is not None:
                    spy.proc.wait(timeout=30)
        return _throughput_result(n, counted, sent, seq_cpu, feed.cpu_used(), server="sequencer")


def case_raw_throughput(transport: str, n: int) -> dict[str, Any]:
    """The same frames through a relay that decodes nothing (DEALER -> ROUTER, PUB -> SUB, acks)."""
    sizes = wire_sizes()
    with workspace() as group, zmq_context() as ctx:
        endpoints = _endpoints(transport, group.workdir)
        relay = group.role("relay", "raw_relay", sizes=sizes, **endpoints)
        relay.expect("ready", READY_TIMEOUT_S)
        counter = RecordCounter(ctx, endpoints["publication"], decode_seq=False)
        counter.wait_for(b"hello", READY_TIMEOUT_S)
        relay.cpu_start = _cpu_seconds(relay.pid)
        feed = group.role("feed", "raw_feed_burst", ingress=endpoints["ingress"], n=n, sizes=sizes)
        feed.expect("ready", READY_TIMEOUT_S)
        counted = counter.count(n, timeout_s=max(60.0, n / 2_000), alive=relay.alive)
        sent = _feed_result(feed, counted, relay)
        return _throughput_result(n, counted, sent, relay.cpu_used(), feed.cpu_used(), server="relay")


def _feed_result(feed: Child, counted: dict[str, Any], server: Child) -> dict[str, Any]:
    """The feed's report; if it has none, an error that says what the subscriber and server saw."""
    try:
        return feed.expect("result", ACK_WAIT_S + 20)
    except (TimeoutError, RuntimeError) as exc:
        state = "running" if server.alive() else f"exited ({server.proc.returncode})"
        seen = {k: counted[k] for k in ("records_seen", "last_seq_id", "gaps", "complete")}
        raise RuntimeError(f"{exc}; subscriber saw {seen}; {server.name} {state}{server._tail()}") from None


def _throughput_result(
    n: int,
    counted: dict[str, Any],
    sent: dict[str, Any],
    server_cpu: float | None,
    feed_cpu: float | None,
    *,
    server: str,
) -> dict[str, Any]:
    end_ns = counted["last_record_ns"] or time.monotonic_ns()
    elapsed_s = (end_ns - sent["first_send_ns"]) / 1e9
    out = {
        "envelopes": n,
        "complete": counted["complete"],
        "records_seen": counted["records_seen"],
        "gaps": counted["gaps"],
        "seconds": elapsed_s,
        "envelopes_per_s": n / elapsed_s if counted["complete"] else None,
        "feed_send_seconds": (sent["last_send_ns"] - sent["first_send_ns"]) / 1e9,
        "feed_all_acked_seconds": (sent["all_acked_ns"] - sent["first_send_ns"]) / 1e9
        if sent["all_acked_ns"]
        else None,
        "feed_window_full_waits": sent["window_waits"],
        "refused": sent["refused"],
        # Never acknowledged although the subscriber saw every seq id: acks the sequencer dropped
        # (its reply queue to the producer was full: counted there as reply_undeliverable).
        "unacked_at_end": sent["unacked"],
        f"{server}_cpu_seconds": server_cpu,
        f"{server}_cpu_share": server_cpu / elapsed_s if server_cpu is not None else None,
        "feed_cpu_seconds": feed_cpu,
        "subscriber_cpu_seconds": counted["cpu_seconds"],
    }
    return out


def case_latency(
    transport: str, ticks: int = TICKS, *, pace_ms: float = PACE_MS, warmup: int = WARMUP_TICKS,
    settings: GroupSettings = GroupSettings(), strategy_host: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Tick -> sequencer -> strategy -> intent -> sequencer -> gateway probe (this process).

    The strategy is the bench's echo process, or with `strategy_host` the real strategy host
    (``tradebus serve strategy echo``) running `ECHO_STRATEGY`. Either way the intent carries the
    tick's event time, which is its send time: that is what the probe subtracts."""
    from bus.peer import IngressClient, Subscriber
    from schemas.bus import PeerStatus
    from schemas.market import Bar
    from schemas.outputs import SubmitOrder

    with workspace() as group, zmq_context() as ctx:
        profile = write_profile(group.workdir, transport, settings)
        from services.deploy.profile import load_profile

        endpoints = load_profile(profile).endpoints
        alive: set[str] = set()

        def on_message(message: object) -> None:
            if isinstance(message, PeerStatus) and message.alive:
                alive.add(message.peer)

        probe = Subscriber(
            ctx, endpoints.publication, endpoints.sync, on_snapshot=lambda reply: None, on_message=on_message
        )
        gateway = IngressClient(ctx, endpoints.ingress)
        sequencer = _start_sequencer(group, profile, settings.sequencer_module)
        _wait_ready(probe, READY_TIMEOUT_S, sequencer)
        if strategy_host:
            argv = [*_python(), "-m", "services.cli.main", "serve", "strategy", STRATEGY_ID, "--profile", str(profile)]
            echo = group.command("strategy-host", argv)
            _wait_host(probe, alive, f"strategy-{STRATEGY_ID}", echo)
        else:
            echo = group.role("echo", "echo_strategy", ingress=endpoints.ingress, publication=endpoints.publication,
                              sync=endpoints.sync)  # fmt: skip
            echo.expect("ready", READY_TIMEOUT_S)
        feed = group.role("feed", "feed_paced", ingress=endpoints.ingress, ticks=ticks, pace_ms=pace_ms)
        feed.expect("ready", READY_TIMEOUT_S)
        latency: dict[int, int] = {}
        first_hop: dict[int, int] = {}  # feed -> sequencer -> this subscriber: the tick's own record
        tick_at: dict[int, int] = {}  # send time (= event time) -> tick
        rejects = unmatched = 0
        deadline = time.monotonic() + ticks * pace_ms / 1_000 + 30
        while len(latency) < ticks and time.monotonic() < deadline and sequencer.alive() and echo.alive():
            records = probe.poll(20)
            now = time.monotonic_ns()
            for record in records:
                env = record.envelope
                if type(env.payload) is Bar:
                    first_hop[env.producer_seq] = now - env.event_time_ns
                    tick_at[env.event_time_ns] = env.producer_seq
                for output in record.outputs:
                    if type(output) is SubmitOrder:
                        tick = tick_at.get(env.event_time_ns)
                        if tick is None:
                            unmatched += 1  # not at a tick's event time: not ours to time
                        else:
                            latency[tick] = now - env.event_time_ns
                        rejects += 1
                        # At the order's event time: the strategy's event time stays the tick's.
                        gateway.send(_reject_envelope(rejects, output.client_order_id, env.event_time_ns))
            gateway.poll(0)
        sent = feed.expect("result", 10.0)
        echo.stop()
        kept = [v for k, v in latency.items() if k > warmup]
        return {
            "ticks": ticks,
            "pace_ms": pace_ms,
            "warmup_dropped": warmup,
            "orders_seen": len(latency),
            "complete": len(latency) == ticks,
            "ticks_sent": sent["sent"],
            "probe_ingress_counters": gateway.counters.as_dict(),
            "strategy": HOST_LABEL if strategy_host else STRATEGY_LABEL,
            "unmatched_orders": unmatched,
            "gateway": "probe in the bench driver (bus.peer.Subscriber); answers each SubmitOrder with OrderRejectedReport",
            "latency": percentiles(kept),
            "first_hop": percentiles([v for k, v in first_hop.items() if k > warmup]),
            "slowest": _slowest(latency, warmup),
        }


def _slowest(latency: dict[int, int], warmup: int, count: int = 10) -> list[tuple[int, float]]:
    """The slowest ticks after the warm-up, as (tick, microseconds): stalls show up here."""
    worst = sorted(((v, k) for k, v in latency.items() if k > warmup), reverse=True)[:count]
    return [(k, round(v / 1_000, 1)) for v, k in worst]


def _wait_host(probe: Any, alive: set[str], peer: str, host: Child) -> None:
    """Until the sequencer reports the host alive (its heartbeats arrive), then one heartbeat
    interval more: by then the host has its snapshot and has heard the sequencer (it is ready)."""
    from bus import limits

    deadline = time.monotonic() + READY_TIMEOUT_S
    while peer not in alive:
        if time.monotonic() > deadline or not host.alive():
            raise TimeoutError(f"{peer} not reported alive within {READY_TIMEOUT_S:.0f} s{host._tail()}")
        probe.poll(50)
    settle = time.monotonic() + 1.2 * limits.HEARTBEAT_INTERVAL_MS / 1_000
    while time.monotonic() < settle:
        probe.poll(50)


def _wait_ready(subscriber: Any, timeout_s: float, sequencer: Child) -> None:
    deadline = time.monotonic() + timeout_s
    while not subscriber.ready:
        if time.monotonic() > deadline or not sequencer.alive():
            raise TimeoutError(f"subscriber not ready within {timeout_s:.0f} s{sequencer._tail()}")
        subscriber.poll(50)


def case_raw_latency(
    transport: str, ticks: int = TICKS, *, pace_ms: float = PACE_MS, warmup: int = WARMUP_TICKS
) -> dict[str, Any]:
    """Three bare hops: feed -> relay -> echo -> relay -> probe, same sizes and pacing, no decoding."""
    from bus.sockets import subscriber

    sizes = wire_sizes()
    with workspace() as group, zmq_context() as ctx:
        endpoints = _endpoints(transport, group.workdir)
        relay = group.role("relay", "raw_relay", sizes=sizes, **endpoints)
        relay.expect("ready", READY_TIMEOUT_S)
        probe = subscriber(ctx, endpoints["publication"])
        wait_for_kind(probe, b"hello", READY_TIMEOUT_S)
        echo = group.role("echo", "raw_echo", sizes=sizes, **endpoints)
        echo.expect("ready", READY_TIMEOUT_S)
        feed = group.role("feed", "raw_feed_paced", ingress=endpoints["ingress"], ticks=ticks, pace_ms=pace_ms,
                          sizes=sizes)  # fmt: skip
        feed.expect("ready", READY_TIMEOUT_S)
        latency: dict[int, int] = {}
        first_hop: dict[int, int] = {}
        deadline = time.monotonic() + ticks * pace_ms / 1_000 + 30
        unpack = _MARK.unpack_from
        while len(latency) < ticks and time.monotonic() < deadline and relay.alive() and echo.alive():
            if not probe.poll(20):
                continue
            while True:
                try:
                    kind, body = probe.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = time.monotonic_ns()
                if kind == b"sequenced":
                    index, sent_ns = unpack(body, 1)
                    (latency if body[:1] == b"I" else first_hop)[index] = now - sent_ns
        sent = feed.expect("result", 10.0)
        kept = [v for k, v in latency.items() if k > warmup]
        return {
            "ticks": ticks,
            "pace_ms": pace_ms,
            "warmup_dropped": warmup,
            "orders_seen": len(latency),
            "complete": len(latency) == ticks,
            "ticks_sent": sent["sent"],
            "sizes": sizes,
            "latency": percentiles(kept),
            "first_hop": percentiles([v for k, v in first_hop.items() if k > warmup]),
            "slowest": _slowest(latency, warmup),
        }


# ================================================================================ child roles

_STOP = False


def _on_term(signum: int, frame: object) -> None:
    global _STOP
    _STOP = True


def _say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _wait_writable(sock: Any, deadline: float) -> None:
    """A DEALER with IMMEDIATE is writable once a connection is up."""
    while not sock.poll(50, zmq.POLLOUT):
        if _STOP or time.monotonic() > deadline:
            raise TimeoutError("no connection to ingress")


def role_feed_burst(args: dict[str, Any]) -> None:
    """N market-data envelopes as fast as the unacked window allows; acks polled as they come.

    Like the feed pump (services.feeds.pump) with a backlog: whatever the window has room for
    goes in one `IngressClient.send_batch` (up to the pump's DEFAULT_SEND_BATCH per turn)."""
    from bus.peer import IngressClient
    from services.feeds.pump import DEFAULT_SEND_BATCH

    n = args["n"]
    base = time.time_ns()
    envelopes = [_bar_envelope(i, base + i * 1_000) for i in range(1, n + 1)]
    with zmq_context() as ctx:
        client = IngressClient(ctx, args["ingress"])
        _wait_writable(client.socket, time.monotonic() + READY_TIMEOUT_S)
        _say("ready")
        window = client.max_unacked
        refused = waits = 0
        sent = 0
        first_ns = time.monotonic_ns()
        send_batch, poll = client.send_batch, client.poll
        give_up = time.monotonic() + SEND_DEADLINE_S
        while sent < n and not _STOP and time.monotonic() < give_up:
            while sent < n and client.unacked < window and not client.unsent:
                count = min(n - sent, window - client.unacked, DEFAULT_SEND_BATCH)
                send_batch(envelopes[sent : sent + count])
                sent += count
            full = client.unacked >= window or bool(client.unsent)
            waits += full
            for reply in poll(1 if full else 0):
                refused += type(reply).__name__ == "IngressRefused"
        last_ns = time.monotonic_ns()
        deadline = time.monotonic() + ACK_WAIT_S
        while client.unacked and not _STOP and time.monotonic() < deadline:
            for reply in client.poll(10):
                refused += type(reply).__name__ == "IngressRefused"
        all_acked_ns = time.monotonic_ns() if not client.unacked else 0
        unacked = client.unacked
        client.close()
    _say("result", first_send_ns=first_ns, last_send_ns=last_ns, all_acked_ns=all_acked_ns, sent=sent,
         refused=refused, window_waits=waits, unacked=unacked)  # fmt: skip


def role_feed_paced(args: dict[str, Any]) -> None:
    """One tick every pace_ms, each stamped with its send time (CLOCK_MONOTONIC, system-wide)."""
    from bus.peer import IngressClient

    ticks, pace_ns = args["ticks"], int(args["pace_ms"] * 1_000_000)
    with zmq_context() as ctx:
        client = IngressClient(ctx, args["ingress"])
        _wait_writable(client.socket, time.monotonic() + READY_TIMEOUT_S)
        _say("ready")
        start = time.monotonic_ns()
        sent = 0
        for i in range(1, ticks + 1):
            if _STOP:
                break
            wait = start + i * pace_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            client.send(_bar_envelope(i, time.monotonic_ns()))
            sent += 1
            client.poll(0)
        deadline = time.monotonic() + 10
        while client.unacked and not _STOP and time.monotonic() < deadline:
            client.poll(10)
        client.close()
    _say("result", sent=sent)


def role_echo_strategy(args: dict[str, Any]) -> None:
    """For every sequenced Bar: a limit buy far below the market, carrying the tick's event time."""
    from bus.peer import IngressClient, Subscriber
    from schemas.market import Bar

    with zmq_context() as ctx:
        sub = Subscriber(ctx, args["publication"], args["sync"], on_snapshot=lambda reply: None)
        client = IngressClient(ctx, args["ingress"])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (sub.ready and client.socket.poll(0, zmq.POLLOUT)):
            if _STOP or time.monotonic() > deadline:
                raise TimeoutError("echo strategy: not ready")
            sub.poll(50)
        _say("ready")
        intents = 0
        stop_at = time.monotonic() + args.get("max_seconds", 600)
        while not _STOP and time.monotonic() < stop_at:
            for record in sub.poll(20):
                env = record.envelope
                if type(env.payload) is Bar:
                    intents += 1
                    client.send(_place_envelope(intents, env.producer_seq, env.event_time_ns))
            client.poll(0)
        sub.close()
        client.close()
    _say("result", intents=intents)


def _raw_pads(sizes: dict[str, int]) -> dict[str, bytes]:
    return {name: bytes(max(0, size - _MARK_BYTES)) for name, size in sizes.items()}


def role_raw_relay(args: dict[str, Any]) -> None:
    """ROUTER in, PUB out, an ack back per frame; the body is never decoded.

    A record keeps the frame's first 17 bytes (type, index, send time) and is padded to the size
    of the record the sequencer would publish for it. Publishes `hello` until the first frame."""
    from bus.sockets import ingress_server, publisher

    pads = _raw_pads(args["sizes"])
    record_pad = {b"T": pads["tick_record"], b"I": pads["order_record"]}
    ack = [b"ingress_ack", bytes(args["sizes"]["ack"])]
    with zmq_context() as ctx:
        router = ingress_server(ctx, args["ingress"])
        pub = publisher(ctx, args["publication"])
        _say("ready")
        frames_in = undeliverable = 0
        hello = True
        stop_at = time.monotonic() + args.get("max_seconds", 600)
        while not _STOP and time.monotonic() < stop_at:
            if not router.poll(20):
                if hello:
                    pub.send_multipart([b"hello", b""])
                continue
            hello = False
            for _ in range(1_000):
                try:
                    rid, _kind, body = router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                frames_in += 1
                pub.send_multipart([b"sequenced", body[:_MARK_BYTES] + record_pad[body[:1]]], zmq.NOBLOCK)
                try:
                    router.send_multipart([rid, *ack], zmq.NOBLOCK)
                except zmq.ZMQError:
                    undeliverable += 1
    _say("result", frames_in=frames_in, acks_undeliverable=undeliverable)


def role_raw_feed_burst(args: dict[str, Any]) -> None:
    """N tick-sized frames, same unacked window as IngressClient, acks counted."""
    from bus import limits
    from bus.sockets import ingress_client

    n = args["n"]
    pad = _raw_pads(args["sizes"])["tick_envelope"]
    bodies = [b"T" + _MARK.pack(i, 0) + pad for i in range(1, n + 1)]
    window = limits.INGRESS_MAX_UNACKED
    with zmq_context() as ctx:
        sock = ingress_client(ctx, args["ingress"])
        _wait_writable(sock, time.monotonic() + READY_TIMEOUT_S)
        _say("ready")
        sent = acked = waits = 0
        first_ns = time.monotonic_ns()
        send, recv = sock.send_multipart, sock.recv_multipart
        give_up = time.monotonic() + SEND_DEADLINE_S
        while sent < n and not _STOP and time.monotonic() < give_up:
            try:
                while sent < n and sent - acked < window:
                    send([b"envelope", bodies[sent]], zmq.NOBLOCK)
                    sent += 1
            except zmq.Again:
                pass
            full = sent - acked >= window or sent < n
            waits += full
            if full:
                sock.poll(1, zmq.POLLIN | zmq.POLLOUT)
            for _ in range(1_000):
                try:
                    recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                acked += 1
        last_ns = time.monotonic_ns()
        deadline = time.monotonic() + ACK_WAIT_S
        while acked < sent and not _STOP and time.monotonic() < deadline:
            if sock.poll(10):
                while True:
                    try:
                        recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    acked += 1
        all_acked_ns = time.monotonic_ns() if acked >= sent else 0
    _say("result", first_send_ns=first_ns, last_send_ns=last_ns, all_acked_ns=all_acked_ns, sent=sent,
         refused=0, window_waits=waits, unacked=sent - acked)  # fmt: skip


def _drain(sock: Any) -> int:
    count = 0
    while True:
        try:
            sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return count
        count += 1


def role_raw_feed_paced(args: dict[str, Any]) -> None:
    from bus.sockets import ingress_client

    ticks, pace_ns = args["ticks"], int(args["pace_ms"] * 1_000_000)
    pad = _raw_pads(args["sizes"])["tick_envelope"]
    with zmq_context() as ctx:
        sock = ingress_client(ctx, args["ingress"])
        _wait_writable(sock, time.monotonic() + READY_TIMEOUT_S)
        _say("ready")
        start = time.monotonic_ns()
        sent = acked = 0
        for i in range(1, ticks + 1):
            if _STOP:
                break
            wait = start + i * pace_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            sock.send_multipart([b"envelope", b"T" + _MARK.pack(i, time.monotonic_ns()) + pad], zmq.NOBLOCK)
            sent += 1
            acked += _drain(sock)
        deadline = time.monotonic() + 10
        while acked < sent and not _STOP and time.monotonic() < deadline:
            if sock.poll(10):
                acked += _drain(sock)
    _say("result", sent=sent, acked=acked)


def role_raw_echo(args: dict[str, Any]) -> None:
    """SUB to the relay; for every tick record an intent-sized frame back, marker copied."""
    from bus.sockets import ingress_client, subscriber

    pad = _raw_pads(args["sizes"])["intent_envelope"]
    with zmq_context() as ctx:
        sub = subscriber(ctx, args["publication"])
        dealer = ingress_client(ctx, args["ingress"])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # the relay's hello: our subscription is in place
            if _STOP or time.monotonic() > deadline:
                raise TimeoutError("raw echo: no hello")
            if sub.poll(50) and sub.recv_multipart(zmq.NOBLOCK)[0] == b"hello":
                break
        _wait_writable(dealer, deadline)
        _say("ready")
        intents = 0
        stop_at = time.monotonic() + args.get("max_seconds", 600)
        while not _STOP and time.monotonic() < stop_at:
            if not sub.poll(20):
                continue
            while True:
                try:
                    kind, body = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if kind == b"sequenced" and body[:1] == b"T":
                    dealer.send_multipart([b"envelope", b"I" + body[1:_MARK_BYTES] + pad], zmq.NOBLOCK)
                    intents += 1
            _drain(dealer)
    _say("result", intents=intents)


ROLES: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "feed_burst": role_feed_burst,
    "feed_paced": role_feed_paced,
    "echo_strategy": role_echo_strategy,
    "raw_relay": role_raw_relay,
    "raw_feed_burst": role_raw_feed_burst,
    "raw_feed_paced": role_raw_feed_paced,
    "raw_echo": role_raw_echo,
}


def run_role(name: str, args: dict[str, Any]) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    ROLES[name](args)
    return 0


# ================================================================================ the run


def run(transports: list[str], cases: list[str], *, n: int, ticks: int, pace_ms: float, warmup: int,
        repeats: int = 1, settings: GroupSettings = GroupSettings(),
        py_spy_dir: Path | None = None) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Every case on every transport; a throughput case keeps the best of `repeats` runs."""
    results: dict[str, dict[str, Any]] = {}
    for transport in transports:
        results[transport] = {}
        for case in cases:
            print(f"{transport} {case} ...", file=sys.stderr, flush=True)
            try:
                if case == "throughput":
                    spy = [py_spy_dir] + [None] * (repeats - 1)  # profile the first run only
                    r = _best_of([case_throughput(transport, n, settings=settings, py_spy_dir=d) for d in spy])
                elif case == "raw_throughput":
                    r = _best_of([case_raw_throughput(transport, n) for _ in range(repeats)])
                elif case in ("latency", "latency_strategy_host"):
                    host = case == "latency_strategy_host"
                    r = case_latency(
                        transport, ticks, pace_ms=pace_ms, warmup=warmup, settings=settings, strategy_host=host
                    )
                else:
                    r = case_raw_latency(transport, ticks, pace_ms=pace_ms, warmup=warmup)
            except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
                r = {"error": f"{type(exc).__name__}: {exc}"}
            results[transport][case] = r
            print(f"  {_line(r)}", file=sys.stderr, flush=True)
    return results


def _best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the highest rate (a shared machine only ever slows a run down); every rate kept."""
    best = max(runs, key=lambda r: r["envelopes_per_s"] or 0.0)
    return {**best, "runs_envelopes_per_s": [r["envelopes_per_s"] for r in runs]}


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"FAILED {r['error']}"
    if "envelopes_per_s" in r:
        rate = r["envelopes_per_s"]
        shown = f"{rate:>10,.0f} envelopes/s" if rate else "incomplete"
        return f"{shown}  {r['seconds']:.2f} s  seen {r['records_seen']:,} gaps {r['gaps']}"
    lat = r["latency"]
    if not lat.get("samples"):
        return "no latency samples"
    return (f"p50 {lat['p50_us']:8.0f} us  p95 {lat['p95_us']:8.0f} us  p99 {lat['p99_us']:8.0f} us  "
            f"({lat['samples']} samples, {r['orders_seen']}/{r['ticks']} orders)")  # fmt: skip


def _default_checkpoint_every() -> int:
    from services.deploy.profile import DEFAULT_CHECKPOINT_EVERY_EVENTS

    return DEFAULT_CHECKPOINT_EVERY_EVENTS


def ratios_of(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for transport, r in results.items():
        ratios: dict[str, float] = {}
        seq, raw = r.get("throughput", {}).get("envelopes_per_s"), r.get("raw_throughput", {}).get("envelopes_per_s")
        if seq and raw:
            ratios["sequencer_vs_raw_throughput"] = seq / raw
        raw_lat = r.get("raw_latency", {}).get("latency", {})
        for case in ("latency", "latency_strategy_host"):
            lat = r.get(case, {}).get("latency", {})
            for p in ("p50", "p95", "p99"):
                if lat.get(f"{p}_us") and raw_lat.get(f"{p}_us"):
                    ratios[f"{case}_{p}_vs_raw"] = lat[f"{p}_us"] / raw_lat[f"{p}_us"]
        out[transport] = ratios
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".bench/bus.json"))
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {N_QUICK:,} envelopes, {TICKS // 4} ticks")
    parser.add_argument("--n", type=int, help=f"envelopes for the throughput cases (default {N_FULL:,})")
    parser.add_argument("--ticks", type=int, help=f"ticks for the latency cases (default {TICKS:,})")
    parser.add_argument("--repeats", type=int, help="throughput runs per case, best kept (default 3; 1 with --quick)")
    parser.add_argument("--pace-ms", type=float, default=PACE_MS)
    parser.add_argument("--warmup", type=int, default=WARMUP_TICKS)
    parser.add_argument("--fsync-interval-ms", type=int, default=FSYNC_INTERVAL_MS)
    parser.add_argument("--checkpoint-every", type=int, help="[checkpoint] every_events (default: the profile's)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="profile sequencer and feed of the throughput cases")
    parser.add_argument(
        "--sequencer-module",
        default=GroupSettings.sequencer_module,
        help="run this module as the sequencer CLI (to measure a patched sequencer)",
    )
    parser.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)  # internal: a child process
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role:
        return run_role(args.role, json.loads(args.args))

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the cases' cleanup: children are stopped

    signal.signal(signal.SIGTERM, _terminate)
    settings = GroupSettings(args.fsync_interval_ms, args.checkpoint_every, args.sequencer_module)
    n = args.n or (N_QUICK if args.quick else N_FULL)
    ticks = args.ticks or (TICKS // 4 if args.quick else TICKS)
    warmup = min(args.warmup, ticks // 10) if args.quick else args.warmup
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    transports, cases = args.transports.split(","), args.cases.split(",")
    load_before = os.getloadavg()
    repeats = args.repeats or (1 if args.quick else REPEATS)
    results = run(transports, cases, n=n, ticks=ticks, pace_ms=args.pace_ms, warmup=warmup, repeats=repeats,
                  settings=settings, py_spy_dir=args.py_spy)  # fmt: skip
    ratios = ratios_of(results)
    command = f"python -m {MODULE}" + (" --quick" if args.quick else "") + f" --out {args.out}"
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python_loop_ns": python_loop_ns(),
        "load_average_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "core_build": core_build(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
    }
    report = {
        "command": command,
        "machine": machine,
        "settings": {
            "envelopes": n,
            "throughput_repeats": repeats,
            "ticks": ticks,
            "pace_ms": args.pace_ms,
            "warmup_ticks": warmup,
            "journal": {"fsync": "interval", "fsync_interval_ms": args.fsync_interval_ms},
            "checkpoint_every_events": settings.checkpoint_every or _default_checkpoint_every(),
            "sequencer": f"python -m {settings.sequencer_module} serve sequencer --profile P",
            "strategy": STRATEGY_LABEL,
            "clock": "time.monotonic_ns (CLOCK_MONOTONIC, one host)",
        },
        "targets": TARGETS,
        "results": results,
        "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for transport, r in ratios.items():
        for key, value in r.items():
            print(f"{transport} {key}: {value:.2f}x", file=sys.stderr)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
