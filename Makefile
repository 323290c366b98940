# The two commands: `make run` and `make test`. Both create the virtualenv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PROTOS := $(wildcard protos/authsvc/v1/*.proto)
GENERATED_DIR := authsvc/v1
LINTED := authsvc tests scripts clients

.PHONY: venv proto proto-check migrate run serve test lint fmt bench browser clean

venv: $(INSTALLED)

$(INSTALLED): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e ./clients/python
	touch $(INSTALLED)

# Generated code is committed; `make proto` rewrites it from protos/, `make proto-check` fails when stale.
proto: $(INSTALLED)
	$(BIN)/python scripts/gen_proto.py --out .

proto-check: $(INSTALLED)
	$(BIN)/python scripts/gen_proto.py --check

migrate: proto
	$(BIN)/authsvc migrate

run: proto
	$(BIN)/python scripts/run_all.py

serve: proto
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

# The account page's browser tests drive Debian's chromium (never a downloaded browser): install it when
# missing, where apt-get and root are at hand. Without it those tests skip, except under CI=true.
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium is missing: the browser tests will skip (and fail under CI=true)"

# Numbers, not a test: prints a Markdown table and updates docs/benchmarks.md (BENCH_ARGS=--quick, ...).
bench: proto
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
