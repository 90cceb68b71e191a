# Every routine task is one target. The virtual environment is created on demand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= configs/ems-config.yaml
PREFIX ?= /opt/ems
export PYTHON VENV

.PHONY: all venv venv-run test lint typecheck pytest demo bench dry-run install clean

all: test

# tools/venv.sh checks the environment every time (a Python upgrade can break it), rebuilds it
# when it is broken or too old, and installs only when pyproject.toml changed since.
venv:
	@sh tools/venv.sh dev

# What the daemon and the demo need, without the test and lint tools.
venv-run:
	@sh tools/venv.sh run

lint: venv
	$(BIN)/ruff check emsctl webui migrations tests bench
	$(BIN)/ruff format --check emsctl webui migrations tests bench

typecheck: venv
	$(BIN)/mypy emsctl webui

# pytest's exit code 5 (no tests collected) fails the target like any other non-zero code.
# The tests run in PYTEST_WORKERS processes (pytest-xdist; `auto`: one per CPU, 1 on a one-core
# machine), each taking the next test when it is free; coverage is combined from all of them.
PYTEST_WORKERS ?= auto
pytest: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist worksteal \
		--cov --cov-report= $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --include='emsctl/engine/*,emsctl/machines.py' --fail-under=100

test: lint typecheck pytest

demo: venv-run
	$(BIN)/emsctl demo

dry-run: venv-run
	$(BIN)/emsctl run --config $(CONFIG) --dry-run --db ems.db

bench: venv
	$(BIN)/python bench/run_all.py

install:
	sh deploy/install.sh $(PREFIX)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build *.egg-info
