# trail — the project's commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
RUST_SRC := $(shell find rust_core/src -name '*.rs') rust_core/Cargo.toml Cargo.toml
export PYO3_PYTHON := $(abspath $(PY))

HOST ?= 127.0.0.1
PORT ?= 8000
DATA ?= ./data

.PHONY: help install serve test test-rust test-py bench lint fmt clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.deps: pyproject.toml | $(PY)
	$(PY) -m pip install -q "maturin>=1.7,<2" $$($(PY) scripts/deps.py)
	touch $@

$(STAMP): $(VENV)/.deps $(RUST_SRC)
	$(VENV)/bin/maturin develop --release -q
	touch $@

install: $(STAMP) ## create .venv, install dependencies, build the extension (release)

serve: install ## run trail on $(HOST):$(PORT) with data in $(DATA)
	$(VENV)/bin/trail serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

test: install test-rust test-py ## cargo test + pytest

test-rust:
	cargo test --release -p trail_core -q

test-py: install
	$(VENV)/bin/pytest -q

bench: install ## peak-rate and latency benchmarks, writes bench/RESULTS.md
	$(PY) bench/run.py

lint: install ## ruff, mypy, cargo fmt --check, clippy
	$(VENV)/bin/ruff check trail tests bench
	$(VENV)/bin/ruff format --check trail tests bench
	$(VENV)/bin/mypy trail
	cargo fmt --check
	cargo clippy -p trail_core --all-targets -- -D warnings
	cargo clippy -p trail_core --all-targets --features python -- -D warnings

fmt: install ## format Python and Rust
	$(VENV)/bin/ruff format trail tests bench
	cargo fmt

clean: ## remove build outputs (keeps ./data)
	rm -rf $(VENV) target
