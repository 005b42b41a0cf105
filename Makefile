# Tenure: `make demo` runs the whole platform end to end; `make test` runs the test suite.
# Both create the virtual environment from requirements.lock on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tenure-installed
PYTEST_WORKERS ?= 2
# byte-compiled caches halve the start-up of the heavy imports (mlflow, evidently, bentoml)
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit test-team team-up team-down bench soak lock bento lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv from requirements.lock (done by demo and test too)

demo: venv ## Generate data, build features, train, promote, serve, monitor (embedded default)
	$(VENV)/bin/tenure demo

test: venv ## Lint, then run the whole test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -q

test-unit: venv ## Run the fast unit tests only
	$(PY) -m pytest tests/unit -n $(PYTEST_WORKERS) -q

team-up: venv ## Start PostgreSQL, an MLflow server and a Dask cluster here; prints the variables to export
	@scripts/team.sh up

team-down: ## Stop the local team stack (by PID) and delete its data
	@scripts/team.sh down

test-team: venv ## Team mode end to end against the stack of `make team-up`
	$(PY) -m pytest -m team tests/integration/test_team_mode.py -q

bench: venv ## Run the benchmarks; results go to benchmarks/results/
	$(PY) -m benchmarks.run $(BENCH)

soak: venv ## The full soak: 60 s at 32 clients with one worker killed, then count the log rows (CI runs 12 s)
	TENURE_SOAK_SECONDS=60 $(PY) -m pytest tests/integration/test_live_models.py -k worker_killed -q -s

lock: ## Re-resolve requirements.lock from pyproject.toml (then the service's serving/requirements.txt)
	$(PYTHON) -m pip install --quiet uv && $(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(MAKE) venv && $(PY) scripts/serving_requirements.py

bento: venv ## Build the service's Bento (bentofile.yaml) with serving/requirements.txt rewritten first
	$(PY) scripts/serving_requirements.py
	$(VENV)/bin/bentoml build .

lint: venv ## Ruff over the code, and the import layering (import-linter contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

clean: ## Remove the workspace (data, features, MLflow, Optuna, logs, reports)
	rm -rf workspace
