# ecto-server: common tasks. `make run` serves a self-hosted server on :3000; `make test` runs
# every check and both profiles' tests (it starts PostgreSQL, Redis and an S3 emulator if needed).

CARGO ?= cargo
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build release test lint fmt fmt-check clippy deps-check machete audit browser-deps test-self-hosted test-managed migrate measure-startup bench bench-compare bench-communities drills drills-short clean

run:
	$(CARGO) run --bin ecto-server -- serve

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --bin ecto-server

migrate:
	$(CARGO) run --bin ecto-server -- migrate

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

deps-check:
	./scripts/deps-check.sh

lint: fmt-check clippy deps-check machete audit

# Known advisories of the locked dependencies (RustSec; AUDIT_DB for an offline checkout).
audit:
	./scripts/audit.sh

ifeq ($(NEXTEST),yes)
RUN_TESTS = $(CARGO) nextest run --no-fail-fast
else
RUN_TESTS = $(CARGO) test --no-fail-fast
endif

# Dependencies declared but never used (installed on first use).
machete:
	@$(CARGO) machete --version >/dev/null 2>&1 || $(CARGO) install cargo-machete --locked
	$(CARGO) machete

# The real-browser voice tests: Debian's chromium (/usr/bin/chromium, or $$CHROMIUM), Node.js
# and tests/browser's packages (playwright-core, mediasoup-client, esbuild), installed when
# missing.
browser-deps:
	./scripts/browser-deps.sh

# Everything: formatting, lints, the crate-graph check, unit tests, port contract tests and the
# API tests against both profiles (self-hosted and managed, real browsers for voice), in one
# test run; then the short form of the reliability drills (drills-short).
test: lint browser-deps
	./scripts/with-test-services.sh $(RUN_TESTS) --workspace
	$(MAKE) drills-short

# Only the API tests of one profile.
test-self-hosted: browser-deps
	$(RUN_TESTS) -p ecto-tests self_hosted

test-managed: browser-deps
	./scripts/with-test-services.sh $(RUN_TESTS) -p ecto-tests managed

# Time to first /health and idle RSS of the release binary (self-hosted, migrated database).
measure-startup: release
	./scripts/measure-startup.py target/release/ecto-server 5

# Builds ecto-server and ecto-load (release), runs the standard load scenarios against both
# profiles (with the test services of scripts/with-test-services.sh) and writes
# docs/BENCHMARKS.md, then the many-communities runs (bench-communities). About fifteen minutes.
bench:
	./scripts/with-test-services.sh python3 scripts/bench.py
	./scripts/with-test-services.sh python3 scripts/bench_communities.py --no-build

# Before/after CPU and memory per unit of work, the server at BASE against the working tree,
# in one run (the "Before and after" section of docs/BENCHMARKS.md). BASE defaults to the
# commit before performance round 2.
BASE ?= a67a837
bench-compare:
	./scripts/with-test-services.sh python3 scripts/bench_compare.py --base $(BASE)

# Many communities on two managed instances, on one Redis and on a Redis Cluster: each
# instance's CPU and Redis's operations per message and per delivery (the "Many communities"
# section of docs/BENCHMARKS.md). About five minutes.
bench-communities:
	./scripts/with-test-services.sh python3 scripts/bench_communities.py

# Reliability drills against the release server, writing docs/RELIABILITY.md: 32 clients
# sending while the server is killed with SIGKILL (SQLite and PostgreSQL), a managed instance
# killed and a rolling restart under 500 sockets, Redis and PostgreSQL stopped, a full disk and
# a dead S3 store under uploads, floods of idle, slow and hostile connections, and fuzzed tRPC,
# /ws, multipart and /files input. About ten minutes; needs root (a tmpfs is mounted).
DRILLS_PROFILES ?= self-hosted,managed
drills: release
	./scripts/with-test-services.sh python3 scripts/drills.py --profiles $(DRILLS_PROFILES)

# Their short form, part of `make test`: the debug server the tests built, smaller floods, a
# shorter burst, fewer fuzz cases; the report goes to target/RELIABILITY-short.md.
drills-short:
	$(CARGO) build --bin ecto-server
	./scripts/with-test-services.sh python3 scripts/drills.py --short --binary target/debug/ecto-server --profiles $(DRILLS_PROFILES) --out target/RELIABILITY-short.md

clean:
	$(CARGO) clean
