# trail — the project's commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
# Exact versions and hashes of every runtime and dev dependency and of maturin: `make lock` writes
# it from pyproject.toml, `make install` installs from it.
LOCK := requirements.lock
UV_VERSION := 0.13.9
# axe-core, the accessibility checker tests/test_accessibility_browser.py injects into the pages:
# the released npm tarball, checked against its sha256, licence MPL-2.0. Only axe.min.js and its
# LICENSE are unpacked, under .venv (ignored by git); trail never serves it. docs/dashboard.md
# says how to update it.
AXE_VERSION := 4.14.1
AXE_SHA256 := e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
AXE := $(VENV)/share/axe-core-$(AXE_VERSION)/axe.min.js
RUST_SRC := $(shell find rust_core/src -name '*.rs') rust_core/Cargo.toml Cargo.toml
export PYO3_PYTHON := $(abspath $(PY))

HOST ?= 127.0.0.1
PORT ?= 8000
DATA ?= ./data

.PHONY: help install lock serve test test-rust test-py axe bench lint fmt clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.deps: $(LOCK) | $(PY)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	touch $@

# The extension is rebuilt when the Rust changes, not when a Python dependency does.
$(STAMP): $(RUST_SRC) | $(VENV)/.deps
	$(VENV)/bin/maturin develop --release -q
	touch $@

install: $(STAMP) ## create .venv, install the locked dependencies, build the extension (release)

# Keeps the versions already locked unless pyproject.toml needs others; UPGRADE=1 takes the newest.
lock: | $(PY) ## regenerate requirements.lock from pyproject.toml (UPGRADE=1: newest versions)
	$(PY) -m pip install -q "uv==$(UV_VERSION)"
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(VENV)/bin/uv pip compile -q pyproject.toml - --extra dev --universal --python-version 3.11 \
	      --generate-hashes --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o $(LOCK)

serve: install ## run trail on $(HOST):$(PORT) with data in $(DATA)
	$(VENV)/bin/trail serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: install test-rust test-py ## cargo test + pytest

test-rust:
	cargo test --release -p trail_core -q

# Test files are shared out over PYTEST_WORKERS processes (pytest-xdist; a file's tests stay in one,
# with its module fixtures); PYTEST_WORKERS=0 runs them in this process. The 30 slowest tests are
# listed at the end, to see where the suite's time goes.
PYTEST_WORKERS ?= 2
test-py: install $(AXE)
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile --durations=30

axe: $(AXE) ## download axe-core (pinned, sha256-checked) for the accessibility test

$(AXE):
	@mkdir -p $(@D)
	curl -fsSL --retry 3 -o $(@D)/axe-core.tgz https://registry.npmjs.org/axe-core/-/axe-core-$(AXE_VERSION).tgz
	echo "$(AXE_SHA256)  $(@D)/axe-core.tgz" | sha256sum -c --quiet -
	tar -xzf $(@D)/axe-core.tgz -C $(@D) --strip-components=1 package/axe.min.js package/LICENSE
	rm $(@D)/axe-core.tgz
	touch $@

# GoatCounter, the peer, is built once into .bench/goatcounter/ where Go is found (GO=, PATH or
# /usr/local/go/bin/go); without Go, bench/run.py skips that part with one line.
bench: install ## peak-rate and latency benchmarks, GoatCounter as a peer; writes bench/RESULTS.md
	$(PY) bench/run.py

# One clippy run: with the python feature it checks every line the plain build has (no code is
# cfg(not(feature = "python"))); --release reuses the build scripts and proc macros of the
# extension's build.
lint: install ## ruff, mypy, cargo fmt --check, clippy
	$(VENV)/bin/ruff check trail tests bench
	$(VENV)/bin/ruff format --check trail tests bench
	$(VENV)/bin/mypy trail
	$(PY) -m mypy.stubtest trail._core
	cargo fmt --check
	cargo clippy --release -p trail_core --all-targets --features python -- -D warnings

fmt: install ## format Python and Rust
	$(VENV)/bin/ruff format trail tests bench
	cargo fmt

clean: ## remove build outputs (keeps ./data)
	rm -rf $(VENV) target
