# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint schema clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tradebus scenario examples/scenarios/default --run-dir runs/default --overwrite

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m tests.performance.bench_core --out .bench/core.json

lint: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/ruff check schemas bus services tests
	$(VENV)/bin/mypy

schema: $(STAMP)
	$(VENV)/bin/tradebus schema export

clean:
	rm -rf $(VENV) .bench runs .pytest_cache .hypothesis
