# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

COMPILED := .build/compiled

.PHONY: run backtest scenario test bench compiled lint schema clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The bundled example strategy on the bundled data, as the process group under supervisord: a feed
# replays the data, the paper venue and the strategy host answer in lockstep; the summary and the
# report are the in-process backtest's (docs: README "First run", docs/operations.md).
run: $(STAMP)
	$(VENV)/bin/tradebus up ops/profiles/default.toml --wait --down-after

# The same run in one process, no sockets: the fast path.
backtest: $(STAMP)
	$(VENV)/bin/tradebus backtest examples/strategies/sma_cross.py --data examples/data/BTC-USD_1m.csv \
		--resample 15m --fees 0.001 --run-dir runs/sma_cross

# The recorded order-lifecycle scenario through the core, journal and checkpoints.
scenario: $(STAMP)
	$(VENV)/bin/tradebus scenario examples/scenarios/default --run-dir runs/default --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

# The core compiled with mypyc: same code, same traces (tests/contracts/test_compiled_parity.py).
$(COMPILED)/.stamp: $(STAMP) $(wildcard schemas/*.py services/*/*.py services/sequencer/core/*.py)
	bash ops/compile_core.sh $(COMPILED) $(PY)
	touch $@

compiled: $(COMPILED)/.stamp

bench: $(STAMP) compiled
	@# -P: the compiled build, not the sources in the working directory, must come first on sys.path
	$(PY) -m tests.performance.bench_core --out .bench/core.json
	PYTHONPATH=$(COMPILED):. $(PY) -P -m tests.performance.bench_core --out .bench/core-compiled.json
	$(PY) -m tests.performance.bench_indicators --out .bench/indicators.json
	@# SMA crossover on 1M bars: tradebus (compiled and interpreted; native and Backtrader-style),
	@# Backtrader (runonce and not), a plain loop: one run, so the ratios compare like with like
	PYTHONPATH=$(COMPILED):. $(PY) -P -m tests.performance.bench_backtest --out .bench/backtest.json
	$(PY) -m tests.performance.bench_bus --out .bench/bus.json

lint: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/ruff check schemas bus services tests
	$(VENV)/bin/mypy

schema: $(STAMP)
	$(VENV)/bin/tradebus schema export

clean:
	rm -rf $(VENV) .bench .build runs .pytest_cache .hypothesis
