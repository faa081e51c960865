#!/usr/bin/env bash
# Service mirror: 5,000 services into three clusters (convergence, writes/s vs raw creates/s),
# one of five clusters down (convergence ratio), supervisor RSS with 20,000 mirrors / 10 clusters.
# Needs DATABASE_URL (scripts/bench starts a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p linkplane-mirror --example mirror_bench
./target/release/examples/mirror_bench
