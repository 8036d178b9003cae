"""Times and intervals as people write them, to integer nanoseconds (and back, for messages).

The time rule, shared by files and by the `start` / `end` arguments:

* ISO-8601 `YYYY-MM-DD[(T| )HH[:MM[:SS[.fraction]]][Z|+HH[:MM]|-HH[:MM]]]`, fraction up to 9
  digits (exact to the nanosecond). Without a zone the time is UTC.
* A date alone is midnight UTC.
* An epoch number: its unit is read from the magnitude of the first value of a column (or of the
  argument): below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else
  nanoseconds. 1e11 s is the year 5138 and 1e11 ms is March 1973, so every real-world stamp of
  one unit falls in one band; a column whose values fall in different bands is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Final

__all__ = [
    "EPOCH_UNITS",
    "epoch_unit",
    "format_interval",
    "format_time",
    "parse_interval",
    "parse_iso",
    "parse_time",
]

NS_PER_S: Final = 1_000_000_000
# (name, nanoseconds per unit, upper bound of |value| in that unit): the magnitude rule above.
EPOCH_UNITS: Final[tuple[tuple[str, int, int], ...]] = (
    ("s", NS_PER_S, 10**11),
    ("ms", 1_000_000, 10**14),
    ("us", 1_000, 10**17),
    ("ns", 1, 2**63),
)
_EPOCH_DAY_ORDINAL: Final = date(1970, 1, 1).toordinal()

ISO_PATTERN: Final = (
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)
_ISO = re.compile(ISO_PATTERN, re.ASCII)
NUMBER_PATTERN: Final = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_NUMBER = re.compile(NUMBER_PATTERN, re.ASCII)

_INTERVAL = re.compile(r"^(\d+)(ns|us|ms|s|m|min|h|d|w)$", re.ASCII)
_INTERVAL_NS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "min": 60 * NS_PER_S,
    "h": 3_600 * NS_PER_S,
    "d": 86_400 * NS_PER_S,
    "w": 7 * 86_400 * NS_PER_S,
}
# Largest unit first: format_interval picks the largest unit that divides exactly.
_FORMAT_UNITS: Final = (("w", _INTERVAL_NS["w"]), ("d", _INTERVAL_NS["d"]), ("h", _INTERVAL_NS["h"]),
                        ("m", _INTERVAL_NS["m"]), ("s", NS_PER_S), ("ms", 1_000_000), ("us", 1_000), ("ns", 1))


def parse_interval(value: str | int) -> int:
    """An interval as nanoseconds: `"1m"`, `"5m"`, `"1h"`, `"1d"`, `"1w"`, `"30s"`, ... or an int of ns.

    Units: ns, us, ms, s, m (or min) for minutes, h, d, w. Months are not fixed lengths and are
    refused, as is `M` (ambiguous between minutes and months).

    Raises:
        ValueError: not a positive interval in that form.
        TypeError: neither a string nor an int.
    """
    if isinstance(value, bool):
        raise TypeError(f"interval must be a string like '1m' or a number of ns, got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"interval must be positive, got {value} ns")
        return value
    if not isinstance(value, str):
        raise TypeError(f"interval must be a string like '1m' or a number of ns, got {value!r}")
    match = _INTERVAL.match(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"interval {value!r} is not a positive interval like '1m', '5m', '1h', '1d' "
            "(units: ns, us, ms, s, m or min, h, d, w)"
        )
    return int(match.group(1)) * _INTERVAL_NS[match.group(2)]


def format_interval(interval_ns: int) -> str:
    """The shortest exact spelling of an interval: 60_000_000_000 -> '1m', 90 s -> '90s'."""
    for name, size in _FORMAT_UNITS:
        if interval_ns % size == 0:
            return f"{interval_ns // size}{name}"
    raise AssertionError("unreachable: 1 ns divides every interval")


def format_time(time_ns: int) -> str:
    """ISO-8601 UTC with a Z, exact: whole seconds plain, else the shortest fraction."""
    seconds, ns = divmod(time_ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if ns:
        text += "." + f"{ns:09d}".rstrip("0")
    return text + "Z"


def parse_iso(text: str) -> int:
    """An ISO-8601 time or date (see the module rule) as ns since the epoch.

    Raises:
        ValueError: not in that form, or not a real time (month 13, 25:00, ...); says which.
    """
    match = _ISO.match(text)
    if match is None:
        raise ValueError("is not a time (expected ISO-8601 like 2024-01-31T12:00:00Z, a date, or an epoch number)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY_ORDINAL
    except ValueError as exc:  # "month must be in 1..12", "day is out of range for month"
        raise ValueError(f"is not a valid date ({exc})") from None
    h, m, s = int(hour or 0), int(minute or 0), int(second or 0)
    if h > 23 or m > 59 or s > 59:
        raise ValueError(f"is not a valid time of day ({h:02d}:{m:02d}:{s:02d})")
    offset_minutes = 0
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        zone_h, zone_m = int(digits[:2]), int(digits[2:] or 0)
        if zone_h > 23 or zone_m > 59:
            raise ValueError(f"has an invalid zone offset {zone}")
        offset_minutes = (zone_h * 60 + zone_m) * (1 if zone[0] == "+" else -1)
    frac_ns = int((fraction or "").ljust(9, "0"))
    return (((days * 24 + h) * 60 + m - offset_minutes) * 60 + s) * NS_PER_S + frac_ns


def epoch_unit(magnitude: Decimal | float) -> tuple[str, int, int, int]:
    """The epoch unit for a value's magnitude: (name, ns per unit, lower bound, upper bound of |value|)."""
    lower = 0
    for name, ns_per_unit, upper in EPOCH_UNITS:
        if abs(magnitude) < upper:  # type: ignore[operator]  # Decimal and float both compare with int
            return name, ns_per_unit, lower, upper
        lower = upper
    raise ValueError(f"epoch value {magnitude} is too large for nanoseconds since 1970")


def _epoch_text_to_ns(text: str) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError("is not a number") from None
    _, ns_per_unit, _, _ = epoch_unit(value)
    scaled = value * ns_per_unit
    if scaled != scaled.to_integral_value():
        raise ValueError("is finer than 1 ns")
    return int(scaled)


def parse_time(value: datetime | date | str | int, *, name: str = "time") -> int:
    """A point in time from an argument (`start`, `end`): ns since the epoch, UTC.

    Accepts a datetime (naive means UTC), a date (midnight UTC), an ISO-8601 or epoch-number
    string (module rule), or an int of nanoseconds.

    Raises:
        ValueError: names the argument and the value.
        TypeError: not one of the accepted types.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a datetime, date, ISO-8601 string or ns, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000
    if isinstance(value, date):
        return (value.toordinal() - _EPOCH_DAY_ORDINAL) * 86_400 * NS_PER_S
    if isinstance(value, str):
        text = value.strip()
        try:
            if _NUMBER.match(text):
                return _epoch_text_to_ns(text)
            return parse_iso(text)
        except ValueError as exc:
            raise ValueError(f"{name}: {value!r} {exc}") from None
    raise TypeError(f"{name}: expected a datetime, date, ISO-8601 string or ns, got {value!r}")
