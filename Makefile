# Everything runs inside .venv so the project never depends on what the machine happens to have.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8765

.PHONY: install fmt lint test check fuzz bench demo dist screenshots clean

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

# The loader's fuzz test, run long: FUZZ_EXAMPLES=20000 make fuzz for a night's worth.
FUZZ_EXAMPLES ?= 2000
fuzz:
	BATCH_SHARE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:cacheprovider tests/test_fuzz_loader.py

bench:
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/plan_scale.py
	$(BIN)/python bench/run_speed.py
	$(BIN)/python bench/hostile_sheets.py
	$(BIN)/python bench/export_speed.py
	$(BIN)/python bench/sync_speed.py
	$(BIN)/python bench/names_speed.py
	$(BIN)/python bench/serve_speed.py

# sdist and wheel in dist/; `pipx install dist/batch_share-*.whl` installs the command.
dist:
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

demo:
	$(BIN)/python sample_sheets/demo.py

# The README's pictures of `serve`, taken from the real page in headless Chromium.
screenshots:
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov build dist *.egg-info
