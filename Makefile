# Every set-up step lives here, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint format bench clean

setup: $(STAMP)

# Re-install whenever pyproject.toml changes; the stamp keeps repeated runs instant.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the whole pipeline locally on a seeded burst (issue 3); prints the summary and dashboards.
run: setup
	$(BIN)/sales-pipeline run $(ARGS)

## test: lint, type-check, then the whole test suite (unit, functional, integration).
test: setup lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: throughput and cost figures written to BENCHMARKS.md.
bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .build .pytest_cache .mypy_cache .ruff_cache
