# The two commands of the README: `make demo` and `make test`. Each sets up .venv first when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Extras only the benchmarks need (TRL as a baseline); the tests run the benchmarks' quick modes too.
bench-deps: $(VENV)/.bench-installed

demo: $(STAMP)
	$(BIN)/guardrail-ft demo

test: $(VENV)/.bench-installed
	$(BIN)/ruff check service workers schemas bench tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check service workers schemas bench tests

clean:
	rm -rf $(VENV) var
