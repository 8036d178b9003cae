"""`tradebus status PROFILE [--watch]`: the group at a glance, read from what the sequencer publishes.

Processes (supervisord's view), the peers the sequencer hears (heartbeats), its seq id, and the
book (cash, positions, PnL) from a snapshot over the sync endpoint. Read-only: it sends nothing
to ingress, so it can run anywhere the endpoints reach.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import zmq

from bus.codec import PUBLICATION, SYNC_REPLY, SYNC_REQUEST, FrameCodec, FrameError
from bus.sockets import subscriber, sync_client
from schemas.bus import Heartbeat, PeerStatus, Sequenced, SequencedBatch, SnapshotReply, SnapshotRequest

__all__ = ["collect_status", "register", "render_status"]

LISTEN_MS: Final = 1_500  # a little over one heartbeat interval: every live peer shows up once


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "status",
        help="processes, heartbeats, seq id, positions and PnL of a running group",
        description="Show a running group's processes and state, read from the sequencer's publication and sync endpoints.",
    )
    parser.add_argument("profile", type=Path, metavar="PROFILE")
    parser.add_argument("--watch", action="store_true", help="refresh every two seconds until Ctrl-C")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from services.deploy.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"tradebus status: {exc}", file=sys.stderr)
        return 2
    while True:
        text = render_status(profile, collect_status(profile))
        if args.watch:
            print("\033[2J\033[H", end="")
        print(text, flush=True)
        if not args.watch:
            return 0
        try:
            time.sleep(2)
        except KeyboardInterrupt:
            return 0


def collect_status(profile: Any, listen_ms: int = LISTEN_MS) -> dict[str, Any]:
    """Everything `render_status` shows, as data (tests read this)."""
    from services.deploy.supervisor_conf import supervisor_files

    status: dict[str, Any] = {"processes": _processes(supervisor_files(profile.group.run_dir)), "peers": {}}
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = subscriber(ctx, profile.endpoints.publication)
    sync = sync_client(ctx, profile.endpoints.sync)
    publication = FrameCodec(PUBLICATION)
    request = FrameCodec(SYNC_REQUEST).encode(SnapshotRequest(request_id=1))
    requested = False
    replies = FrameCodec(SYNC_REPLY)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(sync, zmq.POLLIN)
    deadline = time.monotonic() + listen_ms / 1000
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not requested:  # the sync socket queues nothing until connected (IMMEDIATE): retry
                try:
                    sync.send_multipart(request, zmq.NOBLOCK)
                    requested = True
                except zmq.Again:
                    pass
            ready = dict(poller.poll(min(int(left * 1000) + 1, 50)))
            if sync in ready:
                try:
                    reply = replies.decode(sync.recv_multipart())
                except FrameError:
                    continue
                if isinstance(reply, SnapshotReply):
                    status["snapshot"] = reply
            if sub in ready:
                try:
                    message = publication.decode(sub.recv_multipart())
                except FrameError:
                    continue
                if isinstance(message, Heartbeat) and message.peer == "sequencer":
                    status["seq_id"] = message.last_seq_id
                    status["sequencer_seen_ns"] = message.sent_ns
                elif isinstance(message, PeerStatus):
                    status["peers"][message.peer] = message
                elif isinstance(message, Sequenced):
                    status["seq_id"] = max(status.get("seq_id", 0), message.seq_id)
                elif isinstance(message, SequencedBatch):  # contiguous: the last is the highest
                    status["seq_id"] = max(status.get("seq_id", 0), message.records[-1].seq_id)
    finally:
        sub.close(linger=0)
        sync.close(linger=0)
        ctx.term()
    return status


def render_status(profile: Any, status: dict[str, Any]) -> str:
    lines = [f"group {profile.group.name!r} ({profile.group.mode})  run_dir {profile.group.run_dir}", ""]
    lines.append(f"{'process':24} {'state':10} detail")
    for name, state, detail in status["processes"] or [("(supervisord not running)", "-", "")]:
        lines.append(f"{name:24} {state:10} {detail}")
    lines.append("")
    seq = status.get("seq_id")
    lines.append(f"sequencer: {'no heartbeat heard' if seq is None else f'seq id {seq}'}")
    for peer, st in sorted(status["peers"].items()):
        lines.append(f"  peer {peer:22} {'alive' if st.alive else 'SILENT'}  missed heartbeats {st.missed_heartbeats}")
    snap: SnapshotReply | None = status.get("snapshot")
    if snap is not None:
        s = snap.snapshot
        lines.append(f"book at seq {snap.seq_id} (state hash {snap.state_hash[:16]}), halted {s.halted}")
        for cash in s.cash:
            lines.append(f"  cash {cash.currency:8} balance {cash.balance}  fees {cash.fees}  (units of 10^-decimals)")
        for pos in s.positions:
            last = s.last_prices.get(pos.instrument)
            unrealized = pos.quantity * last - pos.cost if last is not None else 0
            lines.append(
                f"  position {pos.instrument:12} qty {pos.quantity}  realized {pos.realized_pnl}  "
                f"unrealized {unrealized} (price x size units)"
            )
        open_orders = [o for o in s.orders if o.state not in ("filled", "cancelled", "rejected", "expired")]
        lines.append(f"  orders: {len(s.orders)} known, {len(open_orders)} open")
    return "\n".join(lines)


def _processes(files: Any) -> list[tuple[str, str, str]]:
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    if not files.conf.exists():
        return []
    try:
        done = subprocess.run(
            [str(supervisorctl), "-c", str(files.conf), "status"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    rows = []
    for line in done.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and not line.startswith(("unix://", "error")):
            rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return rows
