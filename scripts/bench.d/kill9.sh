#!/usr/bin/env bash
# Crash safety: 100 rounds of `kill -9` of the server at random moments during bursts of export
# changes and Git pushes (`linkplane dev`), then exact convergence: mirror sets, Postgres =
# clusters, no revision lost or applied twice. scripts/test runs 20 rounds of the same test.
# Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --workspace --bins
LINKPLANE_BIN="$PWD/target/debug/linkplane" LINKPLANE_KILL_ROUNDS="${LINKPLANE_KILL_ROUNDS:-100}" \
  cargo nextest run --locked -p linkplane-e2e --test crash --no-capture 2>&1 |
  grep -E 'LINKPLANE_KILL_SEED|kill -9 rounds|panicked|timed out|PASS|FAIL' || true
