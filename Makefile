# Two commands set up a fresh machine (README): `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
## Development values (the fakes' keys, never real ones) are in .env.development: every dealer-assets command
## and the code location load it on the embedded defaults (no DEALER_SETTINGS_FILE), so `make dev`, its UI and
## a command typed by hand see the same environment.
XTIME_FAKE_PORT ?= 8720
PROTRACTOR_FAKE_PORT ?= 8710
PROTRACTOR_RECEIVER_PORT ?= 8711
DEV_PORT ?= 3000
## The webserver's and daemon's own log (DEV_LOG_LEVEL=info shows every sensor tick and run launch).
DEV_LOG_LEVEL ?= warning
## `make dev` delivers one late sample feed this long after it starts (a renumbered vehicle on a North work
## order): the next Protractor run updates the package it wrote there (table protractor_write_back_log).
LATE_FEED_AFTER_SECONDS ?= 480

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

## Stage the sample appointment requests into the Xtime drop zone, dated ahead of today (once taken in, never
## again), and date the sample invitations from now, so that each enrollment state shows on any day.
xtime-samples: install
	$(BIN)/python -m dealer_assets.xtime.fake.samples stage

## The fake Xtime alone, in the foreground (the sample settings point at it).
xtime-fake: install
	$(BIN)/dealer-assets xtime fake --port $(XTIME_FAKE_PORT)

## Install, stage the samples, start the fakes (Xtime; Protractor with a stage change every 20 s), our
## Protractor callback receiver, and the Dagster UI and daemon (http://127.0.0.1:3000); Ctrl-C stops them all.
dev: install $(DAGSTER_HOME)/dagster.yaml samples xtime-samples
	$(BIN)/dealer-assets xtime fake --port $(XTIME_FAKE_PORT) & fake=$$!; \
	$(BIN)/dealer-assets protractor fake --port $(PROTRACTOR_FAKE_PORT) --churn-seconds 20 \
		--receiver-url http://127.0.0.1:$(PROTRACTOR_RECEIVER_PORT)/integrations/protractor/events & pfake=$$!; \
	$(BIN)/dealer-assets protractor serve --port $(PROTRACTOR_RECEIVER_PORT) & receiver=$$!; \
	$(BIN)/python -m dealer_assets.dms.fake.dealer_feeds stage-late --after $(LATE_FEED_AFTER_SECONDS) & late=$$!; \
	trap 'kill $$fake $$pfake $$receiver $$late 2>/dev/null' EXIT INT TERM; \
	echo "Dagster UI on http://127.0.0.1:$(DEV_PORT): one line per run below; warnings and errors in full"; \
	$(BIN)/dg dev -w workspace.yaml -h 127.0.0.1 -p $(DEV_PORT) --log-level $(DEV_LOG_LEVEL)

## Tests run in parallel (pytest-xdist): two workers per core unless PYTEST_WORKERS says otherwise, since most
## slow tests wait on processes they start (runs, servers, daemons); idle workers steal queued tests.
PYTEST_WORKERS ?= $(shell echo $$(( 2 * $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) )))
## Their temp files (SQLite warehouses and Dagster homes, which commit once per event) on tmpfs when there is one.
TEST_TMPDIR ?= $(shell test -d /dev/shm -a -w /dev/shm && echo /dev/shm || echo "$${TMPDIR:-/tmp}")
## Bytecode caches are written even where PYTHONDONTWRITEBYTECODE is set: the suite starts hundreds of Python
## processes, which would otherwise each recompile the package (and each worker re-rewrite the tests' asserts).
PYTEST := PYTHONDONTWRITEBYTECODE= PATH="$(CURDIR)/$(BIN):$$PATH" TMPDIR="$(TEST_TMPDIR)" $(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal

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

## Forget every run and everything processed (archive, quarantine, warehouse, Dagster home, files waiting in
## the drop zone, the staged samples' dates); keeps the samples themselves.
clean-state:
	rm -rf data/archive data/quarantine data/raw data/normalized data/state data/warehouse.db* data/appointments data/what_if data/protractor $(DAGSTER_HOME)
	find data/feeds/incoming -mindepth 1 ! -name .gitkeep -delete
