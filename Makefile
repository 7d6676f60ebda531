# The two commands of the README: `make demo` and `make test`. Each sets up .venv first when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-deps prometheus-tools browser-tools clean

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

# Debian's prometheus package gives `prometheus` and `promtool`: the deploy tests check the scrape config, the
# alert rules and their unit tests with them, and scrape /metrics with a real Prometheus. Its postinst starts a
# service through invoke-rc.d; a policy-rc.d that answers 101 (added only for the install, unless the machine has
# one) keeps that from happening.
prometheus-tools:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
	  set -e; policy=/usr/sbin/policy-rc.d; added=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod +x $$policy; added=1; fi; \
	  trap '[ -z "$$added" ] || rm -f '$$policy EXIT; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends prometheus \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; }; \
	fi

# Debian's chromium package: a test loads the HTML safety report in headless Chromium and checks that every plot is
# drawn (tests/workers/evaluation/test_report_browser.py).
browser-tools:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  set -e; export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends chromium \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }; \
	fi

test: $(VENV)/.bench-installed prometheus-tools browser-tools lint
	$(BIN)/python -m pytest -q

# Lint, format and the strict type check ([tool.mypy] in pyproject.toml names what it covers).
lint: $(STAMP)
	$(BIN)/ruff check service workers schemas bench tests
	$(BIN)/ruff format --check service workers schemas bench tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var
