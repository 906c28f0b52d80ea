# Kefu: `make run` starts the server on SQLite, `make test` runs the whole suite.
# Both install what is missing first (scripts/tools.sh). Build output and tools live outside the
# clone (~/.cache/kefu) so a fresh clone rebuilds in seconds, not minutes.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export KEFU_TOOLS ?= $(HOME)/.cache/kefu/tools
export CARGO_TARGET_DIR ?= $(HOME)/.cache/kefu/target
export PATH := $(KEFU_TOOLS)/bin:$(PATH)
# leptos_config reads these at compile time: give every cargo command the values cargo-leptos
# uses, so tests and clippy do not rebuild leptos and everything above it.
export LEPTOS_OUTPUT_NAME := kefu
export LEPTOS_SITE_ROOT := target/site
export LEPTOS_SITE_PKG_DIR := pkg
export CARGO_TERM_COLOR ?= always

KEFU := $(CARGO_TARGET_DIR)/release/kefu
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
MYSQL_URL ?= mysql://root@127.0.0.1:3306/test

.PHONY: help tools tools-test build widget run test lint unit contract console-size api-fuzz e2e dist dist-test fmt

help:
	@echo "make run    build and start Kefu on SQLite (./data/kefu.db)"
	@echo "make test   formatting, lints, unit/integration tests, store contract on SQLite,"
	@echo "            MariaDB and PostgreSQL, widget size budget, Playwright in Chromium,"
	@echo "            and the release tarball started from an empty directory"
	@echo "make dist   the release tarball in dist/ (docs/deploy.md)"
	@echo "make fmt    format the code"
	@echo "make bench  the load benchmark (docs/benchmarks.md)"
	@echo "make soak   an hour at 500 msg/s; fails if RSS or descriptors keep growing"

tools:
	@scripts/tools.sh

# Rebuild only when a source changed, so a second `make run` starts in seconds (cargo-leptos
# re-runs wasm-bindgen and its JS minifier even when nothing changed).
SOURCES := Cargo.toml Cargo.lock Leptos.toml $(shell find protocol store app frontend server widget-wasm style public -type f -not -path '*/node_modules/*' 2>/dev/null)
BUILT := target/.built

build: $(BUILT)

