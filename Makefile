# finscale: set-up, tests, demo. `make test` is the test command CI runs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Install the torch spec first so pip never pulls a multi-GB CUDA build on CPU-only Linux.
TORCH ?= torch==2.13.0
DEMO_HOME ?= $(CURDIR)/workspace
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
# `make mlflow-ui`: one process, no job runner (STACK-NOTES: 2 cores)
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false

.PHONY: setup test test-fast lint demo demo-data mlflow-ui verify bench clean stack stop \
	server worker worker-cpu deploy

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

lint: setup
	$(BIN)/ruff check src flows tasks tests benchmarks deployments
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# From an empty workspace to the scaling report: data, a20 features, the demo matrix (a
# short pruned HPO study, five budgets x two seeds), baselines, fits and plots, with progress.
demo: setup
	$(BIN)/finscale --home $(DEMO_HOME) demo

demo-data: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale data refresh $(DATA_SOURCE)
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale data status

mlflow-ui: setup
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --workers 1 \
		--backend-store-uri sqlite:///$(DEMO_HOME)/mlflow.db --default-artifact-root $(DEMO_HOME)/mlartifacts

verify: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale doctor

bench: setup
	$(BIN)/python benchmarks/data_refresh.py
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/model_throughput.py

# The local service stack in the background (Prefect server + UI, MLflow UI, a worker per
# pool, the deployments); `make stop` ends exactly the processes it started.
stack: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/python deployments/stack.py start \
		--prefect-port $(PREFECT_PORT) --mlflow-port $(MLFLOW_PORT)

stop:
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/python deployments/stack.py stop

# The same pieces one at a time, in the foreground (one terminal each): the Prefect server
# (127.0.0.1, SQLite in the workspace), a process worker per pool, the deployments.
PREFECT_API := http://127.0.0.1:$(PREFECT_PORT)/api

server: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/python deployments/server.py --port $(PREFECT_PORT)

# One job at a time per GPU worker: a host with one GPU runs one worker (--limit 1).
worker: setup
	FINSCALE_HOME=$(DEMO_HOME) PREFECT_API_URL=$(PREFECT_API) $(BIN)/prefect worker start \
		--pool finscale-gpu --type process --limit 1

worker-cpu: setup
	FINSCALE_HOME=$(DEMO_HOME) PREFECT_API_URL=$(PREFECT_API) $(BIN)/prefect worker start \
		--pool finscale-cpu --type process

# GPUS: the GPUs of every host serving finscale-gpu (pool limit and `gpu` slots).
GPUS ?= 1
deploy: setup
	$(BIN)/python deployments/bootstrap.py --api-url $(PREFECT_API) --gpus $(GPUS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
