"""Columns of a file to exact int64 columns: prices and sizes in units, times in ns.

Theory of operation. Every conversion is vectorised with pyarrow and exact: text goes through
pyarrow's decimal parser (never a binary float), decimals are rescaled, integers multiplied, and
only float columns (Parquet) are rounded, half to even, with a check that the float was a tick
to within float noise. A conversion never raises on bad data: it returns the values of the rows
before the first bad row plus a `Failure` for that row, so the loader can still look for an
earlier error of another kind (the rule: report the first error by row order).

Finding the first bad row: a regex (the same language as the Python reference parser in
times.py) marks malformed text directly; for a cast that fails somewhere (a value too precise
for the tick, too large, an impossible date) we bisect on prefixes of the column, which costs
about two full casts and never leaves pyarrow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from schemas.types import MAX_ABS_AMOUNT
from services.data.times import ISO_PATTERN, NUMBER_PATTERN, epoch_unit, parse_iso

__all__ = ["Converted", "Failure", "cell_text", "first_true", "to_sides", "to_ticks", "to_time_ns"]

_INT_PATTERN: Final = r"^[+-]?\d+$"
# Zone at the end of a time (not of a date: 2024-01-01 ends in "-01").
_ZONE_PATTERN: Final = r"(?:Z|[T ][0-9:.]+[+-]\d{2}(?::?\d{2})?)$"
# A float is taken as a tick when it is this close to one: 1e-6 of a tick, or 2**-40 relative for
# values so large that a double cannot hold 1e-6 of a tick (a double carries 2**-52 relative).
_FLOAT_TICK_TOLERANCE: Final = 1e-6
_FLOAT_RELATIVE_TOLERANCE: Final = 2.0**-40
_INT64_MAX: Final = 2**63 - 1
_TOO_LARGE: Final = f"is too large (at most {MAX_ABS_AMOUNT} units, schemas.types.MAX_ABS_AMOUNT)"
# Digits for exact decimal checks in messages: a 38-digit decimal scaled by 10**12 fits easily.
_WIDE_PRECISION: Final = 120


@dataclass(frozen=True, slots=True)
class Failure:
    """The first bad cell of a check: 0-based data row, column, value text and what is wrong."""

    index: int
    field: str | None
    value: str | None
    reason: str


@dataclass(slots=True)
class Converted:
    """A converted column: int64 values of the rows before `failure` (all rows without one).

    `changed` counts values rounded to a tick (repair "round"), `filled` empty cells made 0
    (repair "fill_volume").
    """

    values: Any  # pa.Int64Array
    failure: Failure | None = None
    changed: int = 0
    filled: int = 0


def first_true(mask: Any) -> int:
    """Index of the first true value of a boolean array, or -1 (nulls count as false)."""
    if len(mask) == 0:
        return -1
    return int(pc.index(pc.fill_null(mask, False), True).as_py())


def cell_text(column: Any, index: int) -> str:
    """A cell as the file wrote it, for messages: text unchanged, numbers as Python prints them."""
    try:
        value = column[index].as_py()
    except (OverflowError, ValueError):  # a timestamp beyond datetime's years 1..9999
        return f"{column[index].value} ({column.type})"
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _first_failing(column: Any, op: Callable[[Any], Any]) -> int:
    """Smallest i such that op(column[: i + 1]) raises, given that op(column) raises: bisection."""
    good, bad = 0, len(column)
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            op(column[:mid])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = mid
        else:
            good = mid
    return bad - 1


def _cast_prefix(column: Any, op: Callable[[Any], Any]) -> tuple[Any, int]:
    """op(column), or op of the longest good prefix and the index of the first failing row (else -1)."""
    try:
        return op(column), -1
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        index = _first_failing(column, op)
        return op(column[:index]), index


class _Builder:
    """Collects the first failure of one column while it is converted stage by stage."""

    __slots__ = ("changed", "failure", "field", "filled", "raw")

    def __init__(self, raw: Any, field: str) -> None:
        self.raw = raw
        self.field = field
        self.failure: Failure | None = None
        self.changed = 0
        self.filled = 0

    def fail(self, index: int, reason: str) -> int:
        # Stages run on ever shorter prefixes, so a later failure is always at an earlier row.
        assert self.failure is None or index < self.failure.index
        self.failure = Failure(index, self.field, cell_text(self.raw, index), reason)
        return index

    def done(self, values: Any) -> Converted:
        if self.failure is not None:
            assert len(values) == self.failure.index, (len(values), self.failure)
        return Converted(values.cast(pa.int64()), self.failure, self.changed, self.filled)


def _tick_text(decimals: int) -> str:
    return format(Decimal(1).scaleb(-decimals), "f")


def _nulls(column: Any, builder: _Builder, fill_zero: bool) -> Any:
    """Empty cells: filled with 0 (fill_volume) or the first one is a failure."""
    if column.null_count == 0:
        return column
    if fill_zero:
        builder.filled += column.null_count
        text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        return pc.fill_null(column, "0" if text else pa.scalar(0, column.type))
    index = first_true(pc.is_null(column))
    builder.fail(index, "is empty")
    return column[:index]


def to_ticks(
    column: Any, decimals: int, *, field: str, kind: str, round_ok: bool = False, fill_empty: bool = False
) -> Converted:
    """Convert a price or size column to integer units of 10**-decimals.

    Args:
        column: a pyarrow array: text, integer, decimal or float.
        decimals: the instrument's price_decimals or size_decimals.
        field: column name for messages.
        kind: "price" or "size", for messages ("price_decimals 2").
        round_ok: repair "round": round to the nearest tick (half to even) instead of failing.
        fill_empty: repair "fill_volume": empty cells become 0.
    """
    builder = _Builder(column, field)
    values = _nulls(column, builder, fill_empty)
    type_ = values.type
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        values = _text_ticks(values, decimals, builder, kind, round_ok, fill_empty)
    elif pa.types.is_integer(type_):
        values, bad = _cast_prefix(values, lambda a: pc.multiply_checked(a.cast(pa.int64()), 10**decimals))
        if bad >= 0:
            builder.fail(bad, _TOO_LARGE)
    elif pa.types.is_decimal(type_):
        values = _decimal_ticks(values, decimals, builder, kind, round_ok)
    elif pa.types.is_floating(type_):
        values = _float_ticks(values, decimals, builder, kind, round_ok)
    else:
        builder.fail(0, f"has type {type_}; expected numbers (text, integer, decimal or float)")
        values = pa.array([], pa.int64())
    too_large = first_true(pc.greater(pc.abs(values), MAX_ABS_AMOUNT))
    if too_large >= 0:
        values = values[: builder.fail(too_large, _TOO_LARGE)]
    return builder.done(values)


def _text_ticks(values: Any, decimals: int, builder: _Builder, kind: str, round_ok: bool, fill_empty: bool) -> Any:
    values = pc.utf8_trim_whitespace(values)
    if fill_empty:
        empty = pc.equal(values, "")
        filled = int(pc.sum(empty).as_py() or 0)
        if filled:
            builder.filled += filled
            values = pc.if_else(empty, "0", values)
    malformed = first_true(pc.invert(pc.match_substring_regex(values, NUMBER_PATTERN)))
    if malformed >= 0:
        text = values[malformed].as_py()
        values = values[: builder.fail(malformed, "is empty" if text == "" else "is not a number")]
    target = pa.decimal128(38, decimals)
    if round_ok:
        try:
            exact = values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            wide, bad = _cast_prefix(values, lambda a: a.cast(pa.decimal256(76, 38)))
            if bad >= 0:
                values = values[: builder.fail(bad, "is too large or too precise for a decimal")]
            exact = _round_decimal(wide, decimals, builder)
    else:
        exact, bad = _cast_prefix(values, lambda a: a.cast(target))
        if bad >= 0:
            builder.fail(bad, _text_reason(values[bad].as_py(), decimals, kind))
    return _unscaled(exact, builder)


def _text_reason(text: str, decimals: int, kind: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admitted it, so Decimal parses it
        return "is not a number"
    return _TOO_LARGE if _is_tick(value, decimals) else _not_a_tick(decimals, kind)


def _is_tick(value: Decimal, decimals: int) -> bool:
    """Whether value is a whole number of 10**-decimals (exactly: a wide context, no rounding)."""
    with localcontext(Context(prec=_WIDE_PRECISION)):
        scaled = value.scaleb(decimals)
        return bool(scaled == scaled.to_integral_value())


def _not_a_tick(decimals: int, kind: str) -> str:
    return (
        f"is not a multiple of the tick {_tick_text(decimals)} ({kind}_decimals {decimals}; "
        "repair 'round' rounds to the nearest tick)"
    )


def _round_decimal(values: Any, decimals: int, builder: _Builder) -> Any:
    """Round a decimal column to `decimals` (half to even), count changed rows, cast to decimal128."""
    rounded = pc.round(values, ndigits=decimals, round_mode="half_to_even")
    builder.changed += int(pc.sum(pc.not_equal(rounded, values)).as_py() or 0)
    result, bad = _cast_prefix(rounded, lambda a: a.cast(pa.decimal128(38, decimals)))
    if bad >= 0:
        builder.fail(bad, _TOO_LARGE)
    return result


def _unscaled(values: Any, builder: _Builder) -> Any:
    """decimal128(38, d) -> int64 of value * 10**d: reinterpret the bytes at scale 0, then cast."""
    type_ = values.type
    as_integers = values.view(pa.decimal128(type_.precision, 0))
    result, bad = _cast_prefix(as_integers, lambda a: a.cast(pa.int64()))
    if bad >= 0:
        builder.fail(bad, _TOO_LARGE)
    return result


def _decimal_ticks(values: Any, decimals: int, builder: _Builder, kind: str, round_ok: bool) -> Any:
    if round_ok and values.type.scale > decimals:
        return _unscaled(_round_decimal(values, decimals, builder), builder)
    target = pa.decimal128(38, decimals)
    exact, bad = _cast_prefix(values, lambda a: a.cast(target))
    if bad >= 0:
        value = values[bad].as_py()
        builder.fail(bad, _TOO_LARGE if _is_tick(value, decimals) else _not_a_tick(decimals, kind))
    return _unscaled(exact, builder)


def _float_ticks(values: Any, decimals: int, builder: _Builder, kind: str, round_ok: bool) -> Any:
    values = values.cast(pa.float64())
    not_finite = first_true(pc.invert(pc.is_finite(values)))
    if not_finite >= 0:
        values = values[: builder.fail(not_finite, "is not a finite number")]
    scaled = pc.multiply(values, 10.0**decimals)
    rounded = pc.round(scaled, ndigits=0, round_mode="half_to_even")
    tolerance = pc.max_element_wise(pc.multiply(pc.abs(scaled), _FLOAT_RELATIVE_TOLERANCE), _FLOAT_TICK_TOLERANCE)
    off_tick = pc.greater(pc.abs(pc.subtract(scaled, rounded)), tolerance)
    if round_ok:
        builder.changed += int(pc.sum(off_tick).as_py() or 0)
    else:
        bad = first_true(off_tick)
        if bad >= 0:
            rounded = rounded[: builder.fail(bad, _not_a_tick(decimals, kind))]
    too_large = first_true(pc.greater_equal(pc.abs(rounded), float(2**63)))
    if too_large >= 0:
        rounded = rounded[: builder.fail(too_large, _TOO_LARGE)]
    return rounded.cast(pa.int64())


def to_time_ns(column: Any, *, field: str) -> Converted:
    """Convert a time column to ns since the epoch (UTC); see times.py for the accepted forms.

    Text, integer and float columns follow the ISO / epoch-magnitude rule; timestamp columns are
    taken as they are (naive means UTC); date columns are midnight UTC.
    """
    builder = _Builder(column, field)
    values = _nulls(column, builder, fill_zero=False)
    type_ = values.type
    if pa.types.is_timestamp(type_):
        values, bad = _cast_prefix(values, lambda a: a.cast(pa.timestamp("ns", type_.tz)).cast(pa.int64()))
        if bad >= 0:
            builder.fail(bad, "is outside the range of ns since 1970 (years 1677 to 2262)")
    elif pa.types.is_date(type_):
        values, bad = _cast_prefix(values, lambda a: a.cast(pa.timestamp("ns")).cast(pa.int64()))
        if bad >= 0:
            builder.fail(bad, "is outside the range of ns since 1970 (years 1677 to 2262)")
    elif pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        values = _epoch_ns(values, builder)
    elif pa.types.is_string(type_) or pa.types.is_large_string(type_):
        values = pc.utf8_trim_whitespace(values)
        if len(values) and pc.match_substring_regex(values[:1], NUMBER_PATTERN)[0].as_py():
            malformed = first_true(pc.invert(pc.match_substring_regex(values, NUMBER_PATTERN)))
            if malformed >= 0:
                values = values[: builder.fail(malformed, "is not an epoch number like the first row")]
            values = _epoch_ns(values, builder)
        else:
            values = _iso_ns(values, builder)
    else:
        builder.fail(0, f"has type {type_}; expected times (text, timestamp, date or epoch numbers)")
        values = pa.array([], pa.int64())
    negative = first_true(pc.less(values, 0))
    if negative >= 0:
        values = values[: builder.fail(negative, "is before 1970-01-01")]
    return builder.done(values)


def _iso_ns(values: Any, builder: _Builder) -> Any:
    malformed = first_true(pc.invert(pc.match_substring_regex(values, ISO_PATTERN)))
    if malformed >= 0:
        values = values[: builder.fail(malformed, _iso_reason(values[malformed].as_py()))]
    if pc.all(pc.ends_with(values, "Z")).as_py():
        normal = values  # the common export: all UTC with a Z, nothing to normalise
    else:
        # pyarrow needs all-zoned or all-naive text: naive means UTC, so say so with a Z.
        is_date = pc.equal(pc.utf8_length(values), 10)
        zoned = pc.match_substring_regex(values, _ZONE_PATTERN)
        normal = pc.if_else(
            is_date,
            pc.binary_join_element_wise(values, "T00:00Z", ""),
            pc.if_else(zoned, values, pc.binary_join_element_wise(values, "Z", "")),
        )
    result, bad = _cast_prefix(normal, lambda a: a.cast(pa.timestamp("ns", "UTC")).cast(pa.int64()))
    if bad >= 0:
        builder.fail(bad, _iso_reason(values[bad].as_py()))
    return result


def _iso_reason(text: str) -> str:
    if text == "":
        return "is empty"
    try:
        parse_iso(text)
    except ValueError as exc:
        return str(exc)
    return "is not a valid time, or is outside years 1677 to 2262"


def _epoch_ns(values: Any, builder: _Builder) -> Any:
    """Epoch numbers (text, int, float or decimal) to ns, unit from the first value's magnitude."""
    if len(values) == 0:
        return pa.array([], pa.int64())
    first = values[0].as_py()
    magnitude = Decimal(first) if isinstance(first, str) else first
    if isinstance(magnitude, float) and not math.isfinite(magnitude):  # no unit to read
        builder.fail(0, "is not a finite number")
        return pa.array([], pa.int64())
    unit, ns_per_unit, lower, upper = epoch_unit(magnitude)
    type_ = values.type
    if pa.types.is_floating(type_):
        units = values.cast(pa.float64())
        not_finite = first_true(pc.invert(pc.is_finite(units)))
        if not_finite >= 0:
            units = units[: builder.fail(not_finite, "is not a finite number")]
    elif pa.types.is_integer(type_) or (
        pa.types.is_string(type_) and pc.all(pc.match_substring_regex(values, _INT_PATTERN)).as_py()
    ):
        units, bad = _cast_prefix(values, lambda a: a.cast(pa.int64()))
        if bad >= 0:
            builder.fail(bad, "is too large for an epoch number")
    else:
        # Fractional epoch text or decimals: exact through a decimal at ns scale, whose unscaled
        # integer is the time in ns; the band check then runs on ns.
        scale = len(str(ns_per_unit)) - 1
        as_decimal, bad = _cast_prefix(values, lambda a: a.cast(pa.decimal128(38, scale)))
        if bad >= 0:
            builder.fail(bad, f"is finer than 1 ns (epoch {unit}, from the first row)")
        units, bad = _cast_prefix(as_decimal.view(pa.decimal128(38, 0)), lambda a: a.cast(pa.int64()))
        if bad >= 0:
            builder.fail(bad, _AFTER_2262)
        ns_per_unit, lower, upper = 1, lower * ns_per_unit, upper * ns_per_unit
    # Check the band before scaling: a value of another unit would otherwise overflow and be
    # reported as "after 2262", which hides the real mistake.
    absolute = pc.abs(units)
    other_band = pc.less(absolute, lower)
    if upper <= _INT64_MAX:
        other_band = pc.or_(other_band, pc.greater_equal(absolute, upper))
    bad = first_true(other_band)
    if bad >= 0:
        units = units[: builder.fail(bad, _band_reason(cell_text(values, bad), unit))]
    if pa.types.is_floating(units.type):
        scaled = pc.round(pc.multiply(units, float(ns_per_unit)), ndigits=0, round_mode="half_to_even")
        too_late = first_true(pc.greater_equal(pc.abs(scaled), float(2**63)))
        if too_late >= 0:
            scaled = scaled[: builder.fail(too_late, _AFTER_2262)]
        return scaled.cast(pa.int64())
    result, bad = _cast_prefix(units, lambda a: pc.multiply_checked(a, ns_per_unit))
    if bad >= 0:
        builder.fail(bad, _AFTER_2262)
    return result


