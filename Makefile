# rowforge developer commands. `make test` and `make demo` work on a fresh clone: both install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint diagrams check-diagrams bench demo clean

install: $(STAMP)

# Re-install only when the project's metadata changed; the editable install picks up code edits.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

diagrams: install
	$(PY) -m rowforge.statemachine.diagrams

check-diagrams: install
	$(PY) -m rowforge.statemachine.diagrams --check

# Each benchmark prints one JSON line, then a table. Run them one at a time: they share 2 cores.
BENCHMARKS := transitions_bench scheduler_overhead scheduler_efficiency scheduler_memory http_e2e

bench: install
	@for name in $(BENCHMARKS); do echo "== $$name"; $(PY) benchmarks/$$name.py $(BENCH_ARGS) || exit 1; done

demo: install
	$(PY) -m rowforge.cli demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Longer provider-fault runs over HTTP with the default budgets (several minutes; not in `make
# test` or CI): a long mixed-fault run on both engines, a 30 s outage, hangs, and a provider that
# only answers 429 for the default 5-minute no-success budget.
.PHONY: soak
soak: install
	ROWFORGE_SOAK=1 $(PY) -m pytest -q tests/faults/test_soak.py
