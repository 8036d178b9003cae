"""Builders shared by the matching tests: a core config whose venue takes everything, commands,
bars, and a few readers of the venue's reports."""

from __future__ import annotations

from typing import Any

from schemas import (
    Bar,
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    OrderType,
    Quote,
    ReplaceRejectedReport,
    RequestCancel,
    RequestReplace,
    Side,
    SubmitOrder,
    TimeInForce,
    Trade,
)
from services.matching import MatchingConfig, SimulatedVenue, VenueReport
from services.sequencer.core import AccountConfig, CoreConfig, CurrencySpec, InstrumentSpec, VenueSpec

VENUE = "SIM"
BTC = "BTC-USD"  # prices in cents, sizes in 1e-4 BTC, USD in 1e-6: notional_scale 1
ETH = "ETH-USD"  # tick 5 cents, lots of 10 size units
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z
MIN = 60_000_000_000
DAY = 86_400_000_000_000

ALL_TYPES = tuple(OrderType)
ALL_TIFS = tuple(TimeInForce)


def core_config(**venue_overrides: Any) -> CoreConfig:
    """A venue that takes every order type, TIF, post-only, replace and linked orders."""
    venue: dict[str, Any] = dict(
        order_types=ALL_TYPES,
        time_in_force=ALL_TIFS,
        native_replace=True,
        post_only=True,
        native_gtd=True,
        linked_orders=True,
    )
    venue.update(venue_overrides)
    return CoreConfig(
        currencies={"USD": CurrencySpec(decimals=6), "BTC": CurrencySpec(decimals=8), "ETH": CurrencySpec(decimals=8)},
        venues={VENUE: VenueSpec(**venue), "OTHER": VenueSpec()},
        instruments={
            BTC: InstrumentSpec(venue=VENUE, base="BTC", quote="USD", price_decimals=2, size_decimals=4),
            ETH: InstrumentSpec(
                venue=VENUE, base="ETH", quote="USD", price_decimals=2, size_decimals=4, tick_size=5, lot_size=10
            ),
            "ETH-OTHER": InstrumentSpec(venue="OTHER", base="ETH", quote="USD", price_decimals=2, size_decimals=4),
        },
        account=AccountConfig(initial_cash={"USD": 10**15}, margin=True),
    )


def venue(core: CoreConfig | None = None, **config: Any) -> SimulatedVenue:
    return SimulatedVenue(VENUE, core if core is not None else core_config(), MatchingConfig(**config))


def order(
    cid: str,
    side: str = "buy",
    order_type: str = "market",
    quantity: int = 100,
    price: int | None = None,
    stop_price: int | None = None,
    tif: str = "gtc",
    instrument: str = BTC,
    **extra: Any,
) -> SubmitOrder:
    return SubmitOrder(
        seq_id=1,
        venue=VENUE,
        strategy_id="s1",
        client_order_id=cid,
        instrument=instrument,
        side=Side(side),
        order_type=OrderType(order_type),
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        time_in_force=TimeInForce(tif),
        **extra,
    )


def cancel(cid: str, instrument: str = BTC) -> RequestCancel:
    return RequestCancel(seq_id=1, venue=VENUE, client_order_id=cid, instrument=instrument, reason="by test")


def replace(cid: str, quantity: int, price: int | None = None, instrument: str = BTC) -> RequestReplace:
    return RequestReplace(
        seq_id=1, venue=VENUE, client_order_id=cid, instrument=instrument, quantity=quantity, price=price
    )


def bar(o: int, h: int, low: int, c: int, volume: int = 1_000_000, interval: int = MIN) -> Bar:
    return Bar(open=o, high=h, low=low, close=c, volume=volume, interval_ns=interval)


def flat(price: int, volume: int = 1_000_000) -> Bar:
    return bar(price, price, price, price, volume)


def trade(price: int, quantity: int = 1_000_000) -> Trade:
    return Trade(price=price, quantity=quantity)


def quote(bid: int, ask: int, bid_size: int = 1_000_000, ask_size: int = 1_000_000) -> Quote:
    return Quote(bid_price=bid, bid_size=bid_size, ask_price=ask, ask_size=ask_size)


def at(k: int) -> int:
    """The close time of the k-th minute bar after T0."""
    return T0 + k * MIN


# ---------------------------------------------------------------------- reading reports


def payloads(reports: list[VenueReport]) -> list[Any]:
    return [r.report for r in reports]


def fills(reports: list[VenueReport], cid: str | None = None) -> list[FillReport]:
    return [
        r.report
        for r in reports
        if isinstance(r.report, FillReport) and (cid is None or r.report.client_order_id == cid)
    ]


def fill_prices(reports: list[VenueReport], cid: str | None = None) -> list[tuple[int, int]]:
    """(quantity, price) per fill."""
    return [(f.quantity, f.price) for f in fills(reports, cid)]


_KINDS: dict[type, str] = {
    OrderAcceptedReport: "accepted",
    OrderRejectedReport: "rejected",
    FillReport: "fill",
    OrderCancelledReport: "cancelled",
    CancelRejectedReport: "cancel_rejected",
    OrderExpiredReport: "expired",
    OrderReplacedReport: "replaced",
    ReplaceRejectedReport: "replace_rejected",
}


def kinds(reports: list[VenueReport], cid: str | None = None) -> list[str]:
    """The report kinds, in order (optionally for one order)."""
    return [_KINDS[type(r.report)] for r in reports if cid is None or r.report.client_order_id == cid]


def reason_of(reports: list[VenueReport], cid: str) -> str:
    """The reason of the (single) cancel/reject-type report for `cid`."""
    found = [r.report.reason for r in reports if r.report.client_order_id == cid and hasattr(r.report, "reason")]
    assert len(found) == 1, found
    return str(found[0])
