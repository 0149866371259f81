# posgate — the two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap .venv by themselves (see `venv`).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export MALLOC_MMAP_THRESHOLD_ := 1048576
export MALLOC_TRIM_THRESHOLD_ := 8388608

.PHONY: venv run test lint typecheck contracts unit bench bench-codec bench-host bench-pipeline clean chromium

venv: $(STAMP)

# jbigkit-py 2.1.4 pins pybind11 2.8 in its build requirements, which does not compile on
# Python 3.11; we build it against a current pybind11 without build isolation.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "pybind11>=2.11" setuptools wheel
	$(BIN)/pip install -q --no-build-isolation "jbigkit-py>=2.1"
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: venv
	$(BIN)/posgate serve --demo

# Debian packages the tests drive for real: headless Chromium for the console's browser tests
# (no browser downloads), HAProxy for the scale-out soak and poppler-utils to read the PDF
# receipts back. Installed only when missing.
chromium:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v haproxy >/dev/null 2>&1 || missing="$$missing haproxy"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint: venv
	$(BIN)/ruff check src tests

typecheck: venv
	$(BIN)/mypy

contracts: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -q

test: venv chromium lint typecheck contracts
	$(BIN)/pytest -q -p no:cacheprovider

bench-codec: venv
	$(BIN)/python -m posgate.bench.codec

bench-host: venv
	$(BIN)/python -m posgate.bench.host

bench-pipeline: venv
	$(BIN)/python -m posgate.bench.pipeline

bench: bench-codec
	$(BIN)/python -m posgate.bench.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
