# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup run demo test bench asyncapi lint lint-ruff fmt clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-input -r requirements.lock
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-input --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "environment ready in $(VENV)"

## Start the whole platform on the embedded default (SQLite + local nats-server with JetStream).
run: setup
	$(BIN)/sa run

## Drive the walking skeleton over HTTP against a running `make run`.
demo: setup
	$(BIN)/sa demo

## Run the test suite (SQLite; set DATABASE_URL=postgresql://... to run it on PostgreSQL).
test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench

## Regenerate docs/asyncapi.json (every event's contract) from the event registry; refuses a
## change that breaks a published event version (publish a .v2 instead).
asyncapi: setup
	$(BIN)/sa asyncapi --out docs/asyncapi.json

lint: lint-ruff
	$(BIN)/mypy libs services

lint-ruff: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
