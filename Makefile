# posgate — the two commands a newcomer needs: `make run` and `make test`.
# Both bootstrap .venv by themselves (see `venv`).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export MALLOC_MMAP_THRESHOLD_ := 1048576
export MALLOC_TRIM_THRESHOLD_ := 8388608

# Runtime data of `make run` (SQLite file, its master key posgate.db.key, the console's backups):
# one directory, ignored by git. `make run ARGS="--port 0 --console-port 8001"` passes flags on.
DATA    ?= posgate-data
ARGS    ?=

.PHONY: venv run test lint typecheck contracts unit bench bench-codec bench-host bench-pipeline bench-scale bench-growth bench-fleet clean chromium debs

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
	mkdir -p $(DATA)
	$(BIN)/posgate serve --demo --db sqlite:///$(DATA)/posgate.db $(ARGS)

# Debian packages the tests drive for real: headless Chromium for the console's browser tests
# (no browser downloads), HAProxy for the scale-out soak and poppler-utils to read the PDF
# receipts back. Installed only when missing, without recommended packages, as root or through
# sudo; without either, make stops and says what to install.
debs chromium:
	@missing=""; why=""; \
	command -v chromium >/dev/null 2>&1 || { missing="$$missing chromium"; why="$$why\n  chromium       headless browser for the console's browser tests"; }; \
	command -v haproxy >/dev/null 2>&1 || { missing="$$missing haproxy"; why="$$why\n  haproxy        load balancer for the scale-out soak (tests/fleet)"; }; \
	command -v pdftoppm >/dev/null 2>&1 || { missing="$$missing poppler-utils"; why="$$why\n  poppler-utils  pdftoppm/pdftotext read the PDF receipts back"; }; \
	[ -n "$$missing" ] || exit 0; \
	printf 'make test needs these Debian packages, missing here:%b\n' "$$why"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "no apt-get here: install$$missing with your package manager, then run make test again" >&2; exit 1; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "installing them needs root or sudo: as root run  apt-get install --no-install-recommends$$missing" >&2; exit 1; fi; \
	echo "installing: $${sudo:+$$sudo }apt-get install -y --no-install-recommends$$missing"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing

lint: venv
	$(BIN)/ruff check src tests

typecheck: venv
	$(BIN)/mypy

contracts: venv
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -q

test: venv debs lint typecheck contracts
	$(BIN)/pytest -q -p no:cacheprovider

bench-codec: venv
	$(BIN)/python -m posgate.bench.codec

# `make bench-host DB=postgresql` (or DB=sqlite): one backend only; PostgreSQL in a database
# made for the run and dropped after. The echo ceiling always runs in the same run.
DB      ?=
bench-host: venv
	$(BIN)/python -m posgate.bench.host $(if $(DB),--backends $(DB))

bench-pipeline: venv
	$(BIN)/python -m posgate.bench.pipeline $(if $(DB),--db $(DB))

# One host process against two behind HAProxy, each held to a quarter of a core (a CPU cgroup).
bench-scale: venv
	$(BIN)/python -m posgate.bench.scale

# The database grown to ROWS transactions (bulk loader), SQLite and PostgreSQL: sales/s loaded
# against empty, console search p95, a batch settlement, backup + verified restore.
ROWS    ?= 10000000
bench-growth: venv
	$(BIN)/python -m posgate.bench.growth --rows $(ROWS)

# One fleet process holding TERMINALS terminals connected and signed on: storm time, memory.
TERMINALS ?= 2000
bench-fleet: venv
	$(BIN)/python -m posgate.bench.fleet --terminals $(TERMINALS)

bench: bench-codec bench-scale
	$(BIN)/python -m posgate.bench.bench
	$(BIN)/python -m posgate.bench.upstream

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
