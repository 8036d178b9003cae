"""`BacktestResult`: what a backtest hands back, and writing it to a run folder."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from services.backtest.records import EquityCurve, FillRecord, OpenTrade, OrderRecord, TradeRecord
from services.backtest.statistics import Statistics, compute_statistics, summary_table
from services.sequencer.core.config import CoreConfig
from services.sequencer.core.orders import Order

if TYPE_CHECKING:
    from services.backtest.runner import _Run

__all__ = ["BacktestResult", "build_result"]


@dataclass
class BacktestResult:
    """Everything a run produced. Display units (floats) throughout; the exact state is in the
    journal and behind `state_hash`.

    Attributes:
        orders, fills, trades, open_trades: the run's records (trades are closed round trips).
        curve: equity, cash and exposure per time step (columnar arrays).
        statistics: total return, CAGR, Sharpe, Sortino, drawdown, trade stats, fees.
        state_hash: the core's final state hash (`tradebus replay` of the journal gives the same).
        seq_id: the last seq id applied (the number of journaled inputs).
        events: market events processed; elapsed_s: wall time of the run.
        journal_path: the journal, when the run had a run folder.
        warnings: disagreements between the venue and the core (there should be none).
    """

    orders: list[OrderRecord]
    fills: list[FillRecord]
    trades: list[TradeRecord]
    open_trades: list[OpenTrade]
    curve: EquityCurve
    statistics: Statistics
    state_hash: str
    seq_id: int
    events: int
    elapsed_s: float
    config: CoreConfig
    journal_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    prices: dict[str, tuple[array[int], array[float]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def final_equity(self) -> float:
        return self.statistics.final_equity

    def summary(self) -> str:
        """The statistics as a readable table."""
        return summary_table(self.statistics)

    def write(self, run_dir: str | Path, *, fmt: Literal["csv", "parquet"] = "csv", report: bool = True) -> dict[str, Path]:
        """Write orders, fills, trades, equity (CSV or Parquet), summary.json and the report picture."""
        from services.backtest.output import write_run_outputs
        from services.backtest.report import write_report, write_report_html

        run_dir = Path(run_dir)
        settings = dict(self.settings)
        settings["state_hash"] = self.state_hash
        settings["seq_id"] = self.seq_id
        settings["events"] = self.events
        settings["warnings"] = list(self.warnings)
        paths = write_run_outputs(
            run_dir,
            orders=self.orders,
            fills=self.fills,
            trades=self.trades,
            curve=self.curve,
            stats=self.statistics,
            fmt=fmt,
            config_summary=settings,
            open_trades=self.open_trades,
        )
        if report:
            title = str(self.settings.get("strategy", "backtest"))
            png = write_report(
                run_dir / "report.png",
                curve=self.curve,
                fills=self.fills,
                trades=self.trades,
                stats=self.statistics,
                prices=self.prices,
                title=title,
            )
            paths["report"] = png
            paths["report_html"] = write_report_html(run_dir / "report.html", png=png, stats=self.statistics, title=title)
        if self.journal_path is not None:
            paths["journal"] = self.journal_path
        return paths


def build_result(run: _Run, events: int, elapsed_s: float, journal_path: Path | None) -> BacktestResult:
    """Collect a finished run's records and compute its statistics."""
    core = run.core
    orders = [_order_record(o, run) for o in core.book.orders.values()]
    initial = float(run.config.cash)
    stats = compute_statistics(run.curve, run.trades, run.fees_paid, initial, run.currency)
    return BacktestResult(
        orders=orders,
        fills=run.fills,
        trades=run.trades,
        open_trades=run.trade_builder.open_trades(),
        curve=run.curve,
        statistics=stats,
        state_hash=core.state_hash(),
        seq_id=core.seq_id,
        events=events,
        elapsed_s=elapsed_s,
        config=run.core_config,
        journal_path=journal_path,
        warnings=run.warnings,
        prices=run.prices,
        settings={
            "strategy": type(run.strategy).__name__,
            "strategy_id": run.strategy_id,
            "params": {k: _jsonable(v) for k, v in getattr(run.strategy, "param_values", {}).items()},
            "backtest": run.config.model_dump(mode="json"),
            "config_hash": core.config_hash,
        },
    )


def _order_record(o: Order, run: _Run) -> OrderRecord:
    u = run.ctx.units[o.instrument]
    intent = o.intent
    avg = None
    if o.filled_quantity:
        avg = o.filled_notional / o.filled_quantity / u.price_scale
    times = run.seq_times
    return OrderRecord(
        client_order_id=o.client_order_id,
        strategy_id=o.strategy_id,
        instrument=o.instrument,
        side="buy" if o.is_buy else "sell",
        order_type=str(intent.order_type),
        quantity=u.size(o.quantity),
        price=None if o.price is None else u.price(o.price),
        stop_price=None if intent.stop_price is None else u.price(intent.stop_price),
        time_in_force=str(intent.time_in_force),
        state=str(o.state),
        filled_quantity=u.size(o.filled_quantity),
        avg_fill_price=avg,
        created_time_ns=times.get(o.created_seq_id, 0),
        updated_time_ns=times.get(o.updated_seq_id, 0),
        parent_client_order_id=intent.parent_client_order_id,
        oco_group=intent.oco_group,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)