_AFTER_2262: Final = "is after 2262-04-11, the last time int64 ns since 1970 can hold"


def _band_reason(text: str, unit: str) -> str:
    try:
        own = epoch_unit(Decimal(text))[0]
    except (ValueError, InvalidOperation):
        own = "another unit"
    return (
        f"looks like epoch {own} but the first row looks like epoch {unit} "
        "(one unit per column, read from the magnitude: below 1e11 s, 1e14 ms, 1e17 us, else ns)"
    )


_BUY_WORDS: Final = ("buy", "b", "bid")
_SELL_WORDS: Final = ("sell", "s", "ask", "offer")


def to_sides(column: Any, *, field: str) -> tuple[Any, Failure | None]:
    """A trade's aggressor side as uint8 codes (series.AGGRESSOR_*): buy/b, sell/s, or empty = unknown.

    Returns:
        (uint8 codes of the rows before the first bad one, that row's failure or None).
    """
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        failure = Failure(0, field, cell_text(column, 0), f"has type {column.type}; expected text")
        return pa.array([], pa.uint8()), failure
    words = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(column, "")))
    codes = pc.if_else(
        pc.is_in(words, pa.array(_BUY_WORDS)),
        1,
        pc.if_else(pc.is_in(words, pa.array(_SELL_WORDS)), 2, pc.if_else(pc.equal(words, ""), 0, None)),
    ).cast(pa.uint8())
    bad = first_true(pc.is_null(codes))
    if bad >= 0:
        reason = "is not a side (expected buy or b, sell or s, or empty for unknown)"
        return codes[:bad], Failure(bad, field, cell_text(column, bad), reason)
    return codes, None
