"""RELIABILITY D3, core only: for every k, checkpoint at k + replay of the suffix == full replay.

For a random stream (built with `Scenario`, so every envelope has been through the wire codec)
and for EVERY k in 0..len(stream): the snapshot of the core that applied stream[:k] is encoded
to MessagePack, decoded, restored into a fresh core, and that core applies stream[k:]. It must
report the same state hash at k, publish exactly the outputs the uninterrupted core published
for the suffix, and end with the same state hash. The msgpack round trip proves the snapshot is
complete *as data*: nothing the suffix needs may live only in Python objects.

Streams exercise what a snapshot must carry or a restore must rebuild: open and terminal orders
in every state, pending requests with their origin, replaced terms, positions long and short
(margin account) or flat, cash ledgers, last prices, producer counters and gaps, idempotency
keys and trade ids (a dedup window of 16 so FIFO eviction order matters), order-rate windows,
open-order counts, risk flags, the halt flag, and GTD orders the core itself expires later.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import (
    AdjustCash,
    CancelRejectedReport,
    CoreSnapshot,
    Envelope,
    FillReport,
    HaltTrading,
    NoOp,
    OrderExpiredReport,
    OrderReplacedReport,
    ReplaceOrder,
    ReplaceRejectedReport,
    ResumeTrading,
    RiskFlag,
    SetRiskFlag,
    SubmissionUnknownReport,
)
from schemas.codec import msgpack_encoder, snapshot_decoder
from services.sequencer.core import AccountConfig, CoreConfig, OrderRateLimit, RestoreError, RiskConfig, SequencerCore
from services.sequencer.core.book import state_hash_of
from services.sequencer.scenario import MINUTE_NS, Scenario, demo_config

BTC = "BTC-USD"
PM = "PRES-YES"
VENUE = {BTC: "SIM", PM: "PM"}

_ENCODER = msgpack_encoder()
_SNAPSHOT_DECODER = snapshot_decoder()


def d3_config(margin: bool, policy: str) -> CoreConfig:
    """The demo venues and instruments with every piece of risk state switched on."""
    return demo_config(
        account=AccountConfig(initial_cash={"USD": 1_000_000 * 10**6}, margin=margin),
        risk=RiskConfig(
            order_rate=OrderRateLimit(max_orders=4, interval_ns=2 * MINUTE_NS),
            max_open_orders=6,
            reserve_fee_bps=10,
        ),
        invariant_policy=policy,  # never `raise` here: D3 is about replay, not invariants
        dedup_window=16,
    )


CONFIGS = {(m, p): d3_config(m, p) for m in (False, True) for p in ("halt", "log")}


@st.composite
def streams(draw: st.DrawFn, max_ops: int = 60) -> list[Envelope]:
    """A stream of envelopes from all producers: mostly sensible, with repeats and refusals."""
    sc = Scenario()
    px = {BTC: draw(st.integers(3_000_000, 5_000_000), label="btc"), PM: draw(st.integers(1, 99), label="pm")}
    orders: list[tuple[str, str, str, int]] = []  # (cid, instrument, strategy, quantity)
    trade_ids: list[str] = []
    keys: list[str] = []
    serial = iter(range(1, 10**6))

    def an_order() -> tuple[str, str, str, int]:
        if orders and draw(st.sampled_from([True] * 9 + [False]), label="known order"):
            return draw(st.sampled_from(orders), label="order")
        return (f"ghost{next(serial)}", BTC, "s1", 1_0000)

    def a_key() -> str | None:
        how = draw(st.sampled_from(["none"] * 5 + ["new", "reuse"]), label="key")
        if how == "none":
            return None
        if how == "reuse" and keys:
            return draw(st.sampled_from(keys), label="reused key")
        keys.append(f"k{next(serial)}")
        return keys[-1]

    if draw(st.booleans(), label="opening prices"):
        sc.trade(BTC, px[BTC])
        sc.trade(PM, px[PM])
    for _ in range(draw(st.integers(min(5, max_ops), max_ops), label="ops")):
        op = draw(
            st.sampled_from(
                ["place"] * 5 + ["accept"] * 3 + ["fill"] * 5
                + ["cancel", "cancelled", "reject", "replace", "venue", "market", "time", "control"]
                + ["repeat", "strategy"]
            ),
            label="op",
        )
        if op == "place":
            inst = draw(st.sampled_from([BTC, BTC, PM]), label="instrument")
            strategy = draw(st.sampled_from(["s1", "s2"]), label="strategy")
            otype = "limit" if inst == PM else draw(st.sampled_from(["limit", "limit", "market", "stop"]), label="type")
            side = draw(st.sampled_from(["buy", "buy", "sell"]), label="side")
            qty = draw(st.integers(1, 3_0000) if inst == BTC else st.integers(1, 20_000), label="qty")
            price = px[inst] + (draw(st.integers(-px[inst] // 20, px[inst] // 20)) if inst == BTC else 0)
            extra: dict[str, Any] = {}
            if otype == "stop":
                extra["stop_price"] = price
            if inst == BTC and draw(st.integers(0, 3), label="gtd") == 0:
                extra["time_in_force"] = "gtd"
                extra["expire_time_ns"] = sc.now_ns + draw(st.sampled_from([1, MINUTE_NS, 3 * MINUTE_NS]), label="ttl")
            cid = f"o{next(serial)}"
            sc.place(cid, inst, side, qty, otype, price if otype == "limit" else None, strategy, **extra)
            orders.append((cid, inst, strategy, qty))
        elif op == "accept":
            cid, inst, _, _ = an_order()
            sc.accept(cid, VENUE[inst])
        elif op == "fill":
            cid, inst, _, size = an_order()
            if trade_ids and draw(st.integers(0, 5), label="reuse trade id") == 0:
                tid = draw(st.sampled_from(trade_ids), label="trade id")
            else:
                tid = f"t{next(serial)}"
                trade_ids.append(tid)
            qty = draw(st.integers(1, size) | st.just(size) | st.integers(size, 2 * size), label="fill qty")
            fee = draw(st.sampled_from([0, 0, 10, -1]), label="fee")
            payload = FillReport(client_order_id=cid, trade_id=tid, quantity=qty, price=px[inst], fee=fee)
            sc.report(payload, VENUE[inst], idempotency_key=a_key())
        elif op == "cancel":
            cid, _, strategy, _ = an_order()
            sc.cancel(cid, strategy)
        elif op == "cancelled":
            cid, inst, _, _ = an_order()
            sc.cancelled(cid, VENUE[inst])
        elif op == "reject":
            cid, inst, _, _ = an_order()
            sc.reject(cid, VENUE[inst])
        elif op == "replace":
            cid, _, strategy, _ = an_order()
            qty = draw(st.integers(1, 4_0000), label="new qty")
            intent = ReplaceOrder(strategy_id=strategy, client_order_id=cid, quantity=qty)
            sc.emit(intent, producer=f"strategy-{strategy}")
        elif op == "venue":
            cid, inst, _, _ = an_order()
            payload = draw(
                st.sampled_from(
                    [
                        OrderExpiredReport(client_order_id=cid),
                        OrderReplacedReport(client_order_id=cid, quantity=draw(st.integers(1, 4_0000), label="q")),
                        ReplaceRejectedReport(client_order_id=cid),
                        CancelRejectedReport(client_order_id=cid),
                        SubmissionUnknownReport(client_order_id=cid),
                    ]
                ),
                label="report",
            )
            sc.report(payload, VENUE[inst], idempotency_key=a_key())
        elif op == "market":
            inst = draw(st.sampled_from([BTC, PM]), label="instrument")
            if inst == BTC:
                px[BTC] = max(1, px[BTC] + draw(st.integers(-px[BTC] // 10, px[BTC] // 10), label="move"))
                sc.bar(BTC, px[BTC], px[BTC] + 5, px[BTC], px[BTC])
            else:
                px[PM] = draw(st.integers(1, 99), label="pm px")
                sc.trade(PM, px[PM])
        elif op == "time":
            sc.advance(draw(st.sampled_from([1, MINUTE_NS, 2 * MINUTE_NS]), label="advance"))
            sc.timer()
        elif op == "control":
            payload = draw(
                st.sampled_from(
                    [
                        AdjustCash(currency="USD", amount=10**10),
                        AdjustCash(currency="USD", amount=-(10**10)),
                        AdjustCash(currency="BTC", amount=10**6),
                        HaltTrading(reason="test"),
                        ResumeTrading(reason="test"),
                        ResumeTrading(reason="test"),
                    ]
                ),
                label="control",
            )
            sc.emit(payload, producer="control")
        elif op == "strategy":
            strategy = draw(st.sampled_from(["s1", "s2"]), label="strategy")
            payload = draw(
                st.sampled_from(
                    [
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.HALT, enabled=True),
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.HALT, enabled=False),
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.HALT, enabled=False),
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.REDUCE_ONLY, enabled=True),
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.REDUCE_ONLY, enabled=False),
                        SetRiskFlag(strategy_id=strategy, flag=RiskFlag.REDUCE_ONLY, enabled=False),
                        NoOp(strategy_id=strategy),
                    ]
                ),
                label="intent",
            )
            sc.emit(payload, producer=f"strategy-{strategy}", idempotency_key=a_key())
        elif sc.envelopes:  # repeat: same counter (dropped), a new counter (B1), or a gap first
            old = draw(st.sampled_from(sc.envelopes), label="repeat")
            how = draw(st.sampled_from(["same counter", "new counter", "gap"]), label="how")
            seq = old.producer_seq if how == "same counter" else None
            if how == "gap":
                sc.emit(NoOp(strategy_id="gappy"), producer="strategy-gappy", producer_seq=next(serial) + 1)
            sc.emit(
                old.payload,
                producer=old.producer_id,
                venue=old.venue,
                instrument=old.instrument,
                idempotency_key=old.idempotency_key,
                producer_seq=seq,
            )
    return sc.sequenced()


def _snapshot_bytes(core: SequencerCore) -> bytes:
    return _ENCODER.encode(core.snapshot())


def _decoded(blob: bytes) -> CoreSnapshot:
    snap = _SNAPSHOT_DECODER.decode(blob)
    # Decoding then encoding gives the same bytes: nothing is lost or reordered in the round trip.
    assert _ENCODER.encode(snap) == blob
    return snap


# Twice the profile's budget: an example replays its stream about len/2 times, still ~20 ms.
@settings(max_examples=2 * settings.default.max_examples)
@given(stream=streams(), margin=st.booleans(), policy=st.sampled_from(["halt", "log"]))
def test_checkpoint_at_every_k_then_replay_equals_full_replay(
    stream: list[Envelope], margin: bool, policy: str
) -> None:
    config = CONFIGS[(margin, policy)]
    reference = SequencerCore(config)
    checkpoints = [_snapshot_bytes(reference)]
    hashes = [reference.state_hash()]
    outputs: list[list[Any]] = []
    for env in stream:
        outputs.append(reference.apply(env))
        checkpoints.append(_snapshot_bytes(reference))
        hashes.append(reference.state_hash())
    final_hash = hashes[-1]

    for k in range(len(stream) + 1):
        snap = _decoded(checkpoints[k])
        restored = SequencerCore(config)
        restored.restore(snap)
        assert restored.state_hash() == hashes[k], f"k={k}: restore does not reproduce the snapshot's state"
        assert restored.seq_id == snap.seq_id
        for i, env in enumerate(stream[k:], start=k):
            got = restored.apply(env)
            assert got == outputs[i], f"k={k}: outputs differ at seq {env.seq_id}\n got: {got}\nwant: {outputs[i]}"
            assert restored.state_hash() == hashes[i + 1], f"k={k}: state after seq {env.seq_id} differs"
        assert restored.state_hash() == final_hash, f"k={k}: final state differs"


@settings(max_examples=max(10, settings.default.max_examples // 3))
@given(stream=streams(max_ops=12))
def test_restore_refuses_a_snapshot_from_another_config(stream: list[Envelope]) -> None:
    core = SequencerCore(CONFIGS[(False, "log")])
    for env in stream:
        core.apply(env)
    snap = _decoded(_snapshot_bytes(core))
    for other in (CONFIGS[(True, "log")], CONFIGS[(False, "halt")], demo_config()):
        target = SequencerCore(other)
        before = target.state_hash()
        with pytest.raises(RestoreError):
            target.restore(snap)
        assert target.state_hash() == before, "a refused restore must leave the core as it was"
    # ... and the same config takes it.
    same = SequencerCore(CONFIGS[(False, "log")])
    same.restore(snap)
    assert same.state_hash() == state_hash_of(snap) == core.state_hash()


def test_restore_refuses_a_snapshot_from_another_config_minimal() -> None:
    snap = SequencerCore(demo_config()).snapshot()
    with pytest.raises(RestoreError):
        SequencerCore(demo_config(dedup_window=17)).restore(snap)
