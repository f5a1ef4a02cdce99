# The two commands: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean test-oldest-transitions chromium

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e ./$(p))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lastresort demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks plugins tools
	$(BIN)/ruff format --check src tests examples benchmarks plugins tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# the desk's browser tests (tests/browser) drive Debian's chromium with Playwright;
# never `playwright install` (no browser download): install the system's when missing
CHROMIUM ?= /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		echo "installing chromium with apt-get (the desk's browser tests need it)"; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

pytest: $(STAMP) chromium
	LASTRESORT_CHROMIUM=$(CHROMIUM) $(BIN)/pytest -q

.PHONY: docs docs-site
# the documentation site (mkdocs.yml), built strictly into site/; tests/test_docsite.py builds it too
docs-site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# the generated page of every installed protocol; tests/test_generated_docs.py fails when one is stale
docs: $(STAMP)
	$(BIN)/lastresort docs --all --out docs/generated

# make bench BENCH_ARGS='--only events --json figures.json' passes options to benchmarks/run.py
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# the machine and engine tests on the lowest transitions pyproject.toml declares
# ("transitions>=X"), in a venv of their own (`make test` runs on the newest release)
OLDEST_VENV := .venv-oldest-transitions
TRANSITIONS_OLDEST := $(shell sed -n 's/^ *"transitions>=\([0-9.]*\)".*/\1/p' pyproject.toml)
OLDEST_TESTS := tests/test_machine.py tests/test_transitions_public.py tests/test_engine.py \
	tests/test_engine_threads.py tests/test_engine_stateful.py tests/test_hooks.py

$(OLDEST_VENV)/.installed: pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -n "$(TRANSITIONS_OLDEST)"
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e ./$(p)) \
		'transitions==$(TRANSITIONS_OLDEST)'
	touch $@

test-oldest-transitions: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -c "import transitions as t; v = t.__version__; \
		assert v == '$(TRANSITIONS_OLDEST)', v; print('transitions', v)"
	$(OLDEST_VENV)/bin/pytest -q $(OLDEST_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .mypy_cache .pytest_cache .ruff_cache
