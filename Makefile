# Earshot — every install step lives here, so a fresh clone needs only Python and make.
# The virtualenv prefers python3.13 (the Lambda runtime); it falls back to python3.11+.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PY313   := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
BASE_PY := $(or $(PY313),$(shell for p in python3.12 python3.11 python3; do command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && { command -v $$p; break; }; done))

.PHONY: help venv test test-fast demo bench lint build deploy preview clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml shared/requirements.txt
	@if [ -z "$(BASE_PY)" ]; then echo "error: need python3.13 (or 3.11+) on PATH or under pyenv" >&2; exit 2; fi
	@if [ -z "$(PY313)" ]; then echo "warning: python3.13 not found; using $(BASE_PY). Lambda runs 3.13." >&2; fi
	$(BASE_PY) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)  ## create the virtualenv with everything installed

test: lint  ## lint, then the whole test suite (what CI runs)
	$(PY) -m pytest -q

test-fast: $(STAMP)  ## skip slow tests
	$(PY) -m pytest -q -m "not slow"

demo: $(STAMP)  ## run Earshot end to end locally (its own SQLite database in out/, a loopback feed server)
	$(VENV)/bin/earshot demo --out out

bench: $(STAMP)  ## benchmarks; rewrites docs/benchmarks.md
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) bench/run.py --out docs/benchmarks.md

lint: $(STAMP)  ## ruff, mypy (strict on the layer), sam validate --lint, the expanded stack (cfn-lint E*, cycles, new-account checks)
	$(VENV)/bin/ruff check shared local functions tests
	$(VENV)/bin/mypy
	PATH="$(dir $(PY313)):$$PATH" $(VENV)/bin/sam validate --lint --region us-east-1
	$(PY) -m pytest -q -p no:cacheprovider tests/test_template_expanded.py

build: $(STAMP)  ## sam build (no Docker needed; uses python3.13)
	PATH="$(dir $(PY313)):$$PATH" $(VENV)/bin/sam build

preview: $(STAMP)  ## render a digest and screenshot it in headless Chromium
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(VENV)/bin/earshot demo --out out
	$(VENV)/bin/earshot --db out/earshot-demo.db digest preview mlp-finance --out out/preview --screenshot

clean:
	rm -rf $(VENV) .aws-sam out .pytest_cache
