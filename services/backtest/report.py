"""The report picture: prices with fills marked, equity, drawdown; and an HTML page around it.

Drawn with matplotlib's object API (`Figure` + `FigureCanvasAgg`), never pyplot: no global figure
registry, no backend switch, safe to call from a process that draws elsewhere too.

A million points would take seconds to draw and look no different from a few thousand, so long
series are decimated first: the time axis is cut into as many buckets as there are pixel columns
to spare and each bucket keeps its first minimum and first maximum (plus the series' first and
last point). Spikes survive; nothing the eye could see is lost.
"""

from __future__ import annotations

import base64
import html
import os
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from services.backtest.records import EquityCurve, FillRecord, TradeRecord
from services.backtest.statistics import Statistics, drawdown_series, summary_table

__all__ = ["DRAW_COLUMNS", "decimate_indices", "write_report", "write_report_html"]

# Pixel columns a series is reduced to (two points each): the figure is 1400 px wide at 100 dpi, so
# 1000 buckets (<= 2000 points) is finer than a column of the plot area and fast to draw.
DRAW_COLUMNS = 1_000
FIGURE_WIDTH_IN = 14.0
FIGURE_DPI = 100
# Instruments beyond this many are left out of the picture (named in the last price panel's
# title): each gets its own panel, and more than four squeeze the panels to unreadable strips.
MAX_PRICE_PANELS = 4
# Fill markers per side and instrument; beyond this an evenly spaced subset is drawn (a marker per
# fill of a high-frequency run is a solid band anyway, and scatter time grows with the count).
MAX_MARKERS = 5_000

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


def decimate_indices(x: npt.NDArray[np.int64] | FloatArray, y: FloatArray, columns: int = DRAW_COLUMNS) -> IndexArray:
    """Indices of the points to draw: per x bucket the first minimum and first maximum of y, plus the ends.

    Args:
        x: non-decreasing positions (times); buckets are equal widths of x.
        y: the values, same length.
        columns: the number of buckets; series of up to 2 * columns points are returned whole.

    Raises:
        ValueError: x and y differ in length, x decreases somewhere, or columns < 1.
    """
    n = len(y)
    if len(x) != n:
        raise ValueError(f"decimate_indices: x has {len(x)} points but y has {n}")
    if columns < 1:
        raise ValueError(f"decimate_indices: columns must be >= 1, got {columns}")
    if n <= 2 * columns:
        return np.arange(n)
    xs = np.asarray(x, dtype=np.float64)
    if np.any(xs[1:] < xs[:-1]):
        raise ValueError("decimate_indices: x must be non-decreasing")
    span = xs[-1] - xs[0]
    if span > 0:
        bucket = np.minimum(((xs - xs[0]) * (columns / span)).astype(np.int64), columns - 1)
    else:  # all at one x: split by position instead
        bucket = np.arange(n) * columns // n
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    owner = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    keep = [np.array([0, n - 1])]
    for extreme in (np.fmin.reduceat(y, starts), np.fmax.reduceat(y, starts)):
        hits = np.flatnonzero(y == extreme[owner])  # NaN-only buckets have no hit and drop out
        first = np.r_[True, owner[hits][1:] != owner[hits][:-1]] if len(hits) else np.zeros(0, dtype=bool)
        keep.append(hits[first])
    result: IndexArray = np.unique(np.concatenate(keep))
    return result


def _dates(time_ns: npt.NDArray[np.int64]) -> FloatArray:
    """Nanosecond times as matplotlib date numbers (honours the configured date epoch)."""
    # matplotlib.dates has no type annotations (mypy strict calls it untyped).
    result: FloatArray = mdates.date2num(time_ns.astype("datetime64[ns]"))  # type: ignore[no-untyped-call]
    return result


def _thin(index: IndexArray) -> IndexArray:
    if len(index) <= MAX_MARKERS:
        return index
    return index[np.linspace(0, len(index) - 1, MAX_MARKERS).astype(np.intp)]


def _draw_price(
    ax: Axes,
    instrument: str,
    series: tuple[array[int], array[float]] | None,
    fills: Sequence[FillRecord],
    trades: Sequence[TradeRecord],
) -> None:
    if series is not None and len(series[0]):
        times = np.frombuffer(series[0], dtype=np.int64)
        closes = np.frombuffer(series[1], dtype=np.float64)
        keep = decimate_indices(times, closes)
        ax.plot(_dates(times[keep]), closes[keep], color="0.25", linewidth=0.8, label=f"{instrument} close")
    if fills:
        times = np.array([f.time_ns for f in fills], dtype=np.int64)
        prices = np.array([f.price for f in fills], dtype=np.float64)
        buys = np.array([f.side == "buy" for f in fills])
        size = 28 if len(fills) <= 200 else 10  # dense fills: smaller markers keep the price line visible
        for mask, marker, color, label in ((buys, "^", "tab:green", "buy"), (~buys, "v", "tab:red", "sell")):
            index = _thin(np.flatnonzero(mask))
            if len(index):
                ax.scatter(
                    _dates(times[index]), prices[index], marker=marker, color=color, s=size, zorder=3, label=label
                )
    if trades:  # entry-to-exit lines, green for a net win, red otherwise; one collection draws fast
        entry = _dates(np.array([t.entry_time_ns for t in trades], dtype=np.int64))
        exit_ = _dates(np.array([t.exit_time_ns for t in trades], dtype=np.int64))
        segments = [
            ((x0, t.entry_price), (x1, t.exit_price)) for x0, x1, t in zip(entry.tolist(), exit_.tolist(), trades)
        ]
        colors = ["tab:green" if t.pnl_net > 0 else "tab:red" for t in trades]
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=1.2, linestyles="dashed", alpha=0.7))
    ax.set_ylabel("Price")
    ax.set_title(instrument, loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)


