# Two commands set up a fresh machine (README): `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# Dev-only credentials that the fake Xtime (`dealer-assets xtime fake`) accepts; never real ones.
export XTIME_CLIENT_ID ?= dev-fake-client
export XTIME_CLIENT_SECRET ?= dev-fake-secret
export XTIME_API_KEY ?= dev-fake-api-key
XTIME_FAKE_PORT ?= 8720
# Dev-only keys that the fake Protractor (`dealer-assets protractor fake`) and our receiver accept; never real ones.
export PROTRACTOR_NORTH_CONNECTION_ID ?= 7c3e5f2a-91b4-4d6e-a0c8-2f1b9e4d7a63
export PROTRACTOR_NORTH_API_KEY ?= dev-only-north-fake-key
export PROTRACTOR_SOUTH_CONNECTION_ID ?= 0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9
export PROTRACTOR_SOUTH_API_KEY ?= dev-only-south-fake-key
PROTRACTOR_FAKE_PORT ?= 8710
PROTRACTOR_RECEIVER_PORT ?= 8711
DEV_PORT ?= 3000
## The samples' first day: `make dev` shows a short, mostly filled history. Production sets its own.
DEV_HISTORY_START := 2026-11-16T00:00:00Z

.PHONY: xtime-fake xtime-samples dev test test-fast lint install samples bench validate clean-state

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
	$(BIN)/python -m dealer_assets.dms.fake.dealer_feeds stage

## Stage the sample appointment requests into the Xtime drop zone (once).
xtime-samples:
	@mkdir -p data/appointments/incoming
	@test -f data/appointments/.samples-staged || { cp data/samples_xtime/*.jsonl data/appointments/incoming/ \
		&& touch data/appointments/.samples-staged; }

## The fake Xtime alone, in the foreground (the sample settings point at it).
xtime-fake: install
	$(BIN)/dealer-assets xtime fake --port $(XTIME_FAKE_PORT)

## Install, stage the samples, start the fakes (Xtime; Protractor with a stage change every 20 s), our
## Protractor callback receiver, and the Dagster UI and daemon (http://127.0.0.1:3000); Ctrl-C stops them all.
dev: export DEALER_HISTORY_START ?= $(DEV_HISTORY_START)
dev: install $(DAGSTER_HOME)/dagster.yaml samples xtime-samples
	$(BIN)/dealer-assets xtime fake --port $(XTIME_FAKE_PORT) & fake=$$!; \
	$(BIN)/dealer-assets protractor fake --port $(PROTRACTOR_FAKE_PORT) --churn-seconds 20 \
		--receiver-url http://127.0.0.1:$(PROTRACTOR_RECEIVER_PORT)/integrations/protractor/events & pfake=$$!; \
	$(BIN)/dealer-assets protractor serve --port $(PROTRACTOR_RECEIVER_PORT) & receiver=$$!; \
	trap 'kill $$fake $$pfake $$receiver 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dg dev -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT)

## Tests run in parallel (pytest-xdist): one worker per core unless PYTEST_WORKERS says otherwise.
PYTEST_WORKERS ?= auto
## Their temp files (SQLite warehouses and Dagster homes, which commit once per event) on tmpfs when there is one.
TEST_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || echo "$${TMPDIR:-/tmp}")
PYTEST := PATH="$(CURDIR)/$(BIN):$$PATH" TMPDIR="$(TEST_TMPDIR)" $(BIN)/pytest -q -n $(PYTEST_WORKERS)

## Install and run the whole test suite (PostgreSQL tests need DEALER_TEST_POSTGRES_URL, set by .ci/run).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST) --durations=25

## The fast set while developing (no PostgreSQL, no end-to-end processes, no slow property tests).
test-fast: install
	$(PYTEST) -m "not slow and not e2e and not postgres"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Load the code location as the webserver would and validate every definition.
validate: install
	$(BIN)/dagster definitions validate -w workspace.yaml

## Every benchmark: the DMS suite, then the Protractor receiver and snapshots, then Xtime bookings.
bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.protractor
	$(BIN)/python -m bench.xtime_booking

## Forget every run and everything processed (archive, quarantine, warehouse, Dagster home); keeps the samples.
clean-state:
	rm -rf data/archive data/quarantine data/raw data/normalized data/state data/warehouse.db* data/appointments data/what_if $(DAGSTER_HOME)