$(BUILT): $(SOURCES) | tools
	cargo leptos build --release --precompress --split
	@# cargo-leptos' gzip is light; gzip -9 makes the copy browsers without brotli get ~15% smaller.
	@for f in target/site/pkg/*.wasm target/site/pkg/*.js target/site/pkg/*.css; do gzip -9 -n -c "$$f" > "$$f.gz"; done
	@scripts/build-widget.sh
	@touch $@

widget:
	@scripts/build-widget.sh

run: build
	@mkdir -p data
	$(KEFU) serve --demo

fmt:
	cargo fmt --all

test: tools-test lint unit contract build console-size api-fuzz e2e dist-test
	@echo "make test: all green"

tools-test:
	@scripts/tools.sh --test
	@scripts/test-databases.sh

lint:
	cargo fmt --all -- --check
	# modules that import each other in a cycle, file by file and top-level module by top-level
	# module (scripts/module-cycles.py)
	python3 scripts/module-cycles.py server/src store/src protocol/src app/src
	cargo clippy --all-targets -- -D warnings
	# one SQLite library in the process: sqlx's pool and the group-commit writer (rusqlite) on
	# the same libsqlite3-sys (`cargo tree -i` fails when two versions are in the graph)
	cargo tree -i libsqlite3-sys --depth 0
	cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
	# the widget is built without std on its own (see widget-wasm/Cargo.toml)
	cargo clippy -p widget-wasm --features standalone --target wasm32-unknown-unknown -- -D warnings

unit:
	PG_URL=$(PG_URL) MYSQL_URL=$(MYSQL_URL) cargo test -p protocol -p app -p server -- --skip chaos_ --skip crash_ --skip cluster_ --skip database_outage_ --skip signin_throttle_ --skip properties:: --skip budget_memory_ --skip replay_bounded_
	# property tests of the frame decoders and the HTTP batch parser, and the budgets' memory
	# after 100,000 addresses; they print their counts (the same packages as above, so nothing
	# is rebuilt with other features)
	cargo test -p protocol -p app -p server --lib -- properties:: budget_memory_ --nocapture
	# bounded replay: prints the bytes per burst and the RSS it measured
	cargo test -p server --test replay -- --nocapture
	# sign-in throttling against a real kefu process; prints /healthz latency and RSS under a burst
	cargo test -p server --test login -- --nocapture --test-threads=1
	# on its own: together with the others it would change their features and rebuild them
	cargo test -p widget-wasm --lib -- --nocapture
	# the chaos and crash tests print their message counts
	cargo test -p server --test chaos -- --nocapture --test-threads=1
	# three nodes behind nginx over PostgreSQL and Redis (docs/scaling.md), Redis restarted and
	# partitioned from one node; they print counts
	PG_URL=$(PG_URL) cargo test -p server --test cluster -- --nocapture --test-threads=1
	# database link cuts (a fault-injecting proxy) and restarts (private servers the tests start)
	# under load on PostgreSQL and MariaDB; they print their counts
	PG_URL=$(PG_URL) MYSQL_URL=$(MYSQL_URL) cargo test -p server --test faults -- --nocapture --test-threads=1
	# the store crate's own unit tests (the contract suite runs per backend below), how it
	# tells connection mistakes apart on the real servers, and a full disk under SQLite
	cargo test -p store --lib
	PG_URL=$(PG_URL) MYSQL_URL=$(MYSQL_URL) cargo test -p store --test it -- --skip contract::

contract:
	@scripts/contract.sh sqlite "" postgres "$(PG_URL)" mariadb "$(MYSQL_URL)"

# What the console's first load downloads, against its budget (scripts/console-assets.sh).
console-size: build
	@scripts/console-assets.sh

# The REST API fuzzed against its own OpenAPI document by schemathesis on a real server;
# prints its counts and fails on any mismatch (scripts/api-fuzz.sh).
api-fuzz: build
	@scripts/api-fuzz.sh $(KEFU)

e2e:
	cd end2end && KEFU_BIN=$(KEFU) npx playwright test

# The release tarball (docs/deploy.md), and the check that it runs unpacked on its own.
dist: build
	@scripts/dist.sh

dist-test: build
	@scripts/dist-test.sh

# Load benchmark (docs/benchmarks.md): a real server, driven over real sockets by several client
# processes; prints each figure with its target and its ratio to a raw WebSocket echo floor.
# Targets are reported, not asserted. KEFU_BENCH_SCALE=0.1 runs a quick, smaller version.
.PHONY: bench
bench:
	cargo build --release -p bench
	$(CARGO_TARGET_DIR)/release/kefu-bench
	# history search on a million messages per backend (store/src/search.rs)
	PG_URL=$(PG_URL) MYSQL_URL=$(MYSQL_URL) $(CARGO_TARGET_DIR)/release/kefu-bench history
	# 1, 2 and 3 nodes over PostgreSQL and a Redis bus (docs/scaling.md)
	PG_URL=$(PG_URL) $(CARGO_TARGET_DIR)/release/kefu-bench cluster

# Soak (docs/benchmarks.md): one server under a steady 500 msg/s with visitors coming and going,
# reconnects and HTTP polls for KEFU_SOAK_MINUTES (default 60); samples RSS, descriptors, tokio
# tasks and database size every KEFU_SOAK_SAMPLE_SECS (default 60), prints their slopes after
# warm-up and fails if RSS or descriptors keep growing or a message is lost. Not part of `make test`.
.PHONY: soak
soak:
	cargo build --release -p bench
	$(CARGO_TARGET_DIR)/release/kefu-bench soak
