# Task runner: `make help`. Each target runs what CI (.ci/run) runs for that concern, so
# `make lint types test docs` before a push reproduces CI apart from the README commands.
# Run it in an environment where `pip install -e '.[dev]'` was done (see CONTRIBUTING.md).

PYTHON ?= python
SRC := src tests benchmarks
CARGO_DIR := rust

.PHONY: help test test-unit test-integration test-vectors lint format types docs bench rust-test all

help:  ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test:  ## the whole Python suite (unit, integration against real OpenBao/moto, vectors)
	$(PYTHON) -m pytest -q

test-unit:  ## only tests/unit (no servers)
	$(PYTHON) -m pytest -q tests/unit

test-integration:  ## only tests/integration (starts OpenBao and moto on loopback)
	$(PYTHON) -m pytest -q tests/integration

test-vectors:  ## only the known-answer vectors (Wycheproof, NIST, envelope-v1)
	$(PYTHON) -m pytest -q tests/vectors

lint:  ## ruff, ruff format --check, lint-imports, cargo fmt --check, clippy
	ruff check $(SRC)
	ruff format --check $(SRC)
	lint-imports
	cd $(CARGO_DIR) && cargo fmt --all --check
	cd $(CARGO_DIR) && cargo clippy --workspace --all-targets -- -D warnings

format:  ## apply ruff format and cargo fmt
	ruff format $(SRC)
	cd $(CARGO_DIR) && cargo fmt --all

types:  ## mypy --strict, and the _native.pyi stub against the compiled module
	mypy --strict src/envelope
	$(PYTHON) -m mypy.stubtest envelope._native

docs:  ## the API reference and guides into site/ (warnings are errors)
	mkdocs build --strict

bench:  ## every benchmark at quick sizes (figures for docs/benchmarks.md need the defaults)
	$(PYTHON) benchmarks/bench_chunked.py --mib 16 --repeat 2
	$(PYTHON) benchmarks/bench_batch.py --n 20000 --sizes 64 --repeat 1 --cases envelope-list,envelope-buffer,envelope-arrow
	$(PYTHON) benchmarks/bench_cache.py --n 2000 --uncached-n 100
	$(PYTHON) benchmarks/bench_vault.py --n 200 --batch 100

rust-test:  ## cargo test over the workspace (kernel vectors, binding)
	cd $(CARGO_DIR) && cargo test --workspace

all: lint types test docs rust-test  ## everything CI checks after the README commands
