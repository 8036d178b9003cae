"""Building the outputs that say no: intent rejections, report refusals, dropped duplicates.

Every detail is clipped to the wire limit so what we publish always decodes on the other side.
"""

from __future__ import annotations

from typing import Any

from schemas.enums import RefusalReason, RejectReason
from schemas.envelope import Envelope
from schemas.outputs import DuplicateDropped, IntentRejected, Output, ReportRefused
from schemas.types import MAX_TEXT_CHARS

__all__ = ["clip", "differences", "drop_duplicate", "refuse_report", "reject_intent"]


def clip(text: str) -> str:
    """Keep free text inside the wire limit."""
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 3] + "..."


def differences(old: Any, new: Any) -> str:
    """Name the fields that differ between two payloads: what a conflicting repeat changed."""
    if type(old) is not type(new):
        return f"type {type(old).__name__} -> {type(new).__name__}"
    return "; ".join(
        f"{f}: {getattr(old, f)!r} -> {getattr(new, f)!r}"
        for f in old.__struct_fields__
        if getattr(old, f) != getattr(new, f)
    )


def _tag(payload: Any) -> str:
    return str(payload.__struct_config__.tag)


def reject_intent(env: Envelope, intent: Any, reason: RejectReason, detail: str, out: list[Output]) -> None:
    """A strategy's intent is refused: published, never raised."""
    out.append(
        IntentRejected(
            seq_id=env.seq_id,
            strategy_id=intent.strategy_id,
            intent=_tag(intent),
            reason=reason,
            detail=clip(detail),
            client_order_id=getattr(intent, "client_order_id", None),
        )
    )


def refuse_report(env: Envelope, reason: RefusalReason, detail: str, out: list[Output]) -> None:
    """A venue report, market data or control message is refused; state is unchanged."""
    payload = env.payload
    out.append(
        ReportRefused(
            seq_id=env.seq_id,
            report=_tag(payload),
            reason=reason,
            detail=clip(detail),
            venue=env.venue,
            client_order_id=getattr(payload, "client_order_id", None),
        )
    )


def drop_duplicate(env: Envelope, key: str, detail: str, out: list[Output]) -> None:
    """An input already applied is recorded as a no-op."""
    out.append(
        DuplicateDropped(
            seq_id=env.seq_id,
            producer_id=env.producer_id,
            producer_seq=env.producer_seq,
            key=clip(key),
            detail=detail,
        )
    )
