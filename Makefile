# The two commands the README opens with:
#   make demo   local control plane + operator reconciling examples/production.yaml (Ctrl-C cleans up)
#   make test   lint, type check and the whole test suite against real kube-apiserver, coturn, PostgreSQL, ...
# Both install what they need first (Debian packages, a virtualenv, the Go-built control plane).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test demo deps system-deps venv controlplane tools lint typecheck unit bench clean

test: deps lint typecheck
	$(BIN)/python scripts/run_tests.py $(PYTEST_ARGS)

demo: deps
	$(BIN)/python scripts/demo.py

deps: system-deps venv controlplane tools

system-deps:
	bash scripts/install-system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

controlplane:
	bash tests/controlplane/build.sh >/dev/null

# checkov, in a virtualenv of its own under ~/.cache/callplatform (its pins clash with .venv's).
tools:
	bash scripts/install-checkov.sh >/dev/null

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not cluster and not coturn and not postgres and not prosody and not tools" $(PYTEST_ARGS)

bench: deps
	bash scripts/install-system-deps.sh --bench
	for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
