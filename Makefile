# salvage: `make demo` backs up an example compose stack; `make test` runs every test.
# Both work as `sudo make ...` on a stock Debian 12 or Ubuntu 24.04: the distribution's
# packages come from apt (scripts/install-deps), Python's test tools from PyPI into .venv,
# never into the system Python (PEP 668).
PYTHON ?= python3
VENV ?= .venv
# The Python that the distribution ships, with its own python3-docker, -click, ... (test-debian)
DEBIAN_PYTHON ?= /usr/bin/python3
# Base image for the reference cranes (GNU tar, apt for restic); any local image works offline.
BASE ?= debian:bookworm-slim
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Test processes (pytest-xdist), each with a private dockerd of its own: the real-engine tests
# mostly wait on the engine, so more workers than CPUs pays (docs/testing.md has the figures).
WORKERS ?= 4
PARALLEL = -n $(WORKERS) --dist loadgroup --durations=25

.PHONY: help deps dev test unit mutate test-debian lint bench cranes demo deb rpm config-docs

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## install what the tests need from the distribution (Docker engine, compose, ...)
	scripts/install-deps test

# The checkout's virtual environment: salvage (editable) with current PyPI libraries and
# the test tools; made again when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

dev: $(VENV)/.installed ## make .venv: salvage in editable mode, with the test tools

test: deps dev ## run every test, in parallel workers, each with a private dockerd (docs/testing.md)
	$(VENV)/bin/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

unit: dev ## unit tests only (no root, no engine), with the coverage of the safety modules
	$(VENV)/bin/python -m pytest -q -n 2 --durations=10 --cov --cov-report=term-missing tests/unit

# mutmut goes into .venv for this target only (the extra `mutate`), never with `make dev`.
$(VENV)/.mutate-installed: $(VENV)/.installed
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test,mutate]'
	touch $@

mutate: $(VENV)/.mutate-installed ## mutation testing of the safety core against the unit tests (docs/testing.md; not in CI)
	rm -rf mutants
	$(VENV)/bin/mutmut run
	$(VENV)/bin/python scripts/mutation_score.py

test-debian: deps ## the unit tests and the library-boundary tests again, on the distribution's own Python and libraries
	PYTHONPATH=$(CURDIR) $(DEBIAN_PYTHON) -m pytest -p no:cacheprovider $(PARALLEL) \
		-m "(unit or boundary) and not systemd" $(PYTEST_ARGS)

bench: deps dev ## benchmarks on a real engine (DOCKER_HOST, else a private dockerd); writes docs/performance.md
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)

lint: dev ## ruff (lint and formatting) and mypy (types)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy salvage

config-docs: ## regenerate docs/configuration.md's key tables and examples/salvage.toml from salvage/config/schema.py
	PYTHONPATH=$(CURDIR) $(PYTHON) -m salvage.config.docs

cranes: ## build the reference crane images, tar and restic (BASE=... to choose their base)
	docker build --build-arg BASE=$(BASE) -t salvage/crane-tar:latest salvage/crane/images/tar
	docker build --build-arg BASE=$(BASE) -t salvage/crane-restic:latest salvage/crane/images/restic

demo: ## install salvage (the .deb where apt is) and back up an example compose stack
	scripts/install-deps demo
	scripts/demo

deb: ## build dist/salvage_<version>_all.deb in build/deb, then lintian
	scripts/install-deps deb
	packaging/build deb

rpm: ## build dist/salvage-<version>-1.noarch.rpm in build/rpm (Fedora macros, or a fallback)
	scripts/install-deps rpm
	packaging/build rpm
