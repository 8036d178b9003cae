"""Timer and control-plane payloads."""

from __future__ import annotations

from schemas.base import Message
from schemas.types import Amount, CurrencyCode, Id, Text

__all__ = ["AdjustCash", "ControlCommand", "HaltTrading", "ResumeTrading", "Timer"]


class Timer(Message, frozen=True):
    """A tick of event time with no market content: drives rate windows and expiry."""

    timer_id: Id = "clock"


class HaltTrading(Message, frozen=True):
    """Global kill switch: refuse every new order until resumed. Cancels still pass."""

    reason: Text = ""


class ResumeTrading(Message, frozen=True):
    """Lift the global kill switch."""

    reason: Text = ""


class AdjustCash(Message, frozen=True):
    """Deposit (positive) or withdraw (negative) cash, recorded in the conservation ledger."""

    currency: CurrencyCode
    amount: Amount
    reason: Text = ""


ControlCommand = HaltTrading | ResumeTrading | AdjustCash
