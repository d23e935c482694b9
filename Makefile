# Two commands for a new user: `make demo` (the main job) and `make test`.
# Each creates .venv when absent; constraints.txt pins torch to this machine's local CPU wheel.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ferkit-installed

.PHONY: demo test setup lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/ferkit data info
	$(BIN)/ferkit data plot --out runs/data-plots
	$(BIN)/ferkit demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/ruff check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs build src/*.egg-info
