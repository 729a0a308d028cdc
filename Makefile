# Catflow — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/catflow_test
UI_VENDOR := engine/ui/static/vendor
UI_SOURCES := $(wildcard engine/ui/assets/*)
CHROMIUM := /usr/bin/chromium
# The browser tests drive Debian's Chromium; Playwright never downloads one of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test bench lint typecheck services ui-assets chromium clean help

help:
	@echo "make run   - create .venv if needed, install, and run the meetings job on SQLite"
	@echo "             (Calendar emulator, engine, API and pages on 127.0.0.1:8080; Ctrl-C stops)"
	@echo "make test  - install test tools, check lint and types, run the whole suite"
	@echo "make bench - run the benchmarks; figures in benchmarks/results/latest.{json,md}"
	@echo "make ui-assets - bundle the pages' diagram viewer (npm ci + esbuild; run/test do it)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The diagram viewer of the pages: bpmn-js and bpmn-auto-layout, bundled with esbuild
# (versions pinned in package-lock.json). npm runs again only when the lock file
# changed, esbuild only when the lock or the sources did; no install scripts run.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing; trying apt-get install npm"; apt-get install -y npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(UI_VENDOR)/.built: node_modules/.installed $(UI_SOURCES)
	node engine/ui/assets/build.mjs
	touch $@

ui-assets: $(UI_VENDOR)/.built

# Debian's Chromium for the browser tests (we run as root there); without it those
# tests skip, loudly.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "$(CHROMIUM) is missing; installing Debian's chromium"; \
	  apt-get install -y chromium >/dev/null 2>&1 \
	    || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; } \
	    || echo "WARNING: chromium could not be installed; the browser tests (tests/ui) will be SKIPPED"; \
	fi

run: $(VENV)/.installed ui-assets
	$(BIN)/catflow demo

# PostgreSQL, Redis and RabbitMQ run on the development and CI machines; start
# PostgreSQL if it is stopped and make sure the test database exists. Tests that
# need it skip loudly when it truly cannot be had.
services:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  echo "PostgreSQL is not answering; trying to start it"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql 2>/dev/null | head -1) main start 2>/dev/null || true; \
	  for i in $$(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done; \
	fi
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='catflow_test'" | grep -q 1 \
	    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE catflow_test"; \
	else echo "WARNING: PostgreSQL unavailable; PostgreSQL tests will be skipped"; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check engine tests benchmarks
	$(BIN)/ruff format --check engine tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict engine

test: $(VENV)/.installed-test services ui-assets chromium lint typecheck
	CATFLOW_TEST_PG_URL=$(PG_TEST_URL) $(BIN)/pytest

# Figures come from here, never from timed tests; `make test` only smoke-runs it.
bench: $(VENV)/.installed-test services
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) catflow.db catflow.db-wal catflow.db-shm node_modules $(UI_VENDOR) test-results
