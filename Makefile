PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HOST   ?= 127.0.0.1
STAMP  := $(VENV)/.installed
LOCK   := requirements/dev.txt
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --fork-strategy fewest \
	--python-version 3.11 --generate-hashes --custom-compile-command "make lock"

.PHONY: install lock serve check test acceptance lint bench clean browser

install: $(STAMP)

# Exactly the locked set (requirements/dev.txt, with hashes), then the project itself without
# touching its dependencies. pyproject.toml keeps the ranges; `make lock` turns them into pins.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Resolve the ranges again (newest versions that fit, one version per package for every
# supported Python and platform) and pin them with the hashes of every file: the development
# set, the runtime set for the image, and the build backend, all three agreeing.
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml requirements/build.in --extra dev -o $(LOCK)
	$(UV_COMPILE) pyproject.toml -c $(LOCK) -o requirements/runtime.txt
	$(UV_COMPILE) requirements/build.in -c $(LOCK) -o requirements/build.txt

serve: $(STAMP)
	$(BIN)/flashloan db upgrade
	$(BIN)/flashloan serve --host $(HOST) --port $(PORT)

# The static gates: lint, types, and the design's import arrows between the packages.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

# The suite under branch coverage (gunicorn's workers and other subprocesses included) on
# every core (pytest-xdist; tests that share a costly run-wide fixture keep to one worker,
# tests/conftest.py LOAD_GROUPS); the report fails under the floor in pyproject.toml.
WORKERS ?= auto
test: check browser
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest tests -n $(WORKERS) --dist loadgroup --durations=30
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The same suite at full size (tests/sizes.py): every generated request, every shipped model
# rebuilt, every simulated day; longer than CI's budget allows.
acceptance: check browser
	FLASHLOAN_TEST_SIZE=full $(BIN)/python -m pytest tests -n $(WORKERS) --dist loadgroup \
		--durations=30

lint: check

bench: $(STAMP)
	command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench

# Debian's Chromium for the browser tests: installed with apt as root, else one line on what to do.
browser:
	@scripts/ensure-chromium

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis .mypy_cache .import_linter_cache \
		.coverage .coverage.* htmlcov
