# Every routine task is one target. The virtual environment is created on demand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/ems-config.yaml
PREFIX ?= /opt/ems

.PHONY: all venv test lint typecheck pytest demo bench dry-run install clean

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -m pip install --quiet -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c "import emsctl, statemachine, sqlalchemy, flask, pytest"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check emsctl webui migrations tests bench
	$(BIN)/ruff format --check emsctl webui migrations tests bench

typecheck: $(STAMP)
	$(BIN)/mypy emsctl webui

# pytest's exit code 5 (no tests collected) fails the target like any other non-zero code.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov --cov-report= $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --include='emsctl/engine.py,emsctl/machines.py' --fail-under=100

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/emsctl demo

dry-run: $(STAMP)
	$(BIN)/emsctl run --config $(CONFIG) --dry-run

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

install:
	sh deploy/install.sh $(PREFIX)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build *.egg-info
