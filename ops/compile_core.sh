#!/usr/bin/env bash
# Build the sequencer core, the matching model and the backtest runner compiled with mypyc into
# OUTDIR (a copy of schemas/ and services/). Run with PYTHONPATH=OUTDIR: same code, same traces
# (tests/contracts/test_compiled_parity.py), about 1.5x the core's lifecycle throughput and 2x the
# backtest's order path. Purity and mypy-strict typing are what allow it.
#
#   ops/compile_core.sh OUTDIR [PYTHON]
set -euo pipefail
out=${1:?usage: ops/compile_core.sh OUTDIR [PYTHON]}
py=${2:-python3}
[[ $py == */* ]] && py="$(cd "$(dirname "$py")" && pwd)/$(basename "$py")"  # survive the cd below
root=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
cp -r "$root/schemas" "$root/services" "$out/"
find "$out" -name __pycache__ -prune -exec rm -rf {} +
cd "$out"
# Modules that define msgspec Structs (orders.py, events.py) or pydantic models (config.py) stay
# interpreted: mypyc cannot compile classes with those metaclasses. __init__ and errors gain nothing.
core=services/sequencer/core
m=services/matching
"$py" -m mypyc \
  $core/book.py $core/engine.py $core/intents.py $core/invariants.py $core/lifecycle.py \
  $core/order_machine.py $core/portfolio.py $core/refusals.py $core/reports.py $core/risk.py \
  $core/rules.py $core/sequencing.py \
  $m/venue.py $m/costs.py $m/prices.py $m/orders.py $m/validation.py \
  services/backtest/runner.py services/backtest/state_view.py services/backtest/records.py services/backtest/result.py \
  services/backtest/wire_limits.py services/strategy/context.py services/strategy/units.py \
  services/strategy/indicators.py services/sequencer/journal/framing.py \
  >"$out/mypyc.log" 2>&1 || { tail -40 "$out/mypyc.log"; exit 1; }
rm -rf build
ls $core/*.so >/dev/null
echo "compiled core in $out (PYTHONPATH=$out)"
