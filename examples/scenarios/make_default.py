"""Generate the bundled default scenario: `python examples/scenarios/make_default.py`.

A synthetic trading day on BTC-USD (seeded random walk of trades, one a second for 3 hours) with
a simple strategy's orders and a venue's reports written out by hand, including the awkward
cases real venues produce: a fill before its acknowledgement, a duplicated fill, a cancel that
races a fill, and an order the risk guards refuse. Until the simulated venue lands, the venue's
answers are scripted here. Output: default/config.json and default/input.jsonl (unsequenced
envelopes in arrival order; `tradebus scenario` sequences them).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec

from services.sequencer.core import OrderRateLimit, RiskConfig
from services.sequencer.scenario import Scenario, demo_config

SEED = 20240101
SECOND_NS = 1_000_000_000
TICK_NS = 10_000_000  # 10 ms between the steps of one story, so event time orders them
OUT = Path(__file__).parent / "default"


def build() -> tuple[object, Scenario]:
    rng = random.Random(SEED)
    config = demo_config(
        risk=RiskConfig(
            max_order_quantity={"BTC-USD": 2_0000},
            max_position={"BTC-USD": 3_0000},
            max_open_orders=4,
            price_band_bps=300,
            order_rate=OrderRateLimit(max_orders=10, interval_ns=60 * SECOND_NS),
        )
    )
    sc = Scenario()
    price = 4_200_000
    held = 0
    n = 0
    for second in range(3 * 3600):
        sc.advance(SECOND_NS)
        price = max(100, price + rng.choice((-1, 1)) * rng.randint(0, 800))
        sc.trade("BTC-USD", price, quantity=rng.randint(1, 5000))
        if second % 600 != 300:
            continue
        n += 1
        cid = f"demo-{n}"
        side = "buy" if held <= 0 else "sell"
        qty = 5000
        if n % 7 == 0:
            sc.place(cid, side="buy", quantity=5_0000, price=price, strategy="demo")  # too big: refused
            continue
        sc.place(cid, side=side, quantity=qty, price=price, strategy="demo")
        sc.advance(SECOND_NS // 10)
        if n % 5 == 0:  # the fill overtakes the acknowledgement
            sc.fill(cid, f"T{n}a", qty, price, fee=qty * price // 2000)
            sc.accept(cid)
        elif n % 6 == 0:  # a cancel racing a fill: the fill wins
            sc.accept(cid)
            sc.advance(TICK_NS).cancel(cid, strategy="demo")
            sc.advance(TICK_NS).fill(cid, f"T{n}a", qty, price, fee=qty * price // 2000)
            sc.advance(TICK_NS).cancelled(cid)
        else:
            sc.accept(cid)
            sc.fill(cid, f"T{n}a", qty // 2, price, fee=qty * price // 4000)
            sc.fill(cid, f"T{n}a", qty // 2, price, fee=qty * price // 4000)  # duplicated by the venue
            sc.fill(cid, f"T{n}b", qty - qty // 2, price, fee=qty * price // 4000)
        held += qty if side == "buy" else -qty
    return config, sc


def main() -> None:
    config, sc = build()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "config.json").write_text(json.dumps(json.loads(config.canonical_json()), indent=2, sort_keys=True) + "\n")
    encoder = msgspec.json.Encoder(order="deterministic")
    (OUT / "input.jsonl").write_bytes(b"".join(encoder.encode(e) + b"\n" for e in sc.envelopes))
    print(f"wrote {len(sc.envelopes)} envelopes to {OUT}")


if __name__ == "__main__":
    main()
