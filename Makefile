# Remarketing: `make help` lists the targets. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
export OMP_WAIT_POLICY := PASSIVE

.DEFAULT_GOAL := help
.PHONY: help install system-packages test-packages checks-venv test test-unit screenshots lint compile demo smoke up down status benchmarks clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed ## Build .venv with the pinned dependencies (constraints.txt)

# The deploy checks' tools clash with the project's pins (and with each other), so each has a venv.
.venv-checks/.installed: requirements/checks.txt
	$(PYTHON) -m venv .venv-checks
	.venv-checks/bin/pip install --quiet -r requirements/checks.txt
	touch $@

.venv-hcl2/.installed: requirements/hcl2.txt
	$(PYTHON) -m venv .venv-hcl2
	.venv-hcl2/bin/pip install --quiet -r requirements/hcl2.txt
	touch $@

system-packages: ## Install the Debian packages the local stack runs (Prometheus, Pushgateway, Alertmanager)
	@bash requirements/apt-install.sh --no-recommends requirements/debian-stack.txt

test-packages: system-packages ## ... and those only the tests need (Chromium, PostgreSQL for the lookup table's cloud store)
	@bash requirements/apt-install.sh requirements/debian-tests.txt

checks-venv: .venv-checks/.installed .venv-hcl2/.installed ## Install the deploy checks (checkov, hadolint, python-hcl2)

demo: install system-packages ## Train on the first 80% of bank-full, score the last 20% on KServe, print the predictions URL
	REMARKETING_DATA_DIR=$(DATA_DIR) $(BIN)/remarketing demo

test: install test-packages checks-venv ## Run the whole test suite (lint and layering, unit, integration on the real local stack, deploy checks)
	$(MAKE) lint
	REMARKETING_REQUIRE_DEPLOY_CHECKS=1 $(BIN)/pytest --cov --cov-report=term:skip-covered --durations=15

test-unit: install ## Run every unit test (wherever it lives: the tests mirror the tree), none of the stack
	$(BIN)/pytest -m "not integration and not deploy"

screenshots: install test-packages ## Refresh docs/screenshots/: every page for both datasets, taken by the browser tests
	REMARKETING_E2E_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest tests/frontend/test_e2e_browser.py

lint: install ## ruff, mypy, and the layering (import-linter contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

compile: install ## Compile the pipelines to Kubeflow IR YAML in build/pipelines
	$(BIN)/remarketing pipelines compile --output-dir build/pipelines

smoke: install ## Upload a small weekly file through the API, wait for its run, download its predictions (API_URL=..., default: the local stack's)
	$(BIN)/remarketing smoke $(if $(API_URL),--api-url $(API_URL))

up: install system-packages ## Start the whole local stack (emulator, MLflow, API, app, functions, event bridge)
	$(BIN)/remarketing up

down: ## Stop every process the local stack started
	@if [ -x $(BIN)/remarketing ]; then $(BIN)/remarketing down; fi

status: install ## Show the local stack's services
	$(BIN)/remarketing status

benchmarks: install ## Run the quick benchmarks (training, decision quality, events; not in CI); see benchmarks/README.md
	$(BIN)/python benchmarks/training_pipeline.py
	$(BIN)/python benchmarks/decision_quality.py
	$(BIN)/python benchmarks/events.py

clean: down ## Remove the virtualenv, local state and caches
	rm -rf $(VENV) .remarketing build .pytest_cache .ruff_cache .mypy_cache
