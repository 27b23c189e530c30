# Two commands set up a fresh machine (README): `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DEV_PORT ?= 3000
## The samples' first day: `make dev` shows a short, mostly filled history. Production sets its own.
DEV_HISTORY_START := 2026-11-16T00:00:00Z

.PHONY: dev test test-fast lint install samples bench validate clean-state

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,celery]"
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.dev.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.dev.yaml $(DAGSTER_HOME)/dagster.yaml

## Stage the sample feeds into the drop zone (once: the archive remembers what was delivered).
samples: install
	$(BIN)/python -m dealer_assets.dms.samples stage

## Install, stage the sample feeds, and start the Dagster UI and daemon (http://127.0.0.1:3000); Ctrl-C stops.
dev: export DEALER_HISTORY_START ?= $(DEV_HISTORY_START)
dev: install $(DAGSTER_HOME)/dagster.yaml samples
	$(BIN)/dg dev -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

## Install and run the whole test suite (PostgreSQL tests need DEALER_TEST_POSTGRES_URL, set by .ci/run).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q

## The fast set while developing (no PostgreSQL, no end-to-end processes, no slow property tests): under a minute.
test-fast: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -q -m "not slow and not e2e and not postgres"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Load the code location as the webserver would and validate every definition.
validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

bench: install
	$(BIN)/python -m bench

## Forget every run and everything processed (archive, quarantine, warehouse, Dagster home); keeps the samples.
clean-state:
	rm -rf data/archive data/quarantine data/raw data/normalized data/state data/warehouse.db* $(DAGSTER_HOME)