def _headline(title: str, stats: Statistics) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.2f}%"

    sharpe = "n/a" if stats.sharpe is None else f"{stats.sharpe:.2f}"
    win = pct(stats.win_rate)
    return (
        f"{title}\nreturn {pct(stats.total_return)}   CAGR {pct(stats.cagr)}   Sharpe {sharpe}   "
        f"max drawdown {pct(stats.max_drawdown)}   trades {stats.trades}   win rate {win}   "
        f"final equity {stats.final_equity:,.2f} {stats.currency}"
    )


def write_report(
    path: Path,
    *,
    curve: EquityCurve,
    fills: Sequence[FillRecord],
    trades: Sequence[TradeRecord],
    stats: Statistics,
    prices: Mapping[str, tuple[array[int], array[float]]] | None,
    title: str,
) -> Path:
    """Draw the report PNG: a price panel per instrument (close, buys ^ green, sells v red at fill
    price and time, closed trades as entry-to-exit lines), then equity, then drawdown in percent.

    Args:
        path: the PNG to write (replaced atomically).
        curve: the equity curve, at least one point.
        fills: all fills; their instruments get price panels even without `prices`.
        trades: the closed trades, drawn as dashed entry-to-exit lines (green: net win).
        stats: the run's statistics, for the title line and the drawdown reference.
        prices: per instrument (time_ns array('q'), close array('d')) in time order, or None.
        title: the first title line.

    Returns:
        `path`.

    Raises:
        ValueError: the curve is empty.
    """
    if len(curve) == 0:
        raise ValueError("write_report: the equity curve is empty")
    by_instrument: dict[str, list[FillRecord]] = {}
    for fill in fills:
        by_instrument.setdefault(fill.instrument, []).append(fill)
    trades_by_instrument: dict[str, list[TradeRecord]] = {}
    for trade in trades:
        trades_by_instrument.setdefault(trade.instrument, []).append(trade)
    instruments = sorted(set(by_instrument) | set(prices or {}))
    drawn, left_out = instruments[:MAX_PRICE_PANELS], instruments[MAX_PRICE_PANELS:]

    ratios = [3.0] * len(drawn) + [2.0, 1.2]
    fig = Figure(figsize=(FIGURE_WIDTH_IN, 2.6 * len(drawn) + 5.0), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios}, squeeze=False)[:, 0]
    for ax, instrument in zip(axes, drawn):
        _draw_price(
            ax,
            instrument,
            (prices or {}).get(instrument),
            by_instrument.get(instrument, []),
            trades_by_instrument.get(instrument, []),
        )
    if left_out:
        axes[len(drawn) - 1].set_title(f"{drawn[-1]}   (not drawn: {', '.join(left_out)})", loc="left", fontsize=10)

    times = np.frombuffer(curve.time_ns, dtype=np.int64)
    equity = np.frombuffer(curve.equity, dtype=np.float64)
    keep = decimate_indices(times, equity)
    ax_equity = axes[-2]
    ax_equity.plot(_dates(times[keep]), equity[keep], color="tab:blue", linewidth=1.0)
    ax_equity.axhline(stats.initial_equity, color="0.5", linestyle="--", linewidth=0.8)
    ax_equity.set_ylabel(f"Equity ({stats.currency})")
    ax_equity.grid(alpha=0.3)

    drawdown = drawdown_series(equity, stats.initial_equity) * -100.0
    keep = decimate_indices(times, drawdown)
    ax_dd = axes[-1]
    ax_dd.fill_between(_dates(times[keep]), drawdown[keep], 0.0, color="tab:red", alpha=0.4, linewidth=0)
    ax_dd.set_ylabel("Drawdown %")
    ax_dd.grid(alpha=0.3)
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax_dd.xaxis.set_major_locator(locator)
    ax_dd.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]
    ax_dd.set_xlabel("time (UTC)")

    fig.suptitle(_headline(title, stats), fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=FIGURE_DPI)
    os.replace(tmp, path)
    return path


def write_report_html(path: Path, *, png: Path, stats: Statistics, title: str) -> Path:
    """A self-contained HTML page: the title, the report PNG embedded as base64, the summary table.

    Returns:
        `path` (replaced atomically).
    """
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;margin:2em}img{max-width:100%}pre{font-size:14px}</style>"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<img alt="backtest report" src="data:image/png;base64,{image}">\n'
        f"<pre>{html.escape(summary_table(stats))}</pre>\n"
        "</body>\n</html>\n"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
