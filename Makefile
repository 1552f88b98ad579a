# Everything runs inside .venv so the project never depends on what the machine happens to have.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8765

.PHONY: install fmt lint test check bench demo dist clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,emulator]'

fmt:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test:
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

check: lint test

bench:
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/run_speed.py

# sdist and wheel in dist/; `pipx install dist/batch_share-*.whl` installs the command.
dist:
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

demo:
	$(BIN)/python sample_sheets/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov build dist *.egg-info
