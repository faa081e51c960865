#!/usr/bin/env bash
# Federated services: 1,000 services deployed in 5 fully linked clusters (5,000 `<svc>-federated`
# Services of five members each): cold-start convergence, and p50/p99 of one membership change
# reaching all five source clusters over 50 changes (goal p99 <= 500 ms), with the ratio to a raw
# write + read-back round trip on the same simulator. Needs DATABASE_URL (scripts/bench starts a
# throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p linkplane-mirror --example federation_bench
./target/release/examples/federation_bench
