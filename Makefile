# The single entry point: `make dev` runs the service, `make test` runs every check and test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install lock dev test check fmt test-unit test-service test-integration test-e2e bench bench-quick cluster cluster-bench cluster-deps emulator clean

help:
	@echo "make dev          run emulator (if installed) + publisher + server on http://127.0.0.1:8080"
	@echo "make test         ruff + mypy + unit + service + integration (emulator) + e2e (chromium)"
	@echo "make check        ruff format --check, ruff check, mypy --strict"
	@echo "make lock         re-pin requirements.txt (App Engine) and requirements-dev.txt from pyproject.toml"
	@echo "make bench        fan-out benchmarks against baselines (bench-quick: the short variant)"
	@echo "make cluster      emulator + 4 instances behind HAProxy + Prometheus + publisher (Ctrl-C stops)"

# Exactly the pins that were tested: requirements-dev.txt is requirements.txt (what App Engine
# installs) plus the dev extra, both with hashes; the project itself goes on top, without deps.
$(STAMP): pyproject.toml requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Re-resolve the locks after a change to pyproject.toml's dependencies (kept pins stay unless
# ARGS=--upgrade, or ARGS="--upgrade-package quart"). For App Engine's runtime: Linux, Python 3.11.
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
	--generate-hashes --custom-compile-command "make lock" $(ARGS)
lock: $(STAMP)
	$(LOCK) -o requirements.txt
	$(LOCK) --extra dev -c requirements.txt -o requirements-dev.txt

dev: $(STAMP)
	$(BIN)/python -m ticker.ops.dev

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test-service: $(STAMP)
	$(BIN)/pytest tests/service -q

test-integration: $(STAMP)
	$(BIN)/pytest tests/integration -q -m integration

test-e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q -m e2e

# Unit + service tests in asyncio debug mode (slow callbacks = a blocked loop get logged), with
# 100 % branch coverage required of ticker/core; then the real emulator, servers and Chromium.
test: check
	PYTHONASYNCIODEBUG=1 $(BIN)/coverage run -m pytest tests/unit tests/service -q
	$(BIN)/coverage report --include='ticker/core/*' --skip-covered --fail-under=100
	$(BIN)/pytest tests/integration tests/e2e -q

bench: $(STAMP) bench/node/node_modules
	$(BIN)/python -m bench

bench-quick: $(STAMP) bench/node/node_modules
	$(BIN)/python -m bench --quick

# The cluster rehearsal (bench/cluster): `make cluster` keeps one up for a person to look at
# (ARGS="--instances 6 --clients 200" to change it); `make cluster-bench` is the measured run.
cluster: $(STAMP) cluster-deps
	$(BIN)/python -m bench.cluster serve $(ARGS)

cluster-bench: $(STAMP) cluster-deps
	$(BIN)/python -m bench.cluster $(ARGS)

# HAProxy and Prometheus from Debian's packages, as .ci/run installs them (apt-get needs root).
cluster-deps:
	@command -v haproxy >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "cluster: installing haproxy and prometheus with apt-get"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy prometheus; }

# The load client and the Node baselines (ws, socket.io), pinned by bench/node/package-lock.json.
bench/node/node_modules: bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund
	touch $@

emulator: $(STAMP)
	$(BIN)/python -m ticker.ops.dev --emulator-only

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
