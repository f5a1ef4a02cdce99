# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e ./$(p))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lastresort demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks plugins
	$(BIN)/ruff format --check src tests examples benchmarks plugins

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest -q

.PHONY: docs
# the generated page of every installed protocol; tests/test_generated_docs.py fails when one is stale
docs: $(STAMP)
	$(BIN)/lastresort docs --all --out docs/generated

# make bench BENCH_ARGS='--only events --json figures.json' passes options to benchmarks/run.py
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
