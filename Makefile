# Two commands for a fresh machine (see README): `make local` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The official Socket.io JS client, for the tests that prove the real-time tier speaks to it (npm, from the lock file).
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

.PHONY: install local serve test lint unit bench
install: $(STAMP)

## Install everything and run the whole system on embedded defaults (SQLite, in-process Redis) on :3000.
local: $(STAMP)
	$(BIN)/crm local --port 3000

## Install everything and run lint, types and the whole test suite (integration tier on MariaDB + Redis).
test: $(STAMP) $(JS_STAMP) lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy app.py functions layers shared tiers

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

## Load benchmark against the real server on MariaDB + Redis (needs wrk: apt-get install wrk).
bench: $(STAMP)
	$(BIN)/python bench/run.py
