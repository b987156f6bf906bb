# HTTPy developer commands.  `make run` and `make test` do all the set-up themselves:
# they create .venv, install the package with its dev extras, and install the system
# tools the tests use (curl) when they are missing and we are root.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
TLS_PORT ?= 8443
BACKEND ?= asyncio

.PHONY: install system-deps run test lint typecheck pytest fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@scripts/install-system-deps.sh

## Serve the example app: HTTP/1.1 + h2c on http://$(HOST):$(PORT), HTTP/2 + HTTP/1.1 over TLS
## on https://$(HOST):$(TLS_PORT) and HTTP/3 on UDP $(TLS_PORT), with a generated development
## certificate (certs/ca.pem).
run: $(STAMP)
	$(BIN)/python -m httpy examples.hello.app:app --host $(HOST) --port $(PORT) \
		--tls-bind $(HOST):$(TLS_PORT) --dev-cert certs --backend $(BACKEND) \
		--http3-bind $(HOST):$(TLS_PORT)

## The whole test suite: lint, type check, unit/backend/end-to-end tests, short fuzz run.
test: $(STAMP) system-deps lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check httpy tests fuzz examples attack
	$(BIN)/ruff format --check httpy

typecheck: $(STAMP)
	$(BIN)/mypy --strict httpy

pytest: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider

## The backend, end-to-end, seed and framework tests through the other public entry points
## (anyio.run(serve, ...) and asyncio.run with uvloop; `make test` uses asyncio.run and
## trio.run), ~15 min: too long for CI, run it before changing a backend.
.PHONY: test-entrypoints
test-entrypoints: $(STAMP) system-deps
	HTTPY_TEST_ENTRY=anyio-run $(BIN)/python -m pytest -p no:cacheprovider \
		tests/backends tests/e2e tests/seed tests/framework
	HTTPY_TEST_ENTRY=uvloop-run $(BIN)/python -m pytest -p no:cacheprovider \
		tests/backends tests/e2e tests/seed tests/framework

## Hostile clients against a live server (python -m httpy, default configuration), a normal
## client measured beside each: one line per attack and loop (~10 min; attack/run.py).
## `make attack ATTACK_ARGS="--attacks h2-rapid-reset --backends trio"` for a part of it.
ATTACK_ARGS ?=
.PHONY: attack
attack: $(STAMP)
	$(BIN)/python -m attack.run $(ATTACK_ARGS)

## The test suite (pytest) against the newest release of every dependency, above the upper
## bounds in pyproject.toml too, in .venv-latest: does a new h2, aioquic, wsproto... break
## HTTPy?  `make test-latest PYTEST_ARGS=tests/core` for a part of it.
LATEST := .venv-latest
PYTEST_ARGS ?=
.PHONY: test-latest test-minimum
test-latest: system-deps
	test -x $(LATEST)/bin/python || $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(LATEST)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade \
		$$($(PYTHON) scripts/min_requirements.py --names)
	$(LATEST)/bin/python -m pip list --disable-pip-version-check
	$(LATEST)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

## The test suite (pytest) with every runtime dependency at exactly its declared lower bound
## (scripts/min_requirements.py reads them from pyproject.toml), in .venv-minimum.
MINIMUM := .venv-minimum
test-minimum: system-deps
	test -x $(MINIMUM)/bin/python || $(PYTHON) -m venv $(MINIMUM)
	$(PYTHON) scripts/min_requirements.py > $(MINIMUM)/pins.txt
	$(MINIMUM)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r $(MINIMUM)/pins.txt -c $(MINIMUM)/pins.txt -e '.[dev]'
	$(MINIMUM)/bin/python -m pip list --disable-pip-version-check
	$(MINIMUM)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

## Long fuzzing campaign (HYPOTHESIS_PROFILE=long: 50,000 examples per target).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest -p no:cacheprovider --timeout=0 fuzz -q

clean:
	rm -rf $(VENV) .venv-latest .venv-minimum .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info

## Side-by-side benchmark vs Uvicorn, Hypercorn and Granian: writes bench/results/latest.md and
## latest.png (full profile ~15 min; `make bench BENCH_PROFILE=quick` for a ~2-minute smoke run).
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python bench/run.py

## Soak test: 10 minutes of mixed HTTP/1.1, h2c and WebSocket traffic (a few dozen clients,
## some leaving mid-response) against one HTTPy process, its RSS sampled every 5 s; fails
## unless memory is flat after the 60 s warm-up and nothing failed.  Writes this backend's
## section of bench/results/soak.md (+ soak.png).  `make soak SOAK_BACKEND=trio`.
SOAK_BACKEND ?= asyncio
SOAK_DURATION ?= 600
.PHONY: soak
soak: $(STAMP)
	$(BIN)/python bench/soak.py --backend $(SOAK_BACKEND) --duration $(SOAK_DURATION)

## Autobahn WebSocket testsuite (fuzzing client, all cases 1-13) against the echo endpoint in
## scripts/autobahn_echo.py, over HTTP/1.1 on asyncio and trio: counts per outcome in
## build/autobahn/summary.txt.  Installs wstest on first use.  Cases 1-10 take ~30 s per
## backend, the compression groups 12-13 ~10 min: `make autobahn AUTOBAHN_CASES='1.*,2.*'`.
AUTOBAHN_CASES ?= *
AUTOBAHN_BACKENDS ?= asyncio,trio
.PHONY: autobahn
autobahn: $(STAMP)
	$(BIN)/python scripts/autobahn.py --backends '$(AUTOBAHN_BACKENDS)' --cases '$(AUTOBAHN_CASES)'
