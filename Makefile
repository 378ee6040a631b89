# RAGGEN: `make run` serves the product, `make test` runs the suite. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
FUZZ_EXAMPLES ?= 100

.DEFAULT_GOAL := help
.PHONY: help install install-dev run serve worker test test-pg test-pgvector fuzz lint fmt bench migrate clean

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime-installed $@

install: $(VENV)/.runtime-installed ## Create .venv and install the runtime dependencies

install-dev: $(VENV)/.dev-installed ## Install runtime and development dependencies

migrate: install ## Apply database migrations
	$(BIN)/python manage.py migrate --noinput

run: install ## Set up and serve on http://127.0.0.1:8000 (SQLite, no Redis, no keys needed)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py rebuild_index --stale
	@echo "RAGGEN is serving on http://$(HOST):$(PORT)/ (Ctrl+C stops it)"
	$(BIN)/python -m raggen.server -b $(HOST) -p $(PORT) raggen.asgi:application

worker: install ## Run a Celery worker (needs REDIS_URL)
	@test -n "$$REDIS_URL" || { echo "make worker needs REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379/0"; exit 2; }
	$(BIN)/celery -A raggen worker --loglevel=INFO --pool=threads --concurrency=$${WORKER_CONCURRENCY:-2}

test: install-dev ## Run the whole test suite (SQLite)
	$(BIN)/pytest $(PYTEST_ARGS)

test-pg: install-dev ## Run the whole test suite against PostgreSQL (PG_URL)
	DATABASE_URL=$(PG_URL) $(BIN)/pytest $(PYTEST_ARGS)

test-pgvector: install-dev ## Search, ingestion and chat suites on a throw-away PostgreSQL + pgvector, SEARCH_BACKEND=postgres
	$(BIN)/python bench/with_pgvector.py $(BIN)/pytest documents chat -p no:cacheprovider $(PYTEST_ARGS)

fuzz: install-dev ## Schemathesis on the real server, FUZZ_EXAMPLES (100) examples per operation
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest raggen/tests/test_fuzz.py -m fuzz -s --timeout=0 $(PYTEST_ARGS)

lint: install-dev ## ruff format --check, ruff check, mypy (strict), import contracts
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-cache

fmt: install-dev ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev ## Run the benchmarks under bench/ (prints figures; see docs/BENCHMARKS.md)
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) data
