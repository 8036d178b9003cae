"""Build envelope streams by hand: for tests, examples, benchmarks and `make run`.

A test tool that is part of the product (like trio's MockClock): no I/O, deterministic. Each
producer gets its own counter, exactly as a real feed, gateway or strategy host would.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec

from schemas import (
    Bar,
    CancelOrder,
    Envelope,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderRejectedReport,
    OrderType,
    Payload,
    PlaceOrder,
    Side,
    Source,
    Timer,
    Trade,
)
from schemas.envelope import PAYLOAD_SOURCE
from services.sequencer.core import (
    AccountConfig,
    CoreConfig,
    CurrencySpec,
    InstrumentSpec,
    RiskConfig,
    Sequencer,
    VenueSpec,
)

__all__ = ["MINUTE_NS", "T0_NS", "Scenario", "demo_config"]

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Envelope)

T0_NS = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MINUTE_NS = 60_000_000_000


def demo_config(**overrides: Any) -> CoreConfig:
    """A small, realistic config: a crypto pair on a simulated venue and a prediction market.

    BTC-USD: prices in cents (2 decimals), sizes in 1e-4 BTC, USD cash in 1e-6.
    PRES-YES: a binary contract priced in cents within (0, 1), whole contracts.
    """
    base: dict[str, Any] = dict(
        currencies={
            "USD": CurrencySpec(decimals=6),
            "BTC": CurrencySpec(decimals=8),
            "PRES": CurrencySpec(decimals=0),  # whole contracts of the prediction market
        },
        venues={
            "SIM": VenueSpec(
                order_types=("market", "limit", "stop", "stop_limit"),
                time_in_force=("gtc", "ioc", "fok", "day", "gtd"),
                native_replace=True,
                post_only=True,
                native_gtd=False,
            ),
            "PM": VenueSpec(
                order_types=("limit",),
                time_in_force=("gtc", "ioc"),
                price_bounds=(Decimal(0), Decimal(1)),
            ),
        },
        instruments={
            "BTC-USD": InstrumentSpec(
                venue="SIM", base="BTC", quote="USD", price_decimals=2, size_decimals=4, tick_size=1, lot_size=1
            ),
            "PRES-YES": InstrumentSpec(venue="PM", base="PRES", quote="USD", price_decimals=2, size_decimals=0),
        },
        account=AccountConfig(initial_cash={"USD": 1_000_000 * 10**6}),
        risk=RiskConfig(),
    )
    base.update(overrides)
    return CoreConfig(**base)


class Scenario:
    """Accumulates envelopes from named producers, then sequences them.

    Producers: `feed` (market data), `venue-<id>` (reports), `strategy-<id>` (intents),
    `clock` (timers), `control`. Event time advances only when the caller says so.
    """

    def __init__(self, start_ns: int = T0_NS) -> None:
        self.now_ns = start_ns
        self.envelopes: list[Envelope] = []
        self._counters: dict[str, int] = {}

    def advance(self, ns: int = MINUTE_NS) -> Scenario:
        self.now_ns += ns
        return self

    def emit(
        self,
        payload: Payload,
        *,
        producer: str,
        instrument: str = "",
        venue: str = "",
        idempotency_key: str | None = None,
        source: Source | None = None,
        producer_seq: int | None = None,
    ) -> Envelope:
        if producer_seq is None:
            producer_seq = self._counters.get(producer, 0) + 1
            self._counters[producer] = producer_seq
        env = Envelope(
            source=source if source is not None else PAYLOAD_SOURCE[type(payload)],
            producer_id=producer,
            producer_seq=producer_seq,
            event_time_ns=self.now_ns,
            payload=payload,
            venue=venue,
            instrument=instrument,
            idempotency_key=idempotency_key,
        )
        # Round trip through the wire codec: what the core gets is exactly what a socket delivers
        # (enums decoded, every constraint checked), so a bad scenario fails here, loudly.
        env = _DECODER.decode(_ENCODER.encode(env))
        self.envelopes.append(env)
        return env

    # market data
    def bar(self, instrument: str, o: int, h: int, low: int, c: int, volume: int = 1_0000) -> Envelope:
        return self.emit(Bar(open=o, high=h, low=low, close=c, volume=volume), producer="feed", instrument=instrument)

    def trade(self, instrument: str, price: int, quantity: int = 1) -> Envelope:
        return self.emit(Trade(price=price, quantity=quantity), producer="feed", instrument=instrument)

    def timer(self) -> Envelope:
        return self.emit(Timer(), producer="clock")

    # intents
    def place(
        self,
        cid: str,
        instrument: str = "BTC-USD",
        side: str = "buy",
        quantity: int = 1_0000,
        order_type: str = "limit",
        price: int | None = 4_200_000,
        strategy: str = "s1",
        **extra: Any,
    ) -> Envelope:
        intent = PlaceOrder(
            strategy_id=strategy,
            client_order_id=cid,
            instrument=instrument,
            side=Side(side),
            order_type=OrderType(order_type),
            quantity=quantity,
            price=price,
            **extra,
        )
        return self.emit(intent, producer=f"strategy-{strategy}", instrument=instrument)

    def cancel(self, cid: str, strategy: str = "s1") -> Envelope:
        return self.emit(CancelOrder(strategy_id=strategy, client_order_id=cid), producer=f"strategy-{strategy}")

    # venue reports
    def report(self, payload: Payload, venue: str = "SIM", **kwargs: Any) -> Envelope:
        key = kwargs.pop("idempotency_key", None)
        return self.emit(payload, producer=f"venue-{venue}", venue=venue, idempotency_key=key, **kwargs)

    def accept(self, cid: str, venue: str = "SIM") -> Envelope:
        return self.report(OrderAcceptedReport(client_order_id=cid, venue_order_id=f"v-{cid}"), venue)

    def reject(self, cid: str, venue: str = "SIM", reason: str = "venue says no") -> Envelope:
        return self.report(OrderRejectedReport(client_order_id=cid, reason=reason), venue)

    def fill(self, cid: str, trade_id: str, quantity: int, price: int, fee: int = 0, venue: str = "SIM") -> Envelope:
        return self.report(
            FillReport(client_order_id=cid, trade_id=trade_id, quantity=quantity, price=price, fee=fee), venue
        )

    def cancelled(self, cid: str, venue: str = "SIM") -> Envelope:
        return self.report(OrderCancelledReport(client_order_id=cid), venue)

    # sequencing
    def sequenced(self, first_seq_id: int = 1) -> list[Envelope]:
        """The envelopes in emission order, stamped with contiguous seq ids."""
        seq = Sequencer(last_seq_id=first_seq_id - 1)
        return seq.assign(self.envelopes, ingest_time_ns=0, ordered=True)

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self.sequenced())
