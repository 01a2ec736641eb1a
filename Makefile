# askhint: two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ASKHINT_HOME ?= $(CURDIR)/.askhint
DAGSTER_HOME := $(ASKHINT_HOME)/dagster
export ASKHINT_HOME DAGSTER_HOME
STAMP := $(VENV)/.askhint-installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)


ENGINE_VENV := .venv-vllm
ENGINE_STAMP := $(ENGINE_VENV)/.askhint-engine-$(shell cat engine/build_env.sh engine/requirements-vllm.txt engine/versions.env pyproject.toml | sha256sum | cut -c1-12)

.PHONY: help install system-deps demo test test-fast test-engine engine-env bench-prefix-cache ui update report lint bench screenshots demo-table clean-home

help:
	@echo "make demo    set up .venv, check the smoke-test model (committed), build the demo data, materialize every asset, print the report"
	@echo "make test    set up .venv and run the test suite (two workers)"
	@echo "make test-fast  unit + contract + dagster tests without the slow ones (the edit-test loop)"
	@echo "make test-engine  the real-engine tier: a real vLLM (CPU build) and transformers serve in .venv-vllm"
	@echo "make demo-table  the README's demo table, from make demo's own home"
	@echo "make ui      start the Dagster UI on http://127.0.0.1:3000"
	@echo "make update  materialize only what is stale or missing, and say why"
	@echo "make lint    ruff"
	@echo "make bench   throughput benchmark (not part of the tests)"
	@echo "make screenshots  UI screenshots into docs/ (after make demo)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "askhint needs Python >= 3.11")'
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,celery]'
	rm -f $(VENV)/.askhint-installed-*
	touch $(STAMP)

install: $(STAMP) $(DAGSTER_HOME)/dagster.yaml system-deps

# Debian's packages the tests start: chromium (the UI test, headless) and redis-server (the Celery broker of
# the distributed test); installed once, as root or through sudo, and only those missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$${missing:+$$missing }redis-server"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's $$missing"; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install
	$(BIN)/python -m askhint_assets.demo.smoke_model  # prints the weights' sha256 (the committed model: no training)
	$(BIN)/askhint observe
	$(BIN)/dagster asset materialize -m askhint_assets.definitions --select '*'
	$(BIN)/askhint report

update: install
	$(BIN)/askhint update

report: install
	$(BIN)/askhint report

ui: install
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# pytest's exit status passes through: 5 ("no tests collected") fails the target like a failure does.
PYTEST_WORKERS ?= 2
test: install
	$(BIN)/ruff check askhint_assets tests bench support engine
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 --ignore=tests/engine

test-fast: install
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not slow" tests/unit tests/contract tests/dagster

# The real-engine tier's side environment: vLLM's CPU build beside askhint (engine/build_env.sh says why it is a
# second virtualenv and how it is built); rebuilt when its recipe or the project's requirements change.
$(ENGINE_STAMP): engine/build_env.sh engine/requirements-vllm.txt engine/versions.env pyproject.toml
	bash engine/build_env.sh $(ENGINE_VENV)
	rm -f $(ENGINE_VENV)/.askhint-engine-*
	touch $(ENGINE_STAMP)

engine-env: $(ENGINE_STAMP) $(DAGSTER_HOME)/dagster.yaml

# One process: the servers and demo homes are session fixtures shared by the tier's files.
test-engine: engine-env
	$(ENGINE_VENV)/bin/python -m pytest -q -p no:cacheprovider -s --durations=15 tests/engine

bench-prefix-cache: engine-env
	$(ENGINE_VENV)/bin/python bench/prefix_cache.py

lint: install
	$(BIN)/ruff check askhint_assets tests bench support engine

bench: install
	$(BIN)/python bench/throughput.py

screenshots: install
	$(BIN)/python bench/screenshot_ui.py --home $(ASKHINT_HOME)

demo-table: install
	$(BIN)/python bench/demo_table.py --home $(ASKHINT_HOME)

clean-home:
	rm -rf $(ASKHINT_HOME)
