"""When a feed may send each envelope: as fast as flow control allows, or k x real time.

Pure: no clock inside. The caller passes monotonic nanoseconds, so the rule is tested with plain
integers and a feed's loop stays in charge of waiting (it polls for acknowledgements meanwhile
instead of sleeping).

At pace k the first envelope anchors the schedule: (its event time, the monotonic time it was
offered; the caller offers it once the connection is up, so a slow start does not burst). Envelope e is due at ``anchor_wall + (e.event_time - anchor_event) / k``: event time
maps to wall time scaled by k, and a feed that falls behind (a full window, a slow sequencer)
sends what is overdue at once and then keeps the original schedule, rather than stretching the
run. Equal or earlier event times are due at once.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["Pace", "Pacer"]

Pace = float | Literal["max"]


class Pacer:
    """Maps event times to the monotonic time at which an envelope may go.

    Args:
        pace: "max" (never wait) or k > 0: k x real time by event time.
    """

    __slots__ = ("_anchor", "_pace")

    def __init__(self, pace: Pace) -> None:
        if pace != "max":
            assert isinstance(pace, float | int) and 0 < pace < float("inf"), pace
        self._pace: float | None = None if pace == "max" else float(pace)
        self._anchor: tuple[int, int] | None = None  # (event time, monotonic time) of the first

    @property
    def unpaced(self) -> bool:
        return self._pace is None

    @property
    def anchored(self) -> bool:
        """True once the first envelope has fixed the schedule."""
        return self._anchor is not None

    def due_ns(self, event_time_ns: int, now_ns: int) -> int:
        """The monotonic time at which an envelope of `event_time_ns` may be sent.

        The first call anchors the schedule at `now_ns` (and returns it).
        """
        if self._pace is None:
            return now_ns
        if self._anchor is None:
            self._anchor = (event_time_ns, now_ns)
            return now_ns
        event0, wall0 = self._anchor
        ahead = event_time_ns - event0
        if ahead <= 0:
            return wall0
        return wall0 + int(ahead / self._pace)
