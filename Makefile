# priorauth: `make run` decides the example requests, then starts the service on 127.0.0.1:8000
# (SQLite under var/, demo accounts and the example requests; `make run PORT=8001` for another
# port); `make evaluate` shows the examples' determinations in full; `make test` runs the tests.
# Each target bootstraps .venv on its own, so a fresh clone needs nothing else.

PYTHON ?= python3
# Where `make run` listens: make run PORT=8001 (HOST=0.0.0.0 to listen beyond this machine).
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run evaluate test check fmt bench load clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@echo "Deciding the example requests in examples/ (make evaluate shows them in full):"
	@$(BIN)/priorauth evaluate examples/*.json --format line
	@echo
	@mkdir -p var
	@export PRIORAUTH_DATABASE_URL=$${PRIORAUTH_DATABASE_URL:-sqlite:///var/priorauth.db}; \
		$(BIN)/priorauth db upgrade && \
		$(BIN)/priorauth serve --host $(HOST) --port $(PORT) --demo

evaluate: $(STAMP)
	$(BIN)/priorauth evaluate examples/*.json

# axe-core for the browser tests' accessibility checks (tests/browser/package.json).
AXE := tests/browser/node_modules/axe-core/axe.min.js
$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/browser --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the browser tests' accessibility checks will skip"; fi

# The reference CQL engine the ELM cross-check runs (tests/cql; npm, from its lockfile).
CQL_STAMP := tests/cql/node_modules/.installed
$(CQL_STAMP): tests/cql/package.json tests/cql/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/cql --no-audit --no-fund && touch $@; \
	else echo "npm not found: the ELM cross-check is skipped (.ci/install-node installs it)"; fi

test: $(STAMP) $(AXE) $(CQL_STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

load: $(STAMP)
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
