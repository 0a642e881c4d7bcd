# Dockerfile Studio: `make run` starts the studio, `make test` runs every test.
# Both set up what they need first, and skip whatever is already up to date.

# Debian's own python3.11 when it can make a virtual environment: it is built with PGO and LTO,
# and runs the engine about a fifth faster than a plain source build (the command line's start
# included). Any other python3 works too.
PYTHON ?= $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' 2>/dev/null && echo /usr/bin/python3.11 || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS_STAMP := $(VENV)/.requirements-installed
TEST_REQUIREMENTS_STAMP := $(VENV)/.requirements-test-installed
# What the studio itself needs to build: busybox-static is the base image the builds start from
# (and sets USER's ids), python3-seccomp compiles the sandbox's system-call filter.
RUN_PACKAGES := busybox-static python3-seccomp
# What the tests need besides: chromium drives the studio page in the browser tests;
# docker-registry is the registry the pull and push tests talk to (apache2-utils makes its
# logins, openssl its certificate), and docker.io the Docker engine that loads and runs what the
# studio exports; gcc and libc6-dev build the sandbox's escape probe; postgresql is the server the
# migration tests migrate an old database forward on, beside SQLite; debootstrap and
# docker-compose (Debian 12's, 1.29) make the base images of compose.yaml's test and run it.
DEBIAN_PACKAGES := $(RUN_PACKAGES) chromium docker-registry apache2-utils openssl docker.io gcc libc6-dev \
                   postgresql debootstrap docker-compose
ORACLE := ../shared/oracle/run_oracle.py
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
FRONTEND_SOURCES := $(shell find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune \
                      -o -type f ! -name .gitkeep -print 2>/dev/null)

.PHONY: test-requirements run run-packages test test-compose bench seed-debian test-debian setup bytecode requirements frontend debian-packages migrate seed test-python test-frontend oracle lint

run: setup run-packages migrate seed
	$(PY) -m studio.runner

test: lint test-python test-compose test-frontend oracle

setup: requirements frontend bytecode

# Compiled once here, since the engine's command line starts often and quickly, and an
# environment with PYTHONDONTWRITEBYTECODE would otherwise compile it at every start.
bytecode: requirements
	@$(PY) -m compileall -q builds studio

requirements: $(REQUIREMENTS_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(REQUIREMENTS_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

# Tests and checks need more than the studio runs with (pytest, Playwright, ruff): only they install it.
test-requirements: $(TEST_REQUIREMENTS_STAMP)

$(TEST_REQUIREMENTS_STAMP): requirements-test.txt requirements.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt
	touch $@

# The frontend is built only when it exists and its sources changed since the last build.
frontend:
	@if [ -f frontend/package.json ]; then $(MAKE) --no-print-directory frontend/dist/.built; fi

frontend/node_modules/.installed: frontend/package.json $(wildcard frontend/package-lock.json)
	cd frontend && if [ -f package-lock.json ]; then npm ci; else npm install; fi
	touch $@

frontend/dist/.built: frontend/node_modules/.installed $(FRONTEND_SOURCES) builds/engine/events.schema.json
	cd frontend && npm run build
	mkdir -p frontend/dist && touch $@

run-packages:
	@$(MAKE) --no-print-directory debian-packages DEBIAN_PACKAGES="$(RUN_PACKAGES)"

debian-packages:
	@missing=""; \
	for package in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -o DPkg::Lock::Timeout=600 && \
	  $(SUDO) apt-get install -y -o DPkg::Lock::Timeout=600 $$missing; \
	fi

migrate: setup
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed

test-python: setup test-requirements debian-packages
	$(PY) -m pytest

test-frontend: setup test-requirements
	@if [ -f frontend/package.json ]; then cd frontend && npm test; fi

# BuildKit's recorded cache verdicts, replayed against the engine's command line: the shared
# corpus. The project's own (tests/engine/oracle/) runs with the Python tests.
oracle: setup test-requirements debian-packages
	@if [ -d $(dir $(ORACLE)) ]; then \
	  $(PY) $(ORACLE) --against project --project . --fail-under 100; \
	else \
	  echo "oracle: $(dir $(ORACLE)) is not here; skipped"; \
	fi

lint: setup test-requirements
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m mypy
	@if [ -f frontend/package.json ]; then cd frontend && npx tsc --noEmit; fi

# debian:bookworm made with debootstrap: needs root and a Debian mirror, takes a minute or two,
# so neither `make run` nor `make test` waits for it.
seed-debian: setup
	$(PY) manage.py images seed --debian

test-debian: setup test-requirements
	STUDIO_TEST_DEBOOTSTRAP=1 $(PY) -m pytest tests/engine/test_seed_debian.py

# compose.yaml brought up on a private Docker daemon (needs root; skipped, saying so, without):
# its base images made from debootstrap, the studio's image built, two builds through the API.
# About five and a half minutes from cold, four once var/compose/ keeps the debootstrap tarball; a plain
# `pytest` skips it unless STUDIO_TEST_COMPOSE=1.
test-compose: setup test-requirements debian-packages
	STUDIO_TEST_COMPOSE=1 $(PY) -m pytest tests/compose -s

# The engine beside a real BuildKit (a private dockerd; needs root). Not part of `make test`.
bench: requirements
	$(PY) bench/run.py $(BENCH_ARGS)
