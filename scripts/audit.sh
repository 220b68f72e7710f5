#!/usr/bin/env bash
# `cargo audit` of Cargo.lock against the RustSec advisory database. The database is
# $AUDIT_DB (a checkout of github.com/RustSec/advisory-db) when set, else fetched from GitHub.
# A machine that can reach neither is told so loudly; any advisory found fails.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "audit: $*" >&2; }
args=()
if [ -n "${AUDIT_DB:-}" ]; then
  [ -d "$AUDIT_DB" ] || { say "ERROR: AUDIT_DB=$AUDIT_DB is not a directory"; exit 1; }
  args=(--db "$AUDIT_DB" --no-fetch)
elif ! timeout 15 git ls-remote -q https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
  say "NOT RUN: the RustSec advisory database is unreachable from this machine;"
  say "set AUDIT_DB to a checkout of github.com/RustSec/advisory-db to audit offline"
  exit 0
fi
cargo audit --version >/dev/null 2>&1 || cargo install cargo-audit --locked
cargo audit "${args[@]}"
