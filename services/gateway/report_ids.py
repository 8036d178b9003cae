"""Ids a paper gateway puts on the reports it sends: idempotency keys and incarnation-proof trade ids.

Idempotency keys (RELIABILITY B1). Every report envelope carries a key that is a function of the
report's identity at the venue, never of when or how often it is sent, so the core drops a
report it has already applied even when it comes back under a new producer counter:

    fill                      <venue>:fill:<client_order_id>:<trade_id>
    anything else             <venue>:<tag>:<client_order_id>:<n>

where `tag` names the report kind (ack, rej, cxl, cxlrej, exp, rpl, rplrej) and `n` counts the
reports of that kind for that order, from 1, in the order the venue made them (an order is
accepted once, but may see several refused cancels or several replaces). The same venue calls in
the same order give the same keys. A key longer than the wire's id limit (64 characters) is
replaced by ``h:`` and a 160-bit BLAKE2b digest of it.

Trade ids across gateway restarts. `SimulatedVenue` numbers its trades ``<venue>-T<n>`` from 1,
and the core deduplicates fills by (venue, trade id). A restarted paper gateway starts a new
venue whose first trade would be ``<venue>-T1`` again, and the core would drop it (and every
later fill) as a repeat. So a gateway that finds, in its first snapshot, that its producer has
already reported (the venue had an earlier incarnation in this group) suffixes every trade id with
``@<epoch>``, the seq id of that snapshot: unique per incarnation, since an incarnation that
reported anything moved the seq id past the snapshot of the next. The first incarnation of a
group keeps the venue's ids unchanged, as the in-process backtest has them.
"""

from __future__ import annotations

import hashlib
from typing import Final

from schemas.reports import (
    CancelRejectedReport,
    FillReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderExpiredReport,
    OrderRejectedReport,
    OrderReplacedReport,
    ReplaceRejectedReport,
)
from schemas.types import MAX_ID_CHARS, MAX_TEXT_CHARS
from services.matching import VenueReportPayload

__all__ = ["REPORT_TAGS", "bounded_id", "bounded_text", "epoch_trade_id", "fill_key", "report_key"]

REPORT_TAGS: Final[dict[type, str]] = {
    OrderAcceptedReport: "ack",
    OrderRejectedReport: "rej",
    FillReport: "fill",
    OrderCancelledReport: "cxl",
    CancelRejectedReport: "cxlrej",
    OrderExpiredReport: "exp",
    OrderReplacedReport: "rpl",
    ReplaceRejectedReport: "rplrej",
}

_HASH_PREFIX: Final = "h:"
_DIGEST_BYTES: Final = 20  # 40 hex characters: "h:" + 40 fits the 64-character limit


def bounded_id(text: str) -> str:
    """`text` if it fits an id field, else ``h:`` + a digest of it (deterministic)."""
    if len(text) <= MAX_ID_CHARS:
        return text
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()
    return _HASH_PREFIX + digest


def bounded_text(text: str) -> str:
    """`text` cut to fit a text field (schemas.types.MAX_TEXT_CHARS)."""
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 3] + "..."


def fill_key(venue: str, client_order_id: str, trade_id: str) -> str:
    return bounded_id(f"{venue}:fill:{client_order_id}:{trade_id}")


def report_key(venue: str, report: VenueReportPayload, n: int) -> str:
    """The idempotency key of a report that is not a fill: the `n`-th of its kind for its order."""
    assert not isinstance(report, FillReport) and n >= 1
    return bounded_id(f"{venue}:{REPORT_TAGS[type(report)]}:{report.client_order_id}:{n}")


def epoch_trade_id(trade_id: str, epoch: int) -> str:
    """A trade id made unique to one venue incarnation (see the module docstring)."""
    return bounded_id(f"{trade_id}@{epoch}")
