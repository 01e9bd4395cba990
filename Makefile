# Two commands for a newcomer: `make run` and `make test`. Everything else sets itself up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 to match the Lambda runtime: pyenv's (selected by .python-version), else any python3.12 on
# PATH, else the machine's python3 (with a warning).
PYTHON ?= $(shell for candidate in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3; do \
	if "$$candidate" -c 'import sys, venv' >/dev/null 2>&1; then command -v "$$candidate"; break; fi; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt layers/shared/requirements.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: help setup run seed browser-deps test test-unit test-integration test-e2e schemathesis invoke lint format bench bench-reference clean tools validate build test-build

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt layers/shared/requirements.txt
	@test -n "$(PYTHON)" || { echo "no python3 found"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.version_info[:2] == (3, 12) or print("warning: Lambda runs python3.12; using", sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## Create the virtualenv and install dependencies

run: setup ## Serve the whole API on http://127.0.0.1:8080 (embedded PostgreSQL and SQS unless configured)
	$(PY) -m infra.local_runner

seed: setup ## Demo data for the console (SMS, MMS, email; messages in every status) in `make run`'s database
	$(PY) -m infra.seed

# The browser tests drive Debian's chromium (Playwright cannot download browsers here). Installed when we are
# root; otherwise (not root, or apt-get fails, e.g. offline) the tests skip and say so, and `make test` carries on
# (under CI=true they fail instead).
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian's chromium for the browser tests"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
				|| echo "*** apt-get could not install chromium (offline?): the browser tests (tests/browser) will be SKIPPED ***"; \
		else \
			echo "*** no $(CHROMIUM) and not root: the browser tests (tests/browser) will be SKIPPED ***"; \
		fi; \
	fi

# The suite's second run: every database it creates has en-US's collation by default (as managed servers often
# do), so nothing may depend on the database sorting text by code point. Without a server named, that is the
# embedded PostgreSQL (built without ICU) with glibc's en_US.UTF-8, compiled under .local/locale; on the
# server in TEST_COLLATION_DATABASE_URL, else TEST_DATABASE_URL, it is ICU en-US, or glibc's en_US.UTF-8
# where the server has no ICU.
TEST_COLLATION ?= en-US
TEST_COLLATION_DATABASE_URL ?= $(TEST_DATABASE_URL)

test: setup browser-deps ## Run every test against a real PostgreSQL (embedded unless TEST_DATABASE_URL) and moto's SQS; then again on en-US-collated databases
	$(PY) -m pytest $(PYTEST_ARGS)
	TEST_DATABASE_URL='$(TEST_COLLATION_DATABASE_URL)' TEST_DATABASE_COLLATION='$(TEST_COLLATION)' $(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: setup
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

schemathesis: setup ## Schemathesis against the served OpenAPI document, with many examples
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-200} $(PY) -m pytest tests/e2e/test_schemathesis.py $(PYTEST_ARGS)

invoke: setup ## Invoke one handler in-process: make invoke FUNCTION=InboundSmsFunction EVENT=events/inbound_sms-sms.json
	$(PY) -m infra.local_runner.invoke $(FUNCTION) $(EVENT)

lint: setup ## ruff (lint and format check) and mypy (the shared layer)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup ## Benchmarks (ratios against baselines measured in the same run); writes bench/results/latest.json
	$(PY) -m bench.run

bench-reference: setup ## make bench, and replace the tracked reference bench/RESULTS.json with this run
	$(PY) -m bench.run --update-reference

# The SAM CLI and cfn-lint live in their own virtualenv: SAM pins versions that conflict with the app's.
TOOLS := .tools/sam
SAM := $(TOOLS)/bin/sam
export SAM_CLI_TELEMETRY := 0
# sam build's python3.12 workflow needs python3.12 on PATH.
BUILD_PATH := $(abspath $(VENV)/bin):$(PATH)

$(TOOLS)/.installed: requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

tools: $(TOOLS)/.installed ## Install the SAM CLI and cfn-lint (in .tools/)

validate: tools ## sam validate --lint and cfn-lint on every template
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM) validate --lint
	$(TOOLS)/bin/cfn-lint template.yaml infra/aws/*.yaml

build: tools setup ## sam build (no container)
	PATH="$(BUILD_PATH)" $(SAM) build

test-build: setup ## Import every built function from .aws-sam/build only and invoke it with its sample events
	$(PY) -m pytest tests/built -p no:cacheprovider $(PYTEST_ARGS)

clean: ## Remove the virtualenv, local data and build output
	rm -rf $(VENV) .tools .local .aws-sam .pytest_cache
