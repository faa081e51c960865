#!/usr/bin/env bash
# Write storms (issue 15): 60 mirrors whose every write is answered 500, then 429, for
# STORM_SECS (default 120) each; writes counted from kubesim's request log per key and per half
# storm (ratio second/first: 1.00 for a fixed-interval retry), and convergence after the storm.
# Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p linkplane-mirror --example storm_bench
./target/release/examples/storm_bench
