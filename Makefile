# The two commands: `make run` and `make test`. Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
RUNTIME := $(VENV)/.installed-runtime
PYPROJECTS := protos/pyproject.toml pyproject.toml clients/python/pyproject.toml
LINTED := authsvc tests scripts clients protos

.PHONY: venv runtime proto proto-check migrate run serve test test-fast lint fmt bench browser clean

# Two installs into one virtualenv, each redone when a pyproject.toml changes (new console scripts too):
# - $(RUNTIME), for `make run`, `serve`, `migrate` and `bench`: the contract package (protos/), the server
#   and the client, no extras. One pip command, so the local contract satisfies the other two.
# - $(INSTALLED), for `make test`, `lint`, `fmt`, `proto` and `proto-check`: the same with '.[dev]'
#   (grpcio-tools, pytest, ruff, mypy, ...). An up-to-date dev install stands for the runtime one.
venv: $(INSTALLED)

runtime: $(RUNTIME)

$(INSTALLED): $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./protos -e '.[dev]' -e ./clients/python
	touch $(INSTALLED)

$(RUNTIME): $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	( for file in $(PYPROJECTS); do [ $(INSTALLED) -nt $$file ] || exit 1; done ) \
		|| { $(BIN)/pip install --quiet --upgrade pip \
		&& $(BIN)/pip install --quiet -e ./protos -e . -e ./clients/python; }
	touch $(RUNTIME)

# Generated code is committed; `make proto` rewrites it from protos/, `make proto-check` fails when stale.
# Only developers regenerate it (both need grpcio-tools, a dev tool): `make run` and the others never do.
proto: $(INSTALLED)
	$(BIN)/python scripts/gen_proto.py --out protos

proto-check: $(INSTALLED)
	$(BIN)/python scripts/gen_proto.py --check

migrate: $(RUNTIME)
	$(BIN)/authsvc migrate

run: $(RUNTIME)
	$(BIN)/python scripts/run_all.py

serve: $(RUNTIME)
	$(BIN)/authsvc serve

lint: $(INSTALLED)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(INSTALLED)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

test: proto-check lint browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The inner loop: every test but those marked slow (processes, browsers, replicas, fuzzers, and the
# PostgreSQL and Redis repeats of in-process server tests).
test-fast: $(INSTALLED)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

# The account page's browser tests drive Debian's chromium (never a downloaded browser): install it when
# missing, where apt-get and root are at hand. Without it those tests skip, except under CI=true.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is missing: the browser tests will skip (and fail under CI=true)"

# Numbers, not a test: prints a Markdown table and updates docs/benchmarks.md (BENCH_ARGS=--quick, ...).
bench: $(RUNTIME)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
