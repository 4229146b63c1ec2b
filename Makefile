# salvage: `make demo` backs up an example compose stack; `make test` runs every test.
PYTHON ?= python3
# The Python that Debian ships, with Debian 12's own python3-docker, -click, ... (see .ci/run)
DEBIAN_PYTHON ?= /usr/bin/python3
# Base image for the reference cranes (GNU tar, apt for restic); any local image works offline.
BASE ?= debian:bookworm-slim
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help deps dev test test-debian lint bench cranes demo deb rpm

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## install the Docker engine, docker-compose, busybox-static (Debian packages)
	scripts/install-deps

dev: ## install salvage in editable mode, with the test tools
	$(PYTHON) -m pip install -q -e '.[test]'

test: deps dev ## run every test (starts a private dockerd unless SALVAGE_TEST_DOCKER_HOST is set)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-debian: deps ## run the tests on Debian's own Python and libraries (python3-docker 5.0.3, ...)
	PYTHONPATH=$(CURDIR) $(DEBIAN_PYTHON) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

bench: deps ## benchmarks on a real engine (DOCKER_HOST, else a private dockerd); writes docs/performance.md
	$(PYTHON) -c 'import docker, click' 2>/dev/null || $(MAKE) dev
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

lint: ## ruff: lint and formatting
	ruff check .
	ruff format --check .

cranes: ## build the reference crane images, tar and restic (BASE=... to choose their base)
	docker build --build-arg BASE=$(BASE) -t salvage/crane-tar:latest cranes/tar
	docker build --build-arg BASE=$(BASE) -t salvage/crane-restic:latest cranes/restic

demo: deps ## set up and back up an example compose stack on this host
	scripts/demo

deb: deps ## build dist/salvage_<version>_all.deb in build/deb, then lintian
	packaging/build deb

rpm: deps ## build dist/salvage-<version>-1.noarch.rpm in build/rpm (Fedora macros, or a fallback)
	packaging/build rpm
