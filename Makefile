# The two quick-start commands (`make bench MODEL=clip`, `make test`) each do their own set-up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
MODEL ?= clip
# YES=1: go ahead where `rls3 check` asks first (a built-in model base-trained above 64 px on a CPU)
YES ?=
# DVC stages call `rls3`: put the project's environment first on PATH for every recipe.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup test lint bench repro ui clean-venv

setup: $(STAMP)

# Idempotent: the stamp is newer than pyproject.toml after a successful install, so a second
# `make setup` costs a stat call. A failed install leaves no stamp and is retried next time.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[test]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check benchmark tests
	$(VENV)/bin/ruff format --check benchmark tests
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/rls3 bench --model $(MODEL) $(if $(filter 1 yes,$(YES)),--yes)

repro: setup
	$(VENV)/bin/dvc repro

# The MLflow UI over the project's store (runs, seeds and arms side by side), local only.
UI_PORT ?= 5000
ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath results)/mlflow.db}" \
		--host 127.0.0.1 --port $(UI_PORT)

clean-venv:
	rm -rf $(VENV)
