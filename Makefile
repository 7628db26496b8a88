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

.PHONY: setup test lint lock bench repro ui clean-venv docker-build docker-bench docker-ui docker-test

setup: $(STAMP)

# Idempotent: the stamp is newer than pyproject.toml and requirements.lock after a successful
# install, so a second `make setup` costs a stat call. A failed install leaves no stamp and is
# retried next time.
# Every install comes from requirements.lock (exact versions and hashes; the Docker image installs
# the same file), then the project itself without dependencies.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@awk '/^uv==/{p=1} p{print} p && !/\\$$/{exit}' requirements.lock > $(VENV)/uv-requirement.txt
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(VENV)/uv-requirement.txt
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) --require-hashes --no-deps -r requirements.lock
	$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) --no-deps --editable .
	@touch $(STAMP)

# requirements.lock from pyproject.toml (docs/guide.md, "Dependencies"): the pins already there are
# kept where they still fit; `make lock UPGRADE="--upgrade-package torch"` moves one.
LOCK_PLATFORM := --python-version 3.11 --python-platform x86_64-manylinux_2_28
UPGRADE ?=
lock: setup
	$(VENV)/bin/uv pip compile pyproject.toml --extra test $(LOCK_PLATFORM) --generate-hashes \
		$(UPGRADE) -o requirements.lock

# The suite in TEST_WORKERS processes (pytest-xdist): each test file stays whole on one worker,
# and the files of the shared smoke pipeline and of Ray share one (tests/conftest.py,
# "Development"). TEST_WORKERS=0: one process, as a plain `pytest` does.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(VENV)/bin/ruff check benchmark tests
	$(VENV)/bin/ruff format --check benchmark tests
	$(VENV)/bin/mypy

# ENGINE=local (default): the independent runs side by side on this machine (Ray, one per core);
# ENGINE=dvc: one after another by `dvc repro`; ENGINE=ray [ADDRESS=host:port]: on a cluster
# (docs/guide.md, "Run on a cluster"). The run files are the same whichever made them.
ENGINE ?= local
ADDRESS ?=
bench: setup
	$(VENV)/bin/rls3 bench --model $(MODEL) $(if $(filter 1 yes,$(YES)),--yes) --engine $(ENGINE) \
		$(if $(ADDRESS),--address $(ADDRESS))

repro: setup
	$(VENV)/bin/dvc repro

# The MLflow UI over the project's store (runs, seeds and arms side by side), local only.
UI_PORT ?= 5000
ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath results)/mlflow.db}" \
		--host 127.0.0.1 --port $(UI_PORT)

# The CUDA image and its compose file (docker/README.md): build, run MODEL's bench on the GPU,
# serve the MLflow UI over the results volume on 127.0.0.1.
COMPOSE := docker compose -f docker/compose.yaml
docker-build:
	docker build -f docker/Dockerfile -t rls3-benchmark:latest .

docker-bench:
	MODEL=$(MODEL) $(COMPOSE) run --rm bench

docker-ui:
	UI_PORT=$(UI_PORT) $(COMPOSE) up mlflow

# A real build without a Docker engine (buildah on a Debian stand-in base), then the smoke
# pipeline inside the image. Root, tens of minutes, tens of GB under /var/tmp.
docker-test:
	bash docker/test-build.sh

clean-venv:
	rm -rf $(VENV)
