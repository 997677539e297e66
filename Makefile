# rowforge developer commands. `make test` and `make demo` work on a fresh clone: both install first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two installs into the same venv: `.[dev]` (tests, lint, tools) and `.` alone (the runtime
# dependencies, all `make demo` needs). The dev install includes the runtime one and marks it done.
STAMP := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.installed-runtime-stamp

.PHONY: install install-runtime test lint diagrams check-diagrams bench demo clean

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

# Re-install only when the project's metadata changed; the editable install picks up code edits.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

test: install browser
	ROWFORGE_EDGE_COVERAGE=1 $(PY) -m pytest

# The run report's test opens the report in headless Chromium, from the system's packages.
.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

diagrams: install
	$(PY) -m rowforge.statemachine.diagrams docs/state-machines.md

check-diagrams: install
	$(PY) -m rowforge.statemachine.diagrams --check docs/state-machines.md

# Each benchmark prints one JSON line, then a table. Run them one at a time: they share 2 cores.
BENCHMARKS := transitions_bench scheduler_overhead scheduler_efficiency scheduler_memory http_e2e request_cpu progress_overhead data_designer_embedded ray_scale

bench: install
	@for name in $(BENCHMARKS); do echo "== $$name"; $(PY) benchmarks/$$name.py $(BENCH_ARGS) || exit 1; done

# The installed `rowforge` script, so that the demo's hints name it as it was run.
demo: $(RUNTIME_STAMP)
	$(VENV)/bin/rowforge demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Longer provider-fault runs over HTTP with the default budgets (several minutes; not in `make
# test` or CI): a long mixed-fault run on both engines, a 30 s outage, hangs, and a provider that
# only answers 429 for the default 5-minute no-success budget.
.PHONY: soak
soak: install
	ROWFORGE_SOAK=1 $(PY) -m pytest -q tests/faults/test_soak.py

# Mutation testing (hours on 2 cores; not in `make test` or CI): mutmut over storage, statemachine
# and the scheduler's admission/retry/shutdown, each package with its own tests and 2 workers, then
# the spec mutants (specs/*.yaml). Results stay in mutants/ (git-ignored). See docs/mutants.md.
# `make mutants MUTANTS_PACKAGES=storage SPEC_MUTANTS=` runs one package and no spec mutants;
# MUTANTS_ARGS='--rev HEAD' tests the last commit instead of the working tree.
MUTANTS_PACKAGES ?= storage statemachine scheduler
MUTANTS_ARGS ?=
SPEC_MUTANTS ?= yes

.PHONY: mutants
mutants: install
	$(PY) -m tests.mutants_killed.run_mutmut $(MUTANTS_PACKAGES) --max-children 2 $(MUTANTS_ARGS)
	@if [ -n "$(SPEC_MUTANTS)" ]; then $(PY) -m tests.mutants_killed.spec_mutants $(MUTANTS_ARGS); fi
