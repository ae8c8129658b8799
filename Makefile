# finscale: set-up, tests, demo. `make test` is the test command CI runs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Install the torch spec first so pip never pulls a multi-GB CUDA build on CPU-only Linux.
TORCH ?= torch==2.13.0
FINSCALE_DATA_MIRROR ?= $(abspath ../shared/data)
DEMO_HOME ?= $(CURDIR)/workspace

export FINSCALE_DATA_MIRROR
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup test test-fast lint demo verify bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

lint: setup
	$(BIN)/ruff check src flows tasks tests benchmarks
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

demo: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale data refresh --source csv --mirror $(FINSCALE_DATA_MIRROR)
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale data status

verify: setup
	FINSCALE_HOME=$(DEMO_HOME) $(BIN)/finscale doctor

bench: setup
	$(BIN)/python benchmarks/data_refresh.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
