"""Performance statistics of a backtest, computed once from the equity curve and the closed trades.

Definitions (also in docs/statistics.md). `E_0 .. E_{n-1}` are the curve's equity points at times
`t_0 < .. < t_{n-1}`; `E_init` is the initial equity, taken to be the value just before `t_0`.

* total_return = E_{n-1} / E_init - 1.
* cagr = (E_{n-1} / E_init) ** (1 / years) - 1, years = (t_{n-1} - t_0) / 365.25 days. None when
  the run has no duration or the number does not fit a float (a huge gain over a few minutes);
  -1.0 when the final equity is zero or below.
* Returns for Sharpe and Sortino, risk-free rate 0. The data is 24/7 by default:
  - if the run spans at least 2 days (t_{n-1} - t_0 >= 48 h): daily returns. Each UTC day that
    has points is sampled at its last point, D_1 .. D_k; r_j = D_j / D_{j-1} - 1 with D_0 = E_init.
    A day without points is skipped (the next return spans the gap). periods_per_year = 365.
  - otherwise: per-step returns r_i = E_i / E_{i-1} - 1 with E_{-1} = E_init, and
    periods_per_year = 365 days / (median time between consecutive points).
* sharpe = mean(r) / stdev(r) * sqrt(periods_per_year), stdev with ddof=1 (sample).
* sortino = mean(r) / DD * sqrt(periods_per_year), DD = sqrt(mean(min(r, 0)^2)) over all returns
  (target 0, divided by the number of returns).
  Both are None with fewer than 2 returns or when the deviation is zero (up to float noise:
  a constant-return series has no volatility, so no ratio).
* Drawdown at a point: (P_i - E_i) / P_i, P_i = max(E_init, E_0 .. E_i). max_drawdown is its
  largest value (a fraction; 0.25 is 25 %).
* max_drawdown_duration_ns: the longest time from a peak (the point that set P; t_0 when the peak
  is E_init) until equity is back at or above that peak. A drawdown not recovered by the end of the
  run counts up to the last point, t_{n-1}.
* Trades (closed round trips only), all on pnl_net (after fees): win_rate = share with
  pnl_net > 0; profit_factor = sum of positive pnl_net / |sum of negative pnl_net|, math.inf when
  there are winners and no losers, None with no trades or neither winners nor losers;
  avg_trade, best_trade, worst_trade = mean, max, min of pnl_net. All None with no trades.
* exposure = share of curve points where the position value is not zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from services.backtest.records import EquityCurve, TradeRecord

__all__ = [
    "NS_PER_DAY",
    "Statistics",
    "compute_statistics",
    "drawdown_series",
    "format_duration",
    "iso_utc",
    "summary_table",
]

NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND
# 24/7 markets trade every calendar day: 365 daily returns a year (a stock market would use 252).
RETURN_PERIODS_PER_YEAR_DAILY = 365
# CAGR runs on calendar time, so the year is the mean Gregorian year.
CALENDAR_YEAR_NS = int(365.25 * NS_PER_DAY)
# Below two days there are at most two daily samples: too few returns, so use the steps instead.
DAILY_RETURNS_MIN_SPAN_NS = 2 * NS_PER_DAY
# A deviation this small next to the mean return is float noise (e.g. a compounding constant
# return computes to returns differing in the 17th digit): the ratio is undefined, not 1e15.
ZERO_DEVIATION_RELATIVE = 1e-9

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Statistics:
    """The numbers of one backtest (definitions in the module docstring). Undefined values are None."""

    start_time_ns: int
    end_time_ns: int
    duration_ns: int
    steps: int
    currency: str
    initial_equity: float
    final_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    return_basis: str  # "daily" | "step": which returns Sharpe and Sortino were computed from
    periods_per_year: float | None
    max_drawdown: float
    max_drawdown_duration_ns: int
    trades: int
    win_rate: float | None
    profit_factor: float | None  # math.inf: winners and no losers
    avg_trade: float | None
    best_trade: float | None
    worst_trade: float | None
    exposure: float
    fees_paid: float

    def to_dict(self) -> dict[str, object]:
        """JSON-safe: ints, finite floats, strings, ISO-8601 UTC times; None for undefined or infinite."""
        out: dict[str, object] = {}
        for key, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                value = None  # JSON has no inf/NaN; profit_factor inf reads as null (see docs)
            out[key] = value
        out["start_time"] = iso_utc(self.start_time_ns)
        out["end_time"] = iso_utc(self.end_time_ns)
        return out


def iso_utc(time_ns: int) -> str:
    """ISO-8601 UTC with nanoseconds: 1704067200000000000 -> '2024-01-01T00:00:00.000000000Z'."""
    seconds, fraction = divmod(time_ns, NS_PER_SECOND)
    return f"{datetime.fromtimestamp(seconds, tz=UTC):%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def format_duration(duration_ns: int) -> str:
    """A duration as days and clock time: '3d 04:12', '0d 00:00:05', '0d 00:00:00.250'."""
    sign = "-" if duration_ns < 0 else ""
    seconds, fraction = divmod(abs(duration_ns), NS_PER_SECOND)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{days}d {hours:02d}:{minutes:02d}"
    if secs or fraction:
        text += f":{secs:02d}"
    if fraction:
        text += f".{fraction // 1_000_000:03d}" if fraction % 1_000_000 == 0 else f".{fraction:09d}"
    return text


def drawdown_series(equity: FloatArray, initial_equity: float) -> FloatArray:
    """Drawdown at each point as a fraction of the running peak, the peak starting at `initial_equity`."""
    peak = np.maximum.accumulate(np.maximum(equity, initial_equity))
    result: FloatArray = (peak - equity) / peak
    return result


def compute_statistics(
    curve: EquityCurve,
    trades: Sequence[TradeRecord],
    fees_paid: float,
    initial_equity: float,
    currency: str,
) -> Statistics:
    """Compute the run's statistics (definitions in the module docstring).

    Args:
        curve: one point per time step, at least one.
        trades: the closed round trips (open ones are not counted).
        fees_paid: all fees of the run, in `currency`.
        initial_equity: the account value before the first point; must be > 0.
        currency: the account currency, for display.

    Raises:
        ValueError: the curve is empty, or `initial_equity` is not a positive finite number.
    """
    if len(curve) == 0:
        raise ValueError("compute_statistics: the equity curve is empty (a backtest needs at least one time step)")
    if not (math.isfinite(initial_equity) and initial_equity > 0):
        raise ValueError(f"compute_statistics: initial_equity must be a positive number, got {initial_equity!r}")
    times = np.frombuffer(curve.time_ns, dtype=np.int64)
    equity = np.frombuffer(curve.equity, dtype=np.float64)
    exposure = np.frombuffer(curve.exposure, dtype=np.float64)

    start_ns, end_ns = int(times[0]), int(times[-1])
    duration_ns = end_ns - start_ns
    final = float(equity[-1])
    basis, returns, periods = _returns(times, equity, initial_equity, duration_ns)
    drawdown = drawdown_series(equity, initial_equity)
    pnl = [t.pnl_net for t in trades]
    wins = [p for p in pnl if p > 0]
    losses = [p for p in pnl if p < 0]

    return Statistics(
        start_time_ns=start_ns,
        end_time_ns=end_ns,
        duration_ns=duration_ns,
        steps=len(curve),
        currency=currency,
        initial_equity=initial_equity,
        final_equity=final,
        total_return=final / initial_equity - 1.0,
        cagr=_cagr(final / initial_equity, duration_ns),
        sharpe=_sharpe(returns, periods),
        sortino=_sortino(returns, periods),
        return_basis=basis,
        periods_per_year=periods,
        max_drawdown=float(drawdown.max()),
        max_drawdown_duration_ns=_max_drawdown_duration(times, equity, initial_equity),
        trades=len(pnl),
        win_rate=len(wins) / len(pnl) if pnl else None,
        profit_factor=_profit_factor(sum(wins), -sum(losses), len(pnl)),
        avg_trade=sum(pnl) / len(pnl) if pnl else None,
        best_trade=max(pnl) if pnl else None,
        worst_trade=min(pnl) if pnl else None,
        exposure=float(np.count_nonzero(exposure)) / len(exposure),
        fees_paid=fees_paid,
    )


def _returns(
    times: npt.NDArray[np.int64], equity: FloatArray, initial_equity: float, duration_ns: int
) -> tuple[str, FloatArray, float | None]:
    """The return series for Sharpe/Sortino, which basis it is, and its periods per year."""
    if duration_ns >= DAILY_RETURNS_MIN_SPAN_NS:
        day = times // NS_PER_DAY
        last_of_day = np.flatnonzero(np.append(day[1:] != day[:-1], True))
        samples = np.concatenate(([initial_equity], equity[last_of_day]))
        return "daily", samples[1:] / samples[:-1] - 1.0, float(RETURN_PERIODS_PER_YEAR_DAILY)
    samples = np.concatenate(([initial_equity], equity))
    step_ns = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    periods = RETURN_PERIODS_PER_YEAR_DAILY * NS_PER_DAY / step_ns if step_ns > 0 else None
    return "step", samples[1:] / samples[:-1] - 1.0, periods


def _sharpe(returns: FloatArray, periods_per_year: float | None) -> float | None:
    if len(returns) < 2 or periods_per_year is None:
        return None
    mean = float(returns.mean())
    deviation = float(returns.std(ddof=1))
    if not deviation > ZERO_DEVIATION_RELATIVE * abs(mean):  # also zero, and NaN from a zero equity
        return None
    return mean / deviation * math.sqrt(periods_per_year)


def _sortino(returns: FloatArray, periods_per_year: float | None) -> float | None:
    if len(returns) < 2 or periods_per_year is None:
        return None
    mean = float(returns.mean())
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if not downside > ZERO_DEVIATION_RELATIVE * abs(mean):
        return None
    return mean / downside * math.sqrt(periods_per_year)


def _cagr(growth: float, duration_ns: int) -> float | None:
    if duration_ns <= 0:
        return None
    if growth <= 0:
        return -1.0
    try:
        return math.exp(math.log(growth) * CALENDAR_YEAR_NS / duration_ns) - 1.0
    except OverflowError:
        return None


def _profit_factor(gross_profit: float, gross_loss: float, trades: int) -> float | None:
    if trades == 0 or (gross_profit == 0 and gross_loss == 0):
        return None
    if gross_loss == 0:
        return math.inf
    return gross_profit / gross_loss


def _max_drawdown_duration(times: npt.NDArray[np.int64], equity: FloatArray, initial_equity: float) -> int:
    """Longest peak-to-recovery time; an unrecovered drawdown runs to the last point."""
    peak = np.maximum.accumulate(np.maximum(equity, initial_equity))
    at_peak = equity >= peak
    index = np.arange(len(equity))
    # The point that set the current peak; -1 while the peak is still the initial equity (time t_0).
    peak_index = np.maximum.accumulate(np.where(at_peak, index, -1))
    peak_time = np.where(peak_index >= 0, times[np.maximum(peak_index, 0)], times[0])
    longest = 0
    recovered = np.flatnonzero(at_peak[1:] & ~at_peak[:-1]) + 1  # first point back at a peak
    if len(recovered):
        longest = int((times[recovered] - peak_time[recovered - 1]).max())
    if not at_peak[-1]:
        longest = max(longest, int(times[-1] - peak_time[-1]))
    return longest


def _money(value: float | None, currency: str, decimals: int) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f} {currency}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:,.2f} %"


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:,.2f}"


def summary_table(stats: Statistics, money_decimals: int = 2) -> str:
    """The statistics as an aligned two-column table for the terminal (labels left, values right).

    `services.cli.tables.format_table` right-aligns only bare numbers; values with units would be
    left-aligned there, so this table aligns its own column.
    """
    cur = stats.currency
    basis = "daily" if stats.return_basis == "daily" else "per step"
    rows = [
        ("Start", iso_utc(stats.start_time_ns)),
        ("End", iso_utc(stats.end_time_ns)),
        ("Duration", format_duration(stats.duration_ns)),
        ("Time steps", f"{stats.steps:,}"),
        ("Initial equity", _money(stats.initial_equity, cur, money_decimals)),
        ("Final equity", _money(stats.final_equity, cur, money_decimals)),
        ("Total return", _percent(stats.total_return)),
        ("CAGR", _percent(stats.cagr)),
        (f"Sharpe ({basis}, annualised)", _ratio(stats.sharpe)),
        (f"Sortino ({basis}, annualised)", _ratio(stats.sortino)),
        ("Max drawdown", _percent(stats.max_drawdown)),
        ("Max drawdown duration", format_duration(stats.max_drawdown_duration_ns)),
        ("Trades (closed)", f"{stats.trades:,}"),
        ("Win rate", _percent(stats.win_rate)),
        ("Profit factor", _ratio(stats.profit_factor)),
        ("Average trade", _money(stats.avg_trade, cur, money_decimals)),
        ("Best trade", _money(stats.best_trade, cur, money_decimals)),
        ("Worst trade", _money(stats.worst_trade, cur, money_decimals)),
        ("Exposure (time in market)", _percent(stats.exposure)),
        ("Fees paid", _money(stats.fees_paid, cur, money_decimals)),
    ]
    label_width = max(len(label) for label, _ in rows)
    value_width = max(len(value) for _, value in rows)
    return "\n".join(f"{label.ljust(label_width)}  {value.rjust(value_width)}" for label, value in rows)
